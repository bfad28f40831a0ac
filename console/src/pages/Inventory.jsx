// The sources' inventories: VMs with their power state, disks and concerns,
// searchable; Refresh reads the source again.
import { useMemo, useState } from 'react';
import { Button, FormSelect, FormSelectOption, Label, PageSection, SearchInput } from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { call } from '../api.js';
import { providerRef, useInventories } from '../data.js';
import { bytes } from '../format.js';
import { Header } from '../components/common.jsx';

export function concernsOf(vm) {
  const list = (vm.concerns || []).map((c) => ({ category: c.category || 'Information', label: c.label || c.message }));
  if (vm.hasSnapshots) list.push({ category: 'Warning', label: 'Has snapshots' });
  if (vm.changeTrackingEnabled === false) list.push({ category: 'Information', label: 'Changed block tracking off' });
  if ((vm.disks || []).some((d) => d.shared)) list.push({ category: 'Warning', label: 'Shared disk' });
  if ((vm.disks || []).some((d) => d.rdm)) list.push({ category: 'Critical', label: 'RDM disk' });
  return list;
}

const COLOR = { Critical: 'red', Warning: 'orange', Information: 'blue' };

// A VM's concerns as labels (the inventory and the wizard's VM table).
export function Concerns({ vm }) {
  return concernsOf(vm).map((c) => (
    <Label key={c.label} color={COLOR[c.category] || 'grey'} isCompact style={{ marginRight: 4 }}>
      {c.label}
    </Label>
  ));
}

export function Inventory() {
  const inventories = useInventories();
  const [provider, setProvider] = useState('');
  const [q, setQ] = useState('');
  const [busy, setBusy] = useState(false);
  const items = inventories.items || [];
  const chosen = provider || items[0]?.provider || '';
  const inv = items.find((i) => i.provider === chosen)?.inventory;
  const hostName = (id) => (inv?.hosts || []).find((h) => h.id === id)?.name || id;
  const vms = useMemo(() => {
    const s = q.trim().toLowerCase();
    return (inv?.vms || []).filter(
      (v) =>
        !s ||
        v.name.toLowerCase().includes(s) ||
        (v.powerState || '').toLowerCase() === s ||
        (v.guestName || '').toLowerCase().includes(s) ||
        concernsOf(v).some((c) => c.label.toLowerCase().includes(s)),
    );
  }, [inv, q]);
  return (
    <>
      <Header title="Inventory">
        <Button
          variant="secondary"
          isLoading={busy}
          onClick={async () => {
            setBusy(true);
            const { ns, name } = providerRef(chosen);
            await call('inventory', { namespace: ns, provider: name, refresh: true });
            setBusy(false);
          }}
          isDisabled={!chosen}
        >
          Refresh
        </Button>
      </Header>
      <PageSection>
        <div style={{ display: 'flex', gap: 12, marginBottom: 12 }}>
          <FormSelect
            value={chosen}
            onChange={(_, v) => setProvider(v)}
            aria-label="Provider"
            style={{ maxWidth: 320 }}
          >
            {items.map((i) => (
              <FormSelectOption key={i.provider} value={i.provider} label={providerRef(i.provider).name} />
            ))}
          </FormSelect>
          <SearchInput
            placeholder="Search VMs by name, power, guest or concern"
            value={q}
            onChange={(_, v) => setQ(v)}
            onClear={() => setQ('')}
            aria-label="Search VMs"
          />
        </div>
        <p data-testid="inventory-counts">
          {inv
            ? `${(inv.vms || []).length} VMs, ${(inv.hosts || []).length} hosts, ${(inv.networks || []).length} networks, ${(inv.datastores || []).length} storage`
            : 'No inventory yet'}
        </p>
        <Table aria-label="Inventory VMs" variant="compact" data-testid="inventory-vms">
          <Thead>
            <Tr>
              <Th>Name</Th>
              <Th>Power</Th>
              <Th>Host</Th>
              <Th>CPUs</Th>
              <Th>Memory</Th>
              <Th>Disks</Th>
              <Th>Guest</Th>
              <Th>Concerns</Th>
            </Tr>
          </Thead>
          <Tbody>
            {vms.map((v) => (
              <Tr key={v.id} data-testid={`inv-${v.name}`}>
                <Td>{v.name}</Td>
                <Td>{v.powerState}</Td>
                <Td>{hostName(v.host)}</Td>
                <Td>{v.cpus}</Td>
                <Td>{v.memoryMB ? `${v.memoryMB} MiB` : '—'}</Td>
                <Td>
                  {(v.disks || []).map((d) => (
                    <div key={d.key}>
                      {d.file || d.key}: {bytes(d.capacity)}
                    </div>
                  ))}
                </Td>
                <Td>{v.guestName || v.guestId || '—'}</Td>
                <Td>
                  <Concerns vm={v} />
                </Td>
              </Tr>
            ))}
          </Tbody>
        </Table>
      </PageSection>
    </>
  );
}
