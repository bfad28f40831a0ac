// A plan's details: its conditions, its latest migration (start, end, data
// copied), and every VM's pipeline with each step's state and elapsed time;
// Start/Restart, Cutover (with a time) and Cancel for selected VMs.
import { useEffect, useState } from 'react';
import {
  Alert,
  Button,
  DescriptionList,
  DescriptionListDescription,
  DescriptionListGroup,
  DescriptionListTerm,
  PageSection,
  Progress,
  ProgressStep,
  ProgressStepper,
  TextInput,
  Title,
} from '@patternfly/react-core';
import { ExpandableRowContent, Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { migrationsOf, useMigrations, usePoll } from '../data.js';
import { cancelVms, cutover, retryVm, startPlan } from '../actions.js';
import { duration, elapsedSeconds, mb, when } from '../format.js';
import { Errors, FormModal, Header, Phase } from '../components/common.jsx';
import { DowntimeChart, PrecopyChart } from '../components/charts.jsx';
import { planState } from './Plans.jsx';

const STEP_VARIANT = { Completed: 'success', Running: 'info', Failed: 'danger', Canceled: 'warning' };

function usePlan(ns, name) {
  const r = usePoll('get', { kind: 'plan', namespace: ns, name }, (a) => a.items[0], 3000, [ns, name]);
  return { doc: r.data, error: r.error };
}

// Re-renders every second while something runs, so elapsed times move.
function useNow(active) {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, [active]);
  return now;
}

// What a VM's copy has moved, against its disks' size. A cold copy's
// bytesDone runs to the disk's size; a warm VM's disks count each precopy
// anew, so its data is the sum of what every precopy copied.
export function copiedBytes(vm) {
  let done = 0;
  let total = 0;
  for (const d of vm.disks || []) {
    done += Number(d.bytesDone || 0);
    total += Number(d.capacity ?? d.bytesTotal ?? 0);
  }
  if (vm.warm) {
    const cycles = vm.warm.precopies || [];
    done = cycles.reduce((s, p) => s + Number(p.changedBytes || 0), 0);
    // The precopy under way, once its disks count this precopy's bytes.
    const cur =
      vm.warm.current && vm.phase === 'CopyDisks'
        ? (vm.disks || []).reduce((s, d) => s + Number(d.bytesDone || 0), 0)
        : 0;
    return { done: done + cur, total, precopies: cycles.length };
  }
  return { done, total };
}

function CopiedLabel({ vm }) {
  const b = copiedBytes(vm);
  if (!vm.disks) return '—';
  const finished = vm.phase === 'Completed' && !vm.error;
  // A warm VM moves only what changed: its bar is full when it is done.
  const value = b.precopies !== undefined ? (finished ? 100 : 0) : b.total ? (100 * b.done) / b.total : 0;
  return (
    <Progress
      value={value}
      title={
        b.precopies !== undefined
          ? `${mb(b.done)} in ${b.precopies} precopies (disks ${mb(b.total)})`
          : `${mb(b.done)} of ${mb(b.total)}`
      }
      size="sm"
      aria-label={`Copied for ${vm.name}`}
      data-testid="copied"
    />
  );
}

function Pipeline({ vm }) {
  return (
    <ProgressStepper isCompact aria-label={`Pipeline of ${vm.name}`}>
      {(vm.pipeline || []).map((s) => (
        <ProgressStep
          key={s.name}
          id={`${vm.name}-${s.name}`}
          titleId={`${vm.name}-${s.name}-title`}
          variant={STEP_VARIANT[s.phase] || 'pending'}
          isCurrent={s.phase === 'Running'}
          aria-label={`${s.name}: ${s.phase}`}
        >
          {s.name}
        </ProgressStep>
      ))}
    </ProgressStepper>
  );
}

