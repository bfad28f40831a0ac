#!/usr/bin/env bash
# The default install, judged by a real API server: `kubectl apply
# --server-side -k manifests/` (CRDs, RBAC, NATS, coordinator, agent
# DaemonSet, monitoring) on tools/dev-cluster must be accepted whole, and the
# ServiceAccounts must hold exactly the rights docs/deploy.md lists
# (`kubectl auth can-i --as`, answered by the API server's RBAC authorizer).
#
# ServiceMonitor and PrometheusRule need prometheus-operator's CRDs, which a
# bare cluster lacks (OpenShift has them): the real ones are taken from the
# upstream module github.com/prometheus-operator/prometheus-operator (Go module
# proxy, cached with the control plane's modules).
# No kubelet runs here: the pods are created and stay Pending; nothing is said about them running.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
promop=v0.94.0

dir="$(mktemp -d /tmp/ferry-apply-check.XXXXXX)"
trap '"$root/tools/dev-cluster" down "$dir" >/dev/null 2>&1; rm -rf "$dir"' EXIT
"$root/tools/dev-cluster" up "$dir" || { echo "apply-server-side: no control plane" >&2; exit 1; }
kubectl="${FERRY_K8S_BIN:-$dir/bin}/kubectl"
k() { "$kubectl" --kubeconfig "$dir/kubeconfig" "$@"; }

established() {  # kubectl wait fails at once on a CRD whose status is still empty
  local i
  for i in $(seq 1 240); do
    [ "$(k get crd "$1" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ] && return 0
    sleep 0.25
  done
  echo "apply-server-side: CRD $1 not established" >&2
  return 1
}
failed=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failed=$((failed + 1)); }

# prometheus-operator's CRDs, from the module cache (downloaded once).
cache="${FERRY_CACHE:-${HOME:+$HOME/.cache/ferry}}"
cache="${cache:-/var/tmp/ferry-cache-$(id -u)}"
export GOMODCACHE="$cache/control-plane/gomodcache" GOFLAGS=-mod=mod GOTOOLCHAIN=local
go="${FERRY_GO:-/usr/local/go/bin/go}"
mod="$("$go" mod download -json "github.com/prometheus-operator/prometheus-operator@$promop" |
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
crd="$mod/example/prometheus-operator-crd"
if [ -z "$mod" ] || [ ! -f "$crd/monitoring.coreos.com_servicemonitors.yaml" ]; then
  echo "apply-server-side: prometheus-operator $promop not downloaded" >&2; exit 1
fi
k apply --server-side -f "$crd/monitoring.coreos.com_servicemonitors.yaml" \
  -f "$crd/monitoring.coreos.com_prometheusrules.yaml" >/dev/null || exit 1
established servicemonitors.monitoring.coreos.com && established prometheusrules.monitoring.coreos.com || exit 1

# KubeVirt's VirtualMachine CRD (the coordinator's RBAC names it; a cluster
# Ferry migrates to runs KubeVirt).
"$root/tools/kubevirt-crds" "$dir/kubevirt-crds" >/dev/null || exit 1
k apply --server-side -f "$dir/kubevirt-crds" >/dev/null || exit 1
established virtualmachines.kubevirt.io || exit 1
established network-attachment-definitions.k8s.cni.cncf.io || exit 1

# The install, server-side: every object is admitted (schemas, RBAC escalation
# checks, Pod Security admission of the privileged agent in its namespace).
if out="$(k apply --server-side -k "$root/manifests" 2>&1)"; then
  ok "kubectl apply --server-side -k manifests/ ($(grep -c ' serverside-applied$' <<<"$out") objects)"
else
  bad "kubectl apply --server-side -k manifests/ refused:"; echo "$out" | sed 's/^/     /'
fi
established plans.forklift.konveyor.io || bad "the Plan CRD is not established"
# The objects are there as written: the DaemonSet and its pod template (Pod
# Security admission judges pods as they are created: the controller-manager's
# DaemonSet controller creates none here without nodes; the namespace label is checked).
for o in deployment/ferry-coordinator daemonset/ferry-agent statefulset/ferry-nats \
  servicemonitor/ferry prometheusrule/ferry; do
  k -n openshift-mtv get "$o" >/dev/null 2>&1 && ok "$o exists" || bad "$o is missing"
done
[ "$(k get ns openshift-mtv -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}')" = privileged ] &&
  ok "openshift-mtv enforces Pod Security 'privileged' (the agent)" || bad "openshift-mtv Pod Security label"
