#include "coordinator/providers/ovirt/ovirt_provider.h"

#include <algorithm>
#include <optional>
#include <regex>
#include <thread>

#include "common/base/log.h"

#include "coordinator/providers/login.h"
#include "coordinator/providers/ovirt/inventory.h"

namespace ferry::coordinator::ovirt {
namespace {

const Logger kLog("ovirt");

using Clock = std::chrono::steady_clock;
constexpr std::chrono::minutes kFullRead{10};

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// Image transfer phases after which the engine does nothing more with it
// (4.4.7+: a cancelled transfer goes on through cleanup to finished_failure).
bool transfer_over(const std::string& phase) { return starts_with(phase, "finished_"); }

// The engine's answers while another operation holds the disk (its
// ACTION_TYPE_FAILED_DISK_IS_LOCKED and ..._DISKS_LOCKED texts).
bool disk_locked(const std::string& fault) {
  return fault.find("Disk is locked") != std::string::npos ||
         fault.find("disks are locked") != std::string::npos;
}

// scheme://HOST:port/... with HOST replaced (the Host resource's migration
// network address for the VM's host).
std::string with_host(const std::string& url, const std::string& host) {
  static const std::regex re(R"(^(https?://)([^/:]+|\[[^\]]+\])(.*)$)");
  std::smatch m;
  if (host.empty() || !std::regex_match(url, m, re)) return url;
  std::string h =
      host.find(':') != std::string::npos && host.front() != '[' ? "[" + host + "]" : host;
  return m[1].str() + h + m[3].str();
}

}  // namespace

OvirtProvider::OvirtProvider(std::string provider_name, std::string secret_name, std::string url,
                             std::string user, std::string password, EngineTls tls)
    : provider_name_(std::move(provider_name)),
      secret_name_(std::move(secret_name)),
      url_(std::move(url)),
      user_(std::move(user)),
      password_(std::move(password)),
      tls_(tls),
      client_(url_, tls) {}

OvirtProvider::~OvirtProvider() { client_.logout(); }

Result<std::unique_ptr<SourceProvider>> OvirtProvider::create(const model::Resource& provider,
                                                              const Json& secret) {
  auto key = provider.key();
  std::string url = provider.spec().value("url", "");
  static const std::regex api(R"(^https://[^/]+/ovirt-engine/api/?$)");
  if (!std::regex_match(url, api))
    return Error(ErrorCode::kInvalidArgument,
                 key.to_string() + ": spec.url: \"" + url +
                     "\" is not an oVirt engine API URL (https://ENGINE/ovirt-engine/api)");
  auto login = read_login(provider, secret);
  if (!login.ok()) return login.error();
  EngineTls tls;
  tls.ca_pem = model::secret_value(secret, "cacert");
  tls.insecure_skip_verify = login->insecure_skip_verify;
  if (!tls.ca_pem.empty() && tls.ca_pem.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
    return Error(ErrorCode::kInvalidArgument,
                 login->secret_name +
                     ": cacert: is not a PEM certificate (the engine's CA, from "
                     "/ovirt-engine/services/pki-resource?resource=ca-certificate&"
                     "format=X509-PEM-CA)");
  return std::unique_ptr<SourceProvider>(new OvirtProvider(key.to_string(), login->secret_name, url,
                                                           login->user, login->password, tls));
}

Error OvirtProvider::explain(const Error& e) const {
  if (e.code == ErrorCode::kPermissionDenied) {
    bool cert = e.message.find("certificate") != std::string::npos;
    return Error(e.code, secret_name_ + ": " + (cert ? "cacert" : "user/password") + ": " +
                             e.message + " (used by " + provider_name_ + ")");
  }
  return Error(e.code, provider_name_ + ": spec.url: " + e.message);
}

Error OvirtProvider::failed(const std::string& what, const EngineReply& r) const {
  ErrorCode code = r.code == 404   ? ErrorCode::kNotFound
                   : r.code == 409 ? ErrorCode::kFailedPrecondition
                   : r.code >= 500 ? ErrorCode::kUnavailable
                                   : ErrorCode::kInvalidArgument;
  return Error(code, provider_name_ + ": " + what + ": " + r.fault());
}

Status OvirtProvider::ensure_session() {
  if (client_.logged_in()) return {};
  Status s = client_.login(user_, password_);
  if (!s.ok()) return explain(s.error());
  return {};
}

Status OvirtProvider::test_connection() {
  client_.logout();
  FERRY_TRY(ensure_session());
  auto r = client_.get("");
  if (!r.ok()) return explain(r.error());
  if (!r->ok()) return failed("GET " + url_, *r);
  return {};
}

Result<Json> OvirtProvider::get_json(const std::string& path) {
  for (int attempt = 0; attempt < 2; attempt++) {
    FERRY_TRY(ensure_session());
    auto r = client_.get(path);
    if (!r.ok()) return explain(r.error());
    if (r->code == 401) continue;  // the token expired: log in once more
    if (!r->ok()) return failed("GET " + path, *r);
    return std::move(r->body);
  }
  return Error(ErrorCode::kPermissionDenied,
               secret_name_ + ": user/password: the engine refused a fresh token for GET " + path);
}

Result<EngineReply> OvirtProvider::post(const std::string& path, const Json& body) {
  return send("POST", path, &body);
}

Result<EngineReply> OvirtProvider::send(const char* method, const std::string& path,
                                        const Json* body) {
  for (int attempt = 0; attempt < 2; attempt++) {
    FERRY_TRY(ensure_session());
    auto r = body ? client_.post(path, *body) : client_.del(path);
    if (!r.ok()) return explain(r.error());
    if (r->code == 401) continue;  // the token expired: log in once more
    return r;
  }
  return Error(ErrorCode::kPermissionDenied, secret_name_ +
                                                 ": user/password: the engine refused a fresh "
                                                 "token for " +
                                                 method + " " + path);
}

Result<Inventory> OvirtProvider::load_inventory() {
  // Nothing happened since the last read: the engine logs every change of a
  // VM, disk or host as an event (Forklift's inventory polls them likewise).
  // Some changes raise no event (free space, guest IPs): a full read at
  // least every kFullReadSeconds.
  if (cached_ && !last_event_.empty() && Clock::now() - read_at_ < kFullRead) {
    auto ev = get_json("/events?from=" + last_event_);
    if (!ev.ok()) return ev.error();
    if (items(*ev, "event").empty()) return *cached_;
  }
  // The newest event before the reads: whatever comes later is seen next time.
  auto latest = get_json("/events?max=1");
  if (!latest.ok()) return latest.error();
  std::string newest;
  for (const auto& e : items(*latest, "event")) newest = as_str(field(e, "id"));
  EngineCollections c;
  struct Read {
    Json* into;
    const char* path;
  };
  const Read reads[] = {
      {&c.datacenters, "/datacenters"},
      {&c.clusters, "/clusters"},
      {&c.hosts, "/hosts?follow=network_attachments,nics"},
      {&c.networks, "/networks?follow=vnic_profiles"},
      {&c.vnicprofiles, "/vnicprofiles"},
      {&c.storagedomains, "/storagedomains"},
      {&c.vms, "/vms?follow=disk_attachments,nics,cdroms,snapshots,watchdogs,host_devices"},
      {&c.disks, "/disks"},
  };
  for (const auto& r : reads) {
    auto j = get_json(r.path);
    if (!j.ok()) return j.error();
    *r.into = std::move(*j);
  }
  auto inv = std::make_shared<const Inventory>(to_inventory(c));
  cached_ = inv;
  read_at_ = Clock::now();
  last_event_ = newest.empty() ? "0" : newest;
  return *inv;
}

Result<std::string> OvirtProvider::vm_status(const std::string& vm_id) {
  auto vm = get_json("/vms/" + url_escape(vm_id));
  if (!vm.ok()) return vm.error();
  return as_str(field(*vm, "status"));
}

Result<bool> OvirtProvider::is_powered_on(const std::string& vm_id) {
  auto s = vm_status(vm_id);
  if (!s.ok()) return s.error();
  return *s != "down";
}

Status OvirtProvider::wait_down(const std::string& vm_id, std::chrono::seconds limit, bool* down) {
  auto until = Clock::now() + limit;
  while (true) {
    auto s = vm_status(vm_id);
    if (!s.ok()) return s.error();
    if (*s == "down") {
      *down = true;
      return {};
    }
    if (Clock::now() >= until) return {};
    std::this_thread::sleep_for(waits_.poll);
  }
}

Status OvirtProvider::power_off(const std::string& vm_id) {
  bool down = false;
  FERRY_TRY(wait_down(vm_id, std::chrono::seconds(0), &down));
  if (down) return {};
  // A guest shutdown first, as MTV does; a guest that ignores it is stopped.
  for (const char* action : {"shutdown", "stop"}) {
    auto r = post("/vms/" + url_escape(vm_id) + "/" + action, Json::object());
    if (!r.ok()) return r.error();
    if (!r->ok()) {
      FERRY_TRY(wait_down(vm_id, std::chrono::seconds(0), &down));
      if (down) return {};  // it went down meanwhile
      // A guest that cannot take a shutdown now (paused, suspended) is stopped.
      if (action[1] == 'h') continue;
      return failed(std::string("VM ") + vm_id + ": " + action, *r);
    }
    FERRY_TRY(wait_down(vm_id, action[1] == 'h' ? waits_.shutdown : waits_.stop, &down));
    if (down) return {};
  }
  return Error(ErrorCode::kTimeout,
               provider_name_ + ": VM " + vm_id + " did not power off (shutdown, then stop)");
}

Status OvirtProvider::power_on(const std::string& vm_id) {
  auto r = post("/vms/" + url_escape(vm_id) + "/start", Json::object());
  if (!r.ok()) return r.error();
  if (!r->ok()) return failed("VM " + vm_id + ": start", *r);
  return {};
}

Status OvirtProvider::disk_source(const Json&, const Json& disk, const std::string&,
                                  ferry::v1::TransferTask& task) {
  if (disk.value("id", "").empty())
    return Error(ErrorCode::kInvalidArgument,
                 provider_name_ + ": disk " + disk.value("file", "") + " has no engine id");
  // The URL comes with the claim: it is an image transfer's ticket, opened then.
  auto* http = task.mutable_http();
  http->set_imageio(true);
  http->set_source_id(url_ + "/disks/" + disk.value("id", ""));
  http->set_ca_pem(tls_.ca_pem);
  http->set_insecure_skip_verify(tls_.insecure_skip_verify);
  return {};
}

Result<SourceAccess> OvirtProvider::source_access(const SourceRequest& req) {
  std::string disk_id = req.disk.is_object() ? req.disk.value("id", "") : "";
  if (disk_id.empty())
    return Error(ErrorCode::kInvalidArgument,
                 provider_name_ +
                     ": a task reading every disk of a VM at once is not supported "
                     "for oVirt (each disk is its own image transfer)");
  if (!req.previous.empty()) {
    // The engine ends an abandoned transfer itself (inactivity); a failed
    // cancel must not stop the copy that replaces it.
    Status closed = close_source(req.previous, false);
    if (!closed.ok())
      kLog.warn("cancelling the previous image transfer failed",
                {{"transfer", req.previous}, {"error", closed.error().message}});
  }
  return open_transfer(req);
}

Result<SourceAccess> OvirtProvider::open_transfer(const SourceRequest& req) {
  std::string disk_id = req.disk.value("id", "");
  std::string what = "disk " + req.disk.value("file", disk_id) + " of VM \"" +
                     req.vm.value("name", "") + "\": image transfer";
  Json body = {{"disk", {{"id", disk_id}}},
               {"direction", "download"},
               {"format", "raw"},
               {"inactivity_timeout", std::to_string(waits_.inactivity_timeout_seconds)}};
  // A precopy reads the disk as its backup holds it (for an incremental
  // backup, the ticket also has the dirty extents).
  if (!req.snapshot.empty()) body["backup"] = {{"id", req.snapshot}};
  // The engine locks a disk while a snapshot, another transfer or a move
  // holds it: retried for a while, as CDI does.
  auto until = Clock::now() + waits_.disk_locked;
  Json transfer;
  while (true) {
    auto r = post("/imagetransfers", body);
    if (!r.ok()) return r.error();
    if (r->ok()) {
      transfer = std::move(r->body);
      break;
    }
    if (!disk_locked(r->fault()) || Clock::now() >= until) return failed(what, *r);
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  std::string id = as_str(field(transfer, "id"));
  if (id.empty())
    return Error(ErrorCode::kUnavailable, provider_name_ + ": " + what + ": no id in the answer");
  // Until the host's imageio has the ticket, the transfer is "initializing".
  auto ready_by = Clock::now() + waits_.transfer;
  while (true) {
    std::string phase = as_str(field(transfer, "phase"));
    if (phase == "transferring") break;
    if (transfer_over(phase) || starts_with(phase, "finalizing") || starts_with(phase, "paused") ||
        Clock::now() >= ready_by) {
      (void)close_source(id, false);
      return Error(
          ErrorCode::kUnavailable,
          provider_name_ + ": " + what + " " + id + " is " + phase +
              (Clock::now() >= ready_by ? " after " + std::to_string(waits_.transfer.count()) + " s"
                                        : ""));
    }
    std::this_thread::sleep_for(waits_.poll);
    auto t = get_json("/imagetransfers/" + url_escape(id));
    if (!t.ok()) {
      (void)close_source(id, false);
      return t.error();
    }
    transfer = std::move(*t);
  }
  std::string url = as_str(field(transfer, "transfer_url"));
  if (url.empty()) url = as_str(field(transfer, "proxy_url"));
  if (url.empty()) {
    (void)close_source(id, false);
    return Error(ErrorCode::kUnavailable, provider_name_ + ": " + what + " " + id +
                                              " has neither transfer_url nor proxy_url");
  }
  // The engine picks the host that serves the transfer: read from that host
  // over its migration network when a Host resource gives it an address.
  std::string host = as_str(field(field(transfer, "host"), "id"));
  auto addr = req.host_addresses.find(host);
  std::string over = addr != req.host_addresses.end() ? addr->second
                     : host.empty()                   ? req.host_address
                                                      : "";
  return SourceAccess{.headers = {}, .url = with_host(url, over), .handle = id};
}

Status OvirtProvider::close_source(const std::string& handle, bool completed) {
  std::string path = "/imagetransfers/" + url_escape(handle);
  auto until = Clock::now() + waits_.close;
  bool asked = false, cancelled = false;
  while (true) {
    auto t = get_json(path);
    if (!t.ok()) {
      if (t.error().code == ErrorCode::kNotFound) return {};  // the engine removed it: over
      return t.error();
    }
    std::string phase = as_str(field(*t, "phase"));
    if (phase == "finished_success") return {};
    if (transfer_over(phase)) {
      if (completed && asked && !cancelled)
        return Error(ErrorCode::kUnavailable,
                     provider_name_ + ": image transfer " + handle + " ended " + phase);
      return {};
    }
    // Finalize only what was read to the end; anything else is cancelled,
    // and so is a finalize the engine paused (its failure to finalize).
    const char* action = nullptr;
    if (!asked && !starts_with(phase, "finalizing") && !starts_with(phase, "cancelled"))
      action = completed && phase == "transferring" ? "finalize" : "cancel";
    else if (asked && !cancelled && starts_with(phase, "paused"))
      action = "cancel";
    if (action) {
      auto r = post(path + "/" + action, Json::object());
      if (!r.ok()) return r.error();
      if (r->code == 404) return {};
      if (!r->ok()) return failed(std::string("image transfer ") + handle + ": " + action, *r);
      asked = true;
      cancelled = action[0] == 'c';
    }
    if (Clock::now() >= until) {
      // An engine older than 4.4.7 leaves a cancelled transfer as it is.
      if (starts_with(phase, "cancelled")) return {};
      return Error(ErrorCode::kTimeout, provider_name_ + ": image transfer " + handle + " still " +
                                            phase + " after " +
                                            std::to_string(waits_.close.count()) + " s");
    }
    std::this_thread::sleep_for(waits_.poll);
  }
}

// ---- Warm: incremental backup ----------------------------------------------
// A precopy "snapshot" is a VM backup (POST /vms/{id}/backups), from the last
// copied checkpoint after the first. At `ready` the engine has made a new
// checkpoint (to_checkpoint_id): every disk's change ID. The agent reads each
// disk through an image transfer of the backup: a full backup's disk whole,
// an incremental one's dirty extents only. Finalizing the backup removes it;
// checkpoints no longer a base are deleted with release_change_ids.

namespace {
bool backup_over(const std::string& phase) { return phase == "succeeded" || phase == "failed"; }

std::string backup_path(const std::string& vm_id, const std::string& backup_id) {
  return "/vms/" + url_escape(vm_id) + "/backups/" + url_escape(backup_id);
}
}  // namespace

Result<Json> OvirtProvider::get_backup(const std::string& vm_id, const std::string& backup_id) {
  return get_json(backup_path(vm_id, backup_id));
}

Result<std::string> OvirtProvider::create_snapshot(const std::string& vm_id,
                                                   const std::string& name,
                                                   const std::string& description,
                                                   const std::map<int, std::string>& base) {
  std::string what = "VM " + vm_id + ": backup " + name;
  auto att = get_json("/vms/" + url_escape(vm_id) + "/diskattachments");
  if (!att.ok()) return att.error();
  Json disks = Json::array();
  for (const auto& a : items(*att, "disk_attachment"))
    disks.push_back({{"id", as_str(field(field(a, "disk"), "id"))}});
  if (disks.empty())
    return Error(ErrorCode::kFailedPrecondition, provider_name_ + ": " + what + ": no disks");
  // Every disk's base is the one checkpoint of the last copied backup.
  std::string from;
  for (const auto& [key, cid] : base) from = cid;
  Json body = {{"disks", {{"disk", disks}}}, {"description", name + ": " + description}};
  if (!from.empty()) body["from_checkpoint_id"] = from;
  auto until = Clock::now() + waits_.disk_locked;
  Json backup;
  while (true) {
    auto r = post("/vms/" + url_escape(vm_id) + "/backups", body);
    if (!r.ok()) return r.error();
    if (r->ok()) {
      backup = std::move(r->body);
      break;
    }
    std::string fault = r->fault();
    if (body.contains("from_checkpoint_id") && fault.find("Checkpoint") != std::string::npos &&
        fault.find("does not exist") != std::string::npos) {
      // Someone removed it: a full backup, and changed_areas says the old
      // base is gone, so every disk is copied whole again.
      kLog.warn("base checkpoint gone; taking a full backup",
                {{"vm", vm_id}, {"checkpoint", from}, {"error", fault}});
      body.erase("from_checkpoint_id");
      continue;
    }
    bool busy = disk_locked(fault) || fault.find("during a backup") != std::string::npos;
    if (!busy || Clock::now() >= until) return failed(what, *r);
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  std::string id = as_str(field(backup, "id"));
  if (id.empty())
    return Error(ErrorCode::kUnavailable, provider_name_ + ": " + what + ": no id in the answer");
  auto ready_by = Clock::now() + waits_.transfer;
  while (true) {
    std::string phase = as_str(field(backup, "phase"));
    if (phase == "ready") return id;
    if (backup_over(phase) || phase == "finalizing" || Clock::now() >= ready_by) {
      (void)remove_snapshot(vm_id, id);
      return Error(ErrorCode::kUnavailable, provider_name_ + ": " + what + " (" + id + ") is " +
                                                phase + " instead of ready");
    }
    std::this_thread::sleep_for(waits_.poll);
    auto b = get_backup(vm_id, id);
    if (!b.ok()) {
      (void)remove_snapshot(vm_id, id);
      return b.error();
    }
    backup = std::move(*b);
  }
}

Result<std::map<int, std::string>> OvirtProvider::snapshot_change_ids(
    const std::string& vm_id, const std::string& snapshot_id) {
  auto b = get_backup(vm_id, snapshot_id);
  if (!b.ok()) return b.error();
  std::string cp = as_str(field(*b, "to_checkpoint_id"));
  if (cp.empty())
    return Error(ErrorCode::kUnavailable, provider_name_ + ": VM " + vm_id + ": backup " +
                                              snapshot_id + " has no checkpoint (phase " +
                                              as_str(field(*b, "phase")) + ")");
  auto disks = get_json(backup_path(vm_id, snapshot_id) + "/disks");
  if (!disks.ok()) return disks.error();
  std::map<int, std::string> out;
  for (const auto& d : items(*disks, "disk")) out[disk_key(as_str(field(d, "id")))] = cp;
  return out;
}

Result<std::vector<SnapshotRef>> OvirtProvider::list_snapshots(const std::string& vm_id) {
  auto list = get_json("/vms/" + url_escape(vm_id) + "/backups");
  if (!list.ok()) return list.error();
  std::vector<SnapshotRef> out;
  for (const auto& b : items(*list, "backup"))
    if (!backup_over(as_str(field(b, "phase"))))
      out.push_back({as_str(field(b, "id")), as_str(field(b, "description"))});
  return out;
}

Status OvirtProvider::remove_snapshot(const std::string& vm_id, const std::string& snapshot_id) {
  std::string path = backup_path(vm_id, snapshot_id);
  auto until = Clock::now() + waits_.close;
  bool asked = false;
  while (true) {
    auto b = get_json(path);
    if (!b.ok()) return b.error().code == ErrorCode::kNotFound ? Status{} : b.error();
    std::string phase = as_str(field(*b, "phase"));
    if (backup_over(phase)) return {};
    if (!asked && phase != "finalizing") {
      auto r = post(path + "/finalize", Json::object());
      if (!r.ok()) return r.error();
      if (r->code == 404) return {};
      // Refused while it starts: asked again on the next round.
      asked = r->ok();
    }
    if (Clock::now() >= until)
      return Error(ErrorCode::kTimeout, provider_name_ + ": VM " + vm_id + ": backup " +
                                            snapshot_id + " still " + phase + " after " +
                                            std::to_string(waits_.close.count()) + " s");
    std::this_thread::sleep_for(waits_.poll);
  }
}

Result<ChangedAreas> OvirtProvider::changed_areas(const std::string& vm_id,
                                                  const std::string& snapshot_id, int key,
                                                  uint64_t capacity, const std::string& change_id) {
  ChangedAreas out;
  if (change_id == "*") {  // the whole disk; the agent skips what imageio says is zero
    ferry::v1::ByteRange all;
    all.set_offset(0);
    all.set_length(capacity);
    if (capacity) out.areas.push_back(all);
    return out;
  }
  auto b = get_backup(vm_id, snapshot_id);
  if (!b.ok()) return b.error();
  std::string from = as_str(field(*b, "from_checkpoint_id"));
  if (from != change_id) {
    out.change_id_invalid = true;
    out.detail =
        "the backup started from " + (from.empty() ? "no checkpoint" : "checkpoint " + from);
    return out;
  }
  auto disks = get_json(backup_path(vm_id, snapshot_id) + "/disks");
  if (!disks.ok()) return disks.error();
  for (const auto& d : items(*disks, "disk")) {
    if (disk_key(as_str(field(d, "id"))) != key) continue;
    // backup_mode came with engine 4.5; an older engine backs up every disk
    // of a backup from its from-checkpoint.
    std::string mode = as_str(field(d, "backup_mode"));
    if (mode == "incremental" || mode.empty()) {
      out.source_reports = true;
    } else {
      out.change_id_invalid = true;
      out.detail = "the engine backed the disk up in " + mode + " mode: checkpoint " + change_id +
                   " does not cover it";
    }
    return out;
  }
  return Error(ErrorCode::kNotFound, provider_name_ + ": VM " + vm_id + ": backup " + snapshot_id +
                                         " has no disk with key " + std::to_string(key));
}

Status OvirtProvider::release_change_ids(const std::string& vm_id,
                                         const std::vector<std::string>& change_ids) {
  // Oldest first, in the VM's chain: an early 4.4 engine removes only the
  // root, and each removal makes the next one the root. One refused does not
  // keep the others.
  auto chain = get_json("/vms/" + url_escape(vm_id) + "/checkpoints");
  if (!chain.ok()) return chain.error();
  std::vector<std::string> order;
  for (const auto& c : items(*chain, "checkpoint")) {
    std::string id = as_str(field(c, "id"));
    if (std::find(change_ids.begin(), change_ids.end(), id) != change_ids.end())
      order.push_back(id);
  }
  std::optional<Error> first;
  for (const auto& cid : order) {
    std::string path = "/vms/" + url_escape(vm_id) + "/checkpoints/" + url_escape(cid);
    auto r = send("DELETE", path, nullptr);
    if (!r.ok()) return r.error();
    if (r->ok() || r->code == 404) continue;  // 404: already gone
    if (!first) first = failed("VM " + vm_id + ": removing checkpoint " + cid, *r);
  }
  if (first) return *first;
  return {};
}

}  // namespace ferry::coordinator::ovirt