function VmDetails({ vm, now, migration, onRetry }) {
  return (
    <>
      <Table aria-label={`Steps of ${vm.name}`} variant="compact" data-testid={`steps-${vm.name}`}>
        <Thead>
          <Tr>
            <Th>Step</Th>
            <Th>State</Th>
            <Th>Started</Th>
            <Th>Elapsed</Th>
            <Th>Progress</Th>
          </Tr>
        </Thead>
        <Tbody>
          {(vm.pipeline || []).map((s) => (
            <Tr key={s.name} data-testid={`step-${s.name}`}>
              <Td>{s.name}</Td>
              <Td>
                {s.phase}
                {s.reason ? ` (${s.reason})` : ''}
                {s.error ? `: ${(s.error.reasons || []).join('; ')}` : ''}
              </Td>
              <Td>{when(s.started)}</Td>
              <Td data-testid="elapsed">{duration(elapsedSeconds(s.started, s.completed, now))}</Td>
              <Td>
                {s.progress ? `${s.progress.completed} / ${s.progress.total} MiB` : s.message || ''}
              </Td>
            </Tr>
          ))}
        </Tbody>
      </Table>
      {vm.error && (
        <Alert
          variant="danger"
          isInline
          title={`Failed in ${vm.error.phase}`}
          actionLinks={
            migration && (
              <Button variant="link" isInline onClick={() => onRetry(vm)}>
                Retry this VM
              </Button>
            )
          }
        >
          {(vm.error.reasons || []).join('; ')}
        </Alert>
      )}
      <Title headingLevel="h4" style={{ marginTop: 12 }}>
        Disks
      </Title>
      <ul>
        {(vm.disks || []).map((d) => (
          <li key={d.key}>
            {d.file}: {mb(d.bytesDone)} of {mb(d.bytesTotal ?? d.capacity)} ({d.state}
            {d.node ? `, node ${d.node}` : ''})
          </li>
        ))}
      </ul>
      {vm.warm && (
        <div style={{ display: 'flex', gap: 48, marginTop: 12 }}>
          <div>
            <Title headingLevel="h4">Precopies</Title>
            <PrecopyChart precopies={vm.warm.precopies} />
          </div>
          <div>
            <Title headingLevel="h4">Downtime</Title>
            <DowntimeChart warm={vm.warm} />
          </div>
        </div>
      )}
    </>
  );
}

function CutoverModal({ migration, onClose }) {
  const [at, setAt] = useState(new Date().toISOString().replace(/\.\d+Z$/, 'Z'));
  const [errs, setErrs] = useState([]);
  return (
    <FormModal
      id="cutover-form"
      variant="small"
      title="Cutover"
      submitLabel="Set cutover"
      onSubmit={async () => {
        const a = await cutover(migration, at);
        if (a.ok) onClose(true);
        else setErrs([a.error]);
      }}
      onClose={onClose}
    >
      <p>The VMs stop at this time for the final copy (RFC 3339, UTC).</p>
      <TextInput id="cutover-at" aria-label="Cutover time" value={at} onChange={(_, v) => setAt(v)} />
      <Errors messages={errs} />
    </FormModal>
  );
}

