#!/usr/bin/env python3
"""Test-only stand-in for the oVirt Engine REST API (v4), stdlib only.

Serves XML (the official SDK) and JSON (Ferry) from one JSON-form store, drives
the real ovirt-imageio daemon through its control socket for image transfers,
and offers test hooks under /sim/. See README.md for what is and is not modelled.
"""
import argparse
import base64
import copy
import fnmatch
import heapq
import http.client
import itertools
import json
import os
import re
import select
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "/ovirt-engine/api"
USER_ID = "0d0a6ac4-4b0b-11ee-8f5e-525400000001"  # id of the single engine user

# Top-level collections: URL segment -> element name (XML root = element + "s").
COLLECTIONS = {
    "datacenters": "data_center", "clusters": "cluster", "hosts": "host",
    "networks": "network", "vnicprofiles": "vnic_profile", "diskprofiles": "disk_profile",
    "storagedomains": "storage_domain", "vms": "vm", "disks": "disk",
    "events": "event", "imagetransfers": "image_transfer",
}
# Sub-collections served from config: parent -> URL segment -> (attribute, element).
SUBCOLLECTIONS = {
    "vms": {"diskattachments": ("disk_attachments", "disk_attachment"), "nics": ("nics", "nic"),
            "snapshots": ("snapshots", "snapshot"), "cdroms": ("cdroms", "cdrom"),
            "watchdogs": ("watchdogs", "watchdog"), "hostdevices": ("host_devices", "host_device")},
    "hosts": {"nics": ("nics", "host_nic"),
              "networkattachments": ("network_attachments", "network_attachment")},
    "networks": {"vnicprofiles": ("vnic_profiles", "vnic_profile")},
}
# Sub-collections computed at run time (links only, never embedded from config).
DYNAMIC_SUBS = {"vms": {"backups": ("backups", "backup"), "checkpoints": ("checkpoints", "checkpoint")}}
# Reference attribute -> collection its href points into.
REF_COLLECTION = {"data_center": "datacenters", "cluster": "clusters", "host": "hosts",
                  "network": "networks", "vnic_profile": "vnicprofiles",
                  "disk_profile": "diskprofiles", "storage_domain": "storagedomains",
                  "vm": "vms", "disk": "disks", "image": "images", "user": "users"}
DATE_FIELDS = {"time", "creation_date", "modification_date"}
RUNNING = {"up", "powering_up", "wait_for_launch", "paused", "not_responding", "migrating",
           "reboot_in_progress", "powering_down", "saving_state", "restoring_state"}
TERMINAL = {"finished_success", "finished_failure", "finished_cleanup"}

# AuditLogType codes (ovirt-engine AuditLogType.java) and severities.
EV = {
    "USER_RUN_VM": (32, "normal"), "USER_STOP_VM": (33, "normal"), "USER_UPDATE_VM": (35, "normal"),
    "VM_DOWN": (61, "normal"), "USER_INITIATED_SHUTDOWN_VM": (73, "normal"),
    "USER_UPDATE_DISK": (86, "normal"), "USER_UPDATE_VM_DISK": (88, "normal"),
    "USER_STARTED_VM": (153, "normal"), "VM_ALREADY_IN_REQUESTED_STATUS": (254, "normal"),
    "TRANSFER_IMAGE_INITIATED": (1031, "normal"), "TRANSFER_IMAGE_SUCCEEDED": (1032, "normal"),
    "TRANSFER_IMAGE_CANCELLED": (1033, "normal"), "TRANSFER_IMAGE_FAILED": (1034, "error"),
    "TRANSFER_IMAGE_STOPPED_BY_SYSTEM_MISSING_TICKET": (1065, "error"),
    "TRANSFER_IMAGE_STOPPED_BY_SYSTEM_FAILED_TO_ADD_TICKET_TO_DAEMON": (1069, "error"),
    "DOWNLOAD_IMAGE_CANCELED_TIMEOUT": (1072, "error"),
    "TRANSFER_IMAGE_PAUSED_BY_USER": (1073, "normal"), "TRANSFER_IMAGE_RESUMED_BY_USER": (1074, "normal"),
    "TRANSFER_IMAGE_CANCELED_ON_TIMEOUT": (1076, "error"), "TRANSFER_IMAGE_PAUSED_ON_TIMEOUT": (1077, "warning"),
    "VM_BACKUP_STARTED": (10790, "normal"), "VM_BACKUP_SUCCEEDED": (10793, "normal"),
    "VM_BACKUP_FINALIZED": (10794, "normal"),
    "VM_CHECKPOINT_DELETED": (10797, "normal"), "VM_CHECKPOINT_FAILED_TO_DELETE": (10798, "error"),
}

# Validation texts: EngineMessage templates with ${action}=transfer|backup|shutdown|run and
# ${type}=Virtual Disk|VM; the REST layer wraps them in [...] and answers 409 "Operation Failed".
MSG_DISK_LOCKED = "Cannot {a} {t}: Disk is locked. Please try again later."          # lock manager
MSG_DISKS_LOCKED = ("Cannot {a} {t}: The following disks are locked: {d}. "
                    "Please try again in a few minutes.")                            # status LOCKED
MSG_PLUGGED = "Cannot transfer Virtual Disk. The disk {d} is plugged to non-Down VMs: {v}"
MSG_ILLEGAL = ("Cannot {a} {t}. The following attached disks are in ILLEGAL status: {d} - "
               "please remove them and try again.")
MSG_DURING_BACKUP = "Cannot {a} {t}. The VM is during a backup operation."  # ..._VM_IS_DURING_BACKUP
# CANNOT_DELETE_NON_ROOT_CHECKPOINT (early 4.4 engines); its AppErrors text was not found.
MSG_NON_ROOT = "Cannot remove Checkpoint. Checkpoint {c} is not the root checkpoint."


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    dt = datetime.fromtimestamp(ms / 1000, tz=timezone.utc).astimezone()
    return dt.isoformat(timespec="milliseconds")


class ApiError(Exception):
    def __init__(self, status, reason, detail):
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail


def op_failed(detail):
    """A failed engine validation: 409 Conflict, reason 'Operation Failed', detail in [...]."""
    return ApiError(409, "Operation Failed", "[%s]" % detail)


def not_found(what):
    return ApiError(404, "Not Found", "Entity not found: %s" % what)


# --------------------------------------------------------------------------- XML <-> JSON
def json_prune(v):
    """The engine's JSON omits empty lists: an empty collection is {}."""
    if isinstance(v, dict):
        return {k: json_prune(x) for k, x in v.items() if not (isinstance(x, list) and not x)}
    if isinstance(v, list):
        return [json_prune(x) for x in v]
    return v


