#!/usr/bin/env bash
# End-to-end check of vsphere-sim's snapshot / CBT model (README.md,
# "Snapshots, guest writes and CBT"), over raw SOAP and the test controls:
# guest writes, the base frozen while a snapshot exists, change IDs in the
# snapshot's devices, QueryChangedDiskAreas, consolidation, faults.
#
#   tests/vsphere-sim/smoke-cbt.sh [VSPHERE_SIM_BINARY]
#
# Without an argument it builds the simulator with tools/build-vsphere-sim
# into a temporary directory. Needs curl, jq, cmp.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
sim_pid=
cleanup() {
  if [ -n "$sim_pid" ]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

sim=${1:-}
if [ -z "$sim" ]; then
  "$here/../../tools/build-vsphere-sim" "$work/build"
  sim=$work/build/vsphere-sim
fi

fail() { echo "FAIL: $*" >&2; [ -f "$work/sim.log" ] && tail -20 "$work/sim.log" >&2; exit 1; }
expect() { [ "$2" = "$3" ] || fail "$1: expected '$3', got '$2'"; echo "ok: $1"; }

M=1048576
cap=$((8 * M))
# The disk: 1 MiB of data at 0, 512 KiB at 4 MiB, holes elsewhere.
truncate -s $cap "$work/img"
head -c $M /dev/urandom | dd of="$work/img" conv=notrunc status=none
head -c $((512 * 1024)) /dev/urandom | dd of="$work/img" bs=$M seek=4 conv=notrunc status=none
cp "$work/img" "$work/model"
cat >"$work/config.json" <<EOF
{"remove_other_vms": true, "cbt_query_window_bytes": $((4 * M)),
 "vms": [{"name": "DC0_H0_VM0", "rename": "cbt-vm", "disk_image": "$work/img", "cbt": true},
         {"name": "DC0_H0_VM1", "rename": "plain-vm"}]}
EOF
"$sim" --listen 127.0.0.1:0 --state-file "$work/state.json" --config "$work/config.json" \
  --dir "$work/ds" >/dev/null 2>"$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 300); do [ -s "$work/state.json" ] && break; sleep 0.1; done
[ -s "$work/state.json" ] || fail "the simulator did not start"

url=$(jq -r .url "$work/state.json")
base=${url%/sdk}
st() { jq -r "$1" "$work/state.json"; }
vm=$(st '.vms[] | select(.name == "cbt-vm") | .id')
plain=$(st '.vms[] | select(.name == "plain-vm") | .id')
flat=$(st '.vms[] | select(.name == "cbt-vm") | .disks[0].flat_path')
rel=${flat#"$(st '.datastores[0].path')"/}

# soap BODY: prints the response (HTTP 500 for faults); session cookie in $jar.
jar=$work/jar
soap() {
  curl -sk -b "$jar" -c "$jar" -H 'Content-Type: text/xml; charset=utf-8' \
    -H 'SOAPAction: "urn:vim25/7.0"' --data-binary \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>$1</soapenv:Body></soapenv:Envelope>" \
    "$url"
}
text() { grep -o "<$1[^>]*>[^<]*</$1>" | head -1 | sed 's/<[^>]*>//g' || true; }
retrieve() { # TYPE ID PATH
  soap "<RetrieveProperties xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">propertyCollector</_this><specSet><propSet><type>$1</type><pathSet>$3</pathSet></propSet><objectSet><obj type=\"$1\">$2</obj></objectSet></specSet></RetrieveProperties>"
}
task_state() { retrieve Task "$1" info | text state; }
create_snapshot() { # NAME -> task moref
  soap "<CreateSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm</_this><name>$1</name><description>smoke</description><memory>false</memory><quiesce>false</quiesce></CreateSnapshot_Task>" | text returnval
}
snapshot_change_id() { retrieve VirtualMachineSnapshot "$1" config.hardware.device | text changeId; }
query() { # SNAPSHOT OFFSET CHANGEID [VM]
  soap "<QueryChangedDiskAreas xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">${4:-$vm}</_this><snapshot type=\"VirtualMachineSnapshot\">$1</snapshot><deviceKey>2000</deviceKey><startOffset>$2</startOffset><changeId>$3</changeId></QueryChangedDiskAreas>"
}
# areas SNAPSHOT CHANGEID: all changed areas, "start+length ...", paging
# through the answers as a client must.
areas() {
  local off=0 out="" r start len
  while [ $off -lt $cap ]; do
    r=$(query "$1" $off "$2")
    start=$(echo "$r" | text startOffset)
    len=$(echo "$r" | text length)
    if [ "$start" != $off ] || [ "${len:-0}" -le 0 ]; then fail "bad answer at $off: $r"; fi
    out+=" $(echo "$r" | grep -o '<changedArea><start>[0-9]*</start><length>[0-9]*</length>' |
      sed 's/<changedArea><start>\([0-9]*\)<\/start><length>\([0-9]*\)<\/length>/\1+\2/' | tr '\n' ' ')"
    off=$((start + len))
  done
  # shellcheck disable=SC2086 # word splitting squeezes the spaces
  echo $out
}
fault_of() { sed -n 's/.*<faultstring>\([^<]*\)<\/faultstring><detail><[^>]* xsi:type="\([A-Za-z]*\)".*/\2: \1/p'; }
vm_json() { curl -sfk "$base/ferry-sim/vm?name=cbt-vm"; }
post() { curl -sfk --data-binary "$2" "$base$1"; }
# guest_write OFFSET LENGTH: random bytes, into the simulator and the model.
guest_write() {
  head -c "$2" /dev/urandom >"$work/data"
  curl -sfk --data-binary @"$work/data" "$base/ferry-sim/disk-write?vm=cbt-vm&key=2000&offset=$1" | jq -r .overlay
  dd if="$work/data" of="$work/model" bs=4096 seek=$(($1 / 4096)) conv=notrunc status=none
}
same() { cmp -s "$1" "$2" || fail "$3: $1 and $2 differ"; echo "ok: $3"; }

soap '<Login xmlns="urn:vim25"><_this type="SessionManager">SessionManager</_this><userName>'"$(st .username)"'</userName><password>'"$(st .password)"'</password></Login>' >/dev/null
grep -q vmware_soap_session "$work/jar" || fail "login"

# Without a snapshot, writes go to the base.
expect "write without snapshot" "$(guest_write $((6 * M)) $((100 * 1024)))" false
same "$flat" "$work/model" "base written in place"

# A snapshot freezes the base; its devices carry the change ID.
t=$(create_snapshot s1)
expect "snapshot task" "$(task_state "$t")" success
snap1=$(retrieve Task "$t" info | text result)
cid1=$(snapshot_change_id "$snap1")
epoch=${cid1%/*}
expect "snapshot change ID" "$cid1" "$(vm_json | jq -r '.disks[0].change_id')"
expect "change ID sequence" "${cid1##*/}" 1
expect "allocated areas" "$(areas "$snap1" '*')" "0+$M $((4 * M))+$((512 * 1024)) $((6 * M))+$((128 * 1024))"

cp "$work/model" "$work/frozen"
expect "write with snapshot" "$(guest_write $((M - 4096)) 8192)" true
guest_write $((7 * M)) 65536 >/dev/null
same "$flat" "$work/frozen" "base frozen"
curl -sfk -b "$work/jar" "$base/folder/$rel?dcPath=DC0&dsName=LocalDS_0" -o "$work/folder"
same "$work/folder" "$work/frozen" "/folder serves the snapshot's data"
curl -sfk "$base/ferry-sim/disk-read?vm=cbt-vm&key=2000" -o "$work/guest"
same "$work/guest" "$work/model" "disk-read shows the guest's view"
expect "overlay blocks" "$(vm_json | jq .disks[0].overlay_blocks)" 3
expect "snapshot keeps its change ID" "$(snapshot_change_id "$snap1")" "$cid1"
expect "VM's change ID moves on" "$(retrieve VirtualMachine "$vm" config.hardware.device | text changeId)" "$epoch/3"

# Removing the last snapshot consolidates.
t=$(soap "<RemoveSnapshot_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachineSnapshot\">$snap1</_this><removeChildren>false</removeChildren></RemoveSnapshot_Task>" | text returnval)
expect "remove task" "$(task_state "$t")" success
same "$flat" "$work/model" "consolidated"
[ ! -e "$flat.ferry-delta" ] || fail "delta file left behind"
expect "no snapshot" "$(vm_json | jq -c .snapshots)" "[]"

# Changes between two snapshots; a block written again after the second
# snapshot is still reported.
guest_write $((7 * M + 8192)) 4096 >/dev/null
snap2=$(retrieve Task "$(create_snapshot s2)" info | text result)
cid2=$(snapshot_change_id "$snap2")
expect "second change ID" "$cid2" "$epoch/4"
guest_write $((7 * M)) 4096 >/dev/null
expect "changed areas" "$(areas "$snap2" "$cid1")" "$((M - 65536))+131072 $((7 * M))+65536"
expect "no changes" "$(areas "$snap2" "$cid2")" ""

# Faults.
invalid_cid="InvalidArgument: A specified parameter was not correct: changeId"
expect "changeId beyond the snapshot" "$(query "$snap2" 0 "$epoch/5" | fault_of)" "$invalid_cid"
expect "malformed changeId" "$(query "$snap2" 0 garbage | fault_of)" "$invalid_cid"
expect "foreign epoch" "$(query "$snap2" 0 "52 00 00 00 00 00 00 00-00 00 00 00 00 00 00 00/1" | fault_of)" "$invalid_cid"
expect "removed snapshot" "$(query "$snap1" 0 '*' | fault_of)" \
  "InvalidArgument: A specified parameter was not correct: snapshot"
expect "startOffset at the end" "$(query "$snap2" $cap '*' | fault_of)" \
  "InvalidArgument: A specified parameter was not correct: startOffset"
expect "CBT disabled" "$(query "$snap2" 0 '*' "$plain" | fault_of)" \
  "InvalidArgument: A specified parameter was not correct: _this"
expect "no session" "$(jar=$work/no-session query "$snap2" 0 '*' | fault_of)" \
  "NotAuthenticated: The session is not authenticated."
post /ferry-sim/faults '{"query_changed_fail": 1}' >/dev/null
expect "injected query fault" "$(query "$snap2" 0 '*' | fault_of)" \
  "SystemError: injected fault: QueryChangedDiskAreas failed"
expect "query works again" "$(query "$snap2" 0 '*' | text startOffset)" 0
post /ferry-sim/faults '{"snapshot_create_fail": 1}' >/dev/null
t=$(create_snapshot s3)
expect "injected snapshot fault" "$(task_state "$t")" error
expect "task error" "$(retrieve Task "$t" info | text localizedMessage)" "injected fault: snapshot creation failed"
expect "snapshots after the failure" "$(vm_json | jq '.snapshots | length')" 1
expect "faults disarmed" "$(curl -sfk "$base/ferry-sim/faults" | jq -c '[.snapshot_create_fail, .query_changed_fail]')" "[0,0]"

# A CBT reset invalidates the old change IDs; "*" still works.
post /ferry-sim/cbt-reset '{"vm": "cbt-vm"}' >/dev/null
expect "changeId after reset" "$(query "$snap2" 0 "$cid1" | fault_of)" "$invalid_cid"
expect "'*' after reset" "$(query "$snap2" 0 '*' | text startOffset)" 0

# RemoveAllSnapshots consolidates too.
t=$(soap "<RemoveAllSnapshots_Task xmlns=\"urn:vim25\"><_this type=\"VirtualMachine\">$vm</_this></RemoveAllSnapshots_Task>" | text returnval)
expect "remove-all task" "$(task_state "$t")" success
same "$flat" "$work/model" "consolidated after RemoveAllSnapshots"
expect "stats" "$(curl -sfk "$base/ferry-sim/stats" |
  jq -c '[.snapshots_created, .snapshots_removed, .faults_fired, .disk_writes]')" "[2,2,2,5]"
echo "smoke-cbt: all checks passed"