export function PlanDetails({ ns, name }) {
  const plan = usePlan(ns, name);
  const { items: migrations } = useMigrations();
  const [selected, setSelected] = useState([]);
  const [open, setOpen] = useState({});
  const [errors, setErrors] = useState([]);
  const [cutting, setCutting] = useState(false);
  const p = plan.doc;
  const latest = p ? migrationsOf(migrations, p)[0] : null;
  const running = latest?.status?.phase === 'Running';
  const now = useNow(running);
  if (!p)
    return (
      <>
        <Header title={`Plan ${name}`} />
        <PageSection>{plan.error ? <Errors messages={[plan.error]} /> : 'Loading…'}</PageSection>
      </>
    );
  const conditions = p.status?.conditions || [];
  const critical = conditions.filter((c) => c.category === 'Critical' || c.category === 'Error');
  const warnings = conditions.filter((c) => c.category === 'Warn' || c.category === 'Warning');
  const vms = latest?.status?.vms || (p.spec.vms || []).map((v) => ({ id: v.id, name: v.name || v.id }));
  const canStart = p.status?.phase === 'Ready' && !running;
  let copied = 0;
  let total = 0;
  for (const v of latest?.status?.vms || []) {
    const b = copiedBytes(v);
    copied += b.done;
    total += b.total;
  }
  const act = async (promise) => {
    const a = await promise;
    setErrors(a.ok ? [] : a.errors || [a.error]);
  };
  return (
    <>
      <Header title={`Plan ${p.metadata.name}`}>
        {canStart && (
          <Button onClick={() => act(startPlan(p))} data-testid="start">
            {latest ? 'Restart' : 'Start'}
          </Button>
        )}
        {running && p.spec.warm && (
          <Button variant="secondary" onClick={() => setCutting(true)} data-testid="cutover">
            Cutover
          </Button>
        )}
        {running && (
          <Button
            variant="danger"
            isDisabled={!selected.length}
            onClick={() => act(cancelVms(latest, selected)).then(() => setSelected([]))}
            data-testid="cancel"
          >
            Cancel selected VMs
          </Button>
        )}
      </Header>
      <PageSection>
        <Errors messages={errors} />
        {critical.map((c) => (
          <Alert key={c.type + c.message} variant="danger" isInline title={c.type} data-testid="critical">
            {c.message}
          </Alert>
        ))}
        {warnings.map((c) => (
          <Alert key={c.type + c.message} variant="warning" isInline title={c.type}>
            {c.message}
          </Alert>
        ))}
        <DescriptionList isHorizontal columnModifier={{ default: '2Col' }} style={{ margin: '16px 0' }}>
          {[
            ['Status', <Phase key="s" phase={planState(p, latest)} />],
            ['Type', p.spec.warm ? 'Warm' : 'Cold'],
            ['Source provider', p.spec.provider?.source?.name],
            ['Target namespace', p.spec.targetNamespace],
            ['Migration', latest?.metadata?.name || '—'],
            ['Started', when(latest?.status?.started)],
            ['Completed', when(latest?.status?.completed)],
            ['Data copied', latest ? `${mb(copied)} of ${mb(total)}` : '—'],
          ].map(([t, d]) => (
            <DescriptionListGroup key={t}>
              <DescriptionListTerm>{t}</DescriptionListTerm>
              <DescriptionListDescription data-testid={`summary-${t.replace(/ /g, '-').toLowerCase()}`}>
                {d}
              </DescriptionListDescription>
            </DescriptionListGroup>
          ))}
        </DescriptionList>
        <Table aria-label="Virtual machines" data-testid="plan-vms">
          <Thead>
            <Tr>
              <Th screenReaderText="Details" />
              <Th screenReaderText="Select" />
              <Th>Name</Th>
              <Th>Status</Th>
              <Th>Pipeline</Th>
              <Th>Copied</Th>
              <Th>Elapsed</Th>
            </Tr>
          </Thead>
          {vms.map((v, i) => {
            const ended = ['Completed', 'Failed', 'Canceled'].includes(v.phase) || v.completed;
            const state = v.error ? 'Failed' : v.phase === 'Completed' ? 'Succeeded' : v.phase || 'Pending';
            return (
              <Tbody key={v.id || v.name} isExpanded={!!open[v.name]}>
                <Tr data-testid={`vm-${v.name}`}>
                  <Td
                    expand={{
                      rowIndex: i,
                      isExpanded: !!open[v.name],
                      onToggle: () => setOpen({ ...open, [v.name]: !open[v.name] }),
                    }}
                  />
                  <Td
                    select={{
                      rowIndex: i,
                      isSelected: selected.includes(v.name),
                      isDisabled: !running || !!ended,
                      onSelect: (_, on) =>
                        setSelected(on ? [...selected, v.name] : selected.filter((x) => x !== v.name)),
                    }}
                  />
                  <Td>{v.name}</Td>
                  <Td>
                    <Phase phase={state} />
                  </Td>
                  <Td>{v.pipeline ? <Pipeline vm={v} /> : '—'}</Td>
                  <Td style={{ minWidth: 200 }}>
                    <CopiedLabel vm={v} />
                  </Td>
                  <Td>{duration(elapsedSeconds(v.started, v.completed, now))}</Td>
                </Tr>
                <Tr isExpanded={!!open[v.name]}>
                  <Td colSpan={7}>
                    <ExpandableRowContent>
                      <VmDetails
                        vm={v}
                        now={now}
                        migration={latest}
                        onRetry={(x) => act(retryVm(latest, x.name))}
                      />
                    </ExpandableRowContent>
                  </Td>
                </Tr>
              </Tbody>
            );
          })}
        </Table>
      </PageSection>
      {cutting && latest && <CutoverModal migration={latest} onClose={() => setCutting(false)} />}
    </>
  );
}
