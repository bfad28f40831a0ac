// Small pure helpers shared by the pages.

export const MiB = 1024 * 1024;

export function mb(bytes) {
  return `${(Number(bytes || 0) / MiB).toFixed(1)} MiB`;
}

export function bytes(n) {
  const v = Number(n || 0);
  if (v >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(2)} GiB`;
  if (v >= MiB) return `${(v / MiB).toFixed(1)} MiB`;
  if (v >= 1024) return `${(v / 1024).toFixed(1)} KiB`;
  return `${v} B`;
}

// Seconds between two RFC 3339 times ("" end: until now).
export function elapsedSeconds(started, completed, now = Date.now()) {
  if (!started) return null;
  const a = Date.parse(started);
  const b = completed ? Date.parse(completed) : now;
  if (Number.isNaN(a) || Number.isNaN(b)) return null;
  return Math.max(0, (b - a) / 1000);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function when(t) {
  if (!t) return '—';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toLocaleString();
}

export const NS = 'openshift-mtv';

export function ref(doc) {
  return `${doc.metadata?.namespace || NS}/${doc.metadata?.name}`;
}

// MTV's provider type names.
export const PROVIDER_TYPES = {
  vsphere: 'VMware vSphere',
  ovirt: 'Red Hat Virtualization',
  openshift: 'OpenShift Virtualization',
};

// The DNS-1123 name rule the API applies to metadata.name.
export const NAME_RULE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

// Maps the API's messages to the form fields they name ("spec.url",
// "Secret ...: password"): each field gets the messages that mention it.
export function messagesFor(answer, fields) {
  const all = answer?.errors?.length ? answer.errors : answer?.error ? [answer.error] : [];
  const out = {};
  const rest = [];
  for (const msg of all) {
    const f = fields.find(([, needles]) => needles.some((n) => msg.includes(n)));
    if (f) (out[f[0]] ||= []).push(msg);
    else rest.push(msg);
  }
  return { byField: out, rest };
}
