// Mappings for virtualization: network maps (source network -> pod network
// or a Multus network) and storage maps (datastore/storage domain -> storage
// class), listed and created.
import { useState } from 'react';
import {
  Button,
  FormGroup,
  FormSelect,
  FormSelectOption,
  PageSection,
  Tab,
  Tabs,
  TabTitleText,
  TextInput,
} from '@patternfly/react-core';
import { Table, Tbody, Td, Th, Thead, Tr } from '@patternfly/react-table';
import { apply } from '../api.js';
import { inventoryOf, useInventories, useResources } from '../data.js';
import { NS, messagesFor } from '../format.js';
import { Errors, FieldErrors, FormModal, Header } from '../components/common.jsx';

function destText(kind, d) {
  if (kind === 'network') return d.type === 'multus' ? `${d.namespace}/${d.name}` : 'Pod network';
  return d.storageClass + (d.volumeMode ? ` (${d.volumeMode})` : '');
}

export function mapDoc(kind, f) {
  return {
    apiVersion: 'forklift.konveyor.io/v1beta1',
    kind: kind === 'network' ? 'NetworkMap' : 'StorageMap',
    metadata: { name: f.name, namespace: NS },
    spec: {
      provider: {
        source: { name: f.source, namespace: NS },
        destination: { name: f.destination, namespace: NS },
      },
      map: f.rows.map((r) =>
        kind === 'network'
          ? {
              source: { name: r.source },
              destination:
                r.target === 'pod'
                  ? { type: 'pod' }
                  : { type: 'multus', namespace: r.target.split('/')[0], name: r.target.split('/')[1] || '' },
            }
          : { source: { name: r.source }, destination: { storageClass: r.target } },
      ),
    },
  };
}

function CreateMap({ kind, providers, inventories, onClose }) {
  const sources = providers.filter((p) => p.spec.type !== 'openshift');
  const targets = providers.filter((p) => p.spec.type === 'openshift');
  const [f, setF] = useState({
    name: '',
    source: sources[0]?.metadata.name || '',
    destination: targets[0]?.metadata.name || '',
    rows: [{ source: '', target: kind === 'network' ? 'pod' : '' }],
  });
  const [errs, setErrs] = useState({ byField: {}, rest: [] });
  const inv = inventoryOf(inventories, NS, f.source);
  const choices = (kind === 'network' ? inv?.networks : inv?.datastores) || [];
  const setRow = (i, k, v) => setF({ ...f, rows: f.rows.map((r, j) => (j === i ? { ...r, [k]: v } : r)) });
  const submit = async () => {
    const a = await apply([mapDoc(kind, f)], { name: 'Create mapping' });
    if (a.ok) onClose(true);
    else
      setErrs(
        messagesFor(a, [
          ['name', ['metadata.name']],
          ['source', ['spec.provider.source']],
          ['destination', ['spec.provider.destination']],
          ['rows', ['spec.map']],
        ]),
      );
  };
  const title = kind === 'network' ? 'Create NetworkMap' : 'Create StorageMap';
  return (
    <FormModal id="create-map-form" title={title} submitLabel="Create" onSubmit={submit} onClose={onClose}>
          <FormGroup label="Name" fieldId="m-name" isRequired>
            <TextInput id="m-name" value={f.name} onChange={(_, v) => setF({ ...f, name: v })} />
            <FieldErrors messages={errs.byField.name} />
          </FormGroup>
          <FormGroup label="Source provider" fieldId="m-source" isRequired>
            <FormSelect id="m-source" value={f.source} onChange={(_, v) => setF({ ...f, source: v })}>
              {sources.map((p) => (
                <FormSelectOption key={p.metadata.name} value={p.metadata.name} label={p.metadata.name} />
              ))}
            </FormSelect>
            <FieldErrors messages={errs.byField.source} />
          </FormGroup>
          <FormGroup label="Target provider" fieldId="m-destination" isRequired>
            <FormSelect id="m-destination" value={f.destination} onChange={(_, v) => setF({ ...f, destination: v })}>
              {targets.map((p) => (
                <FormSelectOption key={p.metadata.name} value={p.metadata.name} label={p.metadata.name} />
              ))}
            </FormSelect>
            <FieldErrors messages={errs.byField.destination} />
          </FormGroup>
          {f.rows.map((r, i) => (
            <div key={i} style={{ display: 'flex', gap: 8, alignItems: 'flex-end' }}>
              <FormGroup
                label={kind === 'network' ? 'Source network' : 'Source storage'}
                fieldId={`m-row-source-${i}`}
                style={{ flex: 1 }}
              >
                <FormSelect id={`m-row-source-${i}`} value={r.source} onChange={(_, v) => setRow(i, 'source', v)}>
                  <FormSelectOption value="" label="Select…" isPlaceholder />
                  {choices.map((c) => (
                    <FormSelectOption key={c.id} value={c.name} label={c.name} />
                  ))}
                </FormSelect>
              </FormGroup>
              <FormGroup
                label={kind === 'network' ? 'Target network (pod, or namespace/name)' : 'Target storage class'}
                fieldId={`m-row-target-${i}`}
                style={{ flex: 1 }}
              >
                <TextInput id={`m-row-target-${i}`} value={r.target} onChange={(_, v) => setRow(i, 'target', v)} />
              </FormGroup>
            </div>
          ))}
          <Button
            variant="link"
            onClick={() => setF({ ...f, rows: [...f.rows, { source: '', target: kind === 'network' ? 'pod' : '' }] })}
          >
            Add mapping
          </Button>
          <FieldErrors messages={errs.byField.rows} />
          <Errors messages={errs.rest} />
    </FormModal>
  );
}

