#!/usr/bin/env bash
# Proves tools/validate-manifests can fail: every case under broken/ must make
# it exit non-zero and print each line of the case's expect.txt.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
validate="$here/../../tools/validate-manifests"
passed=0 failed=0
for case in "$here"/broken/*/; do
  name="$(basename "$case")"
  out="$("$validate" "${case%/}" 2>&1)"
  rc=$?
  ok=1
  if [ "$rc" -eq 0 ]; then
    echo "FAIL $name: validate-manifests accepted a broken install"; ok=0
  fi
  while IFS= read -r want; do
    [ -n "$want" ] || continue
    if ! grep -qF -- "$want" <<<"$out"; then
      echo "FAIL $name: no violation containing: $want"; ok=0
    fi
  done <"$case/expect.txt"
  if [ "$ok" -eq 1 ]; then
    echo "ok   $name (exit $rc)"; passed=$((passed + 1))
  else
    echo "---- output of $name:"; echo "$out"; failed=$((failed + 1))
  fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
