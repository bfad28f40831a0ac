#!/usr/bin/env python3
"""Faithfulness check: drive engine_sim.py with the official oVirt SDK (ovirtsdk4, XML)
and ovirt_imageio.client, the way Forklift, CDI and the SDK examples do.

Every SDK object is also compared field by field with the stand-in's JSON answer for the
same request, so the XML and JSON renderings, the model's field names and the SDK's typing
(ints, bools, enums, dates) are all checked. Exit status 0 only when every check passes.
"""
import argparse
import datetime
import enum
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import ovirtsdk4 as sdk
from ovirtsdk4 import types
from ovirt_imageio import client


class CheckFailed(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def wait_for(what, fn, timeout=30, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise CheckFailed("timed out waiting for " + what)
        time.sleep(interval)


# ------------------------------------------------------------------ SDK object vs JSON
def same_scalar(sv, jv):
    if isinstance(sv, enum.Enum):
        return sv.value == jv
    if isinstance(sv, bool):
        return ("true" if sv else "false") == jv
    if isinstance(sv, int):
        return str(sv) == str(jv)
    if isinstance(sv, datetime.datetime):
        return abs(sv.timestamp() * 1000 - int(jv)) < 1000
    return sv == jv


def compare(sobj, jobj, path, errors):
    """Every JSON field must be an SDK attribute carrying the same, properly typed value."""
    for key, jv in jobj.items():
        if key == "link":
            continue
        if not hasattr(sobj, key):
            errors.append("%s.%s: not an attribute of %s" % (path, key, type(sobj).__name__))
            continue
        sv = getattr(sobj, key)
        where = "%s.%s" % (path, key)
        if isinstance(jv, dict):
            lists = [v for v in jv.values() if isinstance(v, list)]
            if isinstance(sv, list):               # a wrapper, {} when empty
                items = lists[0] if lists else []
                if len(sv) != len(items):
                    errors.append("%s: SDK has %d items, JSON %d" % (where, len(sv), len(items)))
                for i, (a, b) in enumerate(zip(sv, items)):
                    compare(a, b, "%s[%d]" % (where, i), errors)
            elif sv is None:
                errors.append("%s: missing in the SDK object" % where)
            else:
                compare(sv, jv, where, errors)
        elif isinstance(jv, list):
            if not isinstance(sv, list) or len(sv) != len(jv):
                errors.append("%s: SDK %r vs JSON %r" % (where, sv, jv))
        elif not same_scalar(sv, jv):
            errors.append("%s: SDK %r (%s) vs JSON %r" % (where, sv, type(sv).__name__, jv))


class Check:
    def __init__(self, args):
        self.args = args
        self.url = args.url.rstrip("/")
        self.base = self.url[:self.url.index("/ovirt-engine")]
        self.ctx = ssl.create_default_context(cafile=args.ca)
        self.conn = sdk.Connection(url=self.url, username=args.user, password=args.password,
                                   ca_file=args.ca)
        self.system = self.conn.system_service()
        self.token = None
        self.passed = 0
        self.tmp = tempfile.mkdtemp(prefix="sdk-check-")
        self.qsd = False
        self.checkpoint_events = 0

    # ------------------------------------------------------------------ helpers
    def http(self, url, data=None, headers=None, method=None):
        req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
        with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    def raw_json(self, path, **query):
        """The same request with Accept: application/json, as Ferry sends it."""
        if self.token is None:
            form = urllib.parse.urlencode({"grant_type": "password", "username": self.args.user,
                                           "password": self.args.password,
                                           "scope": "ovirt-app-api"}).encode()
            self.token = self.http(self.base + "/ovirt-engine/sso/oauth/token", form,
                                   {"Accept": "application/json"})["access_token"]
        qs = ("?" + urllib.parse.urlencode(query)) if query else ""
        return self.http("%s/%s%s" % (self.url, path, qs), headers={
            "Accept": "application/json", "Version": "4", "Authorization": "Bearer " + self.token})

    def sim_state(self):
        return self.http(self.args.sim_state)

    def sd_state(self):
        """The storage_daemon part of /sim/state (None unless the stand-in runs one)."""
        sd = self.sim_state().get("storage_daemon")
        if sd and sd.get("error"):
            raise CheckFailed("storage daemon state: %s" % sd["error"])
        return sd

    def qsd_mode(self):
        """Whether the stand-in serves the disk through its qemu-storage-daemon."""
        disks = [d for d in self.sim_state()["disks"] if d["id"] == self.args.disk]
        return bool(disks) and disks[0].get("mode") == "storage_daemon"

    def bitmap_names(self):
        return sorted(b["name"] for b in self.sd_state()["bitmaps"][self.args.disk])

    def our_exports(self):
        return [e["id"] for e in self.sd_state()["exports"]]

    def expect_no_exports(self, why):
        sd = self.sd_state()
        ours = [e["id"] for e in sd["exports"]]
        left = [e for e in sd["qmp_exports"] if not e.startswith("guest-")]
        expect(not ours and not left, "exports left %s: %r / QMP %r" % (why, ours, left))

    def sim_post(self, path, body):
        root = self.args.sim_state.rsplit("/state", 1)[0]
        return self.http(root + path, json.dumps(body).encode(),
                         {"Content-Type": "application/json"}, "POST")

    def run(self, name, fn):
        try:
            fn()
        except Exception as e:
            print("FAIL %s: %s: %s" % (name, type(e).__name__, e), flush=True)
            print("%d passed, 1 failed" % self.passed)
            raise SystemExit(1)
        self.passed += 1
        print("PASS %s" % name, flush=True)

    def vm_service(self):
        return self.system.vms_service().vm_service(self.args.vm)

    def disk_status(self):
        return self.system.disks_service().disk_service(self.args.disk).get().status

    def last_event_id(self):
        events = self.system.events_service().list(max=1)
        return int(events[0].id) if events else 0

    def event_codes_since(self, since):
        return [e.code for e in self.system.events_service().list(from_=since)]

    # ------------------------------------------------------------------ checks
    def check_connection(self):
        self.conn.test(raise_exception=True)

    def check_system(self):
        api = self.system.get()
        expect(api.product_info.name == "oVirt Engine", "product name %r" % api.product_info.name)
        expect(api.product_info.version.major == 4, "major %r" % api.product_info.version.major)
        expect(api.special_objects.blank_template.id, "no blank template")
        errors = []
        compare(api, self.raw_json(""), "api", errors)
        expect(not errors, "; ".join(errors))

    def check_collections(self):
        """Every collection Forklift reads, with its follow, typed as the SDK types it."""
        vm_follow = "disk_attachments,nics,cdroms,snapshots,watchdogs,host_devices"
        lists = [
            ("datacenters", self.system.data_centers_service(), None),
            ("clusters", self.system.clusters_service(), None),
            ("hosts", self.system.hosts_service(), "network_attachments,nics"),
            ("networks", self.system.networks_service(), "vnic_profiles"),
            ("vnicprofiles", self.system.vnic_profiles_service(), None),
            ("diskprofiles", self.system.disk_profiles_service(), None),
            ("storagedomains", self.system.storage_domains_service(), None),
            ("vms", self.system.vms_service(), vm_follow),
            ("disks", self.system.disks_service(), None),
        ]
        errors = []
        for coll, service, follow in lists:
            objs = service.list(follow=follow) if follow else service.list()
            raw = self.raw_json(coll, **({"follow": follow} if follow else {}))
            items = next(iter(raw.values()), []) if raw else []
            expect(len(objs) == len(items), "%s: SDK %d vs JSON %d" % (coll, len(objs), len(items)))
            expect(objs, "%s: empty" % coll)
            for i, (o, j) in enumerate(zip(objs, items)):
                compare(o, j, "%s[%d]" % (coll, i), errors)
        expect(not errors, "; ".join(errors[:20]))

    def check_typed_values(self):
        vm = self.system.vms_service().vm_service(self.args.vm).get(
            follow="disk_attachments,nics,snapshots")
        expect(isinstance(vm.status, types.VmStatus), "vm.status %r" % vm.status)
        expect(isinstance(vm.memory, int) and vm.memory > 0, "vm.memory %r" % vm.memory)
        expect(isinstance(vm.cpu.topology.cores, int), "cores %r" % vm.cpu.topology.cores)
        expect(isinstance(vm.bios.type, types.BiosType), "bios %r" % vm.bios.type)
        da = [a for a in vm.disk_attachments if a.disk.id == self.args.disk]
        expect(da, "disk %s not attached to vm %s" % (self.args.disk, self.args.vm))
        expect(isinstance(da[0].bootable, bool), "bootable %r" % da[0].bootable)
        expect(isinstance(da[0].interface, types.DiskInterface), "interface %r" % da[0].interface)
        expect(all(isinstance(n.interface, types.NicInterface) for n in vm.nics), "nic interface")
        disk = self.system.disks_service().disk_service(self.args.disk).get()
        expect(disk.status == types.DiskStatus.OK, "disk status %r" % disk.status)
        expect(isinstance(disk.provisioned_size, int), "provisioned_size %r" % disk.provisioned_size)
        expect(isinstance(disk.sparse, bool) and isinstance(disk.shareable, bool), "disk bools")
        expect(disk.storage_type == types.DiskStorageType.IMAGE, "storage_type %r" % disk.storage_type)
        expect(disk.storage_domains and disk.storage_domains[0].id, "storage_domains")
        found = self.system.vms_service().list(search="name=%s" % vm.name)
        expect([v.id for v in found] == [vm.id], "search name=%s gave %r" % (vm.name, found))
        expect(len(self.system.vms_service().list(max=0)) == 0, "max=0")
        try:
            self.system.vms_service().vm_service("00000000-0000-0000-0000-00000000dead").get()
            raise CheckFailed("missing VM did not raise")
        except sdk.NotFoundError:
            pass

    def check_events(self):
        events = self.system.events_service().list(max=3)
        ids = [int(e.id) for e in events]
        expect(ids == sorted(ids, reverse=True), "events not newest first: %r" % ids)
        if events:
            expect(isinstance(events[0].code, int) and events[0].time, "event typing")
            newer = self.system.events_service().list(from_=ids[-1])
            expect(all(int(e.id) > ids[-1] for e in newer), "from= returned older events")
        errors = []
        raw = self.raw_json("events", max="3").get("event", [])
        for i, (o, j) in enumerate(zip(events, raw)):
            compare(o, j, "events[%d]" % i, errors)
        expect(not errors, "; ".join(errors))

    def check_bad_password(self):
        bad = sdk.Connection(url=self.url, username=self.args.user, password="wrong-password",
                             ca_file=self.args.ca)
        try:
            bad.test(raise_exception=True)
            raise CheckFailed("bad password accepted")
        except sdk.AuthError as e:
            expect("access_denied" in str(e), "unexpected AuthError text: %s" % e)
        finally:
            bad.close(logout=False)

    def check_shutdown(self):
        since = self.last_event_id()
        vms = self.vm_service()
        if vms.get().status == types.VmStatus.DOWN:
            vms.start()
            wait_for("vm up", lambda: vms.get().status == types.VmStatus.UP)
        vms.shutdown()
        wait_for("vm down", lambda: vms.get().status == types.VmStatus.DOWN)
        expect(vms.get().host is None, "a down VM still has a host")
        codes = self.event_codes_since(since)
        expect(73 in codes and 61 in codes, "events after shutdown: %r" % codes)
        since = self.last_event_id()
        vms.shutdown()    # already down: the engine skips it and logs VM_ALREADY_IN_REQUESTED_STATUS
        expect(254 in self.event_codes_since(since), "no event 254 for shutdown of a down VM")

    def new_transfer(self, backup=None, inactivity_timeout=60):
        transfer = types.ImageTransfer(disk=types.Disk(id=self.args.disk),
                                       direction=types.ImageTransferDirection.DOWNLOAD,
                                       format=types.DiskFormat.RAW,
                                       inactivity_timeout=inactivity_timeout,
                                       backup=types.Backup(id=backup) if backup else None)
        return self.system.image_transfers_service().add(transfer)

    def wait_transferring(self, transfer):
        """As helpers/imagetransfer.py create_transfer(): poll while initializing."""
        service = self.system.image_transfers_service().image_transfer_service(transfer.id)
        deadline = time.monotonic() + 30
        while True:
            time.sleep(0.2)
            transfer = service.get()
            if transfer.phase == types.ImageTransferPhase.TRANSFERRING:
                break
            expect(transfer.phase == types.ImageTransferPhase.INITIALIZING,
                   "unexpected phase %s" % transfer.phase)
            expect(time.monotonic() < deadline, "timed out waiting for transferring")
        expect(transfer.transfer_url and transfer.proxy_url, "no transfer_url/proxy_url")
        host = self.system.hosts_service().host_service(transfer.host.id).get()
        expect(host.name, "transfer host has no name")
        return transfer

    def finalize(self, transfer):
        """As helpers/imagetransfer.py finalize_transfer() (4.4.7+: poll the transfer)."""
        service = self.system.image_transfers_service().image_transfer_service(transfer.id)
        service.finalize()
        deadline = time.monotonic() + 30
        while True:
            time.sleep(0.2)
            try:
                transfer = service.get()
            except sdk.NotFoundError:
                expect(self.disk_status() == types.DiskStatus.OK, "disk not ok after finalize")
                return
            if transfer.phase == types.ImageTransferPhase.FINISHED_SUCCESS:
                return
            expect(transfer.phase != types.ImageTransferPhase.FINISHED_FAILURE, "finalize failed")
            expect(time.monotonic() < deadline, "timed out finalizing, phase %s" % transfer.phase)

    def wait_phase(self, transfer_id, phase, timeout=30):
        service = self.system.image_transfers_service().image_transfer_service(transfer_id)
        wait_for("phase %s" % phase.value, lambda: service.get().phase == phase, timeout)

    def download_and_compare(self, transfer, name):
        dst = os.path.join(self.tmp, name)
        client.download(transfer.transfer_url, dst, self.args.ca, fmt="raw",
                        proxy_url=transfer.proxy_url)
        with open(dst, "rb") as a, open(self.args.expect, "rb") as b:
            while True:
                x, y = a.read(1 << 20), b.read(1 << 20)
                expect(x == y, "downloaded %s differs from %s" % (name, self.args.expect))
                if not x:
                    break
        os.unlink(dst)

    def check_transfer(self):
        since = self.last_event_id()
        transfer = self.new_transfer()
        expect(transfer.phase == types.ImageTransferPhase.INITIALIZING, "phase %s" % transfer.phase)
        expect(self.disk_status() == types.DiskStatus.LOCKED, "disk not locked during transfer")
        transfer = self.wait_transferring(transfer)
        try:
            self.new_transfer()
            raise CheckFailed("a second transfer of a locked disk was accepted")
        except sdk.Error as e:
            expect("Disk is locked" in str(e) and e.code == 409, "unexpected error: %s" % e)
        if self.qsd:
            state = [t for t in self.sim_state()["transfers"] if t["id"] == transfer.id][0]
            expect(state["export"] and state["export"] in self.our_exports(),
                   "no storage daemon export for the transfer: %r" % state)
            expect(state["backend"].endswith(":exportname=" + state["export"]),
                   "backend %r" % state["backend"])
        self.download_and_compare(transfer, "download.raw")
        self.finalize(transfer)
        expect(self.disk_status() == types.DiskStatus.OK, "disk not ok after finalize")
        codes = self.event_codes_since(since)
        expect(1031 in codes and 1032 in codes, "transfer events: %r" % codes)
        state = [t for t in self.sim_state()["transfers"] if t["id"] == transfer.id][0]
        expect(state["ticket"] is None, "ticket not removed after finalize")
        if self.qsd:
            self.expect_no_exports("after finalize")

    def check_cancel(self):
        since = self.last_event_id()
        transfer = self.wait_transferring(self.new_transfer())
        self.system.image_transfers_service().image_transfer_service(transfer.id).cancel()
        self.wait_phase(transfer.id, types.ImageTransferPhase.FINISHED_FAILURE)
        expect(self.disk_status() == types.DiskStatus.OK, "disk not ok after cancel")
        expect(1033 in self.event_codes_since(since), "no TRANSFER_IMAGE_CANCELLED event")
        state = [t for t in self.sim_state()["transfers"] if t["id"] == transfer.id][0]
        expect(state["phases"][-4:] == ["cancelled_user", "finalizing_cleanup", "finished_cleanup",
                                        "finished_failure"], "cancel phases %r" % state["phases"])
        if self.qsd:
            self.expect_no_exports("after cancel")

    def check_inactivity(self):
        since = self.last_event_id()
        transfer = self.wait_transferring(self.new_transfer(inactivity_timeout=1))
        self.wait_phase(transfer.id, types.ImageTransferPhase.FINISHED_FAILURE, timeout=20)
        expect(1072 in self.event_codes_since(since), "no DOWNLOAD_IMAGE_CANCELED_TIMEOUT event")
        state = [t for t in self.sim_state()["transfers"] if t["id"] == transfer.id][0]
        expect("cancelled_system" in state["phases"], "phases %r" % state["phases"])
        transfer = self.wait_transferring(self.new_transfer())    # and through the test hook
        self.sim_post("/expire-transfer/" + transfer.id, {})
        self.wait_phase(transfer.id, types.ImageTransferPhase.FINISHED_FAILURE)
        expect(self.disk_status() == types.DiskStatus.OK, "disk not ok after system cancel")
        if self.qsd:
            self.expect_no_exports("after system cancel")

    def check_sim_fault(self):
        self.sim_post("/fault", {"kind": "disk_locked", "disk": self.args.disk, "times": 1})
        try:
            self.new_transfer()
            raise CheckFailed("fault hook did not answer Disk is locked")
        except sdk.Error as e:
            expect("Disk is locked" in str(e), "unexpected error: %s" % e)
        transfer = self.wait_transferring(self.new_transfer())   # the fault was used up
        self.finalize(transfer)

    def start_vm(self):
        vms = self.vm_service()
        if vms.get().status != types.VmStatus.UP:
            vms.start()
            wait_for("vm up", lambda: vms.get().status == types.VmStatus.UP)
        try:
            vms.start()
            raise CheckFailed("start of a running VM was accepted")
        except sdk.Error as e:
            expect(e.code == 409, "unexpected error: %s" % e)

    def run_backup(self, from_checkpoint=None):
        backups = self.vm_service().backups_service()
        backup = backups.add(types.Backup(disks=[types.Disk(id=self.args.disk)],
                                          from_checkpoint_id=from_checkpoint))
        service = backups.backup_service(backup.id)
        wait_for("backup ready", lambda: service.get().phase == types.BackupPhase.READY)
        backup = service.get()
        expect(backup.to_checkpoint_id, "ready backup has no to_checkpoint_id")
        expect(backup.from_checkpoint_id == from_checkpoint, "from_checkpoint_id %r"
               % backup.from_checkpoint_id)
        expect([d.id for d in service.disks_service().list()] == [self.args.disk], "backup disks")
        return backup, service

    def finish_backup(self, backup, service):
        service.finalize()
        wait_for("backup succeeded", lambda: service.get().phase == types.BackupPhase.SUCCEEDED)
        expect(self.disk_status() == types.DiskStatus.OK, "disk not ok after backup")
        cps = [c.id for c in self.vm_service().checkpoints_service().list()]
        expect(backup.to_checkpoint_id in cps, "checkpoint %s not listed" % backup.to_checkpoint_id)

    def check_full_backup(self):
        since = self.last_event_id()
        backup, service = self.run_backup()
        transfer = self.wait_transferring(self.new_transfer(backup=backup.id))
        state = [t for t in self.sim_state()["transfers"] if t["id"] == transfer.id][0]
        expect(state["dirty"] is False, "full backup ticket is dirty")
        if self.qsd:
            bstate = [b for b in self.sim_state()["backups"] if b["id"] == backup.id][0]
            export = bstate["exports"].get(self.args.disk)
            expect(export and export in self.our_exports(), "no backup export: %r" % bstate)
            expect(state["backend"].endswith(":exportname=" + export), "backend %r" % state["backend"])
            expect(bstate["temp_bitmap"] is None, "full backup has a bitmap copy")
            expect(backup.to_checkpoint_id in self.bitmap_names(), "no bitmap for checkpoint %s: %r"
                   % (backup.to_checkpoint_id, self.bitmap_names()))
        self.download_and_compare(transfer, "full-backup.raw")
        self.finalize(transfer)
        self.finish_backup(backup, service)
        if self.qsd:
            self.expect_no_exports("after the full backup")
        codes = self.event_codes_since(since)
        expect(10790 in codes and 10793 in codes, "backup events %r" % codes)
        self.full_checkpoint = backup.to_checkpoint_id

    def check_incremental_backup(self):
        try:
            self.run_backup(from_checkpoint="00000000-0000-0000-0000-0000000000cc")
            raise CheckFailed("unknown from_checkpoint_id accepted")
        except sdk.Error as e:
            expect(e.code == 409, "unexpected error: %s" % e)
        backup, service = self.run_backup(from_checkpoint=self.full_checkpoint)
        transfer = self.wait_transferring(self.new_transfer(backup=backup.id))
        state = self.sim_state()
        tstate = [t for t in state["transfers"] if t["id"] == transfer.id][0]
        expect(tstate["dirty"] is True, "incremental backup ticket is not dirty")
        if self.args.disk in state.get("backup_backends", []):
            dst = os.path.join(self.tmp, "incremental.qcow2")
            client.download(transfer.transfer_url, dst, self.args.ca, fmt="qcow2", incremental=True)
            self.check_incremental_data(dst)
        self.finalize(transfer)
        self.finish_backup(backup, service)
        cps = self.vm_service().checkpoints_service().list()
        expect(cps[-1].parent_id == self.full_checkpoint, "checkpoint parent %r" % cps[-1].parent_id)

    def check_incremental_data(self, qcow2):
        """The incremental image holds only dirty clusters, each equal to the source's data."""
        out = subprocess.run(["qemu-img", "map", "--output=json", qcow2], check=True,
                             capture_output=True, text=True).stdout
        data = [e for e in json.loads(out) if e["data"]]
        expect(data, "incremental download holds no data")
        raw = os.path.join(self.tmp, "incremental.raw")
        subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", qcow2, raw], check=True)
        with open(raw, "rb") as a, open(self.args.expect, "rb") as b:
            for e in data:
                a.seek(e["start"])
                b.seek(e["start"])
                expect(a.read(e["length"]) == b.read(e["length"]), "dirty extent %r differs" % e)
        print("     incremental: %d dirty extents, %d bytes" % (len(data), sum(e["length"] for e in data)))

    # ------------------------------------------------------------------ storage daemon round
    def guest_write(self, offset, length, pattern):
        """Play the guest: write through the test's writable guest export."""
        expect(self.args.guest_nbd, "the disk is served by a storage daemon: --guest-nbd is needed")
        subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x%02x %d %d" % (pattern, offset, length),
                        self.args.guest_nbd], check=True, capture_output=True, text=True)

    def check_qsd_incremental(self):
        """Guest write, incremental backup from the full backup's checkpoint, dirty extents,
        incremental download: exactly the written granules, holding the written data."""
        cp1 = self.full_checkpoint
        disk = self.system.disks_service().disk_service(self.args.disk).get()
        granularity = [b for b in self.sd_state()["bitmaps"][self.args.disk]
                       if b["name"] == cp1][0]["granularity"]
        offset = (disk.provisioned_size // 2) // granularity * granularity + 4096
        length, pattern = 8192, 0x5a
        first = offset // granularity * granularity              # the granules the write dirties
        last = -(-(offset + length) // granularity) * granularity
        self.guest_write(offset, length, pattern)
        bm = [b for b in self.sd_state()["bitmaps"][self.args.disk] if b["name"] == cp1][0]
        expect(bm["recording"] and bm["count"] == last - first, "checkpoint bitmap after the write %r" % bm)

        backup, service = self.run_backup(from_checkpoint=cp1)
        bdisks = service.disks_service().list()
        expect(bdisks[0].backup_mode == types.DiskBackupMode.INCREMENTAL,
               "backup_mode %r" % bdisks[0].backup_mode)
        bstate = [b for b in self.sim_state()["backups"] if b["id"] == backup.id][0]
        temp = bstate["temp_bitmap"]
        bitmaps = {b["name"]: b for b in self.sd_state()["bitmaps"][self.args.disk]}
        expect(temp in bitmaps and not bitmaps[temp]["recording"] and bitmaps[temp]["busy"],
               "frozen bitmap copy %r in %r" % (temp, bitmaps))
        expect(backup.to_checkpoint_id in bitmaps and bitmaps[backup.to_checkpoint_id]["recording"],
               "no recording bitmap for the new checkpoint")

        transfer = self.wait_transferring(self.new_transfer(backup=backup.id))
        tstate = [t for t in self.sim_state()["transfers"] if t["id"] == transfer.id][0]
        expect(tstate["dirty"] is True, "incremental backup ticket is not dirty")
        # What Ferry reads: imageio's dirty extents.
        extents = self.http(transfer.transfer_url + "/extents?context=dirty")
        dirty = [(e["start"], e["length"]) for e in extents if e["dirty"]]
        expect(dirty == [(first, last - first)], "dirty extents %r, expected [(%d, %d)]"
               % (dirty, first, last - first))

        dst = os.path.join(self.tmp, "incremental.qcow2")
        client.download(transfer.transfer_url, dst, self.args.ca, fmt="qcow2", incremental=True,
                        proxy_url=transfer.proxy_url)
        out = subprocess.run(["qemu-img", "map", "--output=json", dst], check=True,
                             capture_output=True, text=True).stdout
        data = [(e["start"], e["length"]) for e in json.loads(out) if e["data"]]
        expect(data and all(first <= a and a + n <= last for a, n in data),
               "incremental image data %r outside the dirty range" % data)
        raw = os.path.join(self.tmp, "incremental.raw")
        subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", dst, raw], check=True)
        with open(raw, "rb") as a, open(self.args.expect, "rb") as b:
            a.seek(first)
            got = a.read(last - first)
            b.seek(first)
            want = bytearray(b.read(last - first))
        want[offset - first:offset - first + length] = bytes([pattern]) * length
        expect(got == bytes(want), "incremental data in the dirty range differs from the written data")
        print("     incremental: dirty %r, granularity %d" % (dirty, granularity))
        self.finalize(transfer)
        self.finish_backup(backup, service)
        self.expect_no_exports("after the incremental backup")
        expect(self.bitmap_names() == sorted([cp1, backup.to_checkpoint_id]),
               "bitmaps after the incremental backup: %r" % self.bitmap_names())
        cps = self.vm_service().checkpoints_service().list()
        expect(cps[-1].parent_id == cp1, "checkpoint parent %r" % cps[-1].parent_id)
        self.incremental_checkpoint = backup.to_checkpoint_id

    def remove_checkpoint(self, cid):
        """As examples/checkpoints.py: remove, then poll until the checkpoint is gone."""
        service = self.vm_service().checkpoints_service().checkpoint_service(cid)
        service.remove()
        try:
            wait_for("checkpoint %s removed" % cid, lambda: not service.get(), timeout=30)
        except sdk.NotFoundError:
            pass
        self.checkpoint_events += 1
        expect(cid not in self.bitmap_names(), "bitmap %s still there: %r" % (cid, self.bitmap_names()))

    def check_qsd_checkpoint_rules(self):
        """Removal during a backup fails; a non-root checkpoint goes (4.5) or not (root_only);
        the checkpoints as the SDK and JSON see them agree."""
        cps_service = self.vm_service().checkpoints_service()
        errors = []
        for i, (o, j) in enumerate(zip(cps_service.list(),
                                       self.raw_json("vms/%s/checkpoints" % self.args.vm)["checkpoint"])):
            compare(o, j, "checkpoints[%d]" % i, errors)
        expect(not errors, "; ".join(errors))
        disks = cps_service.checkpoint_service(self.full_checkpoint).disks_service().list()
        expect([d.id for d in disks] == [self.args.disk], "checkpoint disks %r" % [d.id for d in disks])
        try:
            cps_service.checkpoint_service("00000000-0000-0000-0000-0000000000cc").remove()
            raise CheckFailed("removing an unknown checkpoint did not raise")
        except sdk.NotFoundError:
            pass
        backup, service = self.run_backup()          # a third checkpoint; the VM is in a backup
        try:
            cps_service.checkpoint_service(self.full_checkpoint).remove()
            raise CheckFailed("a checkpoint was removed during a backup")
        except sdk.Error as e:
            expect(e.code == 409 and "The VM is during a backup operation" in str(e),
                   "unexpected error: %s" % e)
        self.finish_backup(backup, service)
        self.expect_no_exports("after the third backup")
        middle = self.incremental_checkpoint
        if self.sim_state()["checkpoint_removal"] == "root_only":
            try:
                cps_service.checkpoint_service(middle).remove()
                raise CheckFailed("a non-root checkpoint was removed (root_only)")
            except sdk.Error as e:
                expect(e.code == 409 and "not the root checkpoint" in str(e), "unexpected error: %s" % e)
        else:
            self.remove_checkpoint(middle)               # the engine 4.5 rule: any checkpoint
            cps = cps_service.list()
            expect([c.id for c in cps] == [self.full_checkpoint, backup.to_checkpoint_id],
                   "checkpoints %r" % [c.id for c in cps])
            expect(cps[1].parent_id == self.full_checkpoint, "child not re-parented: %r" % cps[1].parent_id)

    def check_qsd_remove_all(self):
        since = self.last_event_id()
        cps_service = self.vm_service().checkpoints_service()
        while True:                                    # oldest (the root) first
            cps = cps_service.list()
            if not cps:
                break
            expect(cps[0].parent_id is None, "checkpoint %s is not the root" % cps[0].id)
            expect(all(c.parent_id == p.id for p, c in zip(cps, cps[1:])), "chain %r"
                   % [(c.id, c.parent_id) for c in cps])
            self.remove_checkpoint(cps[0].id)
        expect(not cps_service.list(), "checkpoints left: %r" % [c.id for c in cps_service.list()])
        expect(self.bitmap_names() == [], "bitmaps left: %r" % self.bitmap_names())
        self.expect_no_exports("at the end")
        codes = self.event_codes_since(since)
        expect(10797 in codes, "no VM_CHECKPOINT_DELETED event: %r" % codes)

    def check_reauth(self):
        """A revoked token answers 401; the SDK then logs in again and retries once."""
        old = self.conn.authenticate()
        self.http(self.base + "/ovirt-engine/services/sso-logout",
                  urllib.parse.urlencode({"token": old, "scope": "ovirt-app-api"}).encode(),
                  {"Accept": "application/json"})
        self.system.get()
        expect(self.conn.authenticate() != old, "SDK kept the revoked token")
        statuses = [r["status"] for r in self.sim_state()["requests"] if r["path"] == "/ovirt-engine/api"]
        expect(401 in statuses, "no 401 was answered for the revoked token")

    def check_logout(self):
        before = self.sim_state()["tokens"]
        self.conn.close()
        after = self.sim_state()["tokens"]
        expect(after == before - 1, "logout did not revoke the token (%d -> %d)" % (before, after))

    def main(self):
        self.qsd = self.qsd_mode()
        print("mode: %s" % ("storage_daemon (qemu-storage-daemon, real checkpoints)" if self.qsd
                            else "backends (qemu-nbd)"), flush=True)
        self.run("connection.test", self.check_connection)
        self.run("system get", self.check_system)
        self.run("collections with follow (SDK vs JSON)", self.check_collections)
        self.run("typed values, search, max, 404", self.check_typed_values)
        self.run("events max/from, newest first", self.check_events)
        self.run("bad password raises AuthError", self.check_bad_password)
        self.run("shutdown to DOWN, events 73/61/254", self.check_shutdown)
        self.run("image transfer download + Disk is locked + finalize", self.check_transfer)
        self.run("image transfer cancel", self.check_cancel)
        self.run("inactivity timeout cancels (system)", self.check_inactivity)
        self.run("sim fault hook disk_locked", self.check_sim_fault)
        self.run("start VM to UP, start again fails", self.start_vm)
        self.run("full backup + transfer", self.check_full_backup)
        if self.qsd:
            self.run("storage daemon: guest write, incremental backup, dirty extents",
                     self.check_qsd_incremental)
            self.run("storage daemon: checkpoint removal rules", self.check_qsd_checkpoint_rules)
            self.run("storage daemon: checkpoints removed root first, bitmaps gone",
                     self.check_qsd_remove_all)
        else:
            self.run("incremental backup + dirty transfer", self.check_incremental_backup)
        self.run("revoked token: 401, SDK re-authenticates", self.check_reauth)
        self.run("logout revokes token", self.check_logout)
        print("%d passed, 0 failed" % self.passed)
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--vm", required=True)
    ap.add_argument("--disk", required=True)
    ap.add_argument("--expect", required=True, help="raw image the disk's backend serves")
    ap.add_argument("--sim-state", required=True)
    ap.add_argument("--guest-nbd", help="the disk's writable guest export, e.g. "
                    "nbd+unix:///guest-disk0?socket=/dir/qsd-nbd.sock (storage_daemon mode)")
    return Check(ap.parse_args()).main()


if __name__ == "__main__":
    sys.exit(main())
