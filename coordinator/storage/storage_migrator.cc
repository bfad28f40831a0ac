#include "coordinator/storage/storage_migrator.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <set>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/protocol/credentials.h"
#include "coordinator/storage/json_read.h"
#include "coordinator/storage/mig_resources.h"

namespace ferry::coordinator::storage {

namespace {

const Logger kLog("storage");
constexpr int kMaxAttempts = 3;
constexpr double kServeGraceSeconds = 60;
constexpr double kSettleSeconds = 30;      // after start, before a missing agent means anything
constexpr double kLiveWaitSeconds = 3600;  // for KubeVirt's live storage migration
constexpr const char* kTaskPrefix = "smig.";

std::string random_hex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  if (RAND_bytes(raw.data(), static_cast<int>(raw.size())) != 1) return "";
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// FNV-1a, for stable short name suffixes.
std::string short_hash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  static const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  for (int i = 0; i < 4; i++) {
    out += digits[h % 36];
    h /= 36;
  }
  return out;
}

// MTC's name for the new claim: the old one's name with "-mig-XXXX" (an
// earlier migration's suffix replaced).
std::string target_claim_name(const std::string& pvc, const std::string& plan_uid,
                              const std::string& target_class) {
  std::string base = pvc;
  auto pos = base.rfind("-mig-");
  if (pos != std::string::npos && pos + 9 == base.size()) base = base.substr(0, pos);
  if (base.size() > 53) base = base.substr(0, 53);
  return base + "-mig-" + short_hash(plan_uid + "/" + target_class);
}

bool final_phase(const std::string& p) {
  return p == "Completed" || p == "Failed" || p == "Skipped" || p == "Kept" || p == "Deleted" ||
         p == "Canceled";
}
bool final_vm_phase(const std::string& p) {
  return p == "Completed" || p == "Failed" || p == "Skipped" || p == "Canceled";
}

}  // namespace

struct VolumeState {
  size_t index = 0;
  std::string pvc, ns, target_pvc, vm, pv;
  std::string source_class, target_class, source_node, target_node;
  std::string source_path;  // under the source node's root for source_class
  std::string source_file;  // the same, absolute on that node
  std::string access_modes_json = "[\"ReadWriteOnce\"]", request;  // the old claim's
  bool block = false, verify = false;
  uint64_t request_bytes = 0;
  // Pending, Serving, Copying, Completed, Failed, Skipped, Kept, Deleted, Canceled
  std::string phase = "Pending";
  int attempt = 0;   // numbers this volume's tasks (a restart moves it on too)
  int failures = 0;  // copies that failed; kMaxAttempts of them fail the volume
  std::string transport, message, digest;
  uint64_t total = 0, transferred = 0, blocks = 0, changed_blocks = 0, resumed = 0;
  bool verified = false;
  double started = 0, finished = 0;
  // Memory only: this attempt's tasks, key and start.
  std::string serve_id, copy_id, key;
  double attempt_started = 0;

  Json to_json() const {
    Json j = {{"pvcRef", {{"name", pvc}, {"namespace", ns}}},
              {"targetPvcRef", {{"name", target_pvc}, {"namespace", ns}}},
              {"persistentVolume", pv},
              {"storageClass", source_class},
              {"targetStorageClass", target_class},
              {"sourceNode", source_node},
              {"targetNode", target_node},
              {"sourcePath", source_path},
              {"sourceFile", source_file},
              {"volumeMode", block ? "Block" : "Filesystem"},
              {"request", request},
              {"accessModes", Json::parse(access_modes_json)},
              {"verify", verify},
              {"phase", phase},
              {"attempt", attempt},
              {"failures", failures},
              {"index", index}};
    if (!vm.empty()) j["vm"] = vm;
    if (!transport.empty()) j["transport"] = transport;
    if (!message.empty()) j["message"] = message;
    if (total) {
      j["totalBytes"] = total;
      j["transferredBytes"] = transferred;
      j["totalProgressPercentage"] = std::min<uint64_t>(100, transferred * 100 / total);
    }
    if (blocks) {
      j["blocks"] = blocks;
      j["changedBlocks"] = changed_blocks;
    }
    if (verified) j["verified"] = true;
    if (resumed) j["resumedBytes"] = resumed;
    if (!digest.empty()) j["digest"] = digest;
    if (started) j["started"] = iso_time(started);
    if (finished) j["completed"] = iso_time(finished);
    return j;
  }
  static VolumeState from_json(const Json& j) {
    VolumeState v;
    v.index = u64_at(j, {"index"});
    v.pvc = str_at(j, {"pvcRef", "name"});
    v.ns = str_at(j, {"pvcRef", "namespace"});
    v.target_pvc = str_at(j, {"targetPvcRef", "name"});
    v.vm = str_at(j, {"vm"});
    v.pv = str_at(j, {"persistentVolume"});
    v.source_class = str_at(j, {"storageClass"});
    v.target_class = str_at(j, {"targetStorageClass"});
    v.source_node = str_at(j, {"sourceNode"});
    v.target_node = str_at(j, {"targetNode"});
    v.source_path = str_at(j, {"sourcePath"});
    v.source_file = str_at(j, {"sourceFile"});
    v.block = str_at(j, {"volumeMode"}) == "Block";
    v.request = str_at(j, {"request"});
    v.request_bytes = parse_quantity(v.request).value_or(0);
    if (at(j, {"accessModes"}).is_array()) v.access_modes_json = at(j, {"accessModes"}).dump();
    v.verify = bool_at(j, {"verify"});
    v.phase = str_at(j, {"phase"});
    if (v.phase.empty()) v.phase = "Pending";
    v.attempt = static_cast<int>(u64_at(j, {"attempt"}));
    v.failures = static_cast<int>(u64_at(j, {"failures"}));
    v.transport = str_at(j, {"transport"});
    v.message = str_at(j, {"message"});
    v.total = u64_at(j, {"totalBytes"});
    v.transferred = u64_at(j, {"transferredBytes"});
    v.blocks = u64_at(j, {"blocks"});
    v.changed_blocks = u64_at(j, {"changedBlocks"});
    v.verified = bool_at(j, {"verified"});
    v.resumed = u64_at(j, {"resumedBytes"});
    v.digest = str_at(j, {"digest"});
    return v;
  }
};

struct VmState {
  std::string name, ns;
  bool was_running = false;
  std::string run_strategy;  // before Ferry touched it
  // Pending, Skipped, Stopping, Copying, UpdatingVolumes, WaitingForLiveMigration,
  // Starting, Completed, Failed, Canceled
  std::string phase = "Pending";
  std::string message;
  double stop_started = 0;    // when Ferry halted it (epoch seconds)
  std::string live_started;   // liveMigrate: when the VM was repointed (RFC 3339)
  bool halted_by_us = false;  // Ferry set runStrategy Halted and has not restored it

  Json to_json() const {
    Json j = {{"name", name}, {"namespace", ns}, {"phase", phase}, {"wasRunning", was_running}};
    if (!run_strategy.empty()) j["runStrategy"] = run_strategy;
    if (!message.empty()) j["message"] = message;
    if (stop_started) j["stopStarted"] = iso_time(stop_started);
    if (!live_started.empty()) j["liveMigrationStarted"] = live_started;
    if (halted_by_us) j["haltedByFerry"] = true;
    return j;
  }
  static VmState from_json(const Json& j) {
    VmState v;
    v.name = str_at(j, {"name"});
    v.ns = str_at(j, {"namespace"});
    v.was_running = bool_at(j, {"wasRunning"});
    v.run_strategy = str_at(j, {"runStrategy"});
    v.phase = str_at(j, {"phase"});
    if (v.phase.empty()) v.phase = "Pending";
    v.message = str_at(j, {"message"});
    v.live_started = str_at(j, {"liveMigrationStarted"});
    v.halted_by_us = bool_at(j, {"haltedByFerry"});
    std::string stop = str_at(j, {"stopStarted"});
    std::tm tm{};
    if (!stop.empty() && strptime(stop.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm))
      v.stop_started = static_cast<double>(timegm(&tm));
    return v;
  }
};

