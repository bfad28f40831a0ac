// Plans for virtualization: every plan with its state and its latest
// migration's progress; Create plan opens the wizard.
import { useState } from 'react';
import { Button, PageSection, Progress } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { navigate } from '../App.jsx';
import { migrationsOf, useMigrations, useResources } from '../data.js';
import { startPlan } from '../actions.js';
import { Errors, Header, Phase } from '../components/common.jsx';

export function vmCounts(migration) {
  const vms = migration?.status?.vms || [];
  const done = vms.filter((v) => v.phase === 'Completed' && !v.error).length;
  return { done, total: vms.length };
}

export function planState(plan, latest) {
  const running = latest?.status?.phase === 'Running';
  if (running) return 'Running';
  if (latest?.status?.phase) return latest.status.phase;
  return plan.status?.phase || 'Not ready';
}

export function Plans() {
  const plans = useResources('plan');
  const { items: migrations } = useMigrations();
  const [errors, setErrors] = useState([]);
  return (
    <>
      <Header title="Plans for virtualization">
        <Button onClick={() => navigate('/plans/new')}>Create plan</Button>
      </Header>
      <PageSection>
        <Errors messages={errors} />
        <Table aria-label="Plans" data-testid="plans">
          <Thead>
            <Tr>
              <Th>Name</Th>
              <Th>Source provider</Th>
              <Th>Target namespace</Th>
              <Th>VMs</Th>
              <Th>Type</Th>
              <Th>Status</Th>
              <Th>Progress</Th>
              <Th screenReaderText="Actions" />
            </Tr>
          </Thead>
          <Tbody>
            {(plans.items || []).map((p) => {
              const latest = migrationsOf(migrations, p)[0];
              const state = planState(p, latest);
              const { done, total } = vmCounts(latest);
              const canStart = p.status?.phase === 'Ready' && state !== 'Running';
              return (
                <Tr key={`${p.metadata.namespace}/${p.metadata.name}`} data-testid={`plan-${p.metadata.name}`}>
                  <Td>
                    <Button
                      variant="link"
                      isInline
                      onClick={() => navigate(`/plans/${p.metadata.namespace}/${p.metadata.name}`)}
                    >
                      {p.metadata.name}
                    </Button>
                  </Td>
                  <Td>{p.spec.provider?.source?.name}</Td>
                  <Td>{p.spec.targetNamespace}</Td>
                  <Td>{(p.spec.vms || []).length}</Td>
                  <Td>{p.spec.warm ? 'Warm' : 'Cold'}</Td>
                  <Td>
                    <Phase phase={state} />
                  </Td>
                  <Td style={{ minWidth: 160 }}>
                    {latest ? (
                      <Progress
                        value={total ? (100 * done) / total : 0}
                        title={`${done} of ${total} VMs migrated`}
                        size="sm"
                        aria-label="VMs migrated"
                      />
                    ) : (
                      '—'
                    )}
                  </Td>
                  <Td>
                    {canStart && (
                      <Button
                        variant="secondary"
                        onClick={async () => {
                          const a = await startPlan(p);
                          setErrors(a.ok ? [] : a.errors || [a.error]);
                        }}
                      >
                        {latest ? 'Restart' : 'Start'}
                      </Button>
                    )}
                  </Td>
                </Tr>
              );
            })}
          </Tbody>
        </Table>
      </PageSection>
    </>
  );
}
