// The migration runner's task protocol with the agents and its cold
// pipeline; warm.cc holds the precopy loop, hooks.cc the hook phases.
#include "coordinator/runner/migration_runner.h"

#include <algorithm>
#include <chrono>
#include <csignal>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/model/validate.h"
#include "common/protocol/credentials.h"
#include "common/protocol/subjects.h"
#include "coordinator/status/conditions.h"
#include "coordinator/status/outcome.h"
#include "coordinator/status/reports.h"
#include "coordinator/target/kubevirt.h"

namespace ferry::coordinator::runner {

using migration::Phase;
using model::Json;
using status::set_task_state;
using status::task_state;
using status::TaskState;

namespace {
const Logger kLog("coordinator");

constexpr uint64_t kMiB = 1 << 20;

Json new_pipeline(bool warm, const Json& hooks) {
  Json steps = Json::array();
  for (const auto& s : migration::step_names(warm)) {
    if ((s == "PreHook" || s == "PostHook") && !hooks.contains(s))
      continue;  // only listed when a hook is set
    steps.push_back({{"name", s}, {"phase", "Pending"}});
  }
  return steps;
}

// The owner of a VM's space reservation in the AgentRegistry.
std::string space_owner(const ResourceKey& mkey, const std::string& vm_id) {
  return mkey.to_string() + "/" + vm_id;
}

bool vm_terminal(const Json& vm) { return migration::is_terminal_name(vm.value("phase", "")); }

// The user-facing step a phase of this VM runs in (warm VMs show a Cutover step).
std::string step_for(const Json& vm, Phase p) {
  if (!vm.contains("warm")) return migration::step_of(p);
  auto stage = migration::stage_from_name(vm["warm"].value("stage", "initial"));
  return migration::warm_step_of(p, stage.value_or(migration::WarmStage::kInitial));
}

}  // namespace

MigrationRunner::MigrationRunner(Deps d)
    : host_(d.host),
      opts_(d.opts),
      loop_(d.loop),
      status_(d.statuses),
      agents_(d.agents),
      tasks_(d.tasks),
      metrics_(d.metrics),
      store_(&d.store),
      vm_sink_(std::move(d.vm_sink)),
      started_at_(now_seconds()),
      hooks_(std::move(d.hooks)) {}

MigrationRunner::~MigrationRunner() = default;

void MigrationRunner::stop_hooks() { hooks_.reset(); }

Status MigrationRunner::restore(const ResourceKey& k) {
  auto it = status_.find(k);
  if (it == status_.end()) return {};
  try {
    for (auto& vm : it->second["vms"]) {
      if (vm.contains("conversion") && vm["conversion"].contains("taskId"))
        tasks_.track(vm["conversion"]["taskId"], TaskRef{k, vm.value("id", ""), kConversionTask});
      if (vm.contains("inspection") && vm["inspection"].contains("taskId"))
        tasks_.track(vm["inspection"]["taskId"], TaskRef{k, vm.value("id", ""), kInspectionTask});
      for (auto& d : vm["disks"]) {
        TaskState state = task_state(d);
        if (d.contains("taskId"))
          tasks_.track(d["taskId"], TaskRef{k, vm.value("id", ""), d.value("key", 0)});
        if (status::in_agent(state))
          tasks_.hold(d.value("taskId", ""), d.value("sourceHost", ""), d.value("node", ""));
        if (state == TaskState::kWaiting || state == TaskState::kResolving)
          set_task_state(d, TaskState::kPending);  // in-memory task lost
      }
    }
  } catch (const std::exception& e) {
    return Error(ErrorCode::kInvalidArgument, e.what());
  }
  status_.mark_all_vms(k);
  return {};
}

void MigrationRunner::resume() {
  started_at_ = now_seconds();
  // Nodes holding live VMs' work get the whole --agent-timeout to say hello.
  for (const auto& [k, st] : status_)
    if (k.kind == "Migration" && st.contains("vms"))
      for (const auto& vm : st["vms"])
        if (!vm_terminal(vm)) {
          std::string node = vm.value("node", "");
          if (!node.empty()) agents_.expect(node, now_seconds());
          std::map<std::string, uint64_t> uncopied;  // its reservation, as placement made it
          for (const auto& d : vm.value("disks", Json::array()))
            if (task_state(d) != TaskState::kCompleted)
              uncopied[d.value("storageClass", "")] += d.value("capacity", uint64_t{0});
          if (!node.empty() && !uncopied.empty() && vm.value("phase", "") != "CopyingPaused")
            agents_.reserve(space_owner(k, vm.value("id", "")), node, uncopied);
          const Json& ins = vm.value("inspection", Json::object());
          if (ins.is_object() && !ins.value("node", "").empty())
            agents_.expect(ins.value("node", ""), now_seconds());
        }
  for (const auto& [k, st] : status_)
    if (k.kind == "Migration" && st.value("phase", "") == "Running") {
      kLog.info("resuming migration", {{"migration", k.to_string()}});
      pump(k);
    }
  // Precopy snapshots of failed or canceled warm VMs not yet removed.
  for (auto& [k, st] : status_) {
    if (k.kind != "Migration") continue;
    for (const auto& vm : st.value("vms", Json::array()))
      if (vm_terminal(vm) && vm.contains("warm") &&
          vm["warm"].value("snapshotCleanup", "Completed") != "Completed")
        cleanup_warm_snapshots(k, vm.value("id", ""));
  }
}

void MigrationRunner::target_volume(const Json& d, ferry::v1::TargetVolume* t) const {
  t->set_storage_class(d.value("storageClass", ""));
  t->set_path(d.value("relativePath", ""));
  t->set_size_bytes(d.value("capacity", uint64_t{0}));
  t->set_block(d.value("volumeMode", "") == "Block");
  if (opts_.kubernetes) {  // the PVC the VM will use: <targetNamespace>/<volume>
    const std::string rel = d.value("relativePath", "");
    auto* c = t->mutable_claim();
    c->set_namespace_(rel.substr(0, rel.find('/')));
    c->set_name(d.value("volume", ""));
    c->set_request_bytes(d.value("requestedSize", uint64_t{0}));
  }
}

void MigrationRunner::on_heartbeat(const std::string& subject, const std::string& data) {
  ferry::v1::AgentHeartbeat hb;
  if (!hb.ParseFromString(data) || hb.node().empty())
    return bad_input("heartbeat", "not an AgentHeartbeat (" + subject + ")");
  if (subject != subjects::heartbeat(hb.node()))
    return bad_input("heartbeat", "heartbeat of node \"" + hb.node() + "\" sent on " + subject);
  bool is_new = agents_.heartbeat(hb, now_seconds());
  tasks_.set_node_limit(hb.node(), hb.max_tasks() ? static_cast<int>(hb.max_tasks()) : 4);
  if (is_new) {
    kLog.info("agent joined", {{"node", hb.node()}});
    dispatch();
  }
}

void MigrationRunner::expire_agents() {
  for (const auto& node : agents_.expire(now_seconds())) node_lost(node);
}

void MigrationRunner::node_lost(const std::string& node) {
  kLog.warn("agent gone",
            {{"node", node}, {"silentSeconds", std::to_string(agents_.expiry_seconds())}});
  metrics_.heartbeat_age.Remove(&metrics_.heartbeat_age.Add({{"node", node}}));
  std::string why = "node " + node + ": its agent has not been heard from for " +
                    std::to_string(static_cast<int>(agents_.expiry_seconds())) +
                    " s (--agent-timeout)";
  // Every live VM whose volumes or running inspection are on that node fails:
  // its data cannot be reached. fail_vm frees the transfer slots, and the
  // cancels wait in JetStream in case the agent ever comes back.
  std::vector<std::pair<ResourceKey, std::string>> lost;
  for (const auto& [k, st] : status_) {
    if (k.kind != "Migration" || !st.contains("vms")) continue;
    for (const auto& vm : st["vms"]) {
      if (vm_terminal(vm) || vm.value("phase", "Pending") == "Pending") continue;
      const Json& ins = vm.value("inspection", Json::object());
      bool inspecting =
          ins.is_object() && ins.value("node", "") == node && status::in_agent(task_state(ins));
      if (vm.value("node", "") == node || inspecting) lost.emplace_back(k, vm.value("id", ""));
    }
  }
  for (const auto& [mkey, vm_id] : lost) {
    Json* vm = vm_status(mkey, vm_id);
    bool volumes = vm && vm->value("node", "") == node;
    fail_vm(mkey, vm_id,
            why + (volumes ? "; the VM's volumes are on that node" : "; the inspection ran there"));
  }
  dispatch();
}

void MigrationRunner::on_progress(const std::string& subject, const std::string& data) {
  ferry::v1::TaskProgress p;
  if (!p.ParseFromString(data) || p.task_id().empty())
    return bad_input("progress", "not a TaskProgress (" + subject + ")");
  const TaskRef* ref = tasks_.find(p.task_id());
  if (!ref) return;  // a task of a finished or deleted migration
  Json* vm = vm_status(ref->migration, ref->vm_id);
  if (!vm) return;
  if (ref->disk_key == kConversionTask) {  // conversion: virt-v2v's latest status line
    if (Json* s = pipeline_step(*vm, "ImageConversion")) (*s)["message"] = p.message();
    status_.touch(ref->migration);
    return;
  }
  uint64_t done = 0, total = 0;
  for (auto& d : (*vm)["disks"]) {
    if (d.value("taskId", "") == p.task_id() && !d.value("node", "").empty() &&
        subject != subjects::progress(d.value("node", "")))
      return bad_input("progress", "progress of task " + p.task_id() + " sent on " + subject);
    if (d.value("taskId", "") == p.task_id() &&
        (p.bytes_done() > d.value("capacity", uint64_t{0}) ||
         p.bytes_total() > d.value("capacity", uint64_t{0})))
      return bad_input(
          "progress", "task " + p.task_id() + " claims " + std::to_string(p.bytes_done()) + " of " +
                          std::to_string(p.bytes_total()) + " bytes of a " +
                          std::to_string(d.value("capacity", uint64_t{0})) + "-byte disk");
    if (d.value("taskId", "") == p.task_id() && task_state(d) != TaskState::kCompleted) {
      uint64_t before = d.value("bytesDone", uint64_t{0});
      if (p.bytes_done() > before)
        metrics_.data_transferred.Add({{"plan", status_[ref->migration].value("plan", "")}})
            .Increment(static_cast<double>(p.bytes_done() - before));
      d["bytesDone"] = p.bytes_done();
      d["bytesTotal"] = p.bytes_total();
      d["rate"] = p.bytes_per_second();
      if (task_state(d) == TaskState::kQueued) set_task_state(d, TaskState::kRunning);
    }
    done += d.value("bytesDone", uint64_t{0});
    total += d.value("capacity", uint64_t{0});
  }
  if (Json* s = pipeline_step(*vm, "DiskTransfer"))
    s->operator[]("progress") = {{"completed", done / kMiB}, {"total", total / kMiB}};
  status_.touch(ref->migration);
}

void MigrationRunner::keep_credentials(const std::string& task_id, ferry::v1::AgentTask& task) {
  auto headers = protocol::take_source_headers(task);
  if (!headers.empty()) tasks_.set_credentials(task_id, std::move(headers));
}

bool MigrationRunner::credentials_ready(const TaskRef& ref, const ferry::v1::ClaimRequest& req) {
  const std::string& id = req.task_id();
  const auto* have = tasks_.credentials(id);
  if (have && !req.credentials_refused()) return true;
  if (fetching_credentials_.count(id)) return false;
  // None here (the task was stored by an earlier coordinator), or refused
  // (the session behind it ended): one from the source's session pool.
  std::vector<std::string> refused = have ? *have : std::vector<std::string>{};
  tasks_.drop_credentials(id);
  Error err;
  auto slot = source_pool(ref.migration, &err);
  if (!slot) {
    fail_vm(ref.migration, ref.vm_id, err.message);
    return false;
  }
  fetching_credentials_.insert(id);
  using Headers = Result<std::vector<std::string>>;
  loop_.run_blocking<Headers>(
      [slot, refused] {
        return slot->with<Headers>(
            [&](SourceProvider& p) -> Headers { return p.source_credentials(refused); });
      },
      [this, ref, id](Headers h) {
        fetching_credentials_.erase(id);
        if (!h.ok())
          return fail_vm(ref.migration, ref.vm_id,
                         "getting a source credential: " + h.error().message);
        tasks_.set_credentials(id, std::move(*h));
      });
  return false;
}

ferry::v1::ClaimReply MigrationRunner::on_claim(const bus::Message& msg) {
  ferry::v1::ClaimRequest req;
  ferry::v1::ClaimReply rep;
  if (!req.ParseFromString(msg.data) || req.task_id().empty()) {
    bad_input("claim", "not a ClaimRequest (" + msg.subject + ")");
    rep.set_reason("not a ClaimRequest");
  } else {
    const TaskRef* ref = tasks_.find(req.task_id());
    // Handed to JetStream, its ack not yet back: the agent was quicker.
    bool publishing = tasks_.publishing(req.task_id());
    Json* vm = ref ? vm_status(ref->migration, ref->vm_id) : nullptr;
    if (!vm) {
      rep.set_reason("unknown task");
    } else if (vm_terminal(*vm)) {
      rep.set_reason("VM is " + vm->value("phase", ""));
    } else if (std::string owner = ref->disk_key == kInspectionTask
                                       ? vm->value("inspection", Json::object()).value("node", "")
                                       : vm->value("node", "");
               !owner.empty() && msg.subject != subjects::claim(owner)) {
      // Subject permissions already keep a node to its own claim subject;
      // this keeps another node's task, and its credential, from it anyway.
      bad_input("claim",
                "task " + req.task_id() + " is for node " + owner + ", claimed on " + msg.subject);
      rep.set_reason("task is for node " + owner);
    } else if (req.needs_credentials() && !credentials_ready(*ref, req)) {
      rep.set_later(true);  // asked again in 2 s, by when it is here
      rep.set_reason("getting a fresh source credential");
    } else if (ref->disk_key < 0) {
      const char* what = ref->disk_key == kInspectionTask ? "inspection" : "conversion";
      Json& conv = (*vm)[what];
      if (publishing && (!conv.is_object() || conv.value("taskId", "") != req.task_id()))
        conv = {{"taskId", req.task_id()},
                {"state", TaskState::kQueued}};  // the ack fills in the rest
      TaskState st = task_state(conv);
      if (conv.value("taskId", "") == req.task_id() && status::in_agent(st)) {
        rep.set_proceed(true);
        set_task_state(conv, TaskState::kRunning);
        status_.touch(ref->migration);
      } else {
        rep.set_reason(
            std::string(what) + " is " +
            (st == TaskState::kUnknown ? std::string("not wanted") : status::task_state_name(st)));
      }
    } else {
      for (auto& d : (*vm)["disks"])
        if (d.value("taskId", "") == req.task_id()) {
          TaskState st = task_state(d);
          if (status::in_agent(st) || (st == TaskState::kWaiting && publishing)) {
            rep.set_proceed(true);
            set_task_state(d, TaskState::kRunning);
            status_.touch(ref->migration);
          } else if (st == TaskState::kPending || st == TaskState::kResolving ||
                     st == TaskState::kWaiting) {
            // A message stored before a restart; this coordinator stores the
            // task again under the same dedupe id, so this message must stay.
            rep.set_later(true);
            rep.set_reason(std::string("disk is ") + status::task_state_name(st) +
                           "; not handed over yet");
          } else if (st == TaskState::kAborting) {  // a failed warm precopy's task: it will not run
            rep.set_reason("disk is Aborted");
            set_task_state(d, TaskState::kAborted);
            status_.touch(ref->migration);
            ResourceKey mk = ref->migration;
            std::string vid = ref->vm_id;
            loop_.post([this, mk, vid] { advance(mk, vid); });
          } else {
            rep.set_reason(std::string("disk is ") + status::task_state_name(st));
          }
        }
    }
  }
  if (rep.proceed() && req.needs_credentials())
    if (const auto* c = tasks_.credentials(req.task_id()))
      for (const auto& h : *c) rep.add_source_headers(h);
  return rep;
}

void MigrationRunner::on_result(const ferry::v1::TaskResult& r) {
  const TaskRef* found = tasks_.find(r.task_id());
  if (!found) return;
  TaskRef ref = *found;
  tasks_.drop_credentials(r.task_id());  // its claim is over
  Json* vm = vm_status(ref.migration, ref.vm_id);
  if (!vm) return;
  if (ref.disk_key == kInspectionTask) return on_inspection_result(ref, *vm, r);
  if (ref.disk_key == kConversionTask) return on_conversion_result(ref, *vm, r);
  Json* disk = nullptr;
  for (auto& d : (*vm)["disks"])
    if (d.value("taskId", "") == r.task_id()) disk = &d;
  if (!disk) return;
  TaskState state = task_state(*disk);
  tasks_.release(r.task_id());
  if (state == TaskState::kAborting) {
    // A task of a failed warm precopy has stopped: its snapshot may go now.
    set_task_state((*disk), TaskState::kAborted);
    save_status(ref.migration);
    advance(ref.migration, ref.vm_id);
    return dispatch();
  }
  if (vm_terminal(*vm) || state == TaskState::kCompleted || state == TaskState::kCanceled ||
      state == TaskState::kAborted) {
    save_status(ref.migration);
    dispatch();
    return;
  }
  if (r.has_success()) {
    const auto& s = r.success();
    set_task_state((*disk), TaskState::kCompleted);
    uint64_t before = disk->value("bytesDone", uint64_t{0}),
             cap = disk->value("capacity", uint64_t{0});
    // Warm precopies move deltas: count what was read, not the disk size.
    uint64_t moved = vm->contains("warm") ? s.bytes_read() : (cap > before ? cap - before : 0);
    if (moved > 0)
      metrics_.data_transferred.Add({{"plan", status_[ref.migration].value("plan", "")}})
          .Increment(static_cast<double>(moved));
    (*disk)["bytesDone"] = cap;
    (*disk)["result"] = status::DiskResult::from(s);
    (*disk)["path"] = s.volume_path();
    kLog.info("disk transferred", {{"vm", vm->value("name", "")},
                                   {"disk", disk->value("file", "")},
                                   {"node", r.node()},
                                   {"seconds", std::to_string(s.seconds())}});
    save_status(ref.migration);
    advance(ref.migration, ref.vm_id);
  } else {
    set_task_state((*disk), TaskState::kFailed);
    std::string msg =
        "disk " + disk->value("file", "") + " on node " + r.node() + ": " + r.failure().message();
    if (vm->contains("warm"))
      warm_cycle_failed(ref.migration, ref.vm_id, msg);  // retried with the next snapshot
    else
      fail_vm(ref.migration, ref.vm_id, msg);
  }
  dispatch();
}

void MigrationRunner::on_conversion_result(const TaskRef& ref, Json& vm,
                                           const ferry::v1::TaskResult& r) {
  Json& conv = vm["conversion"];
  if (!conv.is_object() || conv.value("taskId", "") != r.task_id() || vm_terminal(vm)) return;
  if (r.has_conversion()) {
    const auto& c = r.conversion();
    set_task_state(conv, TaskState::kCompleted);
    conv["report"] = status::ConversionReport::from(c);
    if (Json* s = pipeline_step(vm, "ImageConversion")) s->erase("message");
    kLog.info("guest converted", {{"vm", vm.value("name", "")}, {"os", c.os_product()}});
    save_status(ref.migration);
    return advance(ref.migration, ref.vm_id);
  }
  set_task_state(conv, r.state() == ferry::v1::TASK_STATE_CANCELED ? TaskState::kCanceled
                                                                   : TaskState::kFailed);
  // The copied volumes stay: `ferryctl retry` runs only the conversion again.
  fail_vm(ref.migration, ref.vm_id,
          "guest conversion on node " + r.node() + " failed: " + r.failure().message());
}

void MigrationRunner::on_inspection_result(const TaskRef& ref, Json& vm,
                                           const ferry::v1::TaskResult& r) {
  Json& ins = vm["inspection"];
  if (!ins.is_object() || ins.value("taskId", "") != r.task_id() || vm_terminal(vm)) return;
  const Resource* plan = plan_of(ref.migration);
  std::string name = vm.value("name", "");
  if (!r.has_inspection()) {
    // Could not inspect (e.g. the source refused the reads): no verdict on the
    // guest, so no reason to stop; conversion will check it. Said in the status.
    set_task_state(ins, TaskState::kCompleted);
    ins["warning"] = "preflight inspection on node " + r.node() +
                     " could not run: " + r.failure().message() +
                     "; the guest is checked at conversion instead";
    kLog.warn("preflight inspection could not run",
              {{"vm", name}, {"error", r.failure().message()}});
    save_status(ref.migration);
    return advance(ref.migration, ref.vm_id);
  }
  const auto& x = r.inspection();
  set_task_state(ins, TaskState::kCompleted);
  ins["report"] = status::InspectionReport::from(x);
  if (x.found_os() && x.concerns_size() == 0) {
    kLog.info("preflight inspection passed", {{"vm", name}, {"os", x.os_product()}});
    save_status(ref.migration);
    return advance(ref.migration, ref.vm_id);
  }
  // The guest cannot be converted: say so on the Plan, and never touch the VM.
  std::string why;
  for (const auto& c : x.concerns()) why += (why.empty() ? "" : "; ") + c;
  if (why.empty()) why = "no operating system was found on its disks";
  std::string msg = "VM \"" + name + "\": preflight inspection: " + why;
  if (plan) {
    Json& pst = status_[plan->key()];
    Json cond = {{"type", "VMGuestInspectionFailed"},
                 {"status", "True"},
                 {"category", "Critical"},
                 {"message", plan->key().to_string() + ": " + msg +
                                 " (the VM was not started; spec.skipPreflightInspection: true "
                                 "migrates it anyway)"},
                 {"items", Json::array({name})}};
    // Kept beside the recomputed validation conditions until the Plan runs again.
    bool merged = false;
    for (auto& c : pst["inspectionConditions"]) {
      c["message"] = c.value("message", "") + "; " + msg;
      c["items"].push_back(name);
      merged = true;
    }
    if (!merged) pst["inspectionConditions"] = Json::array({cond});
    save_status(plan->key());
  }
  fail_vm(ref.migration, ref.vm_id, "preflight inspection: " + why);
}

void MigrationRunner::retry(const api::RetryRequest& req, Reply reply) {
  ResourceKey k{"Migration", req.migration.ns, req.migration.name};
  if (!status_.count(k))
    return reply(api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + " not found")));
  for (const auto& [sk, st] : status_)
    if (sk.kind == "Migration" && !(sk == k) && st.value("phase", "") == "Running" &&
        st.value("plan", "") == status_[k].value("plan", ""))
      return reply(
          api::error_reply(Error(ErrorCode::kFailedPrecondition,
                                 st.value("plan", "") + " is being run by " + sk.to_string())));
  Json retried = Json::array();
  for (auto& vm : status_[k]["vms"]) {
    if (vm.value("name", "") != req.vm && vm.value("id", "") != req.vm) continue;
    const std::string at = vm.value("phase", "") == "Failed" ? vm["error"].value("step", "") : "";
    const bool hook =
        (at == "PreHook" || at == "PostHook") && vm.contains("hooks") && vm["hooks"].contains(at);
    if (at != "ImageConversion" && !hook)
      return reply(api::error_reply(Error(
          ErrorCode::kFailedPrecondition,
          k.to_string() + ": --vm: VM \"" + vm.value("name", "") +
              "\" did not fail at ImageConversion, PreHook or PostHook; only a conversion or a "
              "hook can be retried")));
    if (hook) {
      // The hook runs again from its first attempt; what came before it stays.
      vm["phase"] = at;
      set_task_state(vm["hooks"][at], TaskState::kPending);
    } else {
      // Back to ConvertGuest with the copied volumes as they are.
      vm["phase"] = "ConvertGuest";
      set_task_state(vm["conversion"], TaskState::kFailed);
    }
    vm.erase("error");
    vm.erase("completed");
    for (auto& s : vm["pipeline"])
      if (s["name"] == at) {
        s["phase"] = "Running";
        s.erase("error");
        s.erase("completed");
        s.erase("output");
      } else if (s["phase"] == "Failed") {
        s["phase"] = "Pending";
      }
    status_[k]["phase"] = "Running";
    status_[k].erase("completed");
    (void)vm_status(k, vm.value("id", ""));  // marks it changed
    retried.push_back(vm.value("name", ""));
    save_status(k);
    advance(k, vm.value("id", ""));
  }
  if (retried.empty())
    return reply(
        api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + ": --vm: VM \"" + req.vm +
                                                         "\" is not part of this migration")));
  reply({{"ok", true}, {"retried", retried}});
}