struct StorageMigrator::Run {
  MigMigration mig;
  MigPlan plan;
  std::string phase;  // "", Running, Completed, Failed
  std::string rollback_of;
  std::vector<VolumeState> volumes;
  std::vector<VmState> vms;
  Json conditions = Json::array();
  std::string started, completed;
  bool dirty = false;
  int exceptions = 0;                 // passes in a row that threw
  std::set<std::string> halted_sent;  // "ns/vm" patched to Halted by this process

  Json status() const {
    Json s = {{"phase", phase}, {"conditions", conditions}};
    s["itinerary"] = mig.rollback ? "Rollback" : mig.stage ? "Stage" : "Final";
    if (mig.canceled) s["canceled"] = true;
    if (!started.empty()) s["startTimestamp"] = started;
    if (!completed.empty()) s["completionTimestamp"] = completed;
    if (!rollback_of.empty()) s["rollbackOf"] = rollback_of;
    Json vs = Json::array(), vols = Json::array();
    for (const auto& v : vms) vs.push_back(v.to_json());
    for (const auto& v : volumes) vols.push_back(v.to_json());
    s["vms"] = vs;
    s["volumes"] = vols;
    return s;
  }
  void condition(const std::string& type, const std::string& category, const std::string& message,
                 const std::string& reason = "") {
    for (auto& c : conditions)
      if (str_at(c, {"type"}) == type && str_at(c, {"message"}) == message) return;
    Json c = {{"type", type},
              {"status", "True"},
              {"category", category},
              {"message", message},
              {"lastTransitionTime", now_iso()}};
    if (!reason.empty()) c["reason"] = reason;
    conditions.push_back(c);
    dirty = true;
  }
  void drop_condition(const std::string& type) {
    Json kept = Json::array();
    for (auto& c : conditions)
      if (str_at(c, {"type"}) != type) kept.push_back(c);
    if (kept.size() != conditions.size()) dirty = true;
    conditions = kept;
  }
};

// The work on one Run, on the migrator's thread.
struct RunDriver {
  StorageMigrator& m;
  StorageMigrator::Run& run;
  Cluster& cl;
  const std::optional<Nodes>& nodes;  // the live agents at the start of this pass

  // Unknown (the loop did not answer) counts as live: no one is failed for it.
  bool node_live(const std::string& n) const { return !nodes || nodes->count(n); }

  // ------------------------------------------------------------ tasks
  std::string task_id(const VolumeState& v, const char* kind) const {
    return std::string(kTaskPrefix) + run.mig.uid + "." + std::to_string(v.index) + "." + kind +
           std::to_string(v.attempt);
  }
  void want(const std::string& id, const std::string& node, const std::string& key) {
    std::lock_guard<std::mutex> lock(m.mu_);
    m.live_[id] = {node, key};
  }
  void unwant(const std::string& id) {
    std::lock_guard<std::mutex> lock(m.mu_);
    m.live_.erase(id);
    m.serving_.erase(id);
    m.bytes_done_.erase(id);
    m.results_.erase(id);
  }
  std::optional<ferry::v1::TaskResult> take_result(const std::string& id) {
    std::lock_guard<std::mutex> lock(m.mu_);
    auto it = m.results_.find(id);
    if (it == m.results_.end()) return std::nullopt;
    auto r = it->second;
    m.results_.erase(it);
    return r;
  }
  void stop_task(const std::string& node, const std::string& id) {
    if (id.empty()) return;
    unwant(id);
    ferry::v1::CancelTask c;
    c.set_task_id(id);
    Status s = m.deps_.cancel_task(node, c);
    if (!s.ok()) kLog.warn("cancel not stored", {{"task", id}, {"error", s.error().message}});
  }
  ferry::v1::TargetVolume target_volume(const VolumeState& v) const {
    ferry::v1::TargetVolume t;
    t.set_storage_class(v.target_class);
    t.set_path(cl.volume_path(v.ns, v.target_pvc, v.block));
    t.set_block(v.block);
    t.set_size_bytes(v.total);
    t.mutable_claim()->set_namespace_(v.ns);
    t.mutable_claim()->set_name(v.target_pvc);
    t.mutable_claim()->set_request_bytes(v.request_bytes);
    return t;
  }

  // ------------------------------------------------------------ the cluster
  Status ensure_target_claim(const VolumeState& v) {
    return cl.create_claim({.ns = v.ns,
                            .name = v.target_pvc,
                            .source = v.pvc,
                            .plan = run.plan.name,
                            .storage_class = v.target_class,
                            .node = v.target_node,
                            .access_modes_json = v.access_modes_json,
                            .bytes = v.request_bytes,
                            .block = v.block});
  }