def xml_fill(el, v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k in ("id", "href", "rel") and isinstance(x, str):
                el.set(k, x)
            elif k == "link":
                for link in x:
                    ET.SubElement(el, "link", {a: str(b) for a, b in link.items()})
            elif isinstance(x, list):          # inside a wrapper: {"nic": [...]} -> <nic/><nic/>
                for item in x:
                    xml_fill(ET.SubElement(el, k), item)
            else:
                if k in DATE_FIELDS and isinstance(x, int):
                    ET.SubElement(el, k).text = iso(x)
                else:
                    xml_fill(ET.SubElement(el, k), x)
    elif isinstance(v, bool):
        el.text = "true" if v else "false"
    elif v is not None:
        el.text = str(v)


def to_xml(tag, value):
    el = ET.Element(tag)
    xml_fill(el, value)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + ET.tostring(el)


def is_wrapper(tag, child_tags):
    if len(set(child_tags)) != 1:
        return False
    c = child_tags[0]
    return tag in (c + "s", "nics") or (tag.endswith("ies") and tag[:-3] + "y" == c)


def from_xml(el):
    d = dict(el.attrib)
    kids = list(el)
    if not kids:
        return d if d else (el.text or "").strip()
    if is_wrapper(el.tag, [k.tag for k in kids]):
        d[kids[0].tag] = [from_xml(k) for k in kids]
        return d
    for k in kids:
        if k.tag == "link":
            d.setdefault("link", []).append(dict(k.attrib))
        else:
            d[k.tag] = from_xml(k)
    return d


def add_hrefs(node, host_path=None):
    """Give every reference ({"id": ..}) the href the engine would give it."""
    for k, v in node.items():
        items = v if isinstance(v, list) else [v] if isinstance(v, dict) else []
        for it in items:
            if not isinstance(it, dict):
                continue
            if "id" in it and "href" not in it:
                if REF_COLLECTION.get(k):
                    it["href"] = "%s/%s/%s" % (API, REF_COLLECTION[k], it["id"])
                elif k == "host_nic" and host_path:
                    it["href"] = "%s/nics/%s" % (host_path, it["id"])
            add_hrefs(it, host_path)


def parse_follow(spec):
    tree = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        node = tree
        for name in part.split("."):
            node = node.setdefault(name, {})
    return tree


def search_match(obj, search):
    """The subset of the engine's search language we need: 'a=b and c!=d*'."""
    for term in re.split(r"\s+and\s+", (search or "").strip(), flags=re.I):
        m = re.match(r"^([\w.]+)\s*(!=|=)\s*(.*)$", term.strip())
        if not m:
            continue
        key, op, want = m.group(1), m.group(2), m.group(3).strip().strip('"')
        val = obj
        for part in key.split("."):
            val = val.get(part) if isinstance(val, dict) else None
        ok = val is not None and fnmatch.fnmatchcase(str(val).lower(), want.lower())
        if ok == (op == "!="):
            return False
    return True


# --------------------------------------------------------------------------- imageio
class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class ImageioControl:
    """The daemon's control service, as vdsm uses it (PUT/GET/PATCH/DELETE /tickets/ID)."""

    def __init__(self, socket_path):
        self.path = socket_path

    def call(self, method, ticket, body=None, timeout=10):
        conn = UnixHTTPConnection(self.path, timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/tickets/" + ticket, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
            return resp.status, text
        finally:
            conn.close()


# --------------------------------------------------------------------------- qemu-storage-daemon
class QmpError(Exception):
    """A QMP command failed (an `error` answer) or the monitor could not be reached."""


class Qmp:
    """A minimal QMP client: one connection, one command at a time, reconnect on loss.

    Asynchronous `event` messages are skipped while waiting for `return`/`error`.
    """

    def __init__(self, path, timeout=10):
        self.path, self.timeout = path, timeout
        self.lock = threading.Lock()
        self.sock = self.file = None

    def _close(self):
        for x in (self.file, self.sock):
            try:
                x and x.close()
            except OSError:
                pass
        self.sock = self.file = None

    def _read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("QMP connection closed")
        return json.loads(line)

    def _answer(self):
        while True:
            msg = self._read()
            if "return" in msg or "error" in msg:
                return msg

    def _connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self.sock, self.file = s, s.makefile("rwb")
        try:
            if "QMP" not in self._read():
                raise QmpError("no QMP greeting on %s" % self.path)
            self.file.write(b'{"execute": "qmp_capabilities"}\n')
            self.file.flush()
            ans = self._answer()
            if "error" in ans:
                raise QmpError("qmp_capabilities: %s" % ans["error"].get("desc"))
        except QmpError:
            self._close()
            raise

    def _stale(self):
        """The daemon closed our idle connection (it exited or was restarted)."""
        if not select.select([self.sock], [], [], 0)[0]:
            return False
        try:
            return self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def call(self, cmd, **args):
        data = json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n"
        with self.lock:
            for attempt in (1, 2):
                sent = False
                try:
                    if self.sock is not None and self._stale():
                        self._close()
                    if self.sock is None:
                        self._connect()
                    self.file.write(data)
                    self.file.flush()
                    sent = True
                    ans = self._answer()
                    break
                except (OSError, EOFError, ValueError) as e:
                    self._close()
                    # Resend only what never reached the daemon (a stale connection).
                    if sent or attempt == 2:
                        raise QmpError("%s: QMP connection to %s failed: %s" % (cmd, self.path, e))
        if "error" in ans:
            raise QmpError("%s: %s" % (cmd, ans["error"].get("desc", ans["error"])))
        return ans["return"]


class StorageDaemon:
    """The qemu-storage-daemon a test runs for the disks in `storage_daemon.nodes`.

    The stand-in adds read-only NBD exports (plain transfers, backups) and dirty bitmaps
    (one per checkpoint, named after the checkpoint id) over QMP; the test's own writable
    `guest-<node>` exports play the guest.
    """

    def __init__(self, cfg):
        self.qmp = Qmp(cfg["qmp_socket"])
        self.nbd_socket = cfg["nbd_socket"]
        self.nodes = dict(cfg.get("nodes", {}))      # disk id -> node name

    def url(self, export):
        # imageio's form for an export of a unix-socket server (nbd.py UNIX_URL_PATH).
        return "nbd:unix:%s:exportname=%s" % (self.nbd_socket, export)

    def add_export(self, export, node, bitmap=None):
        args = {"type": "nbd", "id": export, "name": export, "node-name": node,
                "writable": False, "allocation-depth": True}
        if bitmap:
            args["bitmaps"] = [bitmap]
        self.qmp.call("block-export-add", **args)

    def exports(self):
        return [e["id"] for e in self.qmp.call("query-block-exports")]

    def del_export(self, export, wait=5.0):
        """Remove an export, dropping its clients, and wait until QEMU has let it go."""
        try:
            self.qmp.call("block-export-del", id=export, mode="hard")
        except QmpError as e:
            if "not found" not in str(e):
                raise
        deadline = time.monotonic() + wait
        while export in self.exports():
            if time.monotonic() > deadline:
                raise QmpError("block-export-del: export %s is still there after %.0fs"
                               % (export, wait))
            time.sleep(0.05)

    def bitmaps(self):
        """node -> [dirty bitmap info] for the configured nodes (query-named-block-nodes)."""
        out = {n: [] for n in self.nodes.values()}
        for node in self.qmp.call("query-named-block-nodes", flat=True):
            if node.get("node-name") in out:
                out[node["node-name"]] = node.get("dirty-bitmaps", [])
        return out


# --------------------------------------------------------------------------- the engine
class Engine:
    def __init__(self, cfg, ca_pem):
        self.cfg = cfg
        self.ca_pem = ca_pem
        self.lock = threading.RLock()
        self.users = cfg.get("users", {})
        self.token_lifetime = float(cfg.get("token_lifetime_seconds", 3600))
        self.power_delay = float(cfg.get("power_delay_seconds", 0.5))
        self.transfer_delay = float(cfg.get("transfer_delay_seconds", 0.3))
        self.poll_interval = float(cfg.get("poll_interval_seconds", 1.0))
        self.finished_ttl = float(cfg.get("finished_transfer_ttl_seconds", 60))
        self.ticket_timeout = int(cfg.get("ticket_timeout_seconds", 3600))
        self.auto_finalize = bool(cfg.get("auto_finalize_downloads", True))
        self.backends = cfg.get("backends", {})
        self.backup_backends = cfg.get("backup_backends", {})
        self.sd = StorageDaemon(cfg["storage_daemon"]) if cfg.get("storage_daemon") else None
        self.sd_exports = {}         # export id -> {"id","node","disk","owner","bitmap"}: ours, open
        # "any" (engine 4.5 DeleteVmCheckpointCommand) or "root_only" (early 4.4 engines).
        self.checkpoint_removal = cfg.get("checkpoint_removal", "any")
        if self.checkpoint_removal not in ("any", "root_only"):
            raise ValueError("checkpoint_removal must be 'any' or 'root_only'")
        io = cfg.get("imageio", {})
        self.imageio = ImageioControl(io["control_socket"]) if io.get("control_socket") else None
        self.imageio_url = io.get("url", "").rstrip("/")
        self.proxy_url = (io.get("proxy_url") or io.get("url", "")).rstrip("/")
        self.top = {c: {} for c in COLLECTIONS if c not in ("events", "imagetransfers")}
        self.sub = {}                # (collection, parent id, segment) -> [objects]
        self.events = []             # oldest first
        self.event_ids = itertools.count(int(cfg.get("first_event_id", 1000)))
        self.transfers = {}          # id -> record (public JSON in rec["obj"])
        self.backups = {}            # id -> record
        self.checkpoints = {}        # vm id -> [checkpoint JSON], oldest first
        self.checkpoint_disks = {}   # checkpoint id -> [disk ids] (its /disks sub-collection)
        self.tokens = {}             # token -> expiry (epoch seconds)
        self.requests = []
        self.faults = []
        self.disk_locks = {}         # disk id -> owner: the engine's in-memory exclusive lock
        self.vm_gen = {}             # vm id -> generation, cancels stale power transitions
        self.vm_hosts = {}           # vm id -> host ref to restore on start
        self.timers = []
        self.seq = itertools.count()
        self.wake = threading.Condition(self.lock)
        self.load(cfg.get("objects", {}))

    # ------------------------------------------------------------------ loading
    def load(self, objects):
        for coll in self.top:
            for obj in objects.get(coll, []):
                obj = copy.deepcopy(obj)
                if coll == "disks" and "sharable" in obj:   # the model spells it "shareable"
                    obj.setdefault("shareable", obj.pop("sharable"))
                for seg, (attr, elem) in SUBCOLLECTIONS.get(coll, {}).items():
                    wrapper = obj.pop(attr, None) or {}
                    self.sub[(coll, obj["id"], seg)] = [copy.deepcopy(i) for i in wrapper.get(elem, [])]
                self.top[coll][obj["id"]] = obj
                if coll == "vms":
                    self.vm_hosts[obj["id"]] = obj.get("host")
                    if obj.get("status") == "down":
                        obj.pop("host", None)
                    self.checkpoints[obj["id"]] = []

    # ------------------------------------------------------------------ scheduling
    def later(self, delay, fn, *args):
        with self.lock:
            heapq.heappush(self.timers, (time.monotonic() + delay, next(self.seq), fn, args))
            self.wake.notify()

    def run_timers(self, stop):
        next_poll = time.monotonic()
        while not stop.is_set():
            with self.lock:
                due = []
                while self.timers and self.timers[0][0] <= time.monotonic():
                    due.append(heapq.heappop(self.timers))
                if not due:
                    deadline = min(self.timers[0][0], next_poll) if self.timers else next_poll
                    self.wake.wait(max(0.01, deadline - time.monotonic()))
            for _, _, fn, args in due:
                self.safely(fn, *args)
            if time.monotonic() >= next_poll:
                self.safely(self.poll_transfers)
                next_poll = time.monotonic() + self.poll_interval

    def safely(self, fn, *args):
        try:
            fn(*args)
        except Exception as e:  # a bug in one callback must not stop the engine
            print("engine-sim: callback %s failed: %r" % (getattr(fn, "__name__", fn), e),
                  file=sys.stderr)

    # ------------------------------------------------------------------ events
    def event(self, name, description, **refs):
        code, severity = EV[name]
        with self.lock:
            eid = str(next(self.event_ids))
            ev = {"id": eid, "href": "%s/events/%s" % (API, eid), "code": str(code),
                  "description": description, "severity": severity, "time": now_ms(),
                  "origin": "oVirt", "custom_id": "-1", "flood_rate": "0", "index": eid,
                  "user": {"id": USER_ID}}
            for k, v in refs.items():
                if v:
                    ev[k] = {"id": v}
            add_hrefs(ev)
            self.events.append(ev)

    # ------------------------------------------------------------------ auth
    def issue_token(self, user, password):
        if self.users.get(user) != password or password is None:
            return None
        tok = base64.urlsafe_b64encode(os.urandom(48)).decode().rstrip("=")
        with self.lock:
            self.tokens[tok] = time.time() + self.token_lifetime
        return tok

    def token_valid(self, tok):
        with self.lock:
            exp = self.tokens.get(tok)
            if exp is not None and exp < time.time():
                del self.tokens[tok]
                exp = None
            return exp is not None

    # ------------------------------------------------------------------ rendering
    def render(self, coll, obj, follow, path):
        out = {"href": path, "id": obj["id"]}      # the engine writes href and id first
        out.update(copy.deepcopy(obj))
        host_path = path if coll == "hosts" else None
        links = []
        subs = dict(SUBCOLLECTIONS.get(coll, {}), **DYNAMIC_SUBS.get(coll, {}))
        for seg, (attr, elem) in subs.items():
            if attr in follow:
                items = self.sub_items(coll, obj["id"], seg)
                out[attr] = {elem: [self.render_sub(coll, obj["id"], seg, i, follow[attr])
                                    for i in items]}
            else:
                links.append({"href": "%s/%s" % (path, seg), "rel": seg})
        for key, subtree in follow.items():   # follow=cluster embeds a referenced object
            ref = out.get(key)
            tcoll = REF_COLLECTION.get(key)
            if isinstance(ref, dict) and tcoll in self.top and ref.get("id") in self.top[tcoll]:
                out[key] = self.render(tcoll, self.top[tcoll][ref["id"]], subtree,
                                       "%s/%s/%s" % (API, tcoll, ref["id"]))
        add_hrefs(out, host_path)
        if links:
            out["link"] = links
        return out

    def render_sub(self, coll, pid, seg, item, follow):
        path = "%s/%s/%s/%s/%s" % (API, coll, pid, seg, item["id"])
        out = {"href": path, "id": item["id"]}
        out.update(copy.deepcopy(item))
        out.setdefault(COLLECTIONS[coll], {"id": pid})          # e.g. a nic's "vm"
        if (coll, seg) in (("vms", "backups"), ("vms", "checkpoints")):
            out["link"] = [{"href": path + "/disks", "rel": "disks"}]
        for key, subtree in follow.items():
            ref, tcoll = out.get(key), REF_COLLECTION.get(key)
            if isinstance(ref, dict) and tcoll in self.top and ref.get("id") in self.top[tcoll]:
                out[key] = self.render(tcoll, self.top[tcoll][ref["id"]], subtree,
                                       "%s/%s/%s" % (API, tcoll, ref["id"]))
        add_hrefs(out, "%s/%s/%s" % (API, coll, pid) if coll == "hosts" else None)
        return out

    def sub_items(self, coll, pid, seg):
        if (coll, seg) == ("vms", "backups"):
            return [b["obj"] for b in self.backups.values() if b["vm"] == pid]
        if (coll, seg) == ("vms", "checkpoints"):
            return self.checkpoints.get(pid, [])
        items = self.sub.get((coll, pid, seg), [])
        elem = SUBCOLLECTIONS[coll][seg][1]
        target = REF_COLLECTION.get(elem)
        # A config list of bare references (network -> vnic_profiles) lists the full objects.
        return [self.top[target].get(i["id"], i) if target in self.top and set(i) <= {"id", "href"}
                else i for i in items]

    def render_transfer(self, rec):
        out = copy.deepcopy(rec["obj"])
        if rec["ticket"] is None:      # the engine drops the URLs with the ticket
            out.pop("transfer_url", None)
            out.pop("proxy_url", None)
        add_hrefs(out)
        if rec.get("backup"):
            out["backup"] = {"id": rec["backup"], "href": "%s/vms/%s/backups/%s" % (
                API, self.backups[rec["backup"]]["vm"], rec["backup"])}
        return out

    # ------------------------------------------------------------------ API: reads
    def api_root(self):
        vms = list(self.top["vms"].values())
        hosts = list(self.top["hosts"].values())
        sds = list(self.top["storagedomains"].values())
        return {
            "link": [{"href": "%s/%s" % (API, c), "rel": c} for c in COLLECTIONS],
            "authenticated_user": {"id": USER_ID, "href": "%s/users/%s" % (API, USER_ID)},
            "effective_user": {"id": USER_ID, "href": "%s/users/%s" % (API, USER_ID)},
            "product_info": {"instance_id": "8e2a6a9e-3f4e-4b4c-9b43-5f1c2e3d4a5b",
                             "name": "oVirt Engine", "vendor": "ovirt.org",
                             "version": {"build": "6", "full_version": "4.5.6-1.el8",
                                         "major": "4", "minor": "5", "revision": "0"}},
            "special_objects": {
                "blank_template": {"id": "00000000-0000-0000-0000-000000000000",
                                   "href": API + "/templates/00000000-0000-0000-0000-000000000000"},
                "root_tag": {"id": "00000000-0000-0000-0000-000000000000",
                             "href": API + "/tags/00000000-0000-0000-0000-000000000000"}},
            "summary": {
                "hosts": {"active": str(sum(h.get("status") == "up" for h in hosts)), "total": str(len(hosts))},
                "storage_domains": {"active": str(len(sds)), "total": str(len(sds))},
                "users": {"active": "1", "total": str(len(self.users))},
                "vms": {"active": str(sum(v.get("status") in RUNNING for v in vms)), "total": str(len(vms))}},
            "time": now_ms(),
        }

    def list_collection(self, coll, q):
        follow, search, limit = parse_follow(q.get("follow")), q.get("search"), q.get("max")
        if coll == "events":
            items = sorted(self.events, key=lambda e: -int(e["id"]))   # newest first
            if q.get("from"):
                items = [e for e in items if int(e["id"]) > int(q["from"])]
            items = [copy.deepcopy(e) for e in items]
        elif coll == "imagetransfers":
            items = [self.render_transfer(r) for r in self.transfers.values() if not r["removed"]]
        else:
            items = [self.render(coll, o, follow, "%s/%s/%s" % (API, coll, o["id"]))
                     for o in self.top[coll].values()]
        if search:
            items = [i for i in items if search_match(i, search)]
        if limit not in (None, "", "-1"):
            items = items[:int(limit)]
        return COLLECTIONS[coll], items

    def get_one(self, coll, oid, q):
        if coll == "events":
            for e in self.events:
                if e["id"] == oid:
                    return copy.deepcopy(e)
        elif coll == "imagetransfers":
            rec = self.transfers.get(oid)
            if rec and not rec["removed"]:
                return self.render_transfer(rec)
        elif oid in self.top.get(coll, {}):
            return self.render(coll, self.top[coll][oid], parse_follow(q.get("follow")),
                               "%s/%s/%s" % (API, coll, oid))
        raise not_found(oid)

    def parent(self, coll, pid):
        if pid not in self.top.get(coll, {}):
            raise not_found(pid)
        return self.top[coll][pid]

    def list_sub(self, coll, pid, seg, q):
        self.parent(coll, pid)
        subs = dict(SUBCOLLECTIONS.get(coll, {}), **DYNAMIC_SUBS.get(coll, {}))
        if seg not in subs:
            raise not_found(seg)
        elem = subs[seg][1]
        follow = parse_follow(q.get("follow"))
        items = [self.render_sub(coll, pid, seg, i, follow) for i in self.sub_items(coll, pid, seg)]
        if q.get("search"):
            items = [i for i in items if search_match(i, q["search"])]
        if q.get("max"):
            items = items[:int(q["max"])]
        return elem, items

    def get_sub(self, coll, pid, seg, sid, q):
        elem, items = self.list_sub(coll, pid, seg, q)
        for i in items:
            if i["id"] == sid:
                return elem, i
        raise not_found(sid)

    def backup_disks(self, vm_id, bid):
        rec = self.backups.get(bid)
        if not rec or rec["vm"] != vm_id:
            raise not_found(bid)
        out = []
        for d in rec["disks"]:
            if d in self.top["disks"]:
                disk = self.render("disks", self.top["disks"][d], {}, "%s/disks/%s" % (API, d))
                disk["backup_mode"] = rec["modes"][d]
                out.append(disk)
        return "disk", out

    # ------------------------------------------------------------------ VMs
    def vm_event_refs(self, vm):
        return {"vm": vm["id"], "cluster": vm.get("cluster", {}).get("id"),
                "host": (vm.get("host") or {}).get("id")}

    def host_name(self, host_ref):
        h = self.top["hosts"].get((host_ref or {}).get("id"), {})
        return h.get("name", "N/A")

    def vm_action(self, vm_id, action, user):
        vm = self.parent("vms", vm_id)
        name, status = vm.get("name"), vm.get("status")
        if action in ("shutdown", "stop"):
            if status == "down":
                # StopVmCommandBase.shouldSkipCommandExecution(): not an error, just an event.
                self.event("VM_ALREADY_IN_REQUESTED_STATUS", "VM %s is already Down, %s was skipped. "
                           "User: %s." % (name, action, user), **self.vm_event_refs(vm))
                return
            if status not in RUNNING:
                raise op_failed("Cannot %s VM. VM is not running." % action)
            gen = self.bump(vm_id)
            host = self.host_name(vm.get("host"))
            if action == "shutdown":
                self.event("USER_INITIATED_SHUTDOWN_VM", "VM shutdown initiated by %s on VM %s "
                           "(Host: %s)." % (user, name, host), **self.vm_event_refs(vm))
            else:
                self.event("USER_STOP_VM", "VM %s powered off by %s (Host: %s)." % (name, user, host),
                           **self.vm_event_refs(vm))
            self.set_vm_status(vm, "powering_down")
            self.later(self.power_delay, self.vm_reach, vm_id, gen, "down")
        elif action == "start":
            if status != "down":
                raise op_failed("Cannot run VM. VM is running.")
            gen = self.bump(vm_id)
            vm["host"] = copy.deepcopy(self.vm_hosts.get(vm_id)) or self.any_up_host()
            self.event("USER_STARTED_VM", "VM %s was started by %s (Host: %s)." % (
                name, user, self.host_name(vm.get("host"))), **self.vm_event_refs(vm))
            self.set_vm_status(vm, "wait_for_launch")
            self.later(self.power_delay / 2, self.vm_reach, vm_id, gen, "powering_up")
            self.later(self.power_delay, self.vm_reach, vm_id, gen, "up")
        else:
            raise not_found(action)

    def bump(self, vm_id):
        self.vm_gen[vm_id] = self.vm_gen.get(vm_id, 0) + 1
        return self.vm_gen[vm_id]

    def any_up_host(self):
        for h in self.top["hosts"].values():
            if h.get("status", "up") == "up":
                return {"id": h["id"]}
        return None

    def set_vm_status(self, vm, status):
        vm["status"] = status
        if status == "down":
            vm.pop("host", None)

    def vm_reach(self, vm_id, gen, status):
        with self.lock:
            vm = self.top["vms"].get(vm_id)
            if vm is None or self.vm_gen.get(vm_id) != gen:
                return
            refs = self.vm_event_refs(vm)
            self.set_vm_status(vm, status)
            if status == "down":
                self.event("VM_DOWN", "VM %s is down. Exit message: Admin shut down from the engine"
                           % vm["name"], **refs)
            elif status == "up":
                self.event("USER_RUN_VM", "VM %s started on Host %s" % (
                    vm["name"], self.host_name(vm.get("host"))), **self.vm_event_refs(vm))

    def vms_using_disk(self, disk_id, non_down=True):
        names = []
        for vm in self.top["vms"].values():
            for da in self.sub.get(("vms", vm["id"], "diskattachments"), []):
                if (da.get("disk", {}).get("id") or da.get("id")) == disk_id and \
                        str(da.get("active", "true")) == "true" and \
                        (not non_down or vm.get("status") != "down"):
                    names.append(vm)
        return names

    # ------------------------------------------------------------------ image transfers
    def consume_fault(self, kind, disk_id):
        for f in self.faults:
            if f.get("kind") == kind and f.get("disk") == disk_id and f.get("times", 1) > 0:
                f["times"] = f.get("times", 1) - 1
                return True
        return False

    def create_transfer(self, body, user):
        direction = body.get("direction", "upload")   # the model's default is upload
        if direction != "download":
            raise ApiError(400, "Bad Request", "engine-sim serves downloads only (direction=%s)"
                           % direction)
        if body.get("snapshot"):
            raise ApiError(400, "Bad Request", "engine-sim does not serve disk snapshots")
        fmt = body.get("format", "raw")
        if fmt != "raw":
            raise ApiError(400, "Bad Request", "engine-sim serves format=raw (NBD backend) only")
        disk_id = (body.get("disk") or body.get("image") or {}).get("id")
        if not disk_id or disk_id not in self.top["disks"]:
            raise op_failed("Cannot transfer Virtual Disk. The specified disk does not exist.")
        disk = self.top["disks"][disk_id]
        alias = disk.get("alias") or disk.get("name")
        backup_id = (body.get("backup") or {}).get("id")
        backup = self.backups.get(backup_id) if backup_id else None
        if backup_id:
            if backup is None:
                raise op_failed("Cannot transfer Virtual Disk. VM backup does not exist.")
            if backup["obj"]["phase"] != "ready":
                raise op_failed("Cannot transfer Virtual Disk. VM backup is not ready (phase: %s)."
                                % backup["obj"]["phase"])
            if disk_id not in backup["disks"]:
                raise op_failed("Cannot transfer Virtual Disk. The disk is not part of the backup.")
        else:
            # Order as CommandBase: the in-memory lock first, then validate().
            if self.consume_fault("disk_locked", disk_id) or disk_id in self.disk_locks:
                raise op_failed(MSG_DISK_LOCKED.format(a="transfer", t="Virtual Disk"))
            running = self.vms_using_disk(disk_id)
            if running:
                raise op_failed(MSG_PLUGGED.format(d=alias, v=",".join(sorted(v["name"] for v in running))))
            if disk.get("status") == "illegal":
                raise op_failed(MSG_ILLEGAL.format(a="transfer", t="Virtual Disk", d=alias))
            if disk.get("status") == "locked":
                raise op_failed(MSG_DISKS_LOCKED.format(a="transfer", t="Virtual Disk", d=alias))
        tid = str(uuid.uuid4())
        # TransferDiskImageCommand.isSupportsDirtyExtents(): the disk's backup mode is incremental.
        incremental = bool(backup and backup["modes"].get(disk_id) == "incremental")
        export = None
        if backup and disk_id in backup.get("exports", {}):
            backend = self.sd.url(backup["exports"][disk_id])      # the backup's own export
        elif not backup and self.sd and disk_id in self.sd.nodes:
            export = "transfer-" + tid                              # one export per transfer
            self.sd_add_export(export, disk_id, "transfer:" + tid)  # QMP error: 500, nothing changed
            backend = self.sd.url(export)
        else:
            backend = (self.backup_backends if incremental else self.backends).get(disk_id)
        host = self.vm_hosts.get(backup["vm"]) if backup else self.any_up_host()
        obj = {"id": tid, "href": "%s/imagetransfers/%s" % (API, tid), "active": "false",
               "direction": "download", "format": "raw",
               "inactivity_timeout": str(int(body.get("inactivity_timeout", 60))),
               "phase": "initializing", "shallow": str(body.get("shallow", "false")).lower(),
               "timeout_policy": body.get("timeout_policy", "legacy"), "transferred": "0",
               "disk": {"id": disk_id}, "image": {"id": disk_id}}
        if host:
            obj["host"] = {"id": host["id"]}
        rec = {"obj": obj, "disk": disk_id, "ticket": None, "backup": backup_id, "removed": False,
               "dirty": incremental, "backend": backend, "export": export,
               "size": int(disk.get("provisioned_size", "0")),
               "history": ["initializing"], "inactive_polls": 0, "alias": alias}
        self.transfers[tid] = rec
        if not backup:
            self.disk_locks[disk_id] = "transfer:" + tid
            self.set_disk_status(disk, "locked")
        self.event("TRANSFER_IMAGE_INITIATED", "Image Download with disk %s was initiated by %s."
                   % (alias, user), storage_domain=self.disk_sd(disk))
        self.later(self.transfer_delay, self.start_session, tid)
        return self.render_transfer(rec)

    def disk_sd(self, disk):
        sds = (disk.get("storage_domains") or {}).get("storage_domain") or [{}]
        return sds[0].get("id")

    def set_disk_status(self, disk, status):
        disk["status"] = status

    def set_phase(self, rec, phase):
        rec["obj"]["phase"] = phase
        rec["history"].append(phase)

    def start_session(self, tid):
        """TransferDiskImageCommand.startImageTransferSession(): add the ticket, go transferring."""
        with self.lock:
            rec = self.transfers[tid]
            if rec["obj"]["phase"] != "initializing":
                return
            ticket = str(uuid.uuid4())
            body = {"uuid": ticket, "size": rec["size"], "url": rec["backend"] or "",
                    "timeout": self.ticket_timeout,
                    "inactivity_timeout": int(rec["obj"]["inactivity_timeout"]),
                    "ops": ["read"], "dirty": rec["dirty"], "transfer_id": tid,
                    "sparse": False}
        ok, why = True, ""
        if self.imageio:
            try:
                status, text = self.imageio.call("PUT", ticket, body)
                ok, why = status < 300, "%s %s" % (status, text)
            except OSError as e:
                ok, why = False, repr(e)
        with self.lock:
            if not ok:
                print("engine-sim: adding ticket for %s failed: %s" % (tid, why), file=sys.stderr)
                self.system_cancel(tid, "TRANSFER_IMAGE_STOPPED_BY_SYSTEM_FAILED_TO_ADD_TICKET_TO_DAEMON",
                                   "Transfer was stopped by system. Reason: failed to add image "
                                   "ticket to ovirt-imageio.")
                return
            rec["ticket"], rec["ticket_body"] = ticket, body
            rec["obj"]["transfer_url"] = "%s/images/%s" % (self.imageio_url, ticket)
            rec["obj"]["proxy_url"] = "%s/images/%s" % (self.proxy_url, ticket)
            self.set_phase(rec, "transferring")

    def stop_session(self, tid, then):
        """Remove the daemon ticket (DELETE waits while it is in use), then run `then`."""
        rec = self.transfers[tid]
        ticket = rec["ticket"]

        def work():
            if ticket and self.imageio:
                try:
                    status, text = self.imageio.call("DELETE", ticket, timeout=90)
                    if status >= 300:
                        print("engine-sim: DELETE ticket %s: %s %s" % (ticket, status, text),
                              file=sys.stderr)
                except OSError as e:
                    print("engine-sim: DELETE ticket %s: %r" % (ticket, e), file=sys.stderr)
            if rec.get("export"):     # the transfer's own export goes with its ticket
                try:
                    self.sd_del_export(rec["export"])
                except QmpError as e:
                    print("engine-sim: removing export %s: %s" % (rec["export"], e), file=sys.stderr)
            with self.lock:
                rec["ticket"] = None
                self.safely(then)
        threading.Thread(target=work, daemon=True).start()

    def release_disk(self, rec):
        if rec["backup"]:
            return  # the backup owns the disk lock and status
        if self.disk_locks.get(rec["disk"]) == "transfer:" + rec["obj"]["id"]:
            del self.disk_locks[rec["disk"]]
        self.set_disk_status(self.top["disks"][rec["disk"]], "ok")

    def end_transfer(self, tid, phase, ev_name, verb):
        rec = self.transfers[tid]
        self.release_disk(rec)
        self.set_phase(rec, phase)
        rec["finished_at"] = time.time()
        disk = self.top["disks"][rec["disk"]]
        self.event(ev_name, "Image Download with disk %s %s." % (rec["alias"], verb),
                   storage_domain=self.disk_sd(disk))
        # Engine 4.4.7+: the finished entity stays, a cleanup thread removes it minutes later.
        self.later(self.finished_ttl, self.forget_transfer, tid)

    def forget_transfer(self, tid):
        with self.lock:
            self.transfers[tid]["removed"] = True

    def transfer_action(self, tid, action, user):
        rec = self.transfers.get(tid)
        if rec is None or rec["removed"]:
            raise not_found(tid)
        phase = rec["obj"]["phase"]
        if action == "finalize":
            # Invalid transitions are ignored by ImageTransferUpdater (the call still succeeds).
            if phase in ("transferring", "paused_user", "paused_system", "resuming"):
                self.set_phase(rec, "finalizing_success")
                self.later(self.transfer_delay, self.finish_success, tid)
        elif action == "cancel":
            if phase not in TERMINAL and not phase.startswith(("finalizing", "cancelled")):
                self.set_phase(rec, "cancelled_user")
                self.later(self.transfer_delay, self.cleanup_cancelled, tid)
        elif action == "extend":
            if rec["ticket"] and self.imageio:  # extends the ticket expiry, not its idle time
                ticket = rec["ticket"]
                threading.Thread(target=self.safely, args=(self.imageio.call, "PATCH", ticket,
                                 {"timeout": self.ticket_timeout}), daemon=True).start()
        elif action == "pause":
            if phase == "transferring":
                self.set_phase(rec, "paused_user")
                self.event("TRANSFER_IMAGE_PAUSED_BY_USER", "Image transfer was paused by user (%s)."
                           % user)
        elif action == "resume":
            if phase in ("paused_user", "paused_system"):
                self.set_phase(rec, "resuming")
                self.event("TRANSFER_IMAGE_RESUMED_BY_USER", "Image transfer was resumed by user (%s)."
                           % user)
                self.later(self.transfer_delay, self.resume_done, tid)
        else:
            raise not_found(action)

    def resume_done(self, tid):
        with self.lock:
            rec = self.transfers[tid]
            if rec["obj"]["phase"] == "resuming":
                self.set_phase(rec, "transferring")

    def finish_success(self, tid):
        with self.lock:
            if self.transfers[tid]["obj"]["phase"] == "finalizing_success":
                self.stop_session(tid, lambda: self.end_transfer(
                    tid, "finished_success", "TRANSFER_IMAGE_SUCCEEDED", "succeeded"))

    def cleanup_cancelled(self, tid):
        """cancelled_user -> finalizing_cleanup -> finished_cleanup -> finished_failure."""
        with self.lock:
            rec = self.transfers[tid]
            self.set_phase(rec, "finalizing_cleanup")

            def cleaned():
                self.release_disk(rec)
                self.set_phase(rec, "finished_cleanup")
                self.later(self.transfer_delay, self.end_cancelled, tid)
            self.stop_session(tid, cleaned)

    def end_cancelled(self, tid):
        with self.lock:
            self.end_transfer(tid, "finished_failure", "TRANSFER_IMAGE_CANCELLED", "was cancelled")

    def system_cancel(self, tid, ev_name, description):
        """cancelled_system -> finalizing_failure -> finished_failure (a download is never paused)."""
        rec = self.transfers[tid]
        self.event(ev_name, description, storage_domain=self.disk_sd(self.top["disks"][rec["disk"]]))
        self.set_phase(rec, "cancelled_system")
        self.later(self.transfer_delay, self.finalize_failure, tid)

    def finalize_failure(self, tid):
        with self.lock:
            self.set_phase(self.transfers[tid], "finalizing_failure")
            self.stop_session(tid, lambda: self.end_transfer(
                tid, "finished_failure", "TRANSFER_IMAGE_CANCELLED", "was cancelled"))

    def inactivity_hit(self, tid):
        """What stopTransferIfNecessary() does when the ticket idled past inactivity_timeout."""
        rec = self.transfers[tid]
        policy = rec["obj"].get("timeout_policy", "legacy")
        if policy == "pause":
            self.event("TRANSFER_IMAGE_PAUSED_ON_TIMEOUT", "Transfer was paused by system. Reason: "
                       "timeout due to transfer inactivity.")
            self.set_phase(rec, "paused_system")
        elif policy == "cancel":
            self.system_cancel(tid, "TRANSFER_IMAGE_CANCELED_ON_TIMEOUT", "Transfer was cancelled by "
                               "system. Reason: timeout due to transfer inactivity.")
        else:
            self.system_cancel(tid, "DOWNLOAD_IMAGE_CANCELED_TIMEOUT", "Download was canceled by "
                               "system. Reason: timeout due to transfer inactivity.")

    def poll_transfers(self):
        """The engine's periodic poll: GET the ticket, update transferred/active, apply timeouts."""
        with self.lock:
            work = [(tid, r["ticket"]) for tid, r in self.transfers.items()
                    if r["obj"]["phase"] == "transferring" and r["ticket"]]
        if not self.imageio:
            return
        for tid, ticket in work:
            try:
                status, text = self.imageio.call("GET", ticket, timeout=5)
            except OSError:
                continue
            with self.lock:
                rec = self.transfers[tid]
                if rec["obj"]["phase"] != "transferring" or rec["ticket"] != ticket:
                    continue
                if status == 404:
                    self.system_cancel(tid, "TRANSFER_IMAGE_STOPPED_BY_SYSTEM_MISSING_TICKET",
                                       "Transfer was stopped by system. Reason: missing ticket.")
                    continue
                if status != 200:
                    continue
                self.apply_ticket_info(tid, json.loads(text))

    def apply_ticket_info(self, tid, info):
        rec = self.transfers[tid]
        active = bool(info.get("active"))
        transferred = int(info.get("transferred", 0))
        rec["obj"]["active"] = "true" if active else "false"
        rec["obj"]["transferred"] = str(transferred)
        # finalizeDownloadIfNecessary(): all bytes read and inactive for two polls.
        if self.auto_finalize and transferred == rec["size"] and rec["size"] and not active:
            rec["inactive_polls"] += 1
            if rec["inactive_polls"] >= 2:
                self.set_phase(rec, "finalizing_success")
                self.later(0, self.finish_success, tid)
                return
        else:
            rec["inactive_polls"] = 0
        timeout = int(rec["obj"]["inactivity_timeout"])
        if timeout > 0 and not active and int(info.get("idle_time", 0)) > timeout:
            self.inactivity_hit(tid)

    # ------------------------------------------------------------------ backups
    def vm_during_backup(self, vm_id):
        return any(b["vm"] == vm_id and b["obj"]["phase"] not in ("succeeded", "failed")
                   for b in self.backups.values())

    def create_backup(self, vm_id, body, user):
        vm = self.parent("vms", vm_id)
        disk_ids = [d.get("id") for d in (body.get("disks") or {}).get("disk", [])]
        for d in disk_ids:
            if d not in self.top["disks"]:
                raise op_failed("Cannot backup VM. The following disks do not exist: %s." % d)
        locked = [d for d in disk_ids if d in self.disk_locks or self.consume_fault("disk_locked", d)]
        if locked:
            raise op_failed(MSG_DISK_LOCKED.format(a="backup", t="VM"))
        bad = [self.top["disks"][d] for d in disk_ids if self.top["disks"][d].get("status") == "locked"]
        if bad:
            raise op_failed(MSG_DISKS_LOCKED.format(a="backup", t="VM", d=", ".join(
                x.get("alias", x["id"]) for x in bad)))
        if self.vm_during_backup(vm_id):
            raise op_failed(MSG_DURING_BACKUP.format(a="backup", t="VM"))
        from_cp = body.get("from_checkpoint_id")
        if from_cp and from_cp not in [c["id"] for c in self.checkpoints.get(vm_id, [])]:
            raise op_failed("Cannot backup VM. Checkpoint %s does not exist." % from_cp)
        if vm.get("status") not in ("up", "down"):
            raise op_failed("Cannot backup VM. The VM should be in Up or Down status.")
        bid, cp_id, ts = str(uuid.uuid4()), str(uuid.uuid4()), now_ms()
        # Per disk, as vdsm: incremental only for a disk the from-checkpoint covers.
        in_cp = set(self.checkpoint_disks.get(from_cp, [])) if from_cp else set()
        modes = {d: "incremental" if d in in_cp else "full" for d in disk_ids}
        exports, temp = {}, None
        sd_disks = [d for d in disk_ids if self.sd and d in self.sd.nodes]
        if sd_disks:   # QMP error: 500, no backup
            exports, temp = self.sd_start_backup(bid, cp_id, from_cp, sd_disks, modes)
        obj = {"id": bid, "phase": "initializing", "creation_date": ts, "modification_date": ts,
               "vm": {"id": vm_id}}
        if from_cp:
            obj["from_checkpoint_id"] = from_cp
        if body.get("description"):    # Backup is Identified: name, description
            obj["description"] = str(body["description"])
        host = self.vm_hosts.get(vm_id) if vm.get("status") != "down" else self.any_up_host()
        if host:
            obj["host"] = {"id": host["id"]}
        self.backups[bid] = {"obj": obj, "vm": vm_id, "disks": disk_ids, "modes": modes,
                             "checkpoint": cp_id, "exports": exports, "temp_bitmap": temp}
        for d in disk_ids:
            self.disk_locks[d] = "backup:" + bid
        self.event("VM_BACKUP_STARTED", "Backup %s for VM %s started (User: %s)." % (
            bid, vm["name"], user), **self.vm_event_refs(vm))
        self.later(self.transfer_delay / 2, self.backup_phase, bid, "starting")
        self.later(self.transfer_delay, self.backup_phase, bid, "ready")
        return self.render_sub("vms", vm_id, "backups", obj, {})

    def backup_phase(self, bid, phase):
        with self.lock:
            rec = self.backups[bid]
            obj = rec["obj"]
            if phase == "starting" and obj["phase"] == "initializing":
                for d in rec["disks"]:
                    self.set_disk_status(self.top["disks"][d], "locked")
            elif phase == "ready" and obj["phase"] == "starting":
                cps = self.checkpoints.setdefault(rec["vm"], [])
                cp = {"id": rec["checkpoint"], "creation_date": now_ms(), "state": "created",
                      "vm": {"id": rec["vm"]}}
                if cps:
                    cp["parent_id"] = cps[-1]["id"]
                cps.append(cp)
                self.checkpoint_disks[cp["id"]] = list(rec["disks"])
                obj["to_checkpoint_id"] = cp["id"]
            elif phase == "succeeded" and obj["phase"] == "finalizing":
                for d in rec["disks"]:
                    if self.disk_locks.get(d) == "backup:" + bid:
                        del self.disk_locks[d]
                    self.set_disk_status(self.top["disks"][d], "ok")
                vm = self.top["vms"][rec["vm"]]
                self.event("VM_BACKUP_SUCCEEDED", "Backup %s for VM %s completed successfully "
                           "(User: %s)." % (bid, vm["name"], rec.get("finalized_by")),
                           **self.vm_event_refs(vm))
            else:
                return
            obj["phase"] = phase
            obj["modification_date"] = now_ms()

    def finalize_backup(self, vm_id, bid, user):
        rec = self.backups.get(bid)
        if not rec or rec["vm"] != vm_id:
            raise not_found(bid)
        if rec["obj"]["phase"] in ("starting", "ready"):
            self.sd_stop_backup(rec)   # libvirt ends the backup job: exports go (QMP error: 500)
            rec["obj"]["phase"] = "finalizing"
            rec["finalized_by"] = user
            vm = self.top["vms"][vm_id]
            self.event("VM_BACKUP_FINALIZED", "Backup %s for VM %s finalized (User: %s)." % (
                bid, vm["name"], user), **self.vm_event_refs(vm))
            self.later(self.transfer_delay, self.backup_phase, bid, "succeeded")

    # ------------------------------------------------------------------ checkpoints
    def remove_checkpoint(self, vm_id, cid, user):
        """DeleteVmCheckpointCommand (engine 4.5): any checkpoint of the chain may go; its child
        takes its parent. `checkpoint_removal: root_only` models the early 4.4 rule instead."""
        vm = self.parent("vms", vm_id)
        cps = self.checkpoints.get(vm_id, [])
        cp = next((c for c in cps if c["id"] == cid), None)
        if cp is None:
            raise not_found(cid)       # the REST resource's get() comes first
        if self.checkpoint_removal == "root_only" and cp.get("parent_id"):
            raise op_failed(MSG_NON_ROOT.format(c=cid))
        if self.vm_during_backup(vm_id):
            raise op_failed(MSG_DURING_BACKUP.format(a="remove", t="Checkpoint"))
        disks = [self.top["disks"][d] for d in self.checkpoint_disks.get(cid, []) if d in self.top["disks"]]
        bad = [d for d in disks if d.get("status") == "locked"]
        if bad:
            raise op_failed(MSG_DISKS_LOCKED.format(a="remove", t="Checkpoint", d=", ".join(
                x.get("alias", x["id"]) for x in bad)))
        if self.sd:
            try:
                for d in disks:
                    if d["id"] in self.sd.nodes:
                        self.sd.qmp.call("block-dirty-bitmap-remove", node=self.sd.nodes[d["id"]],
                                         name=cid)
            except QmpError:
                self.event("VM_CHECKPOINT_FAILED_TO_DELETE", "Failed to delete checkpoint %s for "
                           "VM %s (User: %s)." % (cid, vm["name"], user), **self.vm_event_refs(vm))
                raise
        for c in cps:                  # updateCheckpointsChainInDb()
            if c.get("parent_id") == cid:
                if cp.get("parent_id"):
                    c["parent_id"] = cp["parent_id"]
                else:
                    c.pop("parent_id", None)
        cps.remove(cp)
        self.checkpoint_disks.pop(cid, None)
        self.event("VM_CHECKPOINT_DELETED", "Checkpoint %s for VM %s deleted (User: %s)." % (
            cid, vm["name"], user), **self.vm_event_refs(vm))

    def checkpoint_disk_list(self, vm_id, cid):
        self.parent("vms", vm_id)
        if cid not in [c["id"] for c in self.checkpoints.get(vm_id, [])]:
            raise not_found(cid)
        return "disk", [self.render("disks", self.top["disks"][d], {}, "%s/disks/%s" % (API, d))
                        for d in self.checkpoint_disks.get(cid, []) if d in self.top["disks"]]

    # ------------------------------------------------------------------ storage daemon
    def sd_add_export(self, export, disk_id, owner, bitmap=None):
        node = self.sd.nodes[disk_id]
        self.sd.add_export(export, node, bitmap)
        with self.lock:
            self.sd_exports[export] = {"id": export, "node": node, "disk": disk_id, "owner": owner,
                                       "bitmap": bitmap}

    def sd_del_export(self, export):
        self.sd.del_export(export)
        with self.lock:
            self.sd_exports.pop(export, None)

    def sd_start_backup(self, bid, cp_id, from_cp, disks, modes):
        """What libvirt's backup-begin does, minus fleecing: in one transaction each disk's node
        gets the new checkpoint's bitmap (recording from now on) and, for an incremental disk, a
        disabled copy of the from-checkpoint's bitmap (frozen now; QEMU refuses to export an
        enabled bitmap read-only); then one read-only export per disk, with that copy."""
        temp = "backup-" + bid if any(modes[d] == "incremental" for d in disks) else None
        actions = []
        for d in disks:
            node = self.sd.nodes[d]
            actions.append({"type": "block-dirty-bitmap-add",
                            "data": {"node": node, "name": cp_id, "persistent": False}})
            if modes[d] == "incremental":
                actions.append({"type": "block-dirty-bitmap-add", "data": {
                    "node": node, "name": temp, "persistent": False, "disabled": True}})
                actions.append({"type": "block-dirty-bitmap-merge", "data": {
                    "node": node, "target": temp, "bitmaps": [from_cp]}})
        self.sd.qmp.call("transaction", actions=actions)
        exports = {}
        try:
            for d in disks:
                name = "backup-%s-%s" % (bid, self.sd.nodes[d])
                self.sd_add_export(name, d, "backup:" + bid,
                                   temp if modes[d] == "incremental" else None)
                exports[d] = name
        except QmpError:               # undo what was done, best effort, then answer 500
            for name in exports.values():
                self.safely(self.sd_del_export, name)
            for d in disks:
                for bm in (cp_id, temp if modes[d] == "incremental" else None):
                    if bm:
                        self.safely(self.sd.qmp.call, "block-dirty-bitmap-remove",
                                    node=self.sd.nodes[d], name=bm)
            raise
        return exports, temp

    def sd_stop_backup(self, rec):
        for d, name in list(rec.get("exports", {}).items()):
            if name in self.sd_exports:
                self.sd_del_export(name)
        if rec.get("temp_bitmap"):
            for d in rec["exports"]:
                if rec["modes"][d] == "incremental":
                    try:
                        self.sd.qmp.call("block-dirty-bitmap-remove", node=self.sd.nodes[d],
                                         name=rec["temp_bitmap"])
                    except QmpError as e:
                        if "not found" not in str(e):
                            raise
            rec["temp_bitmap"] = None

    def sim_qmp(self, body):
        """POST /sim/qmp {"execute", "arguments"}: a QMP command for the test, over the stand-in's
        connection (a QSD monitor serves one client at a time, and the stand-in holds it)."""
        if not self.sd:
            raise not_found("storage_daemon")
        try:
            return {"return": self.sd.qmp.call(body["execute"], **body.get("arguments", {}))}
        except QmpError as e:
            return {"error": str(e)}

    def sd_state(self):
        """The daemon's side of /sim/state, asked over QMP (outside the engine lock)."""
        if not self.sd:
            return None
        with self.lock:
            ours = [dict(e) for e in self.sd_exports.values()]
        out = {"nodes": dict(self.sd.nodes), "qmp_socket": self.sd.qmp.path,
               "nbd_socket": self.sd.nbd_socket, "exports": ours}
        try:
            bitmaps = self.sd.bitmaps()
            out["bitmaps"] = {d: [{"name": b.get("name"), "recording": b.get("recording"),
                                   "busy": b.get("busy"), "persistent": b.get("persistent"),
                                   "count": b.get("count"), "granularity": b.get("granularity")}
                                  for b in bitmaps.get(n, [])] for d, n in self.sd.nodes.items()}
            out["qmp_exports"] = self.sd.exports()
        except QmpError as e:
            out["error"] = str(e)
        return out

    # ------------------------------------------------------------------ test hooks
    def disk_mode(self, disk_id):
        return "storage_daemon" if self.sd and disk_id in self.sd.nodes else "backends"

    def state(self):
        sd = self.sd_state()            # QMP first, without holding the engine lock
        with self.lock:
            return self.model_state(sd)

    def model_state(self, sd):
        return {
            "transfers": [{"id": t, "phase": r["obj"]["phase"], "disk": r["disk"], "ticket": r["ticket"],
                           "backup": r["backup"], "dirty": r["dirty"], "backend": r["backend"],
                           "export": r.get("export"),
                           "inactivity_timeout": int(r["obj"]["inactivity_timeout"]),
                           "transferred": int(r["obj"]["transferred"]), "removed": r["removed"],
                           "phases": list(r["history"])} for t, r in self.transfers.items()],
            "backups": [dict(copy.deepcopy(b["obj"]), disks=b["disks"], modes=dict(b["modes"]),
                             exports=dict(b["exports"]), temp_bitmap=b["temp_bitmap"])
                        for b in self.backups.values()],
            "checkpoints": copy.deepcopy(self.checkpoints),
            "checkpoint_disks": copy.deepcopy(self.checkpoint_disks),
            "checkpoint_removal": self.checkpoint_removal,
            "vms": [{"id": v["id"], "status": v.get("status")} for v in self.top["vms"].values()],
            "disks": [{"id": d["id"], "status": d.get("status"), "mode": self.disk_mode(d["id"])}
                      for d in self.top["disks"].values()],
            "storage_daemon": sd,
            "disk_locks": dict(self.disk_locks),
            "tokens": sum(1 for t in list(self.tokens) if self.token_valid(t)),
            "events": len(self.events),
            "backup_backends": sorted(self.backup_backends),
            "requests": list(self.requests),
        }

    def hook(self, method, parts, body):
        if method == "GET" and parts == ["state"]:
            return self.state()
        if method != "POST":
            raise not_found("/sim/" + "/".join(parts))
        if parts == ["fault"]:
            self.faults.append(dict(body, times=int(body.get("times", 1))))
        elif len(parts) == 2 and parts[0] == "vms":
            vm = self.parent("vms", parts[1])
            old = vm.get("status")
            if body.get("host"):
                self.vm_hosts[vm["id"]] = body["host"]
            vm.update(copy.deepcopy(body))
            if body.get("status") and body["status"] != old:
                self.bump(vm["id"])
                if body["status"] == "down":
                    refs = self.vm_event_refs(vm)
                    self.set_vm_status(vm, "down")
                    self.event("VM_DOWN", "VM %s is down. Exit message: User shut down from within "
                               "the guest" % vm["name"], **refs)
                else:
                    if body["status"] in RUNNING and not vm.get("host"):
                        vm["host"] = copy.deepcopy(self.vm_hosts.get(vm["id"])) or self.any_up_host()
                    if body["status"] == "up":
                        self.event("USER_RUN_VM", "VM %s started on Host %s" % (
                            vm["name"], self.host_name(vm.get("host"))), **self.vm_event_refs(vm))
                    else:
                        self.event("USER_UPDATE_VM", "VM %s configuration was updated by system."
                                   % vm["name"], **self.vm_event_refs(vm))
            else:
                self.event("USER_UPDATE_VM", "VM %s configuration was updated by admin@internal."
                           % vm["name"], **self.vm_event_refs(vm))
        elif len(parts) == 2 and parts[0] == "disks":
            disk = self.parent("disks", parts[1])
            disk.update(copy.deepcopy(body))
            vms = self.vms_using_disk(disk["id"], non_down=False)
            alias = disk.get("alias", disk["id"])
            if vms:
                self.event("USER_UPDATE_VM_DISK", "VM %s %s disk was updated by admin@internal." % (
                    vms[0]["name"], alias), **self.vm_event_refs(vms[0]))
            else:
                self.event("USER_UPDATE_DISK", "Disk %s was updated by admin@internal." % alias,
                           storage_domain=self.disk_sd(disk))
        elif len(parts) == 2 and parts[0] == "expire-transfer":
            rec = self.transfers.get(parts[1])
            if rec is None:
                raise not_found(parts[1])
            if rec["obj"]["phase"] == "transferring":
                self.inactivity_hit(parts[1])
        else:
            raise not_found("/sim/" + "/".join(parts))
        return {"ok": True}

    # ------------------------------------------------------------------ API dispatch
    def api(self, method, parts, q, body, user):
        """Returns (status, element name, payload, kind) with kind in one/list/action."""
        n = len(parts)
        if n == 0 and method == "GET":
            return 200, "api", self.api_root(), "one"
        coll = parts[0]
        if coll not in COLLECTIONS:
            raise not_found(coll)
        if n == 1 and method == "GET":
            elem, items = self.list_collection(coll, q)
            return 200, elem, items, "list"
        if n == 1 and method == "POST" and coll == "imagetransfers":
            return 201, "image_transfer", self.create_transfer(body, user), "one"
        if n == 2 and method == "GET":
            return 200, COLLECTIONS[coll], self.get_one(coll, parts[1], q), "one"
        if n == 3 and method == "POST" and coll == "vms" and parts[2] in ("shutdown", "stop", "start"):
            self.vm_action(parts[1], parts[2], user)
            return 200, "action", {"status": "complete"}, "action"
        if n == 3 and method == "POST" and coll == "vms" and parts[2] == "backups":
            return 201, "backup", self.create_backup(parts[1], body, user), "one"
        if n == 3 and method == "POST" and coll == "imagetransfers":
            self.transfer_action(parts[1], parts[2], user)
            return 200, "action", {"status": "complete"}, "action"
        if n == 3 and method == "GET":
            elem, items = self.list_sub(coll, parts[1], parts[2], q)
            return 200, elem, items, "list"
        if n == 4 and method == "GET":
            elem, item = self.get_sub(coll, parts[1], parts[2], parts[3], q)
            return 200, elem, item, "one"
        if n == 4 and method == "DELETE" and coll == "vms" and parts[2] == "checkpoints":
            self.remove_checkpoint(parts[1], parts[3], user)
            return 200, None, None, "empty"
        if n == 5 and coll == "vms" and parts[2] == "checkpoints" and method == "GET" \
                and parts[4] == "disks":
            elem, items = self.checkpoint_disk_list(parts[1], parts[3])
            return 200, elem, items, "list"
        if n == 5 and coll == "vms" and parts[2] == "backups":
            if method == "POST" and parts[4] == "finalize":
                self.finalize_backup(parts[1], parts[3], user)
                return 200, "action", {"status": "complete"}, "action"
            if method == "GET" and parts[4] == "disks":
                elem, items = self.backup_disks(parts[1], parts[3])
                return 200, elem, items, "list"
        raise not_found("/".join(parts))


# --------------------------------------------------------------------------- HTTP front end
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine = None          # set by main()
    log_file = None

    def log_message(self, fmt, *args):  # the one-line request log is written in reply()
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def reply(self, status, body, ctype, headers=None):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        line = "%s %s %d" % (self.command, self.path, status)
        print(line, file=sys.stderr, flush=True)
        if self.log_file:
            with open(self.log_file, "a") as f:
                f.write(line + "\n")
        with self.engine.lock:
            self.engine.requests.append({"method": self.command, "path": self.path, "status": status})
            del self.engine.requests[:-5000]

    def wants_json(self):
        return "json" in (self.headers.get("Accept") or "").lower()

    def send_obj(self, status, elem, payload, kind, headers=None):
        if kind == "empty":           # a successful remove: 200, no body
            self.reply(status, b"", "application/json" if self.wants_json() else "application/xml",
                       headers)
        elif self.wants_json():
            data = {elem: payload} if kind == "list" else payload
            self.reply(status, json.dumps(json_prune(data), indent=2), "application/json", headers)
        else:
            xml = to_xml(elem + "s", {elem: payload}) if kind == "list" else to_xml(elem, payload)
            self.reply(status, xml, "application/xml", headers)

    def send_fault(self, err):
        fault = {"reason": err.reason, "detail": err.detail}
        self.send_obj(err.status, "fault", fault, "one")

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return raw

    def parse_body(self, raw):
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return {}
        ctype = (self.headers.get("Content-Type") or "").lower()
        if "json" in ctype or text.startswith("{"):
            body = json.loads(text)
        else:
            body = from_xml(ET.fromstring(text))
        return body if isinstance(body, dict) else {}

    def dispatch(self, method):
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path).rstrip("/")
        q = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        raw = self.read_body()
        try:
            if path == "/sim/state" and method == "GET":
                self.reply(200, json.dumps(self.engine.state(), indent=2), "application/json")
            elif path == "/sim/qmp" and method == "POST":
                self.reply(200, json.dumps(self.engine.sim_qmp(json.loads(raw or b"{}")), indent=2),
                           "application/json")
            elif path.startswith("/sim/") or path == "/sim":
                body = json.loads(raw or b"{}")
                with self.engine.lock:
                    out = self.engine.hook(method, path.split("/")[2:], body)
                self.reply(200, json.dumps(out, indent=2), "application/json")
            elif path == "/ovirt-engine/services/pki-resource" and method == "GET":
                self.reply(200, self.engine.ca_pem, "application/x-x509-ca-cert")
            elif path == "/ovirt-engine/sso/oauth/token" and method == "POST":
                self.sso_token(raw, q)
            elif path == "/ovirt-engine/services/sso-logout":
                self.sso_logout(raw, q)
            elif path == API or path.startswith(API + "/"):
                self.api(method, path, q, raw)
            else:
                self.reply(404, "Not Found", "text/plain")
        except ApiError as e:
            self.send_fault(e)
        except QmpError as e:   # the daemon refused: the engine's answer to a failed host command
            print("engine-sim: %s %s: %s" % (method, self.path, e), file=sys.stderr)
            self.send_fault(ApiError(500, "Operation Failed", "[qemu-storage-daemon: %s]" % e))
        except (ValueError, ET.ParseError) as e:
            self.send_fault(ApiError(400, "Bad Request", "Invalid request body: %s" % e))
        except Exception as e:  # a stand-in bug: answer 500 rather than drop the connection
            import traceback
            traceback.print_exc()
            self.send_fault(ApiError(500, "Internal Server Error", repr(e)))

    def form(self, raw, q):
        params = dict(q)
        params.update({k: v[-1] for k, v in urllib.parse.parse_qs(raw.decode()).items()})
        return params

    def sso_token(self, raw, q):
        p = self.form(raw, q)
        if p.get("grant_type") != "password":
            self.reply(400, json.dumps({"error_code": "unsupported_grant_type",
                                        "error": "Unsupported grant type"}), "application/json")
            return
        user = p.get("username", "")
        tok = self.engine.issue_token(user, p.get("password"))
        if tok is None:
            # SsoUtils.sendJsonDataWithMessage(): REST API scope -> {error_code, error}.
            self.reply(400, json.dumps({
                "error_code": "access_denied",
                "error": "Cannot authenticate user '%s': The username or password is incorrect.."
                         % user}), "application/json")
            return
        exp = int((time.time() + self.engine.token_lifetime) * 1000)
        self.reply(200, json.dumps({"access_token": tok, "scope": p.get("scope", "ovirt-app-api"),
                                    "exp": str(exp), "token_type": "bearer"}), "application/json")

    def sso_logout(self, raw, q):
        tok = self.form(raw, q).get("token")
        with self.engine.lock:
            self.engine.tokens.pop(tok, None)
        self.reply(200, "{}", "application/json")

    def authenticate(self):
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Bearer "):
            return "admin@internal" if self.engine.token_valid(auth[7:].strip()) else None
        if auth.startswith("Basic "):
            try:
                user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return None
            return user if self.engine.users.get(user) == pw else None
        return None

    def api(self, method, path, q, raw):
        user = self.authenticate()
        if user is None:
            # The engine (its auth filter) answers 401 with an HTML page, not a fault.
            self.reply(401, "<html><head><title>Error</title></head><body>Unauthorized</body></html>",
                       "text/html;charset=utf-8", {"WWW-Authenticate": 'Bearer realm="RESTAPI"'})
            return
        parts = [p for p in path[len(API):].split("/") if p]
        body = self.parse_body(raw) if method in ("POST", "PUT") else {}
        with self.engine.lock:
            status, elem, payload, kind = self.engine.api(method, parts, q, body, user)
        headers = {}
        if status == 201 and isinstance(payload, dict) and payload.get("href"):
            headers["Location"] = "https://%s%s" % (self.headers.get("Host", "localhost"), payload["href"])
        self.send_obj(status, elem, payload, kind, headers)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--listen", default="127.0.0.1")
    ap.add_argument("--log")
    args = ap.parse_args()

    with open(args.config) as f:
        cfg = json.load(f)
    with open(args.ca) as f:
        ca_pem = f.read()
    engine = Engine(cfg, ca_pem)
    Handler.engine, Handler.log_file = engine, args.log

    server = ThreadingHTTPServer((args.listen, 0), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)

    stop = threading.Event()
    threading.Thread(target=engine.run_timers, args=(stop,), daemon=True).start()

    def on_term(signum, frame):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    print("engine-sim listening on https://%s:%d%s" % (args.listen, server.server_address[1], API),
          file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    with engine.lock:    # best effort: leave no tickets behind in the daemon
        tickets = [r["ticket"] for r in engine.transfers.values() if r["ticket"]]
    for t in tickets:
        try:
            engine.imageio.call("DELETE", t, timeout=5)
        except OSError:
            pass
    if engine.sd:        # and no exports of ours in the storage daemon (bitmaps stay)
        with engine.lock:
            exports = list(engine.sd_exports)
        for e in exports:
            try:
                engine.sd_del_export(e)
            except QmpError as err:
                print("engine-sim: removing export %s: %s" % (e, err), file=sys.stderr)
    try:
        os.unlink(args.port_file)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