// ---------------------------------------------------------------- migrations

Json* MigrationRunner::pipeline_step(Json& vm, const std::string& name) {
  for (auto& s : vm["pipeline"])
    if (s["name"] == name) return &s;
  return nullptr;
}

void MigrationRunner::start_migration(const ResourceKey& mkey) {
  const Resource* m = find(mkey);
  auto pk = model::ref_key(m->spec()["plan"], "Plan", mkey.ns);
  const Resource* plan = find(pk);
  validation::Context ctx = host_.validation_context();
  Json& plan_st = status_[pk];
  plan_st.erase("inspectionConditions");  // this run inspects again
  for (const auto& v : plan_st.value("completedVMs", Json::array()))
    ctx.completed_vm_ids.insert(v.get<std::string>());
  auto res = validation::validate_plan(*plan, ctx);
  Json vms = Json::array();
  std::set<std::string> cancel_sel;
  for (const auto& c : m->spec().value("cancel", Json::array()))
    cancel_sel.insert(c.value("id", c.value("name", "")));
  for (const auto& rv : res.vms) {
    std::string id = rv.inventory.value("id", "");
    if (ctx.completed_vm_ids.count(id)) continue;  // done by an earlier Migration of this Plan
    // A warm plan's powered-off VMs have nothing changing: they go cold (the
    // plan carries a VMPoweredOff warning saying so).
    bool warm = (plan->spec().value("warm", false) || plan->spec().value("type", "") == "warm") &&
                rv.inventory.value("powerState", "") == "On";
    // The VM's hooks by step (validation allowed one per step).
    Json hooks = Json::object();
    for (const auto& h : plan->spec()["vms"][rv.index].value("hooks", Json::array()))
      hooks[h.value("step", "")] = {{"hook",
                                     {{"namespace", h["hook"].value("namespace", plan->key().ns)},
                                      {"name", h["hook"].value("name", "")}}},
                                    {"state", TaskState::kPending}};
    Json vm = {{"id", id},
               {"name", rv.inventory.value("name", "")},
               {"targetName", rv.target_name},
               {"phase", "Pending"},
               {"pipeline", new_pipeline(warm, hooks)},
               {"disks", Json::array()}};
    if (!hooks.empty()) vm["hooks"] = hooks;
    if (warm)
      vm["warm"] = {{"stage", "initial"},
                    {"precopies", Json::array()},
                    {"failures", 0},
                    {"snapshotSeq", 0},
                    {"changeIds", Json::object()}};
    if (cancel_sel.count(id) || cancel_sel.count(rv.inventory.value("name", ""))) {
      vm["phase"] = "Canceled";
    }
    vms.push_back(vm);
  }
  Json st = {{"phase", "Running"}, {"plan", pk.to_string()}, {"started", now_iso()}, {"vms", vms}};
  status_.start_migration(mkey, std::move(st));
  plan_st["phase"] = "Executing";
  plan_st["migration"] = mkey.to_string();
  status::plan_started(plan_st, now_iso());
  status::migration_started(status_[mkey], now_iso());
  save_status(pk);
  save_status(mkey);
  store_->record_event(mkey, "Normal", "Started",
                       "Migrating " + std::to_string(vms.size()) + " VMs of " + pk.to_string());
  kLog.info("migration started", {{"migration", mkey.to_string()},
                                  {"plan", pk.to_string()},
                                  {"vms", std::to_string(vms.size())}});
  pump(mkey);
  maybe_finish_migration(mkey);
}