  // ------------------------------------------------------------ validation
  // Problems of the plan and migration as conditions; kReady if it may run,
  // kRetry when the API server could not answer (nothing decided).
  enum class Built { kReady, kRefused, kRetry };
  bool transient_ = false;
  // A lookup that the API server could not answer: decide nothing this pass.
  template <typename T>
  bool unanswered(const Result<T>& r) {
    if (r.ok()) return false;
    transient_ = true;
    return true;
  }
  Built build(const std::vector<Json>& all_migs) {
    transient_ = false;
    bool ok = build_checked(all_migs);
    if (transient_) return Built::kRetry;
    return ok ? Built::kReady : Built::kRefused;
  }
  bool build_checked(const std::vector<Json>& all_migs) {
    std::vector<std::string> problems;
    auto bad = [&](const std::string& where, const std::string& path, const std::string& msg) {
      problems.push_back(where + ": " + path + ": " + msg);
    };
    const std::string plan_where = "MigPlan " + run.plan.ns + "/" + run.plan.name;
    const std::string mig_where = "MigMigration " + run.mig.ns + "/" + run.mig.name;

    // One at a time per plan.
    for (const auto& other : all_migs) {
      std::string uid = str_at(other, {"metadata", "uid"});
      if (uid == run.mig.uid) continue;
      if (str_at(other, {"spec", "migPlanRef", "name"}) != run.mig.plan_name) continue;
      std::string ons = str_at(other, {"spec", "migPlanRef", "namespace"});
      if ((ons.empty() ? str_at(other, {"metadata", "namespace"}) : ons) != run.mig.plan_ns)
        continue;
      std::string phase = str_at(other, {"status", "phase"});
      if (phase == "Running" && str_at(other, {"metadata", "creationTimestamp"}) <= run.mig.created)
        bad(mig_where, "spec.migPlanRef",
            "MigMigration " + str_at(other, {"metadata", "namespace"}) + "/" +
                str_at(other, {"metadata", "name"}) +
                " of the same MigPlan is running; start this one after it ends");
    }
    for (const auto& [uid, other] : m.runs_)
      if (uid != run.mig.uid && other && other->phase == "Running" &&
          other->mig.plan_name == run.mig.plan_name && other->mig.plan_ns == run.mig.plan_ns)
        bad(mig_where, "spec.migPlanRef",
            "MigMigration " + other->mig.ns + "/" + other->mig.name +
                " of the same MigPlan is running; start this one after it ends");
    if (!problems.empty()) return refuse(problems);

    if (run.mig.rollback) return build_rollback(all_migs);

    if (!nodes) {  // the coordinator's loop did not answer (it is stopping)
      transient_ = true;
      return false;
    }
    // Agents say hello within seconds of a coordinator's start: until then a
    // missing node is not a reason to refuse.
    const bool settling = now_seconds() - m.started_ < kSettleSeconds;
    std::map<std::string, std::vector<std::string>> vm_of_claim;  // "ns/claim" -> VMs
    std::map<std::string, Vm> vms;                                // "ns/name" -> VM
    std::set<std::string> shareable;                              // "ns/claim"
    for (const auto& ns : run.plan.namespaces) {
      std::string why;
      auto list = cl.list_vms(ns, &why);
      if (unanswered(list)) return false;
      if (!*list) {
        bad(plan_where, "spec.namespaces", "cannot list VirtualMachines in " + ns + ": " + why);
        continue;
      }
      for (const auto& vm : **list) {
        vms[ns + "/" + vm.name] = vm;
        for (const auto& vol : vm.volumes) {
          std::string claim = vol.claim;
          if (claim.empty() && !vol.data_volume.empty()) claim = "dv:" + vol.data_volume;
          if (claim.empty()) continue;
          vm_of_claim[ns + "/" + claim].push_back(vm.name);
          if (vol.shareable) shareable.insert(ns + "/" + claim);
        }
      }
    }
    for (const auto& pv : run.plan.volumes) {
      std::string base = "spec.persistentVolumes[" + std::to_string(pv.index) + "]";
      if (std::find(run.plan.namespaces.begin(), run.plan.namespaces.end(), pv.pvc_ns) ==
          run.plan.namespaces.end()) {
        bad(plan_where, base + ".pvc.namespace",
            "\"" + pv.pvc_ns +
                "\" is not one of the plan's namespaces (spec.namespaces); a VM's storage moves "
                "only within its namespace");
        continue;
      }
      if (pv.action != "copy") continue;
      auto cls = cl.class_exists(pv.storage_class);
      if (unanswered(cls)) return false;
      if (!*cls) {
        bad(plan_where, base + ".selection.storageClass",
            "StorageClass \"" + pv.storage_class + "\" not found");
        continue;
      }
      if (vm_of_claim.count(pv.pvc_ns + "/dv:" + pv.pvc)) {
        bad(plan_where, base + ".pvc.name",
            "the VM uses it through a DataVolume; Ferry moves persistentVolumeClaim volumes");
        continue;
      }
      auto claim = cl.get_claim(pv.pvc_ns, pv.pvc);
      if (unanswered(claim)) return false;
      if (!*claim) {
        bad(plan_where, base + ".pvc.name",
            "PersistentVolumeClaim " + pv.pvc_ns + "/" + pv.pvc + " not found");
        continue;
      }
      const Claim& c = **claim;
      if (!c.refusal.empty()) {
        bad(plan_where, base + ".pvc.name", c.refusal);
        continue;
      }
      const std::string& volume = c.volume;
      const std::string& request = c.request;
      auto request_bytes = parse_quantity(request);
      if (!c.bound) {
        bad(plan_where, base + ".pvc.name",
            "PersistentVolumeClaim " + pv.pvc_ns + "/" + pv.pvc + " is not Bound");
        continue;
      }
      if (!c.volume_found) {
        bad(plan_where, base + ".name", "PersistentVolume \"" + volume + "\" not found");
        continue;
      }
      const std::string& node = c.node;
      const std::string& source_class = c.storage_class;
      if (node.empty() || c.local_path.empty()) {
        bad(plan_where, base + ".name",
            "PersistentVolume \"" + volume +
                "\" is not a node-local volume held by a Ferry agent (spec.local and a node)");
        continue;
      }
      auto src_node = nodes->find(node);
      if (src_node == nodes->end() || !src_node->second.roots.count(source_class)) {
        if (settling) {
          transient_ = true;
          return false;
        }
        bad(plan_where, base + ".name",
            "node " + node + ", which holds PersistentVolume \"" + volume +
                "\", has no live agent with a volume root for class \"" + source_class + "\"");
        continue;
      }
      // Under the root, in a namespace's directory: <ns>/<claim>... (not the root itself).
      std::string root = src_node->second.roots.at(source_class);
      if (c.local_path.rfind(root + "/", 0) != 0 ||
          c.local_path.find('/', root.size() + 1) == std::string::npos) {
        bad(plan_where, base + ".name",
            "PersistentVolume \"" + volume + "\" (" + c.local_path + ") is not under node " + node +
                "'s volume root " + root);
        continue;
      }
      bool block = c.block;
      uint64_t size = request_bytes.value_or(0);
      if (pv.capacity && pv.capacity < size) {
        bad(plan_where, base + ".selection.capacity",
            std::to_string(pv.capacity) + " bytes is smaller than the source claim's " + request +
                "; the new volume must be at least as large");
        continue;
      }
      std::string claim_key = pv.pvc_ns + "/" + pv.pvc;
      const auto& users = vm_of_claim[claim_key];
      // Ferry moves VMs' disks: a claim no VM uses may be a pod's, which no
      // stage or cutover stops (and after a cutover the old claims are such).
      if (users.empty()) {
        bad(plan_where, base + ".pvc.name",
            "claim " + claim_key + " is not used by any VirtualMachine in " + pv.pvc_ns +
                "; Ferry moves VMs' disks (after a cutover, the old claims are left unused)");
        continue;
      }
      // The new claim must not be a VM's disk already (an earlier cutover).
      const std::string new_key =
          pv.pvc_ns + "/" + target_claim_name(pv.pvc, run.plan.uid, pv.storage_class);
      if (vm_of_claim.count(new_key) && !vm_of_claim[new_key].empty()) {
        bad(plan_where, base + ".pvc.name",
            "its new claim " + new_key + " is already the disk of VM " +
                vm_of_claim[new_key].front() + " (a completed cutover); roll that back first");
        continue;
      }
      if (run.plan.live_migrate && (users.size() > 1 || shareable.count(claim_key))) {
        bad(plan_where, "spec.liveMigrate",
            "claim " + claim_key + " is a shared disk" +
                (users.size() > 1 ? " (VMs " + users[0] + ", " + users[1] + ")" : "") +
                "; shared disks cannot be migrated live");
        continue;
      }
      // Offline, every VM using it would have to stop together: not done.
      if (users.size() > 1 || shareable.count(claim_key)) {
        bad(plan_where, base + ".pvc.name",
            "claim " + claim_key + " is a shared disk" +
                (users.size() > 1 ? " (VMs " + users[0] + ", " + users[1] + ")" : "") +
                "; Ferry moves disks of one VM only");
        continue;
      }
      // The target node: where an earlier run of this plan put the new claim
      // (its PersistentVolume's node); else the volume's own node when it has
      // the class; else the live node with the class and the most free space.
      const std::string target_pvc = target_claim_name(pv.pvc, run.plan.uid, pv.storage_class);
      std::string target;
      auto earlier = cl.get_claim(pv.pvc_ns, target_pvc);
      if (unanswered(earlier)) return false;
      if (*earlier) {
        target = (*earlier)->node;
        if (!target.empty() &&
            (!nodes->count(target) || !nodes->at(target).roots.count(pv.storage_class))) {
          if (settling) {
            transient_ = true;
            return false;
          }
          bad(plan_where, base + ".selection.storageClass",
              "the new claim " + target_pvc + " is on node " + target +
                  ", which has no live agent with class \"" + pv.storage_class + "\"");
          continue;
        }
      }
      if (target.empty() && src_node->second.roots.count(pv.storage_class)) {
        target = node;
      } else if (target.empty()) {
        uint64_t best = 0;
        for (const auto& [n, view] : *nodes) {
          if (!view.roots.count(pv.storage_class)) continue;
          uint64_t free =
              view.free_bytes.count(pv.storage_class) ? view.free_bytes.at(pv.storage_class) : 0;
          if (target.empty() || free > best) {
            target = n;
            best = free;
          }
        }
      }
      if (target.empty()) {
        if (settling) {
          transient_ = true;
          return false;
        }
        bad(plan_where, base + ".selection.storageClass",
            "no live agent has a volume root for class \"" + pv.storage_class + "\"");
        continue;
      }
      VolumeState v;
      v.index = pv.index;
      v.pvc = pv.pvc;
      v.ns = pv.pvc_ns;
      v.pv = volume;
      v.vm = users.empty() ? "" : users.front();
      v.source_class = source_class;
      v.target_class = pv.storage_class;
      v.source_node = node;
      v.target_node = target;
      v.source_path = c.local_path.substr(root.size() + 1);
      v.source_file = c.local_path;
      v.block = block;
      v.verify = pv.verify;
      v.request = request;
      v.request_bytes = std::max(size, pv.capacity);
      v.access_modes_json = c.access_modes_json;
      v.target_pvc = target_pvc;
      run.volumes.push_back(v);
    }
    if (!problems.empty()) return refuse(problems);

    // The VMs whose claims move, and how they run now.
    std::set<std::string> seen;
    for (const auto& v : run.volumes) {
      if (v.vm.empty() || !seen.insert(v.ns + "/" + v.vm).second) continue;
      VmState vm;
      vm.name = v.vm;
      vm.ns = v.ns;
      const Vm& obj = vms[v.ns + "/" + v.vm];
      vm.run_strategy = obj.run_strategy;
      auto vmi = cl.get_instance(vm.ns, vm.name);
      if (unanswered(vmi)) return false;
      vm.was_running = obj.wants_running || *vmi;
      run.vms.push_back(vm);
    }
    return true;
  }

