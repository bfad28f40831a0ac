// Where the pages get their data: resources by polling the API's get verb,
// Migrations from the event stream (one stream for the whole app).
import { useEffect, useState, useSyncExternalStore } from 'react';
import { call, followMigrations, onTokenChange } from './api.js';

// Calls the API now and every `every` ms while the page shows it; `answer`
// maps an ok answer to the data kept. Returns {data, error, reload}.
export function usePoll(verb, body, answer, every, deps = []) {
  const [state, setState] = useState({ data: null, error: '' });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    const load = async () => {
      const a = await call(verb, body);
      if (live) setState(a.ok ? { data: answer(a), error: '' } : { data: null, error: a.error });
    };
    load();
    const t = setInterval(load, every);
    return () => {
      live = false;
      clearInterval(t);
    };
  }, [verb, every, tick, ...deps]);
  return { ...state, reload: () => setTick((x) => x + 1) };
}

export function useResources(kind, { every = 3000, ns = '' } = {}) {
  const r = usePoll('get', { kind, namespace: ns }, (a) => a.items, every, [kind, ns]);
  return { items: r.error ? [] : r.data, error: r.error, reload: r.reload };
}

export function useInventories({ every = 10000 } = {}) {
  const r = usePoll('inventory', {}, (a) => a.items, every);
  return { items: r.error ? [] : r.data, error: r.error };
}

// One event stream, shared by every page that shows Migrations.
const store = { items: null, state: 'connecting', subs: new Set(), stop: null };
function notify() {
  store.snapshot = { items: store.items, state: store.state };
  store.subs.forEach((f) => f());
}
store.snapshot = { items: null, state: 'connecting' };

// What one user saw is not shown to the next one in this tab.
onTokenChange(() => {
  store.items = null;
  notify();
});

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