function MapTable({ kind, items }) {
  return (
    <Table aria-label={kind === 'network' ? 'Network maps' : 'Storage maps'} data-testid={`${kind}-maps`}>
      <Thead>
        <Tr>
          <Th>Name</Th>
          <Th>Source provider</Th>
          <Th>Target provider</Th>
          <Th>Mappings</Th>
        </Tr>
      </Thead>
      <Tbody>
        {(items || []).map((m) => (
          <Tr key={`${m.metadata.namespace}/${m.metadata.name}`} data-testid={`map-${m.metadata.name}`}>
            <Td>{m.metadata.name}</Td>
            <Td>{m.spec.provider?.source?.name}</Td>
            <Td>{m.spec.provider?.destination?.name}</Td>
            <Td>
              {(m.spec.map || []).map((e, i) => (
                <div key={i}>
                  {e.source?.name || e.source?.id} → {destText(kind, e.destination || {})}
                </div>
              ))}
            </Td>
          </Tr>
        ))}
      </Tbody>
    </Table>
  );
}

export function Mappings() {
  const [tab, setTab] = useState('network');
  const [creating, setCreating] = useState(false);
  const nets = useResources('networkmap');
  const stor = useResources('storagemap');
  const providers = useResources('provider');
  const inventories = useInventories();
  return (
    <>
      <Header title="Mappings for virtualization">
        <Button onClick={() => setCreating(true)}>
          {tab === 'network' ? 'Create NetworkMap' : 'Create StorageMap'}
        </Button>
      </Header>
      <PageSection>
        <Tabs activeKey={tab} onSelect={(_, k) => setTab(k)}>
          <Tab eventKey="network" title={<TabTitleText>NetworkMaps</TabTitleText>}>
            <MapTable kind="network" items={nets.items} />
          </Tab>
          <Tab eventKey="storage" title={<TabTitleText>StorageMaps</TabTitleText>}>
            <MapTable kind="storage" items={stor.items} />
          </Tab>
        </Tabs>
      </PageSection>
      {creating && (
        <CreateMap
          kind={tab}
          providers={providers.items || []}
          inventories={inventories.items}
          onClose={(done) => {
            setCreating(false);
            if (done) (tab === 'network' ? nets : stor).reload();
          }}
        />
      )}
    </>
  );
}