  bool build_rollback(const std::vector<Json>& all_migs) {
    // The last completed cutover of the plan that no completed rollback undid.
    std::set<std::string> undone;
    // VMs a canceled rollback already put back, by the cutover it undid.
    std::map<std::string, std::set<std::string>> put_back;
    for (const auto& o : all_migs) {
      if (!bool_at(o, {"spec", "rollback"})) continue;
      std::string phase = str_at(o, {"status", "phase"});
      if (phase == "Completed") undone.insert(str_at(o, {"status", "rollbackOf"}));
      if (phase == "Canceled")
        for (const auto& vm : list_at(o, {"status", "vms"}))
          if (str_at(vm, {"phase"}) == "Completed")
            put_back[str_at(o, {"status", "rollbackOf"})].insert(str_at(vm, {"namespace"}) + "/" +
                                                                 str_at(vm, {"name"}));
    }
    const Json* last = nullptr;
    for (const auto& o : all_migs) {
      if (str_at(o, {"spec", "migPlanRef", "name"}) != run.mig.plan_name) continue;
      if (str_at(o, {"metadata", "namespace"}) != run.mig.ns) continue;
      if (bool_at(o, {"spec", "stage"}) || bool_at(o, {"spec", "rollback"})) continue;
      // A canceled cutover counts for the VMs it switched before the cancel,
      // less those a canceled rollback put back.
      std::string phase = str_at(o, {"status", "phase"});
      if (phase != "Completed" && phase != "Canceled") continue;
      const auto& back = put_back[str_at(o, {"metadata", "name"})];
      bool left = false;
      for (const auto& vm : list_at(o, {"status", "vms"}))
        left = left || (str_at(vm, {"phase"}) == "Completed" &&
                        !back.count(str_at(vm, {"namespace"}) + "/" + str_at(vm, {"name"})));
      if (!left) continue;
      if (undone.count(str_at(o, {"metadata", "name"}))) continue;
      if (!last || str_at(o, {"metadata", "creationTimestamp"}) >=
                       str_at(*last, {"metadata", "creationTimestamp"}))
        last = &o;
    }
    if (!last)
      return refuse({"MigMigration " + run.mig.ns + "/" + run.mig.name +
                     ": spec.rollback: MigPlan " + run.mig.plan_ns + "/" + run.mig.plan_name +
                     " has no completed migration to roll back (stage copies change nothing to "
                     "undo)"});
    run.rollback_of = str_at(*last, {"metadata", "name"});
    for (const auto& v : list_at(*last, {"status", "volumes"})) {
      VolumeState vs = VolumeState::from_json(v);
      if (vs.phase != "Completed") continue;
      vs.phase = "Pending";
      vs.message.clear();
      run.volumes.push_back(vs);
    }
    for (const auto& v : list_at(*last, {"status", "vms"})) {
      VmState vm = VmState::from_json(v);
      bool moved = false;  // only VMs the cutover switched go back
      for (const auto& vol : run.volumes) moved = moved || (vol.vm == vm.name && vol.ns == vm.ns);
      if (!moved || vm.phase != "Completed") continue;
      if (put_back[run.rollback_of].count(vm.ns + "/" + vm.name)) continue;  // (already back)
      vm.phase = "Pending";
      vm.message.clear();
      run.vms.push_back(vm);  // was_running/run_strategy: as before the cutover
    }
    // A volume goes back with its VM (none is left waiting for a VM not rolled back).
    std::vector<VolumeState> kept;
    for (auto& v : run.volumes)
      for (const auto& vm : run.vms)
        if (vm.name == v.vm && vm.ns == v.ns) {
          kept.push_back(v);
          break;
        }
    run.volumes = std::move(kept);
    return true;
  }

  bool refuse(const std::vector<std::string>& problems) {
    for (const auto& p : problems) run.condition("InvalidPlan", "Critical", p, "NotReady");
    run.condition("Failed", "Advisory", "The migration did not start: " + problems.front());
    run.phase = "Failed";
    run.completed = now_iso();
    kLog.warn("storage migration refused",
              {{"migration", run.mig.ns + "/" + run.mig.name}, {"error", problems.front()}});
    return false;
  }

  // ------------------------------------------------------------ copies
  // One step of a volume's copy; true when it reached a final phase.
  bool step_copy(VolumeState& v) {
    if (final_phase(v.phase)) return true;
    if (v.phase == "Pending") {
      if (v.failures >= kMaxAttempts) {
        v.phase = "Failed";
        run.dirty = true;
        return true;
      }
      Status c = ensure_target_claim(v);
      if (!c.ok()) {
        v.message = c.error().message;
        if (c.error().code == ErrorCode::kAlreadyExists) {
          v.phase = "Failed";
          run.dirty = true;
          return true;
        }
        // Refused (quota, a webhook): a failure; the API server away: next pass.
        if (c.error().code == ErrorCode::kInvalidArgument) {
          v.failures++;
          run.dirty = true;
        }
        return false;
      }
      v.attempt++;
      v.key = random_hex(32);
      v.started = v.started ? v.started : now_seconds();
      v.attempt_started = now_seconds();
      v.serve_id.clear();
      v.copy_id.clear();
      run.dirty = true;
      if (v.source_node == v.target_node) {
        v.transport = "local";
        return send_copy(v, nullptr), false;
      }
      v.serve_id = task_id(v, "s");
      want(v.serve_id, v.source_node, v.key);
      ferry::v1::AgentTask t;
      auto* s = t.mutable_serve();
      s->set_task_id(v.serve_id);
      s->set_plan(run.plan.ns + "/" + run.plan.name);
      s->set_vm(v.vm);
      s->mutable_volume()->set_storage_class(v.source_class);
      s->mutable_volume()->set_path(v.source_path);
      s->mutable_volume()->set_block(v.block);
      s->set_network(run.plan.transfer_network);
      Status p = m.deps_.publish_task(v.source_node, t, v.serve_id + "." + v.key.substr(0, 8));
      if (!p.ok()) {
        v.message = "serving the volume: " + p.error().message;
        unwant(v.serve_id);
        v.attempt--;
        return false;
      }
      v.phase = "Serving";
      v.message = "waiting for node " + v.source_node + " to serve the volume";
      return false;
    }
    if (v.phase == "Serving") {
      std::optional<ferry::v1::ServeReady> ready;
      {
        std::lock_guard<std::mutex> lock(m.mu_);
        auto it = m.serving_.find(v.serve_id);
        if (it != m.serving_.end()) ready = it->second;
      }
      if (auto r = take_result(v.serve_id))
        return retry(v, "serving ended: " + r->failure().message());
      if (ready) {
        v.transport = "nbd+tls " + ready->disk_uri();
        send_copy(v, &*ready);
        return false;
      }
      // Hashing a large volume takes a while; only a node that is gone ends the wait.
      if (now_seconds() - v.attempt_started > kServeGraceSeconds && !node_live(v.source_node))
        return retry(v, "node " + v.source_node + " went away before it served the volume");
      return false;
    }
    if (v.phase == "Copying") {
      {
        std::lock_guard<std::mutex> lock(m.mu_);
        auto it = m.bytes_done_.find(v.copy_id);
        if (it != m.bytes_done_.end() && it->second != v.transferred) {
          v.transferred = it->second;
          run.dirty = true;
        }
      }
      auto r = take_result(v.copy_id);
      if (!r) {
        if (now_seconds() - v.attempt_started > kServeGraceSeconds && !node_live(v.target_node))
          return retry(v, "node " + v.target_node + " went away during the copy");
        return false;
      }
      if (r->state() != ferry::v1::TASK_STATE_SUCCEEDED)
        return retry(v, r->has_failure() ? r->failure().message() : "the copy failed");
      const auto& s = r->success();
      unwant(v.copy_id);
      if (!v.serve_id.empty()) stop_task(v.source_node, v.serve_id);
      v.phase = "Completed";
      v.blocks = s.blocks();
      v.changed_blocks = s.blocks_changed();
      v.verified = s.verified();
      v.digest = s.digest();
      if (s.size_bytes()) v.total = s.size_bytes();
      v.transferred = s.bytes_read();
      v.resumed = s.bytes_resumed();
      v.message = std::to_string(s.blocks_changed()) + " of " + std::to_string(s.blocks()) +
                  " blocks copied (" + std::to_string(s.bytes_read()) + " bytes read)" +
                  (s.verified() ? ", every block verified" : "");
      v.finished = now_seconds();
      run.dirty = true;
      kLog.info("volume copied", {{"migration", run.mig.ns + "/" + run.mig.name},
                                  {"claim", v.ns + "/" + v.pvc},
                                  {"to", v.target_pvc},
                                  {"changed_blocks", std::to_string(s.blocks_changed())}});
      return true;
    }
    return false;
  }