void MigrationRunner::pump(const ResourceKey& mkey) {
  auto it = status_.find(mkey);
  if (it == status_.end()) return;
  int running = 0;
  std::vector<std::string> resume, start;
  for (auto& vm : it->second["vms"]) {
    std::string ph = vm.value("phase", "");
    if (ph == "Pending") {
      start.push_back(vm.value("id", ""));
    } else if (!vm_terminal(vm)) {
      running++;
      resume.push_back(vm.value("id", ""));
    }
  }
  for (const auto& id : resume) advance(mkey, id);  // idempotent: re-enters the current phase
  for (const auto& id : start) {
    if (running >= opts_.max_vms_in_flight) break;
    Json* vm = vm_status(mkey, id);
    (*vm)["phase"] = "Started";
    (*vm)["started"] = now_iso();
    running++;
    advance(mkey, id);
  }
}

bool MigrationRunner::set_phase(const ResourceKey& mkey, Json& vm, Phase to) {
  // Every change goes through the transition table; anything else is a bug
  // in the runner, and the VM fails saying so rather than run on from a state
  // nobody designed.
  std::string from_name = vm.value("phase", "Pending");
  auto from = migration::phase_from_name(from_name);
  bool legal = from ? migration::can_transition(*from, to, vm.contains("warm"))
                    : (from_name == "Pending" &&
                       (to == Phase::kStarted || to == Phase::kFailed || to == Phase::kCanceled));
  if (!legal) {
    std::string why = std::string("internal error: illegal phase transition ") + from_name +
                      " -> " + migration::phase_name(to);
    metrics_.bad_input.Add({{"source", "transition"}}).Increment();
    kLog.error("illegal phase transition",
               {{"migration", mkey.to_string()}, {"vm", vm.value("name", "")}, {"error", why}});
    if (!from || migration::is_terminal(*from)) return false;
    fail_vm(mkey, vm.value("id", ""), why);
    return false;
  }
  // Past the (initial) copy, the data is on the node: its free space says the rest.
  if (to == Phase::kConvertGuest || to == Phase::kCreateVM || to == Phase::kCopyingPaused ||
      migration::is_terminal(to))
    agents_.release(space_owner(mkey, vm.value("id", "")));
  std::string now = now_iso();
  vm["phase"] = migration::phase_name(to);
  if (to == Phase::kCompleted || to == Phase::kFailed || to == Phase::kCanceled) {
    vm["completed"] = now;
    store_->record_event(mkey, to == Phase::kCompleted ? "Normal" : "Warning",
                         std::string("VM") + migration::phase_name(to),
                         "VM " + vm.value("name", "") + " " +
                             (to == Phase::kCompleted ? "migrated"
                              : to == Phase::kFailed  ? "failed"
                                                      : "canceled"));
    metrics_.migrated_vms
        .Add({{"status", to == Phase::kCompleted ? "succeeded"
                         : to == Phase::kFailed  ? "failed"
                                                 : "canceled"}})
        .Increment();
    for (auto& s : vm["pipeline"]) {
      if (to == Phase::kCompleted && s["phase"] != "Skipped") {
        if (!s.contains("started")) s["started"] = now;
        if (!s.contains("completed")) s["completed"] = now;
        s["phase"] = "Completed";
      } else if (s["phase"] == "Running") {
        s["phase"] = to == Phase::kFailed ? "Failed" : "Canceled";
        s["completed"] = now;
      }
    }
    return true;
  }
  std::string cur = step_for(vm, to);
  bool before = true;
  for (auto& s : vm["pipeline"]) {
    if (s["name"] == cur) {
      before = false;
      if (s["phase"] == "Pending") {
        s["phase"] = "Running";
        s["started"] = now;
      }
    } else if (before && s["phase"] != "Completed" && s["phase"] != "Skipped") {
      if (!s.contains("started")) s["started"] = now;
      s["phase"] = "Completed";
      s["completed"] = now;
    }
  }
  return true;
}

