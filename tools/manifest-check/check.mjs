#!/usr/bin/env node
// Offline checks of Ferry's rendered Kubernetes manifests (no API server).
//   node check.mjs [--policy FILE] [--refs FILE]... SET=FILE...
// SET=FILE is one rendered install (e.g. `manifests/=/tmp/base.yaml`); each is
// checked on its own. --refs FILE adds objects that an install references but
// does not create (the NATS credentials Secret template); they are validated too.
// Prints one line per violation and exits 1 if there is any, 0 otherwise.
//
// 1. Schema: every object against the Kubernetes OpenAPI schemas bundled in
//    kubernetes-models (and @kubernetes-models/prometheus-operator for
//    ServiceMonitor/PrometheusRule); an unknown kind is a violation.
//    kubernetes-models ignores unknown fields, so (2) also checks ours.
// 2. Our invariants: labels, selectors against pod template labels, every
//    container with an image, probes and resource requests, no privileged or
//    root container and no hostPath except as listed in policy.json with a
//    reason, Services that select pods and name their ports, references
//    (ServiceAccount, ConfigMap, Secret keys, volumes) that resolve.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const args = process.argv.slice(2);
let policyPath = new URL("./policy.json", import.meta.url).pathname;
const refFiles = [];
const sets = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--policy") policyPath = args[++i];
  else if (args[i] === "--refs") refFiles.push(args[++i]);
  else if (args[i].includes("=")) {
    const eq = args[i].indexOf("=");
    sets.push({ label: args[i].slice(0, eq), file: args[i].slice(eq + 1) });
  } else {
    console.error(`check.mjs: unknown argument ${args[i]}`);
    process.exit(2);
  }
}
if (sets.length === 0) {
  console.error("usage: check.mjs [--policy FILE] [--refs FILE]... SET=FILE...");
  process.exit(2);
}
const policy = JSON.parse(readFileSync(policyPath, "utf8"));

const violations = [];
let objectCount = 0;

