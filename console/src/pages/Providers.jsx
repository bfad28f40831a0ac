// Providers for virtualization: the list (status, inventory counts), Add
// provider, and each source host's migration network (a Host resource).
import { useState } from 'react';
import {
  Button,
  Checkbox,
  FormGroup,
  FormSelect,
  FormSelectOption,
  PageSection,
  TextArea,
  TextInput,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr, ExpandableRowContent } from '@patternfly/react-table';
import { apply } from '../api.js';
import { inventoryOf, useInventories, useResources } from '../data.js';
import { NS, PROVIDER_TYPES, messagesFor } from '../format.js';
import { Errors, FieldErrors, FormModal, Header, Phase } from '../components/common.jsx';

// The first field whose words a message names gets it ("user/password: ..."
// goes to the password).
const FIELDS = [
  ['name', ['metadata.name']],
  ['url', ['spec.url']],
  ['password', ['password']],
  ['user', [': user', 'user:']],
  ['thumbprint', ['thumbprint']],
  ['cacert', ['cacert']],
];

export function providerDocs(f) {
  const provider = {
    apiVersion: 'forklift.konveyor.io/v1beta1',
    kind: 'Provider',
    metadata: { name: f.name, namespace: NS },
    spec: { type: f.type, url: f.type === 'openshift' ? '' : f.url },
  };
  if (f.type === 'openshift') return [provider];
  const secretName = `${f.name}-credentials`;
  const data = { user: f.user, password: f.password };
  if (f.type === 'vsphere' && f.thumbprint) data.thumbprint = f.thumbprint;
  if (f.type === 'ovirt' && f.cacert) data.cacert = f.cacert;
  if (f.insecure) data.insecureSkipVerify = 'true';
  provider.spec.secret = { name: secretName, namespace: NS };
  return [
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: secretName, namespace: NS },
      type: 'Opaque',
      stringData: data,
    },
    provider,
  ];
}

function AddProvider({ onClose }) {
  const [f, setF] = useState({
    type: 'vsphere',
    name: '',
    url: '',
    user: '',
    password: '',
    thumbprint: '',
    cacert: '',
    insecure: false,
  });
  const [errs, setErrs] = useState({ byField: {}, rest: [] });
  const [busy, setBusy] = useState(false);
  const set = (k) => (_, v) => setF({ ...f, [k]: v });
  const submit = async () => {
    setBusy(true);
    // The coordinator tests the connection and reads the inventory before
    // it stores anything; a refusal leaves nothing behind.
    const a = await apply(providerDocs(f), { name: 'Add provider' });
    setBusy(false);
    if (a.ok) onClose(true);
    else setErrs(messagesFor(a, FIELDS));
  };
  const remote = f.type !== 'openshift';
  return (
    <FormModal id="add-provider-form" title="Create provider" submitLabel="Create provider" onSubmit={submit} onClose={onClose} busy={busy}>
          <FormGroup label="Provider type" fieldId="p-type" isRequired>
            <FormSelect id="p-type" value={f.type} onChange={set('type')}>
              {Object.entries(PROVIDER_TYPES).map(([v, l]) => (
                <FormSelectOption key={v} value={v} label={l} />
              ))}
            </FormSelect>
          </FormGroup>
          <FormGroup label="Provider resource name" fieldId="p-name" isRequired>
            <TextInput id="p-name" value={f.name} onChange={set('name')} />
            <FieldErrors messages={errs.byField.name} />
          </FormGroup>
          {remote && (
            <>
              <FormGroup label="URL" fieldId="p-url" isRequired>
                <TextInput
                  id="p-url"
                  value={f.url}
                  onChange={set('url')}
                  placeholder={
                    f.type === 'vsphere'
                      ? 'https://vcenter.example.com/sdk'
                      : 'https://engine.example.com/ovirt-engine/api'
                  }
                />
                <FieldErrors messages={errs.byField.url} />
              </FormGroup>
              <FormGroup label="Username" fieldId="p-user" isRequired>
                <TextInput id="p-user" value={f.user} onChange={set('user')} />
                <FieldErrors messages={errs.byField.user} />
              </FormGroup>
              <FormGroup label="Password" fieldId="p-password" isRequired>
                <TextInput id="p-password" type="password" value={f.password} onChange={set('password')} />
                <FieldErrors messages={errs.byField.password} />
              </FormGroup>
              {f.type === 'vsphere' ? (
                <FormGroup label="SHA-1 fingerprint" fieldId="p-thumbprint">
                  <TextInput id="p-thumbprint" value={f.thumbprint} onChange={set('thumbprint')} />
                  <FieldErrors messages={errs.byField.thumbprint} />
                </FormGroup>
              ) : (
                <FormGroup label="CA certificate" fieldId="p-cacert">
                  <TextArea id="p-cacert" value={f.cacert} onChange={set('cacert')} rows={4} />
                  <FieldErrors messages={errs.byField.cacert} />
                </FormGroup>
              )}
              <Checkbox
                id="p-insecure"
                label="Skip certificate validation"
                isChecked={f.insecure}
                onChange={set('insecure')}
              />
            </>
          )}
          <Errors messages={errs.rest} />
    </FormModal>
  );
}