  void send_copy(VolumeState& v, const ferry::v1::ServeReady* ready) {
    v.copy_id = task_id(v, "c");
    want(v.copy_id, v.target_node, ready ? v.key : "");
    ferry::v1::AgentTask t;
    auto* x = t.mutable_transfer();
    x->set_task_id(v.copy_id);
    x->set_plan(run.plan.ns + "/" + run.plan.name);
    x->set_vm(v.vm);
    x->set_disk(v.pvc);
    x->set_stage(true);
    x->set_stage_id(run.mig.uid + "." + std::to_string(v.index));
    x->set_verify(v.verify);
    if (ready) {
      x->mutable_nbd()->set_uri(ready->disk_uri());
      x->mutable_nbd()->set_digests_uri(ready->digests_uri());
      x->mutable_nbd()->set_tls_psk(true);
      x->mutable_nbd()->set_tls_username(protocol::kServeTlsUser);
      x->set_transfer_network(run.plan.transfer_network);
      v.total = ready->size_bytes();
    } else {
      x->mutable_file()->set_path(v.source_file);
    }
    *x->mutable_target() = target_volume(v);
    Status p = m.deps_.publish_task(v.target_node, t, v.copy_id + "." + v.key.substr(0, 8));
    if (!p.ok()) {
      unwant(v.copy_id);
      v.message = "copying: " + p.error().message;
      return;  // tried again next pass (same phase)
    }
    v.phase = "Copying";
    v.message.clear();
    run.dirty = true;
  }

  bool retry(VolumeState& v, const std::string& why) {
    kLog.warn("volume copy failed", {{"migration", run.mig.ns + "/" + run.mig.name},
                                     {"claim", v.ns + "/" + v.pvc},
                                     {"attempt", std::to_string(v.attempt)},
                                     {"error", why}});
    if (!v.copy_id.empty()) stop_task(v.target_node, v.copy_id);
    if (!v.serve_id.empty()) stop_task(v.source_node, v.serve_id);
    v.copy_id.clear();
    v.serve_id.clear();
    v.message = why;
    v.failures++;
    v.phase = v.failures >= kMaxAttempts ? "Failed" : "Pending";
    run.dirty = true;
    return v.phase == "Failed";
  }

  // ------------------------------------------------------------ VMs
  std::vector<VolumeState*> volumes_of(const VmState& vm) {
    std::vector<VolumeState*> out;
    for (auto& v : run.volumes)
      if (v.vm == vm.name && v.ns == vm.ns) out.push_back(&v);
    return out;
  }
  // Gives the VM back the runStrategy it had, if Ferry halted it.
  void restore_power(VmState& vm) {
    if (!vm.halted_by_us) return;
    Status s = cl.set_run_strategy(vm.ns, vm.name, vm.run_strategy);
    if (!s.ok()) {
      kLog.warn("runStrategy not restored",
                {{"vm", vm.ns + "/" + vm.name}, {"error", s.error().message}});
      // The VM is gone or is no VM any more: nothing to give back, and
      // waiting would hold the run (and its plan) for good.
      if (s.error().code != ErrorCode::kFailedPrecondition &&
          s.error().code != ErrorCode::kInvalidArgument)
        return;
      vm.message += (vm.message.empty() ? "" : "; ") + std::string("runStrategy ") +
                    vm.run_strategy + " not restored: " + s.error().message;
    }
    vm.halted_by_us = false;
    run.halted_sent.erase(vm.ns + "/" + vm.name);
    run.dirty = true;
  }
  void vm_phase(VmState& vm, const std::string& phase, const std::string& message = "") {
    vm.phase = phase;
    vm.message = message;
    run.dirty = true;
    if (phase == "Failed") {
      // What it has not copied yet is not copied, and it runs as it did.
      for (auto* v : volumes_of(vm)) {
        if (final_phase(v->phase)) continue;
        if (!v->copy_id.empty()) stop_task(v->target_node, v->copy_id);
        if (!v->serve_id.empty()) stop_task(v->source_node, v->serve_id);
        v->phase = "Skipped";
        v->message = "VM " + vm.name + " failed";
      }
      restore_power(vm);
    }
    kLog.info("storage migration VM step", {{"migration", run.mig.ns + "/" + run.mig.name},
                                            {"vm", vm.ns + "/" + vm.name},
                                            {"phase", phase},
                                            {"message", message}});
  }
  // Whether the VM runs now (its spec asks for it, or a VMI exists);
  // nullopt when the API server could not say. A VM that is gone fails.
  std::optional<bool> running_now(VmState& vm, std::string* strategy) {
    auto obj = cl.get_vm(vm.ns, vm.name);
    if (!obj.ok()) {
      if (obj.error().code == ErrorCode::kInvalidArgument)  // (a manifest that is not a VM)
        vm_phase(vm, "Failed", obj.error().message);
      return std::nullopt;
    }
    if (!*obj) {
      vm_phase(vm, "Failed", "VirtualMachine " + vm.ns + "/" + vm.name + " is gone");
      return std::nullopt;
    }
    auto vmi = cl.get_instance(vm.ns, vm.name);
    if (!vmi.ok()) return std::nullopt;
    if (strategy) *strategy = (*obj)->run_strategy;
    return (*obj)->wants_running || vmi->has_value();
  }
  // Halts the VM if it runs now, then waits for its VMI to go. True once
  // stopped. record_strategy: remember the strategy it runs with now (a
  // rollback keeps the one the cutover recorded).
  bool stopped(VmState& vm, bool record_strategy = true) {
    if (vm.phase != "Stopping") {
      std::string strategy;
      auto running = running_now(vm, &strategy);
      if (!running) return false;
      if (!*running) return true;
      // What it ran with is in the status before the VM is touched, so a
      // restart in between still starts it again.
      if (record_strategy) vm.run_strategy = strategy;
      vm.halted_by_us = true;
      vm.stop_started = now_seconds();
      vm_phase(vm, "Stopping", "runStrategy Halted; waiting for its VirtualMachineInstance to go");
      return false;
    }
    if (!run.halted_sent.count(vm.ns + "/" + vm.name)) {
      Status s = cl.set_run_strategy(vm.ns, vm.name, "Halted");
      if (!s.ok()) {
        vm.message = s.error().message;
        return false;
      }
      run.halted_sent.insert(vm.ns + "/" + vm.name);
    }
    auto vmi = cl.get_instance(vm.ns, vm.name);
    if (vmi.ok() && !*vmi) return true;  // no VMI: stopped (also where no KubeVirt runs)
    if (vm.stop_started &&
        now_seconds() - vm.stop_started > static_cast<double>(m.deps_.stop_timeout.count()))
      vm_phase(vm, "Failed",
               "did not stop within " + std::to_string(m.deps_.stop_timeout.count()) + " s");
    return false;
  }
  bool copies_done(VmState& vm) {
    bool done = true, failed = false;
    for (auto* v : volumes_of(vm)) {
      done = step_copy(*v) && done;
      failed = failed || v->phase == "Failed";
    }
    if (done && failed) {
      std::string why;
      for (auto* v : volumes_of(vm))
        if (v->phase == "Failed") why = "claim " + v->pvc + ": " + v->message;
      vm_phase(vm, "Failed", why + "; the VM keeps its old claims");
      return false;
    }
    return done;
  }
  // Points the VM at its new claims (forward) or back at the old ones; false
  // until the API server took it (the reason in the VM's message).
  bool switch_claims(VmState& vm, bool forward) {
    std::map<std::string, std::string> from_to;
    for (auto* v : volumes_of(vm)) {
      if (forward)
        from_to[v->pvc] = v->target_pvc;
      else
        from_to[v->target_pvc] = v->pvc;
    }
    Status s = cl.repoint(vm.ns, vm.name, from_to, false);
    if (s.ok()) return true;
    if (s.error().code == ErrorCode::kFailedPrecondition || s.error().code == ErrorCode::kNotFound)
      vm_phase(vm, "Failed", s.error().message);  // tried again, it would fail the same way
    else
      vm.message = s.error().message;
    return false;
  }
  // The new volumes are the VM's disks now: a later stage copy into one
  // must not trust the agent's record of it.
  void forget_stage_records(VmState& vm) {
    for (auto* v : volumes_of(vm)) {
      ferry::v1::CancelTask c;
      c.set_task_id(std::string(kTaskPrefix) + run.mig.uid + "." + std::to_string(v->index) +
                    ".forget");
      c.set_forget_stage(true);
      *c.mutable_volume() = target_volume(*v);
      Status s = m.deps_.cancel_task(v->target_node, c);
      if (!s.ok())
        kLog.warn("stage record not forgotten",
                  {{"claim", v->ns + "/" + v->target_pvc}, {"error", s.error().message}});
    }
  }