function load(file) {
  const out = [];
  for (const doc of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (doc.errors.length) {
      violations.push(`${file}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const o = doc.toJS();
    if (o !== null && o !== undefined) out.push(o);
  }
  return out;
}

const id = (o) =>
  `${o?.kind ?? "?"} ${o?.metadata?.namespace ? o.metadata.namespace + "/" : ""}${o?.metadata?.name ?? "?"}`;
const ref = (o) => `${o.kind}/${o.metadata?.name}`;

// ---------------------------------------------------------------- schemas
const modules = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};
const moduleCache = new Map();
async function modelFor(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string") return null;
  const mod = modules[apiVersion] ?? `kubernetes-models/${apiVersion}`;
  if (!moduleCache.has(mod)) {
    try {
      moduleCache.set(mod, await import(mod));
    } catch {
      moduleCache.set(mod, null);
    }
  }
  const m = moduleCache.get(mod);
  return m && typeof m[kind] === "function" ? m[kind] : null;
}

async function checkSchema(where, o) {
  const Model = await modelFor(o.apiVersion, o.kind);
  if (!Model) {
    violations.push(`${where}: ${id(o)}: no schema for apiVersion ${o.apiVersion} kind ${o.kind}`);
    return;
  }
  try {
    new Model(o).validate();
  } catch (e) {
    const errs = e.errors ?? [{ instancePath: "", message: e.message }];
    for (const err of errs) {
      const path = (err.instancePath || "/").replace(/^\//, "").replace(/\//g, ".");
      violations.push(`${where}: ${id(o)}: schema: ${path || "(object)"} ${err.message}`);
    }
  }
}

// ---------------------------------------------------------------- helpers
const clusterScoped = new Set([
  "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
  "PriorityClass", "StorageClass", "PersistentVolume", "SecurityContextConstraints",
]);
const podTemplateOf = (o) =>
  ({ Deployment: 1, DaemonSet: 1, StatefulSet: 1, ReplicaSet: 1, Job: 1 })[o.kind]
    ? o.spec?.template
    : o.kind === "CronJob"
      ? o.spec?.jobTemplate?.spec?.template
      : o.kind === "Pod"
        ? o
        : null;

// a LabelSelector (matchLabels + matchExpressions) against a label map
function selects(sel, labels = {}) {
  if (!sel) return false;
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of sel.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const val = labels[e.key];
    if (e.operator === "In" && !(has && e.values.includes(val))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(val)) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}
const emptySelector = (sel) =>
  !sel || (Object.keys(sel.matchLabels ?? {}).length === 0 && (sel.matchExpressions ?? []).length === 0);

const allowed = (list, o, pred) =>
  (policy[list] ?? []).find((a) => a.object === ref(o) && pred(a) && String(a.reason ?? "").trim() !== "");

const requiredLabels = ["app.kubernetes.io/name", "app.kubernetes.io/part-of", "app.kubernetes.io/component"];

// ---------------------------------------------------------------- invariants
function checkSet(label, objs, refs) {
  const all = [...objs, ...refs];
  const where = label;
  const v = (o, msg) => violations.push(`${where}: ${id(o)}: ${msg}`);
  const find = (kind, ns, name) =>
    all.find((x) => x.kind === kind && x.metadata?.name === name && (x.metadata?.namespace ?? ns) === ns);

  // duplicate objects
  const seen = new Set();
  for (const o of objs) {
    const key = `${o.apiVersion}|${o.kind}|${o.metadata?.namespace ?? ""}|${o.metadata?.name}`;
    if (seen.has(key)) v(o, "defined twice");
    seen.add(key);
  }

  const namespaces = new Set(objs.filter((o) => o.kind === "Namespace").map((o) => o.metadata?.name));
  const pods = []; // {owner, ns, labels, spec}

  for (const o of objs) {
    const md = o.metadata ?? {};
    const labels = md.labels ?? {};
    for (const l of requiredLabels) {
      if (l === "app.kubernetes.io/component" && o.kind === "Namespace") continue;
      if (!labels[l]) v(o, `metadata.labels: missing ${l}`);
    }
    if (labels["app.kubernetes.io/part-of"] && labels["app.kubernetes.io/part-of"] !== "ferry")
      v(o, `metadata.labels: app.kubernetes.io/part-of is "${labels["app.kubernetes.io/part-of"]}", want "ferry"`);
    if (clusterScoped.has(o.kind)) {
      if (md.namespace) v(o, "metadata.namespace set on a cluster-scoped kind");
    } else if (!md.namespace) {
      v(o, "metadata.namespace missing");
    } else if (namespaces.size && !namespaces.has(md.namespace)) {
      v(o, `metadata.namespace ${md.namespace} is not a Namespace of this install`);
    }

    const tpl = podTemplateOf(o);
    if (!tpl) continue;
    const tl = tpl.metadata?.labels ?? {};
    if (o.kind !== "Pod") {
      const sel = o.spec?.selector;
      if (o.kind !== "Job" && o.kind !== "CronJob" && emptySelector(sel)) v(o, "spec.selector is empty");
      else if (sel && !selects(sel, tl))
        v(o, `spec.selector ${JSON.stringify(sel)} does not match the pod template labels ${JSON.stringify(tl)}`);
      for (const l of requiredLabels)
        if (!tl[l]) v(o, `spec.template.metadata.labels: missing ${l}`);
    }
    if (o.kind === "Deployment" && o.metadata?.labels?.["app.kubernetes.io/component"] === "coordinator") {
      if (o.spec?.replicas !== 1) v(o, "the coordinator must run exactly 1 replica (spec.replicas)");
      if (o.spec?.strategy?.type !== "Recreate")
        v(o, "the coordinator needs spec.strategy.type Recreate (never two at once)");
    }
    if (o.kind === "StatefulSet") {
      const svc = find("Service", md.namespace, o.spec?.serviceName);
      if (!svc) v(o, `spec.serviceName ${o.spec?.serviceName} is not a Service of this install`);
      else if (svc.spec?.clusterIP !== "None") v(o, `spec.serviceName ${o.spec.serviceName} is not headless`);
    }
    pods.push({ owner: o, ns: md.namespace, labels: tl, spec: tpl.spec ?? {} });
  }

  for (const { owner: o, ns, spec } of pods) {
    const base = o.kind === "Pod" ? "spec" : "spec.template.spec";
    const sa = spec.serviceAccountName;
    if (sa && sa !== "default" && !find("ServiceAccount", ns, sa))
      v(o, `${base}.serviceAccountName ${sa} is not a ServiceAccount of this install`);
    const vols = new Map((spec.volumes ?? []).map((x) => [x.name, x]));
    const claimTemplates = new Set((o.spec?.volumeClaimTemplates ?? []).map((c) => c.metadata?.name));
    for (const [name, vol] of vols) {
      if (vol.hostPath) {
        if (!allowed("hostPath", o, (a) => a.path === vol.hostPath.path))
          v(o, `${base}.volumes[${name}]: hostPath ${vol.hostPath.path} is not in tools/manifest-check/policy.json (hostPath) with a reason`);
      }
      if (vol.configMap && !vol.configMap.optional && !find("ConfigMap", ns, vol.configMap.name))
        v(o, `${base}.volumes[${name}]: ConfigMap ${vol.configMap.name} is not part of this install`);
      if (vol.secret && !vol.secret.optional && !find("Secret", ns, vol.secret.secretName))
        v(o, `${base}.volumes[${name}]: Secret ${vol.secret.secretName} is neither part of this install nor a template`);
    }
    const podSc = spec.securityContext ?? {};
    const lists = [
      ["containers", spec.containers ?? [], true],
      ["initContainers", spec.initContainers ?? [], false],
    ];
    if ((spec.containers ?? []).length === 0) v(o, `${base}.containers: none`);
    for (const [listName, list, needsProbes] of lists) {
      list.forEach((c, i) => {
        const at = `${base}.${listName}[${i}] (${c.name})`;
        if (!c.image || typeof c.image !== "string" || !c.image.trim()) v(o, `${at}: no image`);
        if (needsProbes) {
          if (!c.livenessProbe) v(o, `${at}: no livenessProbe`);
          if (!c.readinessProbe) v(o, `${at}: no readinessProbe`);
        }
        const req = c.resources?.requests ?? {};
        for (const r of ["cpu", "memory"]) if (!req[r]) v(o, `${at}: no resources.requests.${r}`);
        if (!c.resources?.limits?.memory) v(o, `${at}: no resources.limits.memory`);
        const ports = new Set((c.ports ?? []).map((p) => p.name).filter(Boolean));
        for (const p of ["livenessProbe", "readinessProbe", "startupProbe"]) {
          const port = c[p]?.httpGet?.port ?? c[p]?.tcpSocket?.port;
          if (typeof port === "string" && !ports.has(port)) v(o, `${at}: ${p} names port "${port}", which the container does not declare`);
        }
        const sc = c.securityContext ?? {};
        if (sc.privileged === true) {
          if (!allowed("privileged", o, (a) => a.container === c.name))
            v(o, `${at}: privileged, and not in tools/manifest-check/policy.json (privileged) with a reason`);
          if (sc.allowPrivilegeEscalation === false)
            v(o, `${at}: privileged: true with allowPrivilegeEscalation: false is refused by the API server`);
        }
        const uid = sc.runAsUser ?? podSc.runAsUser;
        const nonRoot = sc.runAsNonRoot ?? podSc.runAsNonRoot;
        if (uid === 0 || nonRoot !== true) {
          if (!allowed("runAsRoot", o, (a) => a.container === c.name))
            v(o, `${at}: may run as root (set runAsNonRoot: true, or list it in tools/manifest-check/policy.json (runAsRoot) with a reason)`);
        }
        if (nonRoot === true && uid === 0) v(o, `${at}: runAsNonRoot with runAsUser 0 can never start`);
        for (const m of c.volumeMounts ?? []) {
          if (!vols.has(m.name) && !claimTemplates.has(m.name))
            v(o, `${at}: volumeMount ${m.name} names no volume`);
        }
        for (const e of c.env ?? []) {
          const cm = e.valueFrom?.configMapKeyRef;
          if (cm && !cm.optional) {
            const obj = find("ConfigMap", ns, cm.name);
            if (!obj) v(o, `${at}: env ${e.name}: ConfigMap ${cm.name} is not part of this install`);
            else if (!Object.hasOwn(obj.data ?? {}, cm.key))
              v(o, `${at}: env ${e.name}: ConfigMap ${cm.name} has no key ${cm.key}`);
          }
          const s = e.valueFrom?.secretKeyRef;
          if (s && !s.optional) {
            const obj = find("Secret", ns, s.name);
            if (!obj) v(o, `${at}: env ${e.name}: Secret ${s.name} is neither part of this install nor a template`);
            else if (!Object.hasOwn({ ...obj.data, ...obj.stringData }, s.key))
              v(o, `${at}: env ${e.name}: Secret ${s.name} has no key ${s.key}`);
          }
        }
        // $(VAR) in command/args must be defined in env
        const envNames = new Set((c.env ?? []).map((e) => e.name));
        for (const a of [...(c.command ?? []), ...(c.args ?? [])]) {
          for (const m of String(a).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g))
            if (!envNames.has(m[1])) v(o, `${at}: "${a}" uses $(${m[1]}), which is not in env`);
        }
      });
    }
  }

  // Services select pods and name ports those pods have
  for (const s of objs.filter((o) => o.kind === "Service")) {
    const sel = s.spec?.selector;
    if (!sel || Object.keys(sel).length === 0) {
      v(s, "spec.selector is empty (selects no pod)");
      continue;
    }
    const matched = pods.filter((p) => p.ns === s.metadata?.namespace && selects({ matchLabels: sel }, p.labels));
    if (matched.length === 0) {
      v(s, `spec.selector ${JSON.stringify(sel)} selects no pod of this install`);
      continue;
    }
    for (const port of s.spec?.ports ?? []) {
      if (typeof port.targetPort !== "string") continue;
      const ok = matched.some((p) =>
        (p.spec.containers ?? []).some((c) => (c.ports ?? []).some((cp) => cp.name === port.targetPort)),
      );
      if (!ok) v(s, `port ${port.name ?? port.port}: targetPort "${port.targetPort}" is no container port of the selected pods`);
    }
  }

  // RBAC references
  for (const b of objs.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
    const rr = b.roleRef ?? {};
    if (!find(rr.kind, rr.kind === "Role" ? b.metadata?.namespace : undefined, rr.name) &&
        !(rr.kind === "ClusterRole" && /^(system:|view$|edit$|admin$)/.test(rr.name)))
      v(b, `roleRef ${rr.kind}/${rr.name} is not part of this install`);
    for (const s of b.subjects ?? []) {
      if (s.kind === "ServiceAccount" && !find("ServiceAccount", s.namespace ?? b.metadata?.namespace, s.name))
        v(b, `subject ServiceAccount ${s.namespace}/${s.name} is not part of this install`);
    }
  }

  // Prometheus Operator objects
  for (const m of objs.filter((o) => o.kind === "ServiceMonitor")) {
    const svcs = objs.filter(
      (o) => o.kind === "Service" && o.metadata?.namespace === m.metadata?.namespace && selects(m.spec?.selector, o.metadata?.labels),
    );
    if (svcs.length === 0) v(m, "spec.selector selects no Service of this install");
    for (const ep of m.spec?.endpoints ?? []) {
      if (ep.port && !svcs.some((s) => (s.spec?.ports ?? []).some((p) => p.name === ep.port)))
        v(m, `endpoint port "${ep.port}" is not a named port of the selected Services`);
    }
  }
  for (const r of objs.filter((o) => o.kind === "PrometheusRule")) {
    const names = new Set();
    for (const g of r.spec?.groups ?? []) {
      for (const rule of g.rules ?? []) {
        if (!rule.alert && !rule.record) v(r, `group ${g.name}: a rule has neither alert nor record`);
        if (!String(rule.expr ?? "").trim()) v(r, `group ${g.name}: rule ${rule.alert ?? rule.record} has no expr`);
        if (rule.alert) {
          if (names.has(rule.alert)) v(r, `alert ${rule.alert} defined twice`);
          names.add(rule.alert);
          if (!rule.labels?.severity) v(r, `alert ${rule.alert}: no labels.severity`);
          if (!rule.annotations?.summary) v(r, `alert ${rule.alert}: no annotations.summary`);
        }
      }
    }
  }
}

// ---------------------------------------------------------------- main
const refs = [];
for (const f of refFiles) {
  for (const o of load(f)) {
    objectCount++;
    await checkSchema(f, o);
    refs.push(o);
  }
}
for (const { label, file } of sets) {
  const objs = load(file);
  if (objs.length === 0) violations.push(`${label}: renders no object`);
  for (const o of objs) {
    objectCount++;
    await checkSchema(label, o);
  }
  checkSet(label, objs, refs);
}

if (violations.length) {
  for (const x of violations) console.log(`violation: ${x}`);
  console.log(`manifest-check: ${violations.length} violation(s) in ${objectCount} object(s)`);
  process.exit(1);
}
console.log(`manifest-check: ${objectCount} object(s) in ${sets.length} install(s), no violation`);
