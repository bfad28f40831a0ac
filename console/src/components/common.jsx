// Pieces every page uses: field errors as the API words them, a page header,
// a status label, a form in a modal.
import {
  Alert,
  Button,
  Form,
  FormHelperText,
  HelperText,
  HelperTextItem,
  Label,
  Modal,
  ModalBody,
  ModalFooter,
  ModalHeader,
  PageSection,
  Title,
} from '@patternfly/react-core';

export function FieldErrors({ messages }) {
  if (!messages?.length) return null;
  return (
    <FormHelperText>
      <HelperText>
        {messages.map((m) => (
          <HelperTextItem key={m} variant="error">
            {m}
          </HelperTextItem>
        ))}
      </HelperText>
    </FormHelperText>
  );
}

export function Errors({ messages, title = 'The API refused it' }) {
  if (!messages?.length) return null;
  return (
    <Alert variant="danger" isInline title={title} data-testid="api-errors">
      <ul>
        {messages.map((m) => (
          <li key={m} style={{ whiteSpace: 'pre-wrap' }}>
            {m}
          </li>
        ))}
      </ul>
    </Alert>
  );
}

export function Header({ title, children }) {
  return (
    <PageSection>
      <div style={{ display: 'flex', alignItems: 'center', justifyContent: 'space-between' }}>
        <Title headingLevel="h1">{title}</Title>
        <div style={{ display: 'flex', gap: 8 }}>{children}</div>
      </div>
    </PageSection>
  );
}

const COLORS = {
  Ready: 'green',
  Succeeded: 'green',
  Completed: 'green',
  Running: 'blue',
  Failed: 'red',
  'Not ready': 'red',
  Canceled: 'orange',
  Pending: 'grey',
};

export function Phase({ phase }) {
  const p = phase || 'Pending';
  return (
    <Label color={COLORS[p] || 'grey'} data-testid="phase">
      {p}
    </Label>
  );
}

// A form in a modal: its submit button and Cancel. onClose(false) when
// dismissed; the caller closes it with onClose(true) once it succeeded.
export function FormModal({ id, title, submitLabel, onSubmit, onClose, busy = false, variant = 'medium', children }) {
  return (
    <Modal isOpen variant={variant} onClose={() => onClose(false)} aria-labelledby={`${id}-title`}>
      <ModalHeader title={title} labelId={`${id}-title`} />
      <ModalBody>
        <Form
          id={id}
          onSubmit={(e) => {
            e.preventDefault();
            onSubmit();
          }}
        >
          {children}
        </Form>
      </ModalBody>
      <ModalFooter>
        <Button type="submit" form={id} isLoading={busy} isDisabled={busy}>
          {submitLabel}
        </Button>
        <Button variant="link" onClick={() => onClose(false)}>
          Cancel
        </Button>
      </ModalFooter>
    </Modal>
  );
}