  void step_vm(VmState& vm) {
    if (final_vm_phase(vm.phase)) return;
    if (run.mig.stage) {
      if (vm.phase == "Pending") {
        auto running = running_now(vm, &vm.run_strategy);
        if (!running) return;
        vm.was_running = *running;
        if (*running) {
          vm_phase(vm, "Skipped",
                   "running: a stage copies only stopped VMs' disks; the cutover copies this one");
          for (auto* v : volumes_of(vm)) {
            v->phase = "Skipped";
            v->message = "VM " + vm.name + " is running";
          }
          return;
        }
        vm_phase(vm, "Copying");
      }
      if (copies_done(vm) && vm.phase == "Copying") vm_phase(vm, "Completed");
      return;
    }
    if (run.mig.rollback) return step_rollback_vm(vm);
    // Cutover.
    if (vm.phase == "Pending" && run.plan.live_migrate) {
      auto running = running_now(vm, &vm.run_strategy);
      if (!running) return;
      vm.was_running = *running;
      if (*running) return start_live(vm);
    }
    if (vm.phase == "WaitingForLiveMigration") return wait_live(vm);
    if (vm.phase == "Pending" || vm.phase == "Stopping") {
      if (vm.phase == "Pending") {
        auto running = running_now(vm, &vm.run_strategy);
        if (!running) return;
        vm.was_running = *running;
      }
      if (!stopped(vm)) return;
      vm_phase(vm, "Copying", "final sync of its volumes");
    }
    if (vm.phase == "Copying") {
      if (!copies_done(vm) || vm.phase != "Copying") return;
      vm_phase(vm, "UpdatingVolumes");
    }
    if (vm.phase == "UpdatingVolumes") {
      if (!switch_claims(vm, true)) return;
      forget_stage_records(vm);
      vm_phase(vm, vm.halted_by_us ? "Starting" : "Completed");
    }
    if (vm.phase == "Starting") {
      restore_power(vm);
      if (vm.halted_by_us) return;  // the API server: next pass
      vm_phase(vm, "Completed", "started again (runStrategy " + vm.run_strategy + ")");
    }
  }

  // liveMigrate: KubeVirt copies a running VM's volumes itself once the VM
  // names the new claims with updateVolumesStrategy Migration. Success needs
  // a VMI migration that started after that; without a VMI nothing is changed.
  void start_live(VmState& vm) {
    auto vmi = cl.get_instance(vm.ns, vm.name);
    if (!vmi.ok()) {
      vm.message = vmi.error().message;
      return;
    }
    if (!*vmi) {
      vm_phase(vm, "Failed",
               "liveMigrate: VM " + vm.name +
                   " has no VirtualMachineInstance, so KubeVirt cannot migrate its storage live; "
                   "nothing was changed (stop it, or migrate without liveMigrate)");
      return;
    }
    for (auto* v : volumes_of(vm)) {
      Status c = ensure_target_claim(*v);
      if (!c.ok()) {
        vm.message = c.error().message;
        return;
      }
    }
    std::map<std::string, std::string> from_to;
    for (auto* v : volumes_of(vm)) from_to[v->pvc] = v->target_pvc;
    vm.live_started = now_iso();
    Status s = cl.repoint(vm.ns, vm.name, from_to, true);
    if (!s.ok()) {
      vm.message = s.error().message;
      return;
    }
    for (auto* v : volumes_of(vm)) {
      v->phase = "Copying";
      v->transport = "kubevirt live migration";
    }
    forget_stage_records(vm);
    vm_phase(vm, "WaitingForLiveMigration",
             "updateVolumesStrategy Migration; waiting for the VMI's migration result");
  }
  void wait_live(VmState& vm) {
    auto vmi = cl.get_instance(vm.ns, vm.name);
    if (!vmi.ok()) return;
    if (!*vmi) {
      vm_phase(vm, "Failed",
               "its VirtualMachineInstance went away during the live migration; the VM names "
               "the new claims, which KubeVirt may not have filled: check it before starting it");
      return;
    }
    std::tm tm{};
    if (strptime(vm.live_started.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) &&
        now_seconds() - static_cast<double>(timegm(&tm)) > kLiveWaitSeconds) {
      vm_phase(vm, "Failed",
               "no live migration result from KubeVirt within " +
                   std::to_string(static_cast<int>(kLiveWaitSeconds)) + " s");
      return;
    }
    // Only a migration that started after the VM named its new claims counts.
    if ((*vmi)->migration_started < vm.live_started || !(*vmi)->migration_completed) return;
    bool failed = (*vmi)->migration_failed;
    for (auto* v : volumes_of(vm)) v->phase = failed ? "Failed" : "Completed";
    vm_phase(vm, failed ? "Failed" : "Completed",
             failed ? "KubeVirt reported the live migration failed" : "KubeVirt migrated it live");
  }

  void step_rollback_vm(VmState& vm) {
    if (vm.phase == "Pending" || vm.phase == "Stopping") {
      // It starts again as it was before the cutover (the cutover's record).
      if (!stopped(vm, false)) return;
      vm_phase(vm, "UpdatingVolumes");
    }
    if (vm.phase == "UpdatingVolumes") {
      if (!switch_claims(vm, false)) return;
      vm_phase(vm, "Starting");
    }
    if (vm.phase == "Starting") {
      Status s = cl.set_run_strategy(vm.ns, vm.name, vm.run_strategy);
      if (!s.ok()) {
        vm.message = s.error().message;
        return;
      }
      vm.halted_by_us = false;
      for (auto* v : volumes_of(vm)) remove_new_volume(*v);
      vm_phase(vm, "Completed", "back on its old claims (runStrategy " + vm.run_strategy + ")");
    }
  }
  void remove_new_volume(VolumeState& v) {
    if (run.mig.keep_new_volumes) {
      v.phase = "Kept";
      v.message = "kept on request (spec.keepNewVolumes)";
      return;
    }
    Status r = cl.delete_claim(v.ns, v.target_pvc);
    ferry::v1::CancelTask c;
    c.set_task_id("smig." + run.mig.uid + "." + std::to_string(v.index) + ".remove");
    c.set_delete_volume(true);
    *c.mutable_volume() = target_volume(v);
    Status s = m.deps_.cancel_task(v.target_node, c);
    v.phase = "Deleted";
    v.message = "claim " + v.target_pvc + " deleted" +
                (r.ok() ? "" : " (not deleted: " + r.error().message + "; delete it by hand)") +
                (s.ok() ? "" : "; its volume on node " + v.target_node + " was not removed");
    run.dirty = true;
  }

  // The run's MigMigration is gone: its tasks stop, and VMs Ferry halted run again.
  void abandon() {
    for (auto& v : run.volumes) {
      if (!v.copy_id.empty()) stop_task(v.target_node, v.copy_id);
      if (!v.serve_id.empty()) stop_task(v.source_node, v.serve_id);
    }
    for (auto& vm : run.vms) restore_power(vm);
  }

