// Create migration plan: MTV's wizard (General, Virtual machines, Network
// mapping, Storage mapping, Type, Hooks, Review). Every Next asks the API
// for a dry run of the plan so far and shows what it refuses at the step
// that owns the field, in its words; Finish applies the same documents.
import { useMemo, useState } from 'react';
import {
  Alert,
  Checkbox,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  Form,
  FormGroup,
  FormSelect,
  FormSelectOption,
  PageSection,
  Radio,
  SearchInput,
  TextInput,
  Wizard,
  WizardFooter,
  WizardStep,
  useWizardContext,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { apply } from '../api.js';
import { navigate } from '../App.jsx';
import { inventoryOf, useInventories, useResources } from '../data.js';
import { NS, bytes, messagesFor } from '../format.js';
import { Errors, Header } from '../components/common.jsx';
import { Concerns } from './Inventory.jsx';

// Which step owns a message, by the field or condition it names.
// Condition names and map fields first: a per-VM condition also names
// spec.vms[i], but its cause is the step that owns the condition.
const OWNERS = [
  ['general', ['metadata.name', 'spec.provider', 'spec.targetNamespace', 'SourceProvider', 'DestinationProvider']],
  ['hooks', ['.hooks', 'Hook']],
  ['network', ['spec.map.network', 'NetworkMap', 'VMNetworksNotMapped', 'VMMultiplePodNetworkMappings', 'spec.transferNetwork']],
  ['storage', ['spec.map.storage', 'StorageMap', 'VMStorageNotMapped']],
  ['type', ['spec.warm', 'spec.type', 'precopyInterval', 'maxDowntime', 'VMMissingChangedBlockTracking', 'skipGuestConversion']],
  ['vms', ['spec.vms', 'VMNotFound', 'VMRefNotValid', 'VMAlreadyExists', 'VMCriticalConcerns', 'VMPoweredOff', 'VMHasSnapshots']],
];
const ORDER = ['general', 'vms', 'network', 'storage', 'type', 'hooks', 'review'];

// The API's messages, one per line ("Plan x is not ready:" lists its
// conditions below it), each given to the step that owns it.
export function byStep(answer) {
  const all = answer?.errors?.length ? answer.errors : answer?.error ? [answer.error] : [];
  const lines = all
    .flatMap((m) => m.split('\n').map((l) => l.trim()))
    .filter((l) => l && !/is not ready:$/.test(l));
  const { byField, rest } = messagesFor({ errors: lines }, OWNERS);
  return rest.length ? { ...byField, review: rest } : byField;
}

function planDoc(f) {
  const ref = (name) => ({ name, namespace: NS });
  const hooks = [];
  if (f.preHook) hooks.push({ hook: ref(f.preHook), step: 'PreHook' });
  if (f.postHook) hooks.push({ hook: ref(f.postHook), step: 'PostHook' });
  const spec = {
    provider: { source: ref(f.source), destination: ref(f.destination) },
    map: { network: ref(f.networkMap), storage: ref(f.storageMap) },
    targetNamespace: f.targetNamespace,
    warm: f.warm,
    vms: f.vms.map((id) => (hooks.length ? { id, hooks } : { id })),
  };
  if (f.skipGuestConversion) spec.skipGuestConversion = true;
  if (f.description) spec.description = f.description;
  return {
    apiVersion: 'forklift.konveyor.io/v1beta1',
    kind: 'Plan',
    metadata: { name: f.name, namespace: NS },
    spec,
  };
}

export function PlanWizard() {
  const providers = useResources('provider', { every: 10000 });
  const netmaps = useResources('networkmap', { every: 10000 });
  const stormaps = useResources('storagemap', { every: 10000 });
  const hooks = useResources('hook', { every: 10000 });
  const inventories = useInventories();
  const sources = (providers.items || []).filter((p) => p.spec.type !== 'openshift');
  const targets = (providers.items || []).filter((p) => p.spec.type === 'openshift');
  const [f, setF] = useState({
    name: '',
    description: '',
    source: '',
    destination: '',
    targetNamespace: '',
    vms: [],
    networkMap: '',
    storageMap: '',
    warm: false,
    skipGuestConversion: false,
    preHook: '',
    postHook: '',
  });
  const [filter, setFilter] = useState('');
  const [problems, setProblems] = useState({});
  const [result, setResult] = useState(null);
  const source = f.source || sources[0]?.metadata.name || '';
  const destination = f.destination || targets[0]?.metadata.name || '';
  const form = { ...f, source, destination };
  const set = (k) => (_, v) => setF({ ...f, source, destination, [k]: v });
  const inv = inventoryOf(inventories.items, NS, source);
  const vms = useMemo(() => {
    const q = filter.trim().toLowerCase();
    return (inv?.vms || []).filter(
      (v) => !v.template && (!q || v.name.toLowerCase().includes(q) || (v.host || '').toLowerCase().includes(q)),
    );
  }, [inv, filter]);
  const forSource = (maps) => (maps.items || []).filter((m) => m.spec.provider?.source?.name === source);

  // Next: a dry run; stay on this step if the API names any of its fields
  // (or an earlier step's).
  const check = async (step) => {
    const a = await apply([planDoc(form)], { dryRun: true, name: 'Create plan' });
    const all = a.ok ? {} : byStep(a);
    // Only what concerns the steps done so far (the next step, Review, shows
    // everything): a later step's field is not the user's fault yet.
    const upto = ORDER.slice(0, ORDER.indexOf(step) + (step === 'hooks' ? 2 : 1));
    const mine = Object.fromEntries(Object.entries(all).filter(([s]) => upto.includes(s)));
    setProblems(mine);
    return !ORDER.slice(0, ORDER.indexOf(step) + 1).some((s) => mine[s]?.length);
  };
  const finish = async () => {
    const a = await apply([planDoc(form)], { name: 'Create plan' });
    if (a.ok) navigate(`/plans/${NS}/${form.name}`);
    else {
      setProblems(byStep(a));
      setResult(a);
    }
  };
  return (
    <>
      <Header title="Create migration plan" />
      <PageSection>
        <WizardBody
          check={check}
          finish={finish}
          problems={problems}
          steps={{
            general: (
              <Form onSubmit={(e) => e.preventDefault()}>
                <FormGroup label="Plan name" fieldId="w-name" isRequired>
                  <TextInput id="w-name" value={f.name} onChange={set('name')} />
                </FormGroup>
                <FormGroup label="Plan description" fieldId="w-description">
                  <TextInput id="w-description" value={f.description} onChange={set('description')} />
                </FormGroup>
                <FormGroup label="Source provider" fieldId="w-source" isRequired>
                  <FormSelect id="w-source" value={source} onChange={set('source')}>
                    {sources.map((p) => (
                      <FormSelectOption key={p.metadata.name} value={p.metadata.name} label={p.metadata.name} />
                    ))}
                  </FormSelect>
                </FormGroup>
                <FormGroup label="Target provider" fieldId="w-destination" isRequired>
                  <FormSelect id="w-destination" value={destination} onChange={set('destination')}>
                    {targets.map((p) => (
                      <FormSelectOption key={p.metadata.name} value={p.metadata.name} label={p.metadata.name} />
                    ))}
                  </FormSelect>
                </FormGroup>
                <FormGroup label="Target namespace" fieldId="w-tns" isRequired>
                  <TextInput id="w-tns" value={f.targetNamespace} onChange={set('targetNamespace')} />
                </FormGroup>
                <Errors messages={problems.general} />
              </Form>
            ),
            vms: (
              <>
                <SearchInput
                  placeholder="Filter by name or host"
                  value={filter}
                  onChange={(_, v) => setFilter(v)}
                  onClear={() => setFilter('')}
                  aria-label="Filter virtual machines"
                />
                <p style={{ margin: '8px 0' }} data-testid="selected-count">
                  {f.vms.length} selected
                </p>
                <Table aria-label="Virtual machines" variant="compact" data-testid="wizard-vms">
                  <Thead>
                    <Tr>
                      <Th screenReaderText="Select" />
                      <Th>Name</Th>
                      <Th>Power</Th>
                      <Th>Host</Th>
                      <Th>Disks</Th>
                      <Th>Concerns</Th>
                    </Tr>
                  </Thead>
                  <Tbody>
                    {vms.map((v, i) => (
                      <Tr key={v.id} data-testid={`vm-${v.name}`}>
                        <Td
                          select={{
                            rowIndex: i,
                            isSelected: f.vms.includes(v.id),
                            onSelect: (_, on) =>
                              setF({
                                ...f,
                                source,
                                destination,
                                vms: on ? [...f.vms, v.id] : f.vms.filter((x) => x !== v.id),
                              }),
                          }}
                        />
                        <Td>{v.name}</Td>
                        <Td>{v.powerState}</Td>
                        <Td>{(inv?.hosts || []).find((h) => h.id === v.host)?.name || v.host}</Td>
                        <Td>
                          {(v.disks || []).length} ({bytes((v.disks || []).reduce((s, d) => s + (d.capacity || 0), 0))})
                        </Td>
                        <Td>
                          <Concerns vm={v} />
                        </Td>
                      </Tr>
                    ))}
                  </Tbody>
                </Table>
                <Errors messages={problems.vms} />
              </>
            ),
            network: (
              <Form onSubmit={(e) => e.preventDefault()}>
                <FormGroup label="Network map" fieldId="w-netmap" isRequired>
                  <FormSelect id="w-netmap" value={f.networkMap} onChange={set('networkMap')}>
                    <FormSelectOption value="" label="Select a NetworkMap" isPlaceholder />
                    {forSource(netmaps).map((m) => (
                      <FormSelectOption key={m.metadata.name} value={m.metadata.name} label={m.metadata.name} />
                    ))}
                  </FormSelect>
                </FormGroup>
                <Errors messages={problems.network} />
              </Form>
            ),
            storage: (
              <Form onSubmit={(e) => e.preventDefault()}>
                <FormGroup label="Storage map" fieldId="w-stormap" isRequired>
                  <FormSelect id="w-stormap" value={f.storageMap} onChange={set('storageMap')}>
                    <FormSelectOption value="" label="Select a StorageMap" isPlaceholder />
                    {forSource(stormaps).map((m) => (
                      <FormSelectOption key={m.metadata.name} value={m.metadata.name} label={m.metadata.name} />
                    ))}
                  </FormSelect>
                </FormGroup>
                <Errors messages={problems.storage} />
              </Form>
            ),
            type: (
              <Form onSubmit={(e) => e.preventDefault()}>
                <FormGroup role="radiogroup" label="Migration type" fieldId="w-type" isStack>
                  <Radio
                    id="w-cold"
                    name="w-type"
                    label="Cold migration"
                    description="The VMs are shut down while their disks are copied."
                    isChecked={!f.warm}
                    onChange={() => setF({ ...f, source, destination, warm: false })}
                  />
                  <Radio
                    id="w-warm"
                    name="w-type"
                    label="Warm migration"
                    description="The disks are copied while the VMs run; they stop only for the cutover."
                    isChecked={f.warm}
                    onChange={() => setF({ ...f, source, destination, warm: true })}
                  />
                </FormGroup>
                <Checkbox
                  id="w-raw"
                  label="Raw copy mode (skip guest conversion)"
                  isChecked={f.skipGuestConversion}
                  onChange={set('skipGuestConversion')}
                />
                <Errors messages={problems.type} />
              </Form>
            ),
            hooks: (
              <Form onSubmit={(e) => e.preventDefault()}>
                <FormGroup label="Pre migration hook" fieldId="w-prehook">
                  <FormSelect id="w-prehook" value={f.preHook} onChange={set('preHook')}>
                    <FormSelectOption value="" label="None" />
                    {(hooks.items || []).map((h) => (
                      <FormSelectOption key={h.metadata.name} value={h.metadata.name} label={h.metadata.name} />
                    ))}
                  </FormSelect>
                </FormGroup>
                <FormGroup label="Post migration hook" fieldId="w-posthook">
                  <FormSelect id="w-posthook" value={f.postHook} onChange={set('postHook')}>
                    <FormSelectOption value="" label="None" />
                    {(hooks.items || []).map((h) => (
                      <FormSelectOption key={h.metadata.name} value={h.metadata.name} label={h.metadata.name} />
                    ))}
                  </FormSelect>
                </FormGroup>
                <Errors messages={problems.hooks} />
              </Form>
            ),
            review: (
              <>
                <DescriptionList isHorizontal>
                  {[
                    ['Plan name', form.name],
                    ['Source provider', source],
                    ['Target provider', destination],
                    ['Target namespace', form.targetNamespace],
                    ['Virtual machines', `${form.vms.length} selected`],
                    ['Network map', form.networkMap],
                    ['Storage map', form.storageMap],
                    ['Migration type', form.warm ? 'Warm' : 'Cold'],
                    ['Hooks', [form.preHook, form.postHook].filter(Boolean).join(', ') || 'None'],
                  ].map(([t, d]) => (
                    <DescriptionListGroup key={t}>
                      <DescriptionListTerm>{t}</DescriptionListTerm>
                      <DescriptionListDescription>{d || '—'}</DescriptionListDescription>
                    </DescriptionListGroup>
                  ))}
                </DescriptionList>
                {Object.entries(problems).map(([s, msgs]) => (
                  <Errors key={s} messages={msgs} title={`The API refuses the plan (${s})`} />
                ))}
                {result && !result.ok && !Object.keys(problems).length && <Alert variant="danger" isInline title={result.error} />}
              </>
            ),
          }}
        />
      </PageSection>
    </>
  );
}

const TITLES = {
  general: 'General settings',
  vms: 'Virtual machines',
  network: 'Network mapping',
  storage: 'Storage mapping',
  type: 'Type',
  hooks: 'Hooks',
  review: 'Review and create',
};

// Next runs the step's dry run first; Finish (on Review) creates the plan.
function GatedFooter({ step, check, finish }) {
  const { activeStep, goToNextStep, goToPrevStep, close } = useWizardContext();
  const [busy, setBusy] = useState(false);
  return (
    <WizardFooter
      activeStep={activeStep}
      isNextDisabled={busy}
      nextButtonText={step === 'review' ? 'Create plan' : 'Next'}
      isBackDisabled={step === 'general'}
      onBack={goToPrevStep}
      onClose={close}
      onNext={async () => {
        setBusy(true);
        try {
          if (step === 'review') await finish();
          else if (await check(step)) goToNextStep();
        } finally {
          setBusy(false);
        }
      }}
    />
  );
}

function WizardBody({ steps, check, finish, problems }) {
  return (
    <Wizard onClose={() => navigate('/plans')} height={640} data-testid="plan-wizard">
      {ORDER.map((s) => (
        <WizardStep
          key={s}
          id={`step-${s}`}
          name={TITLES[s]}
          status={problems[s]?.length ? 'error' : 'default'}
          footer={<GatedFooter step={s} check={check} finish={finish} />}
        >
          {steps[s]}
        </WizardStep>
      ))}
    </Wizard>
  );
}