# A second apply changes nothing (server-side apply is idempotent for our manifests).
# (kubectl's kustomize warns that `bases` and `commonLabels` are deprecated: kept for kubectl 1.20.)
out="$(k apply --server-side -k "$root/manifests" 2>&1)" &&
  ! grep -v '^# Warning: ' <<<"$out" | grep -qv ' serverside-applied$' &&
  ok "a second apply is accepted" || { bad "a second apply:"; echo "$out" | sed 's/^/     /'; }

# RBAC, as the API server decides it.
can() {  # can SA VERB RESOURCE[/status] [NS] -> yes/no
  local ns="${4:-openshift-mtv}" res=$3 sub=()
  case $res in */status) res=${res%/status}; sub=(--subresource=status) ;; esac
  k auth can-i --as "system:serviceaccount:openshift-mtv:$1" "$2" "$res" "${sub[@]}" -n "$ns" 2>/dev/null
}
expect() {  # expect yes|no SA VERB RESOURCE [NS]
  local want=$1 got may=may
  shift
  got="$(can "$@")"
  [ "$want" = yes ] || may="may not"
  [ "$got" = "$want" ] && ok "$1 $may $2 $3 in ${4:-openshift-mtv}" ||
    bad "$1 $2 $3 in ${4:-openshift-mtv}: '$got', expected $want"
}
for r in plans migrations providers networkmaps storagemaps hosts hooks; do
  expect yes ferry-coordinator watch "$r.forklift.konveyor.io" target
  expect yes ferry-coordinator update "$r.forklift.konveyor.io/status"
done
expect yes ferry-coordinator patch migrations.forklift.konveyor.io
expect yes ferry-coordinator list secrets target
expect no ferry-coordinator create secrets
expect no ferry-coordinator delete secrets
expect no ferry-coordinator update plans.forklift.konveyor.io
expect yes ferry-coordinator create events target
expect no ferry-coordinator delete events
expect yes ferry-coordinator update leases.coordination.k8s.io/ferry-coordinator
expect no ferry-coordinator update leases.coordination.k8s.io/other
expect no ferry-coordinator update leases.coordination.k8s.io/ferry-coordinator kube-system
expect yes ferry-coordinator watch network-attachment-definitions.k8s.cni.cncf.io target
expect yes ferry-coordinator create virtualmachines.kubevirt.io target
expect yes ferry-coordinator create persistentvolumeclaims target
# Storage migration: a rollback deletes the new claims; VMs are repointed and
# halted by patch; the MigMigrations' status is the coordinator's.
expect yes ferry-coordinator delete persistentvolumeclaims target
expect yes ferry-coordinator patch virtualmachines.kubevirt.io target
expect no ferry-coordinator delete virtualmachines.kubevirt.io target
expect yes ferry-coordinator watch migmigrations.migration.openshift.io target
expect yes ferry-coordinator update migmigrations.migration.openshift.io/status target
expect no ferry-coordinator update migmigrations.migration.openshift.io target
expect no ferry-coordinator delete migplans.migration.openshift.io target
expect yes ferry-coordinator get storageclasses.storage.k8s.io
expect no ferry-coordinator delete persistentvolumes
expect no ferry-coordinator create pods
expect yes ferry-coordinator create jobs.batch target
expect yes ferry-coordinator delete jobs.batch target
expect yes ferry-coordinator create configmaps target
expect no ferry-coordinator list configmaps
# The console API's users (system:auth-delegator): their tokens and rights.
expect yes ferry-coordinator create tokenreviews.authentication.k8s.io
expect yes ferry-coordinator create subjectaccessreviews.authorization.k8s.io
expect no ferry-coordinator create clusterrolebindings.rbac.authorization.k8s.io
expect yes ferry-agent create persistentvolumes
expect yes ferry-agent delete persistentvolumes
expect yes ferry-agent update persistentvolumes
expect no ferry-agent patch persistentvolumes
expect no ferry-agent create persistentvolumeclaims
expect no ferry-agent list nodes
for sa in ferry-agent ferry-nats; do
  expect no $sa list secrets
  expect no $sa get plans.forklift.konveyor.io
done
[ "$(k -n openshift-mtv get sa ferry-nats -o jsonpath='{.automountServiceAccountToken}')" = false ] &&
  ok "NATS gets no token" || bad "NATS' ServiceAccount mounts a token"

echo "apply-server-side: $failed failed"
[ $failed -eq 0 ]