void MigrationRunner::fail_vm(const ResourceKey& mkey, const std::string& vm_id,
                              const std::string& message) {
  Json* vm = vm_status(mkey, vm_id);
  if (!vm || vm_terminal(*vm)) return;
  std::string at =
      step_for(*vm, migration::phase_from_name(vm->value("phase", "")).value_or(Phase::kStarted));
  (*vm)["error"] = {
      {"phase", vm->value("phase", "")}, {"step", at}, {"reasons", Json::array({message})}};
  if (Json* s = pipeline_step(*vm, at))
    (*s)["error"] = {{"phase", vm->value("phase", "")}, {"reasons", Json::array({message})}};
  kLog.error("VM failed",
             {{"migration", mkey.to_string()}, {"vm", vm->value("name", "")}, {"error", message}});
  stop_hooks(mkey, *vm);
  // Stop this VM's other transfers; their volumes stay for a later retry.
  for (auto& d : (*vm)["disks"])
    if (stop_transfer(d)) set_task_state(d, TaskState::kCanceled);
  if (!set_phase(mkey, *vm, Phase::kFailed)) return;
  save_status(mkey);
  if (vm->contains("warm")) cleanup_warm_snapshots(mkey, vm_id);
  maybe_finish_migration(mkey);
  pump(mkey);
}