  // ------------------------------------------------------------ the whole run
  // Whether a cutover's volume is its VM's disk now (a copied volume of a VM
  // that failed or was canceled is not).
  bool switched(const VolumeState& v) const {
    if (v.vm.empty()) return true;
    for (const auto& vm : run.vms)
      if (vm.name == v.vm && vm.ns == v.ns) return vm.phase == "Completed";
    return false;
  }

  // spec.canceled: what has not switched yet stops (its tasks, its copies),
  // and VMs Ferry halted run again. A VM being repointed or migrated live
  // goes on to its end: half a switch would be worse than either.
  void cancel() {
    auto cancel_volume = [&](VolumeState& v) {
      if (final_phase(v.phase)) return;
      if (!v.copy_id.empty()) stop_task(v.target_node, v.copy_id);
      if (!v.serve_id.empty()) stop_task(v.source_node, v.serve_id);
      v.copy_id.clear();
      v.serve_id.clear();
      v.phase = "Canceled";
      v.message = "canceled (spec.canceled)";
      run.dirty = true;
    };
    for (auto& vm : run.vms) {
      if (vm.phase != "Pending" && vm.phase != "Stopping" && vm.phase != "Copying") continue;
      for (auto* v : volumes_of(vm)) cancel_volume(*v);
      vm.phase = "Canceled";
      vm.message = "canceled (spec.canceled)";
      run.dirty = true;
      restore_power(vm);  // (retried below until it is done)
    }
    for (auto& v : run.volumes)
      if (v.vm.empty()) cancel_volume(v);
  }

  void step() {
    if (run.phase == "Completed" || run.phase == "Failed" || run.phase == "Canceled") return;
    if (run.mig.canceled) cancel();
    for (auto& vm : run.vms) step_vm(vm);
    // Claims no VM uses: copied on their own (a cutover has nothing to repoint).
    if (!run.mig.rollback)
      for (auto& v : run.volumes)
        if (v.vm.empty()) step_copy(v);
    if (run.mig.rollback)
      for (auto& v : run.volumes)
        if (v.vm.empty() && v.phase == "Pending") remove_new_volume(v);
    bool done = true, failed = false;
    for (auto& vm : run.vms) {
      bool final = final_vm_phase(vm.phase);
      if (final && vm.halted_by_us) restore_power(vm);  // an earlier try failed
      done = done && final && !vm.halted_by_us;
      failed = failed || vm.phase == "Failed";
    }
    for (const auto& v : run.volumes) {
      done = done && final_phase(v.phase);
      failed = failed || v.phase == "Failed";
    }
    if (!done) return;
    run.phase = failed ? "Failed" : run.mig.canceled ? "Canceled" : "Completed";
    run.completed = now_iso();
    run.drop_condition("Running");
    if (run.mig.canceled && !failed) {
      run.condition("Canceled", "Advisory", "The migration has been canceled.");
    } else if (failed) {
      std::string why;
      for (const auto& vm : run.vms)
        if (vm.phase == "Failed") why = "VM " + vm.name + ": " + vm.message;
      for (const auto& v : run.volumes)
        if (v.phase == "Failed" && why.empty()) why = "claim " + v.pvc + ": " + v.message;
      run.condition("Failed", "Critical", why);
    } else {
      run.condition("Succeeded", "Advisory",
                    run.mig.rollback ? "The migration " + run.rollback_of + " was rolled back"
                    : run.mig.stage  ? "The stage copy is done"
                                     : "The VMs use their new claims");
    }
    if (!run.mig.stage && !run.mig.rollback) {  // (also what a canceled cutover switched)
      std::string old;
      for (const auto& v : run.volumes)
        if (v.phase == "Completed" && switched(v))
          old += (old.empty() ? "" : ", ") + v.ns + "/" + v.pvc;
      if (!old.empty())
        run.condition("SourceVolumesKept", "Warn",
                      "The old claims " + old +
                          " are kept: delete them once the VMs run well on the new ones");
    }
    run.dirty = true;
    kLog.info("storage migration ended",
              {{"migration", run.mig.ns + "/" + run.mig.name}, {"phase", run.phase}});
  }
};

StorageMigrator::StorageMigrator(MigratorDeps deps) : deps_(std::move(deps)) {}

StorageMigrator::~StorageMigrator() { stop(); }

void StorageMigrator::start() {
  started_ = now_seconds();
  thread_ = std::thread([this] { main(); });
}

void StorageMigrator::stop() {
  stop_ = true;
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool StorageMigrator::owns(const std::string& task_id) {
  return task_id.rfind(kTaskPrefix, 0) == 0;
}

ferry::v1::ClaimReply StorageMigrator::on_claim(const ferry::v1::ClaimRequest& req) {
  ferry::v1::ClaimReply rep;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(req.task_id());
  if (it == live_.end() || it->second.node != req.node()) {
    rep.set_proceed(false);
    rep.set_reason("storage migration task no longer wanted");
    return rep;
  }
  rep.set_proceed(true);
  if (!it->second.key.empty()) rep.set_tls_psk(it->second.key);
  return rep;
}

void StorageMigrator::on_progress(const ferry::v1::TaskProgress& p) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.count(p.task_id())) return;
  if (p.has_serving()) {
    bool first = !serving_.count(p.task_id());
    serving_[p.task_id()] = p.serving();
    if (first) cv_.notify_all();
  } else {
    bytes_done_[p.task_id()] = p.bytes_done();
  }
}

void StorageMigrator::on_result(const ferry::v1::TaskResult& r) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.count(r.task_id())) return;
  results_[r.task_id()] = r;
  cv_.notify_all();
}

void StorageMigrator::main() {
  kLog.info("storage migration controller started");
  while (!stop_) {
    try {
      pass();
    } catch (const std::exception& e) {
      kLog.error("storage migration pass failed", {{"error", e.what()}});
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, deps_.poll, [this] { return stop_.load(); });
  }
}

// MigPlans get MTC's Ready condition, or a Critical condition per problem
// found without running anything: the fields, each claim's namespace, and
// that each target class exists. Written only when it changes.
void StorageMigrator::check_plans() {
  Cluster& cl = *deps_.cluster;
  auto plans = cl.list("MigPlan");
  if (!plans.ok()) return;
  std::map<std::string, bool> class_exists;
  for (const auto& doc : *plans) {
    if (stop_) return;
    std::vector<FieldError> errors;
    std::vector<std::string> problems;
    auto plan = read_mig_plan(doc, errors);
    for (const auto& e : errors) problems.push_back(e.to_string());
    bool unknown = false;
    if (plan) {
      const std::string where = "MigPlan " + plan->ns + "/" + plan->name;
      for (const auto& pv : plan->volumes) {
        std::string base = "spec.persistentVolumes[" + std::to_string(pv.index) + "]";
        if (std::find(plan->namespaces.begin(), plan->namespaces.end(), pv.pvc_ns) ==
            plan->namespaces.end())
          problems.push_back(where + ": " + base + ".pvc.namespace: \"" + pv.pvc_ns +
                             "\" is not one of the plan's namespaces (spec.namespaces)");
        if (pv.action != "copy") continue;
        if (!class_exists.count(pv.storage_class)) {
          auto c = cl.class_exists(pv.storage_class);
          if (!c.ok()) {
            unknown = true;
            break;
          }
          class_exists[pv.storage_class] = *c;
        }
        if (!class_exists[pv.storage_class])
          problems.push_back(where + ": " + base + ".selection.storageClass: StorageClass \"" +
                             pv.storage_class + "\" not found");
      }
    }
    if (unknown) continue;  // the API server: next pass
    Json conditions = Json::array();
    if (problems.empty())
      conditions.push_back({{"type", "Ready"},
                            {"status", "True"},
                            {"category", "Required"},
                            {"message", "The migration plan is ready."}});
    for (const auto& p : problems)
      conditions.push_back(
          {{"type", "InvalidPlan"}, {"status", "True"}, {"category", "Critical"}, {"message", p}});
    // Unchanged (types and messages): nothing to write.
    const Json& old = list_at(doc, {"status", "conditions"});
    bool same = old.size() == conditions.size();
    for (size_t i = 0; same && i < old.size(); i++)
      same = str_at(old[i], {"type"}) == str_at(conditions[i], {"type"}) &&
             str_at(old[i], {"message"}) == str_at(conditions[i], {"message"});
    if (same) continue;
    for (auto& c : conditions) c["lastTransitionTime"] = now_iso();
    Json obj = doc;
    obj["status"] = {{"conditions", conditions}};
    Status r = cl.write_status(obj);
    if (!r.ok())
      kLog.warn("MigPlan status not written",
                {{"plan",
                  str_at(doc, {"metadata", "namespace"}) + "/" + str_at(doc, {"metadata", "name"})},
                 {"error", r.error().message}});
  }
}

