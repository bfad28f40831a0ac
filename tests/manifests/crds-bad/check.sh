#!/usr/bin/env bash
# Checks manifests/crds/ against a real API server: every document of
# tests/manifests/crds-good/ must be accepted, and every file here (one
# malformed document each) refused with an error containing its
# `# expect: ...` line (which names the field).
#
#   tests/manifests/crds-bad/check.sh [KUBECONFIG]
#
# Without KUBECONFIG it starts a control plane with tools/dev-cluster in a
# temporary directory and stops it at the end. kubectl: $KUBECTL, else the
# dev cluster's ($FERRY_K8S_BIN/kubectl when set), else the one on PATH. Documents go in with
# `kubectl apply --server-side` (strict field validation, kubectl's default).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
good="$root/tests/manifests/crds-good"
ns=openshift-mtv  # the namespace the documents use

started=""
if [ $# -ge 1 ]; then
  kubeconfig="$(readlink -f "$1")"
  kubectl="${KUBECTL:-kubectl}"
else
  started="$(mktemp -d /tmp/ferry-crd-check.XXXXXX)"
  trap '"$root/tools/dev-cluster" down "$started" >/dev/null 2>&1 && rm -rf "$started"' EXIT
  "$root/tools/dev-cluster" up "$started" || { echo "check.sh: no control plane" >&2; exit 1; }
  kubeconfig="$started/kubeconfig"
  kubectl="${KUBECTL:-$started/bin/kubectl}"
  # tools/dev-cluster links its binaries into DIR/bin unless FERRY_K8S_BIN names them.
  [ -n "${KUBECTL:-}" ] || [ -z "${FERRY_K8S_BIN:-}" ] || kubectl="$FERRY_K8S_BIN/kubectl"
fi
k() { "$kubectl" --kubeconfig "$kubeconfig" "$@"; }

k apply --server-side -k "$root/manifests/crds" || exit 1
# Until each CRD is Established (kubectl wait fails at once while a CRD's status is still empty).
for crd in providers.forklift.konveyor.io hosts.forklift.konveyor.io networkmaps.forklift.konveyor.io \
  storagemaps.forklift.konveyor.io plans.forklift.konveyor.io migrations.forklift.konveyor.io \
  hooks.forklift.konveyor.io migplans.migration.openshift.io migmigrations.migration.openshift.io; do
  for i in $(seq 1 240); do
    [ "$(k get crd "$crd" \
      -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" = True ] && break
    [ "$i" -lt 240 ] || { echo "check.sh: CRD $crd not established" >&2; exit 1; }
    sleep 0.25
  done
done
k get namespace "$ns" >/dev/null 2>&1 || k create namespace "$ns" >/dev/null || exit 1

passed=0 failed=0
for f in "$good"/*.yaml; do
  name="good/$(basename "$f")"
  if out="$(k apply --server-side -f "$f" 2>&1)"; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name: refused:"; echo "$out" | sed 's/^/     /'; failed=$((failed + 1))
  fi
done
for f in "$here"/*.yaml; do
  name="bad/$(basename "$f")"
  want="$(sed -n 's/^# expect: //p' "$f" | head -1)"
  if [ -z "$want" ]; then
    echo "FAIL $name: no '# expect:' line"; failed=$((failed + 1)); continue
  fi
  if out="$(k apply --server-side -f "$f" 2>&1)"; then
    echo "FAIL $name: accepted"; failed=$((failed + 1))
    k delete --ignore-not-found -f "$f" >/dev/null 2>&1
  elif grep -qF -- "$want" <<<"$out"; then
    echo "ok   $name"; passed=$((passed + 1))
  else
    echo "FAIL $name: refused, but without: $want"; echo "$out" | sed 's/^/     /'
    failed=$((failed + 1))
  fi
done
# Leave a cluster we did not start as we found it (the CRDs stay).
[ -n "$started" ] || k delete --ignore-not-found -f "$good" >/dev/null 2>&1
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