bool MigrationRunner::stop_transfer(const Json& disk) {
  if (!status::in_agent(task_state(disk))) return false;
  ferry::v1::CancelTask c;
  c.set_task_id(disk.value("taskId", ""));
  tasks_.cancel(disk.value("node", ""), c);
  tasks_.release(disk.value("taskId", ""));
  return true;
}

void MigrationRunner::cancel_vm(const ResourceKey& mkey, const std::string& vm_id) {
  Json* vm = vm_status(mkey, vm_id);
  if (!vm || vm_terminal(*vm)) return;
  bool started = vm->value("phase", "") != "Pending";
  // Past CreateVM the volumes belong to the VM that was created.
  bool created = vm->value("phase", "") == "PostHook";
  stop_hooks(mkey, *vm);
  for (auto& d : (*vm)["disks"]) {
    tasks_.release(d.value("taskId", ""));
    if (!d.value("node", "").empty() && d.contains("taskId")) {
      ferry::v1::CancelTask c;
      c.set_task_id(d.value("taskId", ""));
      c.set_delete_volume(!created);  // a canceled VM leaves no volume behind, partial or not
      target_volume(d, c.mutable_volume());
      tasks_.cancel(d.value("node", ""), c);
    }
    set_task_state(d, TaskState::kCanceled);
  }
  tasks_.drop_vm(mkey, vm_id);
  for (const char* what : {"conversion", "inspection"}) {
    if (!vm->contains(what)) continue;
    Json& t = (*vm)[what];
    if (!t.is_object() || task_state(t) == TaskState::kCompleted) continue;
    ferry::v1::CancelTask c;
    c.set_task_id(t.value("taskId", ""));
    tasks_.cancel(t.value("node", ""), c);
    set_task_state(t, TaskState::kCanceled);
  }
  if (!set_phase(mkey, *vm, Phase::kCanceled)) return;
  if (!started) vm->erase("completed");
  if (started && vm->contains("warm")) cleanup_warm_snapshots(mkey, vm_id);
  kLog.info("VM canceled", {{"migration", mkey.to_string()}, {"vm", vm->value("name", "")}});
  // Restore the source's power state if we turned it off.
  // (Cluster mode: the Plan may have been deleted with kubectl meanwhile; then
  // there is no source to power on.)
  const Resource* plan = plan_of(mkey);
  if (plan && vm->value("sourcePowerState", "") == "On" && vm->value("poweredOff", false)) {
    auto pk = model::ref_key(
        plan->spec().value("provider", Json::object()).value("source", Json::object()), "Provider",
        plan->key().ns);
    Error err;
    if (auto slot = provider_slot(pk, &err))
      loop_.run_blocking<Status>(
          [slot, vm_id] {
            return slot->with<Status>([&](SourceProvider& p) { return p.power_on(vm_id); });
          },
          [vm_id](Status s) {
            if (!s.ok())
              kLog.warn("restoring source power failed",
                        {{"vm", vm_id}, {"error", s.error().message}});
          });
  }
  save_status(mkey);
  pump(mkey);
}