void StorageMigrator::pass() {
  Cluster& cl = *deps_.cluster;
  check_plans();
  auto migs = cl.list("MigMigration");
  if (!migs.ok()) return;  // no CRD yet, or the API server is away
  std::vector<Json> all = std::move(*migs);
  std::sort(all.begin(), all.end(), [](const Json& a, const Json& b) {
    return str_at(a, {"metadata", "creationTimestamp"}) <
           str_at(b, {"metadata", "creationTimestamp"});
  });
  const std::optional<Nodes> nodes = deps_.nodes();
  std::set<std::string> present;
  for (auto& doc : all) {
    if (stop_) return;
    std::string uid = str_at(doc, {"metadata", "uid"});
    present.insert(uid);
    std::string phase = str_at(doc, {"status", "phase"});
    if (phase == "Completed" || phase == "Failed" || phase == "Canceled") {
      runs_.erase(uid);
      continue;
    }
    auto& slot = runs_[uid];
    if (!slot) slot = load_run(doc, nodes);
    Run& run = *slot;
    // It may come at any time, and once seen it stays (the status keeps it).
    run.mig.canceled = run.mig.canceled || bool_at(doc, {"spec", "canceled"});
    RunDriver d{*this, run, cl, nodes};
    try {
      drive(d, all);
      run.exceptions = 0;
    } catch (const std::exception& e) {
      // A bug or an object of a shape nobody expected: after a few passes in
      // a row the run fails rather than hold its plan forever.
      kLog.error("storage migration step failed",
                 {{"migration", run.mig.ns + "/" + run.mig.name}, {"error", e.what()}});
      if (++run.exceptions >= 5) {
        d.abandon();
        run.condition("Failed", "Critical", std::string("internal error: ") + e.what());
        run.phase = "Failed";
        run.completed = now_iso();
        run.dirty = true;
      }
    }
    // The status, whenever something changed (at most once a pass).
    if (run.dirty) {
      Json obj = doc;
      obj["status"] = run.status();
      Status r = cl.write_status(obj);
      if (r.ok()) {
        run.dirty = false;
        if (run.phase != "Running" && !run.phase.empty()) runs_.erase(uid);
      } else {
        kLog.warn("MigMigration status not written",
                  {{"migration", run.mig.ns + "/" + run.mig.name}, {"error", r.error().message}});
      }
    }
  }
  // Deleted MigMigrations: their tasks stop, the VMs they halted run again.
  for (auto it = runs_.begin(); it != runs_.end();) {
    if (present.count(it->first)) {
      ++it;
      continue;
    }
    RunDriver d{*this, *it->second, cl, nodes};
    d.abandon();
    kLog.info("storage migration deleted while it ran",
              {{"migration", it->second->mig.ns + "/" + it->second->mig.name}});
    it = runs_.erase(it);
  }
}

std::unique_ptr<StorageMigrator::Run> StorageMigrator::load_run(const Json& doc,
                                                                const std::optional<Nodes>& nodes) {
  auto run = std::make_unique<Run>();
  std::vector<FieldError> errors;
  auto mig = read_mig_migration(doc, errors);
  if (mig) run->mig = *mig;
  run->mig.uid = str_at(doc, {"metadata", "uid"});
  run->mig.name = str_at(doc, {"metadata", "name"});
  run->mig.ns = str_at(doc, {"metadata", "namespace"});
  const Json& st = at(doc, {"status"});
  if (str_at(st, {"phase"}) == "Running") {
    // A restart: carry on from the status. Copies under way start a new
    // attempt (their stage checkpoint lets them go on where they were); the
    // tasks of the attempt the status names, and of the one after it (which
    // may have been handed over before its status was written), are stopped.
    RunDriver d{*this, *run, *deps_.cluster, nodes};
    run->phase = "Running";
    run->conditions = list_at(st, {"conditions"});
    run->started = str_at(st, {"startTimestamp"});
    run->rollback_of = str_at(st, {"rollbackOf"});
    run->mig.canceled = run->mig.canceled || bool_at(st, {"canceled"});
    for (const auto& v : list_at(st, {"volumes"})) {
      VolumeState vs = VolumeState::from_json(v);
      if (vs.phase == "Serving" || vs.phase == "Copying") {
        for (int a : {vs.attempt, vs.attempt + 1}) {
          VolumeState old = vs;
          old.attempt = a;
          ferry::v1::CancelTask c;
          c.set_task_id(d.task_id(old, "s"));
          (void)deps_.cancel_task(vs.source_node, c);
          c.set_task_id(d.task_id(old, "c"));
          (void)deps_.cancel_task(vs.target_node, c);
        }
        vs.attempt += 1;  // the next one sent is attempt + 2
        vs.phase = "Pending";
        vs.message = "the coordinator restarted; copying again from where it was";
      }
      run->volumes.push_back(vs);
    }
    for (const auto& v : list_at(st, {"vms"})) run->vms.push_back(VmState::from_json(v));
  }
  if (!errors.empty()) {
    for (const auto& e : errors) run->condition("InvalidMigration", "Critical", e.to_string());
    run->phase = "Failed";
    run->completed = now_iso();
  }
  return run;
}

void StorageMigrator::drive(RunDriver& d, const std::vector<Json>& all) {
  Run& run = d.run;
  Cluster& cl = *deps_.cluster;
  if (run.phase.empty() && run.mig.canceled) {  // canceled before it started
    run.phase = "Canceled";
    run.started = run.completed = now_iso();
    run.condition("Canceled", "Advisory", "The migration has been canceled.");
    return;
  }
  if (run.phase.empty()) {
    run.started = now_iso();
    auto plan_doc = cl.get("MigPlan", run.mig.plan_ns, run.mig.plan_name);
    std::vector<FieldError> errors;
    std::optional<MigPlan> plan;
    if (!plan_doc.ok()) return;  // the API server could not answer: next pass
    if (!*plan_doc) {
      d.refuse({"MigMigration " + run.mig.ns + "/" + run.mig.name +
                ": spec.migPlanRef.name: MigPlan " + run.mig.plan_ns + "/" + run.mig.plan_name +
                " not found"});
    } else if (!(plan = read_mig_plan(**plan_doc, errors))) {
      std::vector<std::string> p;
      for (const auto& e : errors) p.push_back(e.to_string());
      d.refuse(p);
    } else {
      run.plan = *plan;
      auto built = d.build(all);
      if (built == RunDriver::Built::kRetry) {
        run.volumes.clear();
        run.vms.clear();
        run.plan = MigPlan{};
        return;  // the API server or the agents could not answer: next pass
      }
      if (built == RunDriver::Built::kReady) {
        run.phase = "Running";
        run.condition("Running", "Advisory",
                      run.mig.rollback ? "Rolling back " + run.rollback_of
                      : run.mig.stage  ? "Staging: copying the volumes of stopped VMs"
                                       : "Cutover: stopping, syncing and switching VMs");
      }
    }
    run.dirty = true;
  } else if (run.phase == "Running" && run.plan.name.empty()) {
    // A restart: nothing moves before the plan is read again.
    auto plan_doc = cl.get("MigPlan", run.mig.plan_ns, run.mig.plan_name);
    if (!plan_doc.ok()) return;
    std::vector<FieldError> errors;
    std::optional<MigPlan> plan;
    if (!*plan_doc || !(plan = read_mig_plan(**plan_doc, errors))) {
      d.abandon();
      run.condition("Failed", "Critical",
                    "MigPlan " + run.mig.plan_ns + "/" + run.mig.plan_name +
                        " was deleted or became invalid while the migration ran");
      run.phase = "Failed";
      run.completed = now_iso();
      run.dirty = true;
      return;
    }
    run.plan = *plan;
  }
  if (run.phase == "Running") d.step();
}

}  // namespace ferry::coordinator::storage
