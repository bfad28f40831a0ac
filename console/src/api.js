// The coordinator's console API (docs/console.md): ferryctl's verbs as
// POST /api/v1/<verb>, and the Migrations' status as server-sent events.
// The token lives in this tab's sessionStorage only; it goes out in the
// Authorization header and never in a cookie.

const KEY = 'ferry-console-token';
let token = sessionStorage.getItem(KEY) || '';
const listeners = new Set();

export function getToken() {
  return token;
}

export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
  listeners.forEach((f) => f(t));
}

export function onTokenChange(f) {
  listeners.add(f);
  return () => listeners.delete(f);
}

// A token handed over in the URL's fragment (tools/demo prints it so; the
// fragment never reaches a server) is taken and removed from the address.
export function takeTokenFromUrl() {
  const m = /(?:^#|&)token=([0-9a-fA-F]+)/.exec(window.location.hash);
  if (!m) return;
  setToken(m[1]);
  window.history.replaceState(null, '', window.location.pathname);
}

// Runs a verb; resolves to the API's answer ({ok: true, ...} or {ok: false,
// code, error, field?, errors?}). A 401 signs the user out.
export async function call(verb, body = {}) {
  let res;
  try {
    res = await fetch(`/api/v1/${verb}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
  } catch (e) {
    return { ok: false, code: 'unavailable', error: `the coordinator did not answer: ${e.message}` };
  }
  let answer;
  try {
    answer = await res.json();
  } catch {
    answer = { ok: false, code: 'internal', error: `HTTP ${res.status} without a JSON answer` };
  }
  if (res.status === 401) setToken('');
  return answer;
}

// Documents to YAML-free apply: the API takes JSON text as well.
export function apply(docs, { dryRun = false, name = 'console' } = {}) {
  const text = docs.map((d) => JSON.stringify(d)).join('\n---\n');
  return call('apply', { files: [{ name, text }], dryRun });
}

// Follows GET /api/v1/events; onMigrations gets every `migrations` event's
// items. Reconnects after a drop. Returns a function that stops it.
// (EventSource cannot send an Authorization header, so this reads the
// stream with fetch.)
export function followMigrations(onMigrations, onState = () => {}) {
  const ctl = new AbortController();
  let stopped = false;
  const run = async () => {
    while (!stopped) {
      try {
        const res = await fetch('/api/v1/events', {
          headers: { Authorization: `Bearer ${token}` },
          signal: ctl.signal,
        });
        if (res.status === 401) {
          setToken('');
          return;
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`);  // e.g. 503: too many streams
        onState('live');
        const reader = res.body.getReader();
        const dec = new TextDecoder();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let end;
          while ((end = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            let event = 'message';
            let data = '';
            for (const line of block.split('\n')) {
              if (line.startsWith('event: ')) event = line.slice(7);
              else if (line.startsWith('data: ')) data += line.slice(6);
            }
            if (event === 'migrations' && data) {
              const j = JSON.parse(data);
              if (j.ok) onMigrations(j.items);
            }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      onState('reconnecting');
      await new Promise((r) => setTimeout(r, 2000));
    }
  };
  run();
  return () => {
    stopped = true;
    ctl.abort();
  };
}

// Asks the API with a candidate token, without signing in with it.
export async function checkToken(candidate) {
  try {
    const res = await fetch('/api/v1/status', {
      method: 'POST',
      headers: { Authorization: `Bearer ${candidate}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    const a = await res.json();
    return a.ok ? '' : a.error || `HTTP ${res.status}`;
  } catch (e) {
    return `the coordinator did not answer: ${e.message}`;
  }
}
