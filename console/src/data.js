// Where the pages get their data: resources by polling the API's get verb,
// Migrations from the event stream (one stream for the whole app).
import { useEffect, useState, useSyncExternalStore } from 'react';
import { call, followMigrations } from './api.js';

export function useResources(kind, { every = 3000, ns = '' } = {}) {
  const [state, setState] = useState({ items: null, error: '' });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const load = async () => {
      const a = await call('get', { kind, namespace: ns });
      if (!live) return;
      setState(a.ok ? { items: a.items, error: '' } : { items: [], error: a.error });
    };
    load();
    const t = setInterval(load, every);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [kind, ns, every, tick]);
  return { ...state, reload: () => setTick((x) => x + 1) };
}

export function useInventories({ every = 10000 } = {}) {
  const [state, setState] = useState({ items: null, error: '' });
  useEffect(() => {
    let live = true;
    const load = async () => {
      const a = await call('inventory', {});
      if (live) setState(a.ok ? { items: a.items, error: '' } : { items: [], error: a.error });
    };
    load();
    const t = setInterval(load, every);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [every]);
  return state;
}

// One event stream, shared by every page that shows Migrations.
const store = { items: null, state: 'connecting', subs: new Set(), stop: null };
function notify() {
  store.snapshot = { items: store.items, state: store.state };
  store.subs.forEach((f) => f());
}
store.snapshot = { items: null, state: 'connecting' };

function subscribe(f) {
  store.subs.add(f);
  if (!store.stop)
    store.stop = followMigrations(
      (items) => {
        store.items = items;
        notify();
      },
      (s) => {
        store.state = s;
        notify();
      },
    );
  return () => {
    store.subs.delete(f);
    if (store.subs.size === 0 && store.stop) {
      store.stop();
      store.stop = null;
    }
  };
}

export function useMigrations() {
  return useSyncExternalStore(subscribe, () => store.snapshot);
}

// The Migrations of a plan, newest first.
export function migrationsOf(migrations, plan) {
  const key = `${plan.metadata.namespace}/${plan.metadata.name}`;
  return (migrations || [])
    .filter((m) => {
      const p = m.spec?.plan || {};
      return `${p.namespace || 'openshift-mtv'}/${p.name}` === key;
    })
    .sort((a, b) => (b.status?.started || '').localeCompare(a.status?.started || ''));
}

// The inventory verb names each provider as "Provider NS/NAME".
export function inventoryOf(items, ns, name) {
  return (items || []).find((i) => i.provider === `Provider ${ns}/${name}`)?.inventory;
}

export function providerRef(key) {
  const [ns, name] = key.replace(/^Provider /, '').split('/');
  return { ns, name };
}