void MigrationRunner::maybe_finish_migration(const ResourceKey& mkey) {
  auto it = status_.find(mkey);
  if (it == status_.end() || it->second.value("phase", "") != "Running") return;
  auto outcome = status::migration_outcome(it->second["vms"]);
  if (!outcome) return;
  std::string phase = *outcome;
  it->second["phase"] = phase;
  it->second["completed"] = now_iso();
  status::migration_finished(it->second, phase, now_iso());
  save_status(mkey);
  std::string lower = phase;
  for (auto& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  metrics_.migrations_status.Add({{"status", lower}}).Increment();
  double started = 0, completed = 0;
  if (model::parse_rfc3339(it->second.value("started", ""), &started) &&
      model::parse_rfc3339(it->second.value("completed", ""), &completed))
    metrics_.migration_duration.Observe(completed - started);
  std::string plan_str = it->second.value("plan", "");
  for (auto& [k, st] : status_)
    if (k.kind == "Plan" && k.to_string() == plan_str) {
      st["phase"] = phase;
      st["migration"] = mkey.to_string();
      status::plan_finished(st, phase, now_iso());
      save_status(k);
    }
  kLog.info("migration finished", {{"migration", mkey.to_string()}, {"phase", phase}});
  store_->record_event(mkey, phase == "Succeeded" ? "Normal" : "Warning", phase,
                       "The migration has " + phase + ".");
}

void MigrationRunner::dispatch() {
  // A queued transfer is still wanted while its disk waits.
  auto disk_of = [this](const std::string& id) -> Json* {
    const TaskRef* ref = tasks_.find(id);
    Json* vm = ref ? vm_status(ref->migration, ref->vm_id) : nullptr;
    if (vm)
      for (auto& d : (*vm)["disks"])
        if (d.value("taskId", "") == id) return &d;
    return nullptr;
  };
  tasks_.dispatch([&](const std::string& id) {
    Json* d = disk_of(id);
    return d && task_state(*d) == TaskState::kWaiting;
  });
}

const Json* MigrationRunner::inventory_vm(const ResourceKey& pk, const std::string& vm_id) {
  const Json* inv = inventory_of(pk);
  if (!inv || !inv->contains("vms") || !(*inv)["vms"].is_array()) return nullptr;
  const Json& vms = (*inv)["vms"];
  auto hit = [&](const std::unordered_map<std::string, size_t>& idx) -> const Json* {
    auto it = idx.find(vm_id);
    // Checked, so an index older than the inventory is never believed.
    if (it == idx.end() || it->second >= vms.size()) return nullptr;
    const Json& v = vms[it->second];
    return v.is_object() && v.value("id", "") == vm_id ? &v : nullptr;
  };
  auto& idx = inv_vm_index_[pk];
  if (const Json* v = hit(idx)) return v;
  idx.clear();  // missing or stale: rebuilt from the current inventory
  for (size_t i = 0; i < vms.size(); i++)
    if (vms[i].is_object()) idx[vms[i].value("id", "")] = i;
  return hit(idx);
}

bool MigrationRunner::placement_given_up(const ResourceKey& mkey, const std::string& vm_id) {
  std::string key = mkey.to_string() + vm_id;
  double now = now_seconds();
  auto it = placement_wait_.try_emplace(key, PlacementWait{now, false}).first;
  // Counted in time, not tries: advance() runs whenever anything about the
  // Migration changes. A coordinator that just started has heard no agent yet.
  if (now - it->second.since > kPlacementWaitSeconds && now - started_at_ > kPlacementWaitSeconds) {
    placement_wait_.erase(it);
    return true;
  }
  if (!it->second.armed) {
    it->second.armed = true;
    loop_.after(std::chrono::seconds(2), [this, mkey, vm_id, key] {
      auto w = placement_wait_.find(key);
      if (w != placement_wait_.end()) w->second.armed = false;
      advance(mkey, vm_id);
    });
  }
  return false;
}

void MigrationRunner::go(const ResourceKey& mkey, const std::string& vm_id, Phase to) {
  Json* v = vm_status(mkey, vm_id);
  if (!v || vm_terminal(*v)) return;
  if (!set_phase(mkey, *v, to)) return;
  save_status(mkey);
  advance(mkey, vm_id);
}

std::shared_ptr<ProviderPool> MigrationRunner::source_pool(const ResourceKey& mkey, Error* err) {
  const Resource* plan = plan_of(mkey);
  if (!plan) {
    *err = Error(ErrorCode::kNotFound, "the Plan of " + mkey.to_string() + " was deleted");
    return nullptr;
  }
  return provider_slot(
      model::ref_key(plan->spec()["provider"]["source"], "Provider", plan->key().ns), err);
}

void MigrationRunner::provider_call(const ResourceKey& mkey, const std::string& vm_id, Phase phase,
                                    std::function<Status(SourceProvider&)> call,
                                    std::function<void(Json&)> then,
                                    std::function<void(const Error&)> on_error) {
  std::string key = mkey.to_string() + vm_id;
  if (inflight_.count(key)) return;  // already waiting for this phase's call
  Error err;
  auto slot = source_pool(mkey, &err);
  if (!slot) return on_error ? on_error(err) : fail_vm(mkey, vm_id, err.message);
  inflight_.insert(key);
  loop_.run_blocking<Status>([slot, call] { return slot->with<Status>(call); },
                             [this, mkey, vm_id, phase, then, on_error, key](Status s) {
                               inflight_.erase(key);
                               Json* v = vm_status(mkey, vm_id);
                               if (!v || v->value("phase", "") != migration::phase_name(phase))
                                 return;
                               if (!s.ok())
                                 return on_error ? on_error(s.error())
                                                 : fail_vm(mkey, vm_id, s.error().message);
                               then(*v);
                             });
}

void MigrationRunner::advance(const ResourceKey& mkey, const std::string& vm_id) {
  Json* vm = vm_status(mkey, vm_id);
  if (!vm || vm_terminal(*vm) || vm->value("phase", "") == "Pending") return;
  const Resource* plan = plan_of(mkey);
  if (!plan) return fail_vm(mkey, vm_id, "the Plan of " + mkey.to_string() + " was deleted");
  const Json& pspec = plan->spec();
  auto pk = model::ref_key(pspec["provider"]["source"], "Provider", plan->key().ns);
  const Json* inv_vm = inventory_vm(pk, vm_id);
  if (!inv_vm)
    return fail_vm(mkey, vm_id,
                   "VM " + vm_id + " is no longer in " + pk.to_string() + " inventory");
  Error err;
  auto slot = provider_slot(pk, &err);
  if (!slot) return fail_vm(mkey, vm_id, err.message);
  Phase phase = *migration::phase_from_name(vm->value("phase", "Started"));
  if (migration::is_warm_phase(phase)) return advance_warm(mkey, vm_id, phase, *plan, *inv_vm);
  // The next phase of this VM's itinerary (cold, or warm outside its loop).
  auto go_next = [this, mkey, vm_id, phase] {
    Json* v = vm_status(mkey, vm_id);
    if (!v) return;
    Phase to = migration::next_phase(phase);
    if (v->contains("warm"))
      to = migration::next_warm_phase(phase,
                                      migration::stage_from_name((*v)["warm"].value("stage", ""))
                                          .value_or(migration::WarmStage::kInitial),
                                      false);
    go(mkey, vm_id, to);
  };
  auto blocking = [this, mkey, vm_id, phase](std::function<Status(SourceProvider&)> call,
                                             std::function<void(Json&)> then) {
    provider_call(mkey, vm_id, phase, std::move(call), std::move(then));
  };
  switch (phase) {
    case Phase::kStarted:
      return go_next();
    case Phase::kPreHook:  // before anything of the VM is touched
      if (!hook_finished(mkey, *vm, "PreHook", *plan, *inv_vm)) return;
      return go_next();
    case Phase::kPreflightInspection: {
      // Find a guest that cannot be converted before the VM is touched or a byte copied.
      if (pspec.value("skipGuestConversion", false) ||
          pspec.value("skipPreflightInspection", false))
        return go_next();
      Json& ins = (*vm)["inspection"];
      TaskState st = task_state(ins);
      if (st == TaskState::kCompleted) return go_next();
      if (status::in_agent(st)) return;  // waiting for the agent's result
      std::string node = agents_.least_busy(now_seconds()).value_or("");
      if (node.empty()) {
        if (placement_given_up(mkey, vm_id))
          return fail_vm(mkey, vm_id, "no live agent to run the preflight inspection");
        return;
      }
      placement_wait_.erase(mkey.to_string() + vm_id);
      auto any = std::make_shared<ferry::v1::AgentTask>();
      auto* it = any->mutable_inspect();
      std::string task_id = mkey.ns + "." + mkey.name + "." + vm_id + ".inspect";
      it->set_task_id(task_id);
      it->set_plan(plan->key().ns + "/" + plan->key().name);
      it->set_vm(vm->value("name", ""));
      if (tasks_.publishing(task_id)) return;  // its ack comes back to here
      Json vmrec = *inv_vm;
      std::string haddr = host_address(pk, inv_vm->value("host", ""));
      return blocking(
          [any, vmrec, haddr](SourceProvider& p) -> Status {
            for (const auto& d : vmrec["disks"]) {
              auto* t = any->mutable_inspect()->add_disks();
              t->set_disk(d.value("file", ""));
              t->mutable_target()->set_size_bytes(d.value("capacity", uint64_t{0}));
              FERRY_TRY(p.disk_source(vmrec, d, haddr, *t));
            }
            return {};
          },
          [this, mkey, vm_id, any, task_id, node](Json&) {
            tasks_.track(task_id, TaskRef{mkey, vm_id, kInspectionTask});
            keep_credentials(task_id, *any);
            tasks_.publish(node, task_id, any->SerializeAsString(),
                           [this, mkey, vm_id, task_id, node](Status pub) {
                             Json* v = vm_status(mkey, vm_id);
                             if (!v || v->value("phase", "") !=
                                           migration::phase_name(Phase::kPreflightInspection))
                               return;
                             if (!pub.ok()) {
                               loop_.after(std::chrono::seconds(2),
                                           [this, mkey, vm_id] { advance(mkey, vm_id); });
                               return;
                             }
                             Json& ins = (*v)["inspection"];
                             if (!ins.is_object() ||
                                 ins.value("taskId", "") != task_id)  // else claimed already
                               ins = {{"taskId", task_id}, {"state", TaskState::kQueued}};
                             ins["node"] = node;
                             save_status(mkey);
                           });
          });
    }
    case Phase::kStorePowerState: {
      auto on = std::make_shared<bool>(false);
      return blocking(
          [vm_id, on](SourceProvider& p) -> Status {
            auto r = p.is_powered_on(vm_id);
            if (!r.ok()) return r.error();
            *on = *r;
            return {};
          },
          [go_next, on](Json& v) {
            if (!v.contains("sourcePowerState")) v["sourcePowerState"] = *on ? "On" : "Off";
            go_next();
          });
    }
    case Phase::kPowerOffSource:
      return blocking([vm_id](SourceProvider& p) { return p.power_off(vm_id); },
                      [go_next](Json& v) {
                        if (v.value("sourcePowerState", "") == "On") v["poweredOff"] = true;
                        go_next();
                      });
    case Phase::kWaitForPowerOff:  // power_off waited for the task
      return go_next();
    case Phase::kCreateDataVolumes: {
      // All of a VM's volumes go to one node: the one whose agent serves every
      // storage class this VM needs and has the most free space.
      const Resource* smap =
          find(model::ref_key(pspec["map"]["storage"], "StorageMap", plan->key().ns));
      if (!smap)
        return fail_vm(mkey, vm_id, plan->key().to_string() + ": spec.map.storage not found");
      std::vector<std::string> classes;
      std::vector<bool> block;               // volumeMode Block
      std::map<std::string, uint64_t> need;  // storage class -> bytes
      for (const auto& d : (*inv_vm)["disks"]) {
        std::string sc;
        bool b = false;
        for (const auto& e : smap->spec()["map"]) {
          const Json& src = e["source"];
          const Json& ds = d["datastore"];
          if ((src.contains("id") && src["id"] == ds["id"]) ||
              (!src.contains("id") && src.value("name", "") == ds.value("name", ""))) {
            sc = e["destination"].value("storageClass", "");
            b = e["destination"].value("volumeMode", "") == "Block";
          }
        }
        classes.push_back(sc);
        block.push_back(b);
        need[sc] += d.value("capacity", uint64_t{0});
      }
      std::string best = agents_.place(need, now_seconds()).value_or("");
      if (best.empty()) {
        if (placement_given_up(mkey, vm_id)) {
          std::string list;
          for (const auto& c : classes) list += (list.empty() ? "" : ", ") + c;
          return fail_vm(mkey, vm_id,
                         "no live agent has a volume root for storage class(es) " + list);
        }
        return;
      }
      placement_wait_.erase(mkey.to_string() + vm_id);
      // Until its disks are copied, the VM's space counts as taken on that node.
      agents_.reserve(space_owner(mkey, vm_id), best, need);
      std::string migration_uid = mkey.ns + "." + mkey.name;
      // Warm: one task per disk and snapshot (each precopy is its own copy).
      std::string warm_suffix =
          vm->contains("warm")
              ? ".s" + std::to_string((*vm)["warm"].value("snapshotSeq", 0)) + "-" +
                    (*vm)["warm"].value("snapshot", Json::object()).value("id", "")
              : "";
      Json disks = Json::array();
      int i = 0;
      for (const auto& d : (*inv_vm)["disks"]) {
        std::string vol = target::volume_name(pspec.value("pvcNameTemplate", ""),
                                              vm->value("targetName", ""), plan->key().name, i);
        disks.push_back(
            {{"key", d.value("key", 0)},
             {"file", d.value("file", "")},
             {"capacity", d.value("capacity", uint64_t{0})},
             {"storageClass", classes[i]},
             {"volume", vol},
             {"requestedSize", target::requested_size(d.value("capacity", uint64_t{0}), !block[i])},
             {"volumeMode", block[i] ? "Block" : "Filesystem"},
             // Cluster mode: a directory per claim, the disk in it as KubeVirt
             // expects it on a Filesystem PVC (the agent makes it a PersistentVolume).
             // Block: the directory holds the device node (a loop device).
             {"relativePath", pspec.value("targetNamespace", "") + "/" + vol +
                                  (block[i]           ? "/block"
                                   : opts_.kubernetes ? "/disk.img"
                                                      : ".img")},
             {"node", best},
             {"sourceHost", inv_vm->value("host", "")},
             {"taskId",
              migration_uid + "." + vm_id + "." + std::to_string(d.value("key", 0)) + warm_suffix},
             {"state", TaskState::kPending},
             {"bytesDone", 0}});
        tasks_.track(disks.back()["taskId"], TaskRef{mkey, vm_id, d.value("key", 0)});
        i++;
      }
      (*vm)["disks"] = disks;
      (*vm)["node"] = best;
      return go_next();
    }
    case Phase::kCopyDisks: {
      bool all_done = true;
      for (auto& d : (*vm)["disks"]) {
        TaskState st = task_state(d);
        if (st != TaskState::kCompleted) all_done = false;
        if (st != TaskState::kPending) continue;
        set_task_state(d, TaskState::kResolving);
        Json disk_inv;
        for (const auto& x : (*inv_vm)["disks"])
          if (x.value("key", 0) == d.value("key", 0)) disk_inv = x;
        auto task = std::make_shared<ferry::v1::TransferTask>();
        task->set_task_id(d.value("taskId", ""));
        task->set_plan(plan->key().ns + "/" + plan->key().name);
        task->set_vm(vm->value("name", ""));
        task->set_disk(d.value("file", ""));
        target_volume(d, task->mutable_target());
        if (pspec.contains("transferNetwork"))
          task->set_transfer_network(pspec["transferNetwork"].value("name", ""));
        task->set_verify(true);
        std::string haddr = host_address(pk, inv_vm->value("host", ""));
        Json vmrec = *inv_vm;
        std::string task_id = d.value("taskId", "");
        // Warm: only what changed since the last copied snapshot (or every
        // allocated area for a full copy), read while this cycle's snapshot holds the base.
        std::shared_ptr<WarmDiskQuery> wq;
        if (vm->contains("warm")) {
          const Json& w = (*vm)["warm"];
          wq = std::make_shared<WarmDiskQuery>();
          wq->vm_id = vm_id;
          wq->snapshot_id = w.value("snapshot", Json::object()).value("id", "");
          wq->disk_key = d.value("key", 0);
          wq->capacity = d.value("capacity", uint64_t{0});
          wq->base_change_id = w["changeIds"].value(std::to_string(wq->disk_key), "");
        }
        loop_.run_blocking<Status>(
            [slot, vmrec, disk_inv, haddr, task, wq] {
              return slot->with<Status>([&](SourceProvider& p) -> Status {
                FERRY_TRY(p.disk_source(vmrec, disk_inv, haddr, *task));
                if (wq) return query_changes(p, *wq, *task);
                return {};
              });
            },
            [this, mkey, vm_id, task, task_id, wq](Status s) {
              Json* v = vm_status(mkey, vm_id);
              if (!v || vm_terminal(*v)) return;
              for (auto& x : (*v)["disks"]) {
                if (x.value("taskId", "") != task_id || task_state(x) != TaskState::kResolving)
                  continue;
                if (!s.ok()) {
                  if (wq) return warm_cycle_failed(mkey, vm_id, s.error().message);
                  return fail_vm(mkey, vm_id, s.error().message);
                }
                if (wq) {
                  // A full copy empties the volume first: the old base is
                  // meaningless from now until this copy commits.
                  if (wq->full &&
                      (*v)["warm"]["changeIds"].contains(std::to_string(wq->disk_key))) {
                    (*v)["warm"]["changeIds"].erase(std::to_string(wq->disk_key));
                    save_status(mkey);
                  }
                  x["copy"] = {{"base", wq->base_change_id.empty() ? "*" : wq->base_change_id},
                               {"changedBytes", wq->changed_bytes},
                               {"full", wq->full}};
                  if (!wq->warning.empty()) {
                    x["copy"]["warning"] = wq->warning;
                    (*v)["warm"]["warnings"].push_back(wq->warning);
                    kLog.warn("full copy forced",
                              {{"vm", v->value("name", "")}, {"warning", wq->warning}});
                  }
                  if (!wq->full && task->ranges().empty()) {  // nothing changed on this disk
                    set_task_state(x, TaskState::kCompleted);
                    x["result"] = status::DiskResult{};
                    save_status(mkey);
                    return advance(mkey, vm_id);
                  }
                }
                set_task_state(x, TaskState::kWaiting);
                ferry::v1::AgentTask any;
                *any.mutable_transfer() = *task;
                keep_credentials(task_id, any);
                tasks_.enqueue({.id = task_id,
                                .source_host = x.value("sourceHost", ""),
                                .node = x.value("node", ""),
                                .wire = any.SerializeAsString(),
                                .msg_id = task_id + "." + std::to_string(x.value("attempt", 0)),
                                .stored = [this, mkey, vm_id, task_id] {
                                  Json* v = vm_status(mkey, vm_id);
                                  if (!v) return;
                                  for (auto& y : (*v)["disks"])
                                    if (y.value("taskId", "") == task_id &&
                                        task_state(y) == TaskState::kWaiting) {
                                      // A claim may already have made it Running.
                                      set_task_state(y, TaskState::kQueued);
                                      save_status(mkey);
                                    }
                                }});
              }
              dispatch();
            });
      }
      if (all_done) {
        if (vm->contains("warm")) return warm_copy_done(mkey, *vm);
        return go_next();
      }
      if (Json* s = pipeline_step(*vm, "DiskTransfer")) {
        uint64_t total = 0;
        for (auto& d : (*vm)["disks"]) total += d.value("capacity", uint64_t{0});
        if (!s->contains("progress"))
          (*s)["progress"] = {{"completed", 0}, {"total", total / kMiB}};
      }
      save_status(mkey);
      return;
    }
    case Phase::kConvertGuest: {
      Json* s = pipeline_step(*vm, "ImageConversion");
      if (pspec.value("skipGuestConversion", false)) {
        // Raw copy mode: no conversion process at all.
        if (s && (*s)["phase"] != "Skipped") {
          (*s)["phase"] = "Skipped";
          (*s)["reason"] = "skipGuestConversion is set (raw copy mode)";
        }
        return go_next();
      }
      Json& conv = (*vm)["conversion"];
      TaskState cst = task_state(conv);
      if (cst == TaskState::kCompleted) return go_next();
      if (status::in_agent(cst)) return;  // waiting for the agent's result
      // Convert in place on the node that holds the volumes.
      int attempt = conv.is_object() ? conv.value("attempt", 0) + 1 : 1;
      std::string task_id =
          mkey.ns + "." + mkey.name + "." + vm_id + ".convert." + std::to_string(attempt);
      ferry::v1::AgentTask any;
      auto* ct = any.mutable_convert();
      ct->set_task_id(task_id);
      ct->set_plan(plan->key().ns + "/" + plan->key().name);
      ct->set_vm(vm->value("targetName", ""));
      for (const auto& d : (*vm)["disks"]) {
        target_volume(d, ct->add_volumes());
      }
      ct->set_firmware(inv_vm->value("firmware", "bios"));
      ct->set_cpus(static_cast<uint32_t>(inv_vm->value("cpus", 1)));
      ct->set_memory_mb(static_cast<uint32_t>(inv_vm->value("memoryMB", 1024)));
      for (const auto& nic : (*inv_vm)["nics"]) ct->add_macs(nic.value("mac", ""));
      // preserveStaticIPs: each NIC's first IPv4 address as the guest reported it,
      // in virt-v2v's --mac MAC:ip:IP[,GW,PREFIX] form (no gateway known: the address alone).
      Json mac_ips = Json::object();
      if (pspec.value("preserveStaticIPs", false))
        for (const auto& nic : (*inv_vm)["nics"])
          for (const auto& a : nic.value("ips", Json::array())) {
            std::string ip = a.value("ip", "");
            if (ip.find(':') != std::string::npos || ip.empty()) continue;  // IPv4 only
            std::string gw = inv_vm->value("gateway", "");
            std::string v =
                gw.empty() ? ip : ip + "," + gw + "," + std::to_string(a.value("prefix", 0));
            (*ct->mutable_mac_ips())[nic.value("mac", "")] = v;
            mac_ips[nic.value("mac", "")] = v;
            break;
          }
      std::string node = vm->value("node", "");
      if (tasks_.publishing(task_id)) return;  // its ack comes back to here
      tasks_.track(task_id, TaskRef{mkey, vm_id, kConversionTask});
      tasks_.publish(
          node, task_id, any.SerializeAsString(),
          [this, mkey, vm_id, task_id, node, attempt, mac_ips](Status pub) {
            Json* v = vm_status(mkey, vm_id);
            if (!v || v->value("phase", "") != migration::phase_name(Phase::kConvertGuest)) return;
            if (!pub.ok()) {
              loop_.after(std::chrono::seconds(2), [this, mkey, vm_id] { advance(mkey, vm_id); });
              return;
            }
            Json& c = (*v)["conversion"];
            if (!c.is_object() || c.value("taskId", "") != task_id)  // else claimed already
              c = {{"taskId", task_id}, {"state", TaskState::kQueued}};
            c["node"] = node;
            c["attempt"] = attempt;
            if (!mac_ips.empty()) c["macIPs"] = mac_ips;
            save_status(mkey);
          });
      return;
    }
    case Phase::kCreateVM: {
      const Resource* nmap =
          find(model::ref_key(pspec["map"]["network"], "NetworkMap", plan->key().ns));
      target::VmManifestInput in;
      in.name = vm->value("targetName", "");
      in.ns = pspec.value("targetNamespace", "");
      in.source_vm = *inv_vm;
      in.volumes = Json::array();
      for (const auto& d : (*vm)["disks"])
        in.volumes.push_back({{"name", d.value("volume", "")}, {"disk_key", d.value("key", 0)}});
      in.networks = Json::array();
      for (const auto& nic : (*inv_vm)["nics"]) {
        Json dst = {{"type", "pod"}};
        if (nmap)
          for (const auto& e : nmap->spec()["map"]) {
            const Json& src = e["source"];
            const Json& net = nic["network"];
            if ((src.contains("id") && src["id"] == net["id"]) ||
                (!src.contains("id") && src.value("name", "") == net.value("name", "")))
              dst = e["destination"];
          }
        dst["mac"] = nic.value("mac", "");
        in.networks.push_back(dst);
      }
      std::string tps = pspec.value("targetPowerState", "auto");
      in.running = tps == "on" || (tps == "auto" && vm->value("sourcePowerState", "") == "On");
      // Converted guests get virtio (as virt-v2v reports it); without conversion the
      // guest may lack virtio drivers: SATA + e1000e unless useCompatibilityMode is false.
      const Json conv = vm->value("conversion", Json::object());
      if (task_state(conv) == TaskState::kCompleted) {
        auto rep = conv.value("report", Json::object()).get<status::ConversionReport>();
        in.compatibility_devices = !rep.virtioDisk;
        if (!rep.firmware.empty()) in.source_vm["firmware"] = rep.firmware;
        // e.g. "linux debian 12.15" (libguestfs' product name for Debian is just the version).
        in.guest_os = rep.os + " " + rep.distro + " " + rep.version;
      } else {
        in.compatibility_devices = pspec.value("useCompatibilityMode", true);
      }
      Json manifest = target::virtual_machine(in);
      (*vm)["vmManifest"] = manifest;
      target::VmRequest req;
      req.vm = manifest;
      req.vm_id = vm_id;
      req.migration = store_->uid(mkey);
      req.plan = store_->uid(plan->key());
      for (const auto& d : (*vm)["disks"])
        req.claims.push_back({d.value("volume", ""), d.value("storageClass", ""),
                              d.value("requestedSize", uint64_t{0}),
                              d.value("volumeMode", "") == "Block"});
      std::string key = mkey.to_string() + vm_id;
      if (inflight_.count(key)) return;  // already being created
      inflight_.insert(key);
      loop_.run_blocking<Result<std::string>>(
          [sink = vm_sink_, req] { return sink->create(req); },
          [this, mkey, vm_id, key, go_next](Result<std::string> where) {
            inflight_.erase(key);
            Json* v = vm_status(mkey, vm_id);
            if (!v || v->value("phase", "") != migration::phase_name(Phase::kCreateVM)) return;
            if (!where.ok()) {
              // The API server away or busy (restarting, 5xx, 429): again in 2 s, for
              // up to 10 minutes; forbidden (RBAC is loaded a moment after a restart):
              // for a minute. Anything else (refused by the schema, a name taken, no
              // such namespace) fails the VM at once.
              auto code = where.error().code;
              int limit = code == ErrorCode::kUnavailable || code == ErrorCode::kTimeout ? 300
                          : code == ErrorCode::kPermissionDenied                         ? 30
                                                                                         : 0;
              if (++vm_create_retries_[key] <= limit) {
                kLog.warn("creating the VM failed; retrying",
                          {{"vm", vm_id}, {"error", where.error().message}});
                loop_.after(std::chrono::seconds(2), [this, mkey, vm_id] { advance(mkey, vm_id); });
                return;
              }
              vm_create_retries_.erase(key);
              return fail_vm(mkey, vm_id, where.error().message);
            }
            vm_create_retries_.erase(key);
            if (opts_.kubernetes)
              (*v)["vmRef"] = *where;
            else if (!where->empty())
              (*v)["vmManifestPath"] = *where;
            save_status(mkey);
            go_next();
          });
      return;
    }
    case Phase::kPostHook:  // the VM was created; a failed hook fails it here, created
      if (!hook_finished(mkey, *vm, "PostHook", *plan, *inv_vm)) return;
      if (!set_phase(mkey, *vm, Phase::kCompleted)) return;
      {
        auto plan_key = plan->key();
        Json& pst = status_[plan_key];
        if (!pst.contains("completedVMs")) pst["completedVMs"] = Json::array();
        pst["completedVMs"].push_back(vm_id);
        save_status(plan_key);
      }
      save_status(mkey);
      kLog.info("VM migrated", {{"migration", mkey.to_string()}, {"vm", vm->value("name", "")}});
      maybe_finish_migration(mkey);
      pump(mkey);
      return;
    default:  // terminal; warm-only phases are run by advance_warm
      return;
  }
}

}  // namespace ferry::coordinator::runner