function MigrationNetwork({ provider, host, current, onClose }) {
  const [ip, setIp] = useState(current?.spec?.ipAddress || '');
  const [errs, setErrs] = useState([]);
  const save = async () => {
    const name = `${provider.metadata.name}-${host.id}`.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    const a = await apply(
      [
        {
          apiVersion: 'forklift.konveyor.io/v1beta1',
          kind: 'Host',
          metadata: { name: current?.metadata?.name || name, namespace: NS },
          spec: {
            provider: { name: provider.metadata.name, namespace: provider.metadata.namespace },
            id: host.id,
            ipAddress: ip,
          },
        },
      ],
      { name: 'Select migration network' },
    );
    if (a.ok) onClose(true);
    else setErrs(a.errors || [a.error]);
  };
  return (
    <FormModal
      id="mignet-form"
      variant="small"
      title={`Select migration network: ${host.name}`}
      submitLabel="Save"
      onSubmit={save}
      onClose={onClose}
    >
          <FormGroup label="IP address of the host on the migration network" fieldId="h-ip" isRequired>
            <TextInput id="h-ip" value={ip} onChange={(_, v) => setIp(v)} />
          </FormGroup>
          <Errors messages={errs} />
    </FormModal>
  );
}

export function Providers() {
  const providers = useResources('provider');
  const hosts = useResources('host');
  const inventories = useInventories();
  const [adding, setAdding] = useState(false);
  const [open, setOpen] = useState({});
  const [editing, setEditing] = useState(null);
  const invOf = (p) => inventoryOf(inventories.items, p.metadata.namespace, p.metadata.name);
  return (
    <>
      <Header title="Providers for virtualization">
        <Button onClick={() => setAdding(true)}>Create provider</Button>
      </Header>
      <PageSection>
        <Errors messages={providers.error ? [providers.error] : []} title="Cannot list providers" />
        <Table aria-label="Providers" data-testid="providers">
          <Thead>
            <Tr>
              <Th screenReaderText="Hosts" />
              <Th>Name</Th>
              <Th>Type</Th>
              <Th>Status</Th>
              <Th>URL</Th>
              <Th>VMs</Th>
              <Th>Hosts</Th>
              <Th>Networks</Th>
              <Th>Storage</Th>
            </Tr>
          </Thead>
          {(providers.items || []).map((p, i) => {
            const inv = invOf(p);
            const key = `${p.metadata.namespace}/${p.metadata.name}`;
            const isSource = p.spec.type !== 'openshift';
            return (
              <Tbody key={key} isExpanded={!!open[key]}>
                <Tr data-testid={`provider-${p.metadata.name}`}>
                  <Td
                    expand={
                      isSource
                        ? { rowIndex: i, isExpanded: !!open[key], onToggle: () => setOpen({ ...open, [key]: !open[key] }) }
                        : undefined
                    }
                  />
                  <Td dataLabel="Name">{p.metadata.name}</Td>
                  <Td dataLabel="Type">{PROVIDER_TYPES[p.spec.type] || p.spec.type}</Td>
                  <Td dataLabel="Status">
                    <Phase phase={p.status?.phase} />
                  </Td>
                  <Td dataLabel="URL">{p.spec.url || '(this cluster)'}</Td>
                  <Td dataLabel="VMs" data-testid="vm-count">
                    {inv ? inv.vms?.length ?? 0 : '—'}
                  </Td>
                  <Td dataLabel="Hosts">{inv ? inv.hosts?.length ?? 0 : '—'}</Td>
                  <Td dataLabel="Networks">{inv ? inv.networks?.length ?? 0 : '—'}</Td>
                  <Td dataLabel="Storage">{inv ? inv.datastores?.length ?? 0 : '—'}</Td>
                </Tr>
                {isSource && (
                  <Tr isExpanded={!!open[key]}>
                    <Td colSpan={9}>
                      <ExpandableRowContent>
                        <Table aria-label={`Hosts of ${p.metadata.name}`} variant="compact">
                          <Thead>
                            <Tr>
                              <Th>Host</Th>
                              <Th>Cluster</Th>
                              <Th>Migration network (IP address)</Th>
                              <Th screenReaderText="Actions" />
                            </Tr>
                          </Thead>
                          <Tbody>
                            {(inv?.hosts || []).map((h) => {
                              const hr = (hosts.items || []).find(
                                (x) => x.spec.id === h.id && x.spec.provider?.name === p.metadata.name,
                              );
                              return (
                                <Tr key={h.id}>
                                  <Td>{h.name}</Td>
                                  <Td>{h.cluster || '—'}</Td>
                                  <Td>{hr?.spec?.ipAddress || 'the management network'}</Td>
                                  <Td>
                                    <Button variant="secondary" size="sm" onClick={() => setEditing({ p, h, hr })}>
                                      Select migration network
                                    </Button>
                                  </Td>
                                </Tr>
                              );
                            })}
                          </Tbody>
                        </Table>
                      </ExpandableRowContent>
                    </Td>
                  </Tr>
                )}
              </Tbody>
            );
          })}
        </Table>
      </PageSection>
      {adding && (
        <AddProvider
          onClose={(done) => {
            setAdding(false);
            if (done) providers.reload();
          }}
        />
      )}
      {editing && (
        <MigrationNetwork
          provider={editing.p}
          host={editing.h}
          current={editing.hr}
          onClose={(done) => {
            setEditing(null);
            if (done) hosts.reload();
          }}
        />
      )}
    </>
  );
}
