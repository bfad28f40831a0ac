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
using status::DiskStatus;
using status::TaskState;
using status::VmStatus;

namespace {
const Logger kLog("coordinator");

constexpr uint64_t kMiB = 1 << 20;

std::vector<status::PipelineStep> new_pipeline(
    bool warm, const std::map<std::string, status::HookStatus>& hooks) {
  std::vector<status::PipelineStep> steps;
  for (const auto& s : migration::step_names(warm)) {
    if ((s == "PreHook" || s == "PostHook") && !hooks.count(s))
      continue;  // only listed when a hook is set
    status::PipelineStep step;
    step.name = s;
    steps.push_back(std::move(step));
  }
  return steps;
}

// The owner of a VM's space reservation in the AgentRegistry.
std::string space_owner(const ResourceKey& mkey, const std::string& vm_id) {
  return mkey.to_string() + "/" + vm_id;
}

// A VM's conversion or inspection as the task `task_id` handed to an agent's
// queue: kept if it is that task already (a claim may beat the stream's ack),
// else started afresh as Queued.
template <class Work>
Work& queued_work(std::optional<Work>& work, const std::string& task_id) {
  if (!work || work->taskId != task_id) {
    work.emplace();
    work->taskId = task_id;
    work->state = TaskState::kQueued;
  }
  return *work;
}

// The user-facing step a phase of this VM runs in (warm VMs show a Cutover step).
std::string step_for(const VmStatus& vm, Phase p) {
  if (!vm.warm) return migration::step_of(p);
  auto stage = migration::stage_from_name(vm.warm->stage);
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

void MigrationRunner::restore(const ResourceKey& k) {
  auto* vms = status_.vms_for_update(k);
  if (!vms) return;
  for (auto& vm : *vms) {
    if (vm.conversion && !vm.conversion->taskId.empty())
      tasks_.track(vm.conversion->taskId, TaskRef{k, vm.id, kConversionTask});
    if (vm.inspection && !vm.inspection->taskId.empty())
      tasks_.track(vm.inspection->taskId, TaskRef{k, vm.id, kInspectionTask});
    for (auto& d : vm.disks) {
      if (!d.taskId.empty()) tasks_.track(d.taskId, TaskRef{k, vm.id, d.key});
      if (status::in_agent(d.state)) tasks_.hold(d.taskId, d.sourceHost, d.node);
      if (d.state == TaskState::kWaiting || d.state == TaskState::kResolving)
        d.state = TaskState::kPending;  // in-memory task lost
    }
  }
}

void MigrationRunner::resume() {
  started_at_ = now_seconds();
  // Nodes holding live VMs' work get the whole --agent-timeout to say hello.
  for (const auto& [k, st] : status_) {
    if (k.kind != "Migration") continue;
    for (const auto& vm : status_.vms(k)) {
      if (vm.terminal()) continue;
      if (!vm.node.empty()) agents_.expect(vm.node, now_seconds());
      std::map<std::string, uint64_t> uncopied;  // its reservation, as placement made it
      for (const auto& d : vm.disks)
        if (d.state != TaskState::kCompleted) uncopied[d.storageClass] += d.capacity;
      if (!vm.node.empty() && !uncopied.empty() && vm.phase != "CopyingPaused")
        agents_.reserve(space_owner(k, vm.id), vm.node, uncopied);
      if (vm.inspection && !vm.inspection->node.empty())
        agents_.expect(vm.inspection->node, now_seconds());
    }
  }
  for (const auto& [k, st] : status_)
    if (k.kind == "Migration" && st.value("phase", "") == "Running") {
      kLog.info("resuming migration", {{"migration", k.to_string()}});
      pump(k);
    }
  // Precopy snapshots of failed or canceled warm VMs not yet removed.
  std::vector<std::pair<ResourceKey, std::string>> cleanup;
  for (const auto& [k, st] : status_) {
    if (k.kind != "Migration") continue;
    for (const auto& vm : status_.vms(k))
      if (vm.terminal() && vm.warm && !vm.warm->snapshotCleanup.empty() &&
          vm.warm->snapshotCleanup != "Completed")
        cleanup.emplace_back(k, vm.id);
  }
  for (const auto& [k, id] : cleanup) cleanup_warm_snapshots(k, id);
  // Sources opened for claims whose tasks ended while no coordinator ran.
  std::vector<std::pair<ResourceKey, std::string>> open;
  for (const auto& [k, st] : status_)
    if (k.kind == "Migration")
      for (const auto& vm : status_.vms(k))
        for (const auto& d : vm.disks)
          if (!d.sourceHandle.empty()) {
            open.emplace_back(k, vm.id);
            break;
          }
  for (const auto& [k, id] : open) close_sources(k, id);
}

void MigrationRunner::target_volume(const DiskStatus& d, ferry::v1::TargetVolume* t) const {
  t->set_storage_class(d.storageClass);
  t->set_path(d.relativePath);
  t->set_size_bytes(d.capacity);
  t->set_block(d.volumeMode == "Block");
  if (opts_.kubernetes) {  // the PVC the VM will use: <targetNamespace>/<volume>
    auto* c = t->mutable_claim();
    c->set_namespace_(d.relativePath.substr(0, d.relativePath.find('/')));
    c->set_name(d.volume);
    c->set_request_bytes(d.requestedSize);
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
    if (k.kind != "Migration") continue;
    for (const auto& vm : status_.vms(k)) {
      if (vm.terminal() || vm.phase == "Pending") continue;
      bool inspecting =
          vm.inspection && vm.inspection->node == node && status::in_agent(vm.inspection->state);
      if (vm.node == node || inspecting) lost.emplace_back(k, vm.id);
    }
  }
  for (const auto& [mkey, vm_id] : lost) {
    VmStatus* vm = vm_status(mkey, vm_id);
    bool volumes = vm && vm->node == node;
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
  VmStatus* vm = vm_status(ref->migration, ref->vm_id);
  if (!vm) return;
  if (ref->disk_key == kConversionTask) {  // conversion: virt-v2v's latest status line
    if (auto* s = vm->step("ImageConversion")) s->message = p.message();
    status_.touch(ref->migration);
    return;
  }
  uint64_t done = 0, total = 0;
  for (auto& d : vm->disks) {
    if (d.taskId == p.task_id() && !d.node.empty() && subject != subjects::progress(d.node))
      return bad_input("progress", "progress of task " + p.task_id() + " sent on " + subject);
    if (d.taskId == p.task_id() && (p.bytes_done() > d.capacity || p.bytes_total() > d.capacity))
      return bad_input("progress", "task " + p.task_id() + " claims " +
                                       std::to_string(p.bytes_done()) + " of " +
                                       std::to_string(p.bytes_total()) + " bytes of a " +
                                       std::to_string(d.capacity) + "-byte disk");
    if (d.taskId == p.task_id() && d.state != TaskState::kCompleted) {
      if (p.bytes_done() > d.bytesDone)
        metrics_.data_transferred.Add({{"plan", status_[ref->migration].value("plan", "")}})
            .Increment(static_cast<double>(p.bytes_done() - d.bytesDone));
      d.bytesDone = p.bytes_done();
      d.bytesTotal = p.bytes_total();
      d.rate = p.bytes_per_second();
      if (d.state == TaskState::kQueued) d.state = TaskState::kRunning;
    }
    done += d.bytesDone;
    total += d.capacity;
  }
  if (auto* s = vm->step("DiskTransfer")) s->progress = {done / kMiB, total / kMiB};
  status_.touch(ref->migration);
}

void MigrationRunner::keep_credentials(const std::string& task_id, ferry::v1::AgentTask& task) {
  auto headers = protocol::take_source_headers(task);
  if (!headers.empty()) tasks_.set_credentials(task_id, {std::move(headers), ""});
}

bool MigrationRunner::credentials_ready(const TaskRef& ref, const ferry::v1::ClaimRequest& req) {
  const std::string& id = req.task_id();
  VmStatus* vm = vm_status(ref.migration, ref.vm_id);
  DiskStatus* d = vm ? vm->disk_by_task(id) : nullptr;
  // Only a disk the agent may run now gets a source: opening one (an oVirt
  // image transfer) for a claim that is refused next would be opening it for nothing.
  if (d && !status::in_agent(d->state) &&
      !(d->state == TaskState::kWaiting && tasks_.publishing(id)))
    return true;  // the claim's state check answers
  const auto* have = tasks_.credentials(id);
  if (have && !req.credentials_refused()) return true;
  if (fetching_credentials_.count(id)) return false;
  // The earlier source is being closed: a new one once it is.
  if (d && closing_sources_.count(d->sourceHandle)) return false;
  // None here (the task was stored by an earlier coordinator, or its source
  // is opened per claim), or refused (the session behind it ended, the
  // ticket expired): one from the source's session pool.
  SourceRequest sreq;
  if (have) sreq.refused = have->headers;
  tasks_.drop_credentials(id);
  Error err;
  auto slot = source_pool(ref.migration, &err);
  if (!slot) {
    fail_vm(ref.migration, ref.vm_id, err.message);
    return false;
  }
  const Resource* plan = plan_of(ref.migration);
  if (plan) {
    auto pk = model::ref_key(plan->spec()["provider"]["source"], "Provider", plan->key().ns);
    if (const Json* inv_vm = inventory_vm(pk, ref.vm_id)) {
      sreq.vm = *inv_vm;
      sreq.host_address = host_address(pk, inv_vm->value("host", ""));
      if (d)
        for (const auto& x : (*inv_vm)["disks"])
          if (x.value("key", 0) == d->key) sreq.disk = x;
    }
    // Every host of the source that a Host resource gives a migration address.
    if (const Json* inv = inventory_of(pk); inv && inv->contains("hosts"))
      for (const auto& h : (*inv)["hosts"]) {
        std::string hid = h.value("id", "");
        std::string addr = host_address(pk, hid);
        if (!addr.empty()) sreq.host_addresses[hid] = addr;
      }
  }
  if (d) sreq.previous = d->sourceHandle;
  if (d && vm->warm && vm->warm->snapshot) sreq.snapshot = vm->warm->snapshot->id;
  fetching_credentials_.insert(id);
  using Access = Result<SourceAccess>;
  loop_.run_blocking<Access>(
      [slot, sreq] {
        return slot->with<Access>(
            [&](SourceProvider& p) -> Access { return p.source_access(sreq); });
      },
      [this, ref, id, slot, previous = sreq.previous](Access a) {
        fetching_credentials_.erase(id);
        VmStatus* v = vm_status(ref.migration, ref.vm_id);
        DiskStatus* disk = v ? v->disk_by_task(id) : nullptr;
        if (disk && disk->sourceHandle == previous && !previous.empty()) {
          disk->sourceHandle.clear();  // source_access closed it
          save_status(ref.migration);
        }
        if (!a.ok()) {
          // A precopy's source may be refused for a while (oVirt: a disk
          // locked by another operation): the next precopy tries again.
          ErrorCode code = a.error().code;
          bool transient = code == ErrorCode::kUnavailable ||
                           code == ErrorCode::kFailedPrecondition || code == ErrorCode::kTimeout;
          if (v && v->warm && disk && transient)
            return warm_cycle_failed(
                ref.migration, ref.vm_id,
                "opening the source of disk " + disk->file + ": " + a.error().message);
          return fail_vm(ref.migration, ref.vm_id,
                         "getting a source credential: " + a.error().message);
        }
        if (!a->handle.empty()) {
          if (!disk || !disk->sourceHandle.empty()) {
            // Nowhere to keep it (the Migration went, or another was opened): closed now.
            std::string h = a->handle;
            loop_.run_blocking<Status>(
                [slot, h] {
                  return slot->with<Status>(
                      [&](SourceProvider& p) { return p.close_source(h, false); });
                },
                [h](Status s) {
                  if (!s.ok())
                    kLog.warn("closing an unused source failed",
                              {{"handle", h}, {"error", s.error().message}});
                });
            return;
          }
          disk->sourceHandle = a->handle;
          save_status(ref.migration);
          // The VM ended or the disk left the agent meanwhile.
          if (v->terminal() ||
              (!status::in_agent(disk->state) && disk->state != TaskState::kWaiting))
            return close_sources(ref.migration, ref.vm_id);
        }
        tasks_.set_credentials(id, {std::move(a->headers), std::move(a->url)});
      });
  return false;
}

void MigrationRunner::close_sources(const ResourceKey& mkey, const std::string& vm_id) {
  VmStatus* vm = vm_status(mkey, vm_id);
  if (!vm) return;
  std::vector<std::pair<std::string, bool>> closing;
  for (const auto& d : vm->disks)
    if (!d.sourceHandle.empty() && !status::in_agent(d.state) &&
        !(d.state == TaskState::kWaiting && !vm->terminal()) &&
        !fetching_credentials_.count(d.taskId) && closing_sources_.insert(d.sourceHandle).second)
      closing.emplace_back(d.sourceHandle, d.state == TaskState::kCompleted);
  if (closing.empty()) return;
  Error err;
  auto slot = source_pool(mkey, &err);
  if (!slot) {  // the Plan or Provider is gone: nothing to close them with
    kLog.warn("source handles left open", {{"vm", vm->name}, {"error", err.message}});
    for (const auto& c : closing) closing_sources_.erase(c.first);
    return;
  }
  for (const auto& c : closing) {
    std::string handle = c.first;
    bool completed = c.second;
    loop_.run_blocking<Status>(
        [slot, handle, completed] {
          return slot->with<Status>(
              [&](SourceProvider& p) { return p.close_source(handle, completed); });
        },
        [this, mkey, vm_id, handle](Status s) {
          closing_sources_.erase(handle);
          if (!s.ok()) {  // kept, and tried again in a while (and at restart)
            kLog.warn("closing a source failed",
                      {{"handle", handle}, {"error", s.error().message}});
            loop_.after(std::chrono::seconds(30),
                        [this, mkey, vm_id] { close_sources(mkey, vm_id); });
            return;
          }
          VmStatus* v = vm_status(mkey, vm_id);
          if (!v) return;
          for (auto& d : v->disks)
            if (d.sourceHandle == handle) d.sourceHandle.clear();
          save_status(mkey);
        });
  }
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
    VmStatus* vm = ref ? vm_status(ref->migration, ref->vm_id) : nullptr;
    if (!vm) {
      rep.set_reason("unknown task");
    } else if (vm->terminal()) {
      rep.set_reason("VM is " + vm->phase);
    } else if (std::string owner = ref->disk_key != kInspectionTask ? vm->node
                                   : vm->inspection                 ? vm->inspection->node
                                                                    : "";
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
      // The VM's conversion or inspection, whichever the task is.
      auto claim = [&](auto& work) {
        if (publishing) queued_work(work, req.task_id());  // the ack fills in the rest
        TaskState st = work ? work->state : TaskState::kUnknown;
        if (work && work->taskId == req.task_id() && status::in_agent(st)) {
          rep.set_proceed(true);
          work->state = TaskState::kRunning;
          status_.touch(ref->migration);
        } else {
          rep.set_reason(std::string(what) + " is " +
                         (st == TaskState::kUnknown ? std::string("not wanted")
                                                    : status::task_state_name(st)));
        }
      };
      if (ref->disk_key == kInspectionTask)
        claim(vm->inspection);
      else
        claim(vm->conversion);
    } else if (DiskStatus* d = vm->disk_by_task(req.task_id())) {
      TaskState st = d->state;
      if (status::in_agent(st) || (st == TaskState::kWaiting && publishing)) {
        rep.set_proceed(true);
        d->state = TaskState::kRunning;
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
        d->state = TaskState::kAborted;
        status_.touch(ref->migration);
        ResourceKey mk = ref->migration;
        std::string vid = ref->vm_id;
        loop_.post([this, mk, vid] { advance(mk, vid); });
      } else {
        rep.set_reason(std::string("disk is ") + status::task_state_name(st));
      }
    }
  }
  if (rep.proceed() && req.needs_credentials())
    if (const auto* c = tasks_.credentials(req.task_id())) {
      for (const auto& h : c->headers) rep.add_source_headers(h);
      rep.set_source_url(c->url);
    }
  return rep;
}

void MigrationRunner::on_result(const ferry::v1::TaskResult& r) {
  const TaskRef* found = tasks_.find(r.task_id());
  if (!found) return;
  TaskRef ref = *found;
  tasks_.drop_credentials(r.task_id());  // its claim is over
  VmStatus* vm = vm_status(ref.migration, ref.vm_id);
  if (!vm) return;
  if (ref.disk_key == kInspectionTask) return on_inspection_result(ref, *vm, r);
  if (ref.disk_key == kConversionTask) return on_conversion_result(ref, *vm, r);
  DiskStatus* disk = vm->disk_by_task(r.task_id());
  if (!disk) return;
  // Whatever the outcome, the source opened for this task's claim ends with it.
  struct CloseAfter {
    std::function<void()> fn;
    ~CloseAfter() { fn(); }
  } close_after{[this, ref] { close_sources(ref.migration, ref.vm_id); }};
  TaskState state = disk->state;
  tasks_.release(r.task_id());
  if (state == TaskState::kAborting) {
    // A task of a failed warm precopy has stopped: its snapshot may go now.
    disk->state = TaskState::kAborted;
    save_status(ref.migration);
    advance(ref.migration, ref.vm_id);
    return dispatch();
  }
  if (vm->terminal() || state == TaskState::kCompleted || state == TaskState::kCanceled ||
      state == TaskState::kAborted) {
    save_status(ref.migration);
    dispatch();
    return;
  }
  if (r.has_success()) {
    const auto& s = r.success();
    disk->state = TaskState::kCompleted;
    uint64_t before = disk->bytesDone, cap = disk->capacity;
    // Warm precopies move deltas: count what was read, not the disk size.
    uint64_t moved = vm->warm ? s.bytes_read() : (cap > before ? cap - before : 0);
    if (moved > 0)
      metrics_.data_transferred.Add({{"plan", status_[ref.migration].value("plan", "")}})
          .Increment(static_cast<double>(moved));
    disk->bytesDone = cap;
    disk->result = status::DiskResult::from(s);
    disk->path = s.volume_path();
    kLog.info("disk transferred", {{"vm", vm->name},
                                   {"disk", disk->file},
                                   {"node", r.node()},
                                   {"seconds", std::to_string(s.seconds())}});
    save_status(ref.migration);
    advance(ref.migration, ref.vm_id);
  } else {
    disk->state = TaskState::kFailed;
    std::string msg = "disk " + disk->file + " on node " + r.node() + ": " + r.failure().message();
    if (vm->warm)
      warm_cycle_failed(ref.migration, ref.vm_id, msg);  // retried with the next snapshot
    else
      fail_vm(ref.migration, ref.vm_id, msg);
  }
  dispatch();
}

void MigrationRunner::on_conversion_result(const TaskRef& ref, VmStatus& vm,
                                           const ferry::v1::TaskResult& r) {
  auto& conv = vm.conversion;
  if (!conv || conv->taskId != r.task_id() || vm.terminal()) return;
  if (r.has_conversion()) {
    const auto& c = r.conversion();
    conv->state = TaskState::kCompleted;
    conv->report = status::ConversionReport::from(c);
    if (auto* s = vm.step("ImageConversion")) s->message.clear();
    kLog.info("guest converted", {{"vm", vm.name}, {"os", c.os_product()}});
    save_status(ref.migration);
    return advance(ref.migration, ref.vm_id);
  }
  conv->state =
      r.state() == ferry::v1::TASK_STATE_CANCELED ? TaskState::kCanceled : TaskState::kFailed;
  // The copied volumes stay: `ferryctl retry` runs only the conversion again.
  fail_vm(ref.migration, ref.vm_id,
          "guest conversion on node " + r.node() + " failed: " + r.failure().message());
}

void MigrationRunner::on_inspection_result(const TaskRef& ref, VmStatus& vm,
                                           const ferry::v1::TaskResult& r) {
  auto& ins = vm.inspection;
  if (!ins || ins->taskId != r.task_id() || vm.terminal()) return;
  const Resource* plan = plan_of(ref.migration);
  std::string name = vm.name;
  if (!r.has_inspection()) {
    // Could not inspect (e.g. the source refused the reads): no verdict on the
    // guest, so no reason to stop; conversion will check it. Said in the status.
    ins->state = TaskState::kCompleted;
    ins->warning = "preflight inspection on node " + r.node() +
                   " could not run: " + r.failure().message() +
                   "; the guest is checked at conversion instead";
    kLog.warn("preflight inspection could not run",
              {{"vm", name}, {"error", r.failure().message()}});
    save_status(ref.migration);
    return advance(ref.migration, ref.vm_id);
  }
  const auto& x = r.inspection();
  ins->state = TaskState::kCompleted;
  ins->report = status::InspectionReport::from(x);
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
  std::vector<std::string> ids;
  for (const auto& vm : status_.vms(k))
    if (vm.name == req.vm || vm.id == req.vm) ids.push_back(vm.id);
  for (const auto& id : ids) {
    VmStatus& vm = *vm_status(k, id);
    const std::string at = vm.phase == "Failed" && vm.error ? vm.error->step : "";
    const bool hook = (at == "PreHook" || at == "PostHook") && vm.hooks.count(at);
    if (at != "ImageConversion" && !hook)
      return reply(api::error_reply(Error(
          ErrorCode::kFailedPrecondition,
          k.to_string() + ": --vm: VM \"" + vm.name +
              "\" did not fail at ImageConversion, PreHook or PostHook; only a conversion or a "
              "hook can be retried")));
    if (hook) {
      // The hook runs again from its first attempt; what came before it stays.
      vm.phase = at;
      vm.hooks[at].state = TaskState::kPending;
    } else {
      // Back to ConvertGuest with the copied volumes as they are.
      vm.phase = "ConvertGuest";
      if (!vm.conversion) vm.conversion.emplace();
      vm.conversion->state = TaskState::kFailed;
    }
    vm.error.reset();
    vm.completed.clear();
    for (auto& s : vm.pipeline)
      if (s.name == at) {
        s.phase = "Running";
        s.error.reset();
        s.completed.clear();
        s.output.reset();
      } else if (s.phase == "Failed") {
        s.phase = "Pending";
      }
    status_[k]["phase"] = "Running";
    status_[k].erase("completed");
    retried.push_back(vm.name);
    save_status(k);
    advance(k, id);
  }
  if (retried.empty())
    return reply(
        api::error_reply(Error(ErrorCode::kNotFound, k.to_string() + ": --vm: VM \"" + req.vm +
                                                         "\" is not part of this migration")));
  reply({{"ok", true}, {"retried", retried}});
}

// ---------------------------------------------------------------- migrations

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
  std::vector<VmStatus> vms;
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
    VmStatus vm;
    vm.id = id;
    vm.name = rv.inventory.value("name", "");
    vm.targetName = rv.target_name;
    // The VM's hooks by step (validation allowed one per step).
    for (const auto& h : plan->spec()["vms"][rv.index].value("hooks", Json::array()))
      vm.hooks[h.value("step", "")].hook = {h["hook"].value("namespace", plan->key().ns),
                                            h["hook"].value("name", "")};
    vm.pipeline = new_pipeline(warm, vm.hooks);
    if (warm) vm.warm.emplace();
    if (cancel_sel.count(id) || cancel_sel.count(vm.name)) vm.phase = "Canceled";
    vms.push_back(std::move(vm));
  }
  size_t vm_count = vms.size();
  Json st = {{"phase", "Running"}, {"plan", pk.to_string()}, {"started", now_iso()}};
  status_.start_migration(mkey, std::move(st), std::move(vms));
  plan_st["phase"] = "Executing";
  plan_st["migration"] = mkey.to_string();
  status::plan_started(plan_st, now_iso());
  status::migration_started(status_[mkey], now_iso());
  save_status(pk);
  save_status(mkey);
  store_->record_event(mkey, "Normal", "Started",
                       "Migrating " + std::to_string(vm_count) + " VMs of " + pk.to_string());
  kLog.info("migration started", {{"migration", mkey.to_string()},
                                  {"plan", pk.to_string()},
                                  {"vms", std::to_string(vm_count)}});
  pump(mkey);
  maybe_finish_migration(mkey);
}

void MigrationRunner::pump(const ResourceKey& mkey) {
  if (status_.find(mkey) == status_.end()) return;
  int running = 0;
  std::vector<std::string> resume, start;
  for (const auto& vm : status_.vms(mkey)) {
    if (vm.phase == "Pending") {
      start.push_back(vm.id);
    } else if (!vm.terminal()) {
      running++;
      resume.push_back(vm.id);
    }
  }
  for (const auto& id : resume) advance(mkey, id);  // idempotent: re-enters the current phase
  for (const auto& id : start) {
    if (running >= opts_.max_vms_in_flight) break;
    VmStatus* vm = vm_status(mkey, id);
    if (!vm || vm->phase != "Pending") continue;
    if (!set_phase(mkey, *vm, Phase::kStarted)) continue;  // Initialize runs from now
    vm->started = now_iso();
    running++;
    advance(mkey, id);
  }
}

bool MigrationRunner::set_phase(const ResourceKey& mkey, VmStatus& vm, Phase to) {
  // Every change goes through the transition table; anything else is a bug
  // in the runner, and the VM fails saying so rather than run on from a state
  // nobody designed.
  const std::string from_name = vm.phase;
  auto from = migration::phase_from_name(from_name);
  bool legal = from ? migration::can_transition(*from, to, vm.warm.has_value())
                    : (from_name == "Pending" &&
                       (to == Phase::kStarted || to == Phase::kFailed || to == Phase::kCanceled));
  if (!legal) {
    std::string why = std::string("internal error: illegal phase transition ") + from_name +
                      " -> " + migration::phase_name(to);
    metrics_.bad_input.Add({{"source", "transition"}}).Increment();
    kLog.error("illegal phase transition",
               {{"migration", mkey.to_string()}, {"vm", vm.name}, {"error", why}});
    if (!from || migration::is_terminal(*from)) return false;
    fail_vm(mkey, vm.id, why);
    return false;
  }
  // Past the (initial) copy, the data is on the node: its free space says the rest.
  if (to == Phase::kConvertGuest || to == Phase::kCreateVM || to == Phase::kCopyingPaused ||
      migration::is_terminal(to))
    agents_.release(space_owner(mkey, vm.id));
  std::string now = now_iso();
  vm.phase = migration::phase_name(to);
  if (to == Phase::kCompleted || to == Phase::kFailed || to == Phase::kCanceled) {
    vm.completed = now;
    store_->record_event(mkey, to == Phase::kCompleted ? "Normal" : "Warning",
                         std::string("VM") + migration::phase_name(to),
                         "VM " + vm.name + " " +
                             (to == Phase::kCompleted ? "migrated"
                              : to == Phase::kFailed  ? "failed"
                                                      : "canceled"));
    metrics_.migrated_vms
        .Add({{"status", to == Phase::kCompleted ? "succeeded"
                         : to == Phase::kFailed  ? "failed"
                                                 : "canceled"}})
        .Increment();
    for (auto& s : vm.pipeline) {
      if (to == Phase::kCompleted && s.phase != "Skipped") {
        if (s.started.empty()) s.started = now;
        if (s.completed.empty()) s.completed = now;
        s.phase = "Completed";
      } else if (s.phase == "Running") {
        s.phase = to == Phase::kFailed ? "Failed" : "Canceled";
        s.completed = now;
      }
    }
    return true;
  }
  vm.enter_step(step_for(vm, to), now);
  return true;
}

void MigrationRunner::fail_vm(const ResourceKey& mkey, const std::string& vm_id,
                              const std::string& message) {
  VmStatus* vm = vm_status(mkey, vm_id);
  if (!vm || vm->terminal()) return;
  std::string at = step_for(*vm, migration::phase_from_name(vm->phase).value_or(Phase::kStarted));
  vm->error = status::VmError{vm->phase, at, {message}};
  if (auto* s = vm->step(at)) s->error = status::StepError{vm->phase, {message}};
  kLog.error("VM failed", {{"migration", mkey.to_string()}, {"vm", vm->name}, {"error", message}});
  stop_hooks(mkey, *vm);
  // Stop this VM's other transfers; their volumes stay for a later retry.
  for (auto& d : vm->disks)
    if (stop_transfer(d)) d.state = TaskState::kCanceled;
  close_sources(mkey, vm_id);
  if (!set_phase(mkey, *vm, Phase::kFailed)) return;
  save_status(mkey);
  if (vm->warm) cleanup_warm_snapshots(mkey, vm_id);
  maybe_finish_migration(mkey);
  pump(mkey);
}

bool MigrationRunner::stop_transfer(const DiskStatus& disk) {
  if (!status::in_agent(disk.state)) return false;
  ferry::v1::CancelTask c;
  c.set_task_id(disk.taskId);
  tasks_.cancel(disk.node, c);
  tasks_.release(disk.taskId);
  return true;
}

void MigrationRunner::cancel_vm(const ResourceKey& mkey, const std::string& vm_id) {
  VmStatus* vm = vm_status(mkey, vm_id);
  if (!vm || vm->terminal()) return;
  bool started = vm->phase != "Pending";
  // Past CreateVM the volumes belong to the VM that was created.
  bool created = vm->phase == "PostHook";
  stop_hooks(mkey, *vm);
  for (auto& d : vm->disks) {
    tasks_.release(d.taskId);
    if (!d.node.empty() && !d.taskId.empty()) {
      ferry::v1::CancelTask c;
      c.set_task_id(d.taskId);
      c.set_delete_volume(!created);  // a canceled VM leaves no volume behind, partial or not
      target_volume(d, c.mutable_volume());
      tasks_.cancel(d.node, c);
    }
    d.state = TaskState::kCanceled;
  }
  close_sources(mkey, vm_id);
  tasks_.drop_vm(mkey, vm_id);
  auto cancel_work = [&](auto& work) {
    if (!work || work->state == TaskState::kCompleted) return;
    ferry::v1::CancelTask c;
    c.set_task_id(work->taskId);
    tasks_.cancel(work->node, c);
    work->state = TaskState::kCanceled;
  };
  cancel_work(vm->conversion);
  cancel_work(vm->inspection);
  if (!set_phase(mkey, *vm, Phase::kCanceled)) return;
  if (!started) vm->completed.clear();
  if (started && vm->warm) cleanup_warm_snapshots(mkey, vm_id);
  kLog.info("VM canceled", {{"migration", mkey.to_string()}, {"vm", vm->name}});
  // Restore the source's power state if we turned it off.
  // (Cluster mode: the Plan may have been deleted with kubectl meanwhile; then
  // there is no source to power on.)
  const Resource* plan = plan_of(mkey);
  if (plan && vm->sourcePowerState == "On" && vm->poweredOff) {
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
  auto outcome = status::migration_outcome(status_.vms(mkey));
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
  tasks_.dispatch([&](const std::string& id) {
    const TaskRef* ref = tasks_.find(id);
    VmStatus* vm = ref ? vm_status(ref->migration, ref->vm_id) : nullptr;
    DiskStatus* d = vm ? vm->disk_by_task(id) : nullptr;
    return d && d->state == TaskState::kWaiting;
  });
}

bool MigrationRunner::converts_guests(const ResourceKey& pk) const {
  const Json* inv = inventory_of(pk);
  if (!inv || !inv->contains("capabilities")) return true;
  return (*inv)["capabilities"].value("guestConversion", true);
}

bool MigrationRunner::releases_change_ids(const Resource& plan) const {
  auto pk = model::ref_key(plan.spec()["provider"]["source"], "Provider", plan.key().ns);
  const Json* inv = inventory_of(pk);
  if (!inv || !inv->contains("capabilities")) return false;
  return (*inv)["capabilities"].value("releasesChangeIds", false);
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

void MigrationRunner::publish_vm_task(const ResourceKey& mkey, const std::string& vm_id,
                                      Phase phase, const std::string& node,
                                      const std::string& task_id, std::string wire,
                                      std::function<void(VmStatus&)> stored) {
  tasks_.publish(node, task_id, std::move(wire),
                 [this, mkey, vm_id, phase, stored = std::move(stored)](Status pub) {
                   VmStatus* v = vm_status(mkey, vm_id);
                   if (!v || v->phase != migration::phase_name(phase)) return;
                   if (!pub.ok()) {  // the stream refused it: again in a moment
                     loop_.after(std::chrono::seconds(2),
                                 [this, mkey, vm_id] { advance(mkey, vm_id); });
                     return;
                   }
                   stored(*v);
                   save_status(mkey);
                 });
}

void MigrationRunner::go(const ResourceKey& mkey, const std::string& vm_id, Phase to) {
  VmStatus* v = vm_status(mkey, vm_id);
  if (!v || v->terminal()) return;
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
                                    std::function<void(VmStatus&)> then,
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
                               VmStatus* v = vm_status(mkey, vm_id);
                               if (!v || v->phase != migration::phase_name(phase)) return;
                               if (!s.ok())
                                 return on_error ? on_error(s.error())
                                                 : fail_vm(mkey, vm_id, s.error().message);
                               then(*v);
                             });
}

void MigrationRunner::advance(const ResourceKey& mkey, const std::string& vm_id) {
  VmStatus* vm = vm_status(mkey, vm_id);
  if (!vm || vm->terminal() || vm->phase == "Pending") return;
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
  Phase phase = migration::phase_from_name(vm->phase).value_or(Phase::kStarted);
  if (migration::is_warm_phase(phase)) return advance_warm(mkey, vm_id, phase, *plan, *inv_vm);
  // The next phase of this VM's itinerary (cold, or warm outside its loop).
  auto go_next = [this, mkey, vm_id, phase] {
    VmStatus* v = vm_status(mkey, vm_id);
    if (!v) return;
    Phase to = migration::next_phase(phase);
    if (v->warm)
      to = migration::next_warm_phase(
          phase,
          migration::stage_from_name(v->warm->stage).value_or(migration::WarmStage::kInitial),
          false);
    go(mkey, vm_id, to);
  };
  auto blocking = [this, mkey, vm_id, phase](std::function<Status(SourceProvider&)> call,
                                             std::function<void(VmStatus&)> then) {
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
          pspec.value("skipPreflightInspection", false) || !converts_guests(pk))
        return go_next();
      TaskState st = vm->inspection ? vm->inspection->state : TaskState::kUnknown;
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
      it->set_vm(vm->name);
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
          [this, mkey, vm_id, any, task_id, node](VmStatus&) {
            tasks_.track(task_id, TaskRef{mkey, vm_id, kInspectionTask});
            keep_credentials(task_id, *any);
            publish_vm_task(
                mkey, vm_id, Phase::kPreflightInspection, node, task_id, any->SerializeAsString(),
                [task_id, node](VmStatus& v) { queued_work(v.inspection, task_id).node = node; });
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
          [go_next, on](VmStatus& v) {
            if (v.sourcePowerState.empty()) v.sourcePowerState = *on ? "On" : "Off";
            go_next();
          });
    }
    case Phase::kPowerOffSource:
      return blocking([vm_id](SourceProvider& p) { return p.power_off(vm_id); },
                      [go_next](VmStatus& v) {
                        if (v.sourcePowerState == "On") v.poweredOff = true;
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
      std::string warm_suffix = vm->warm ? ".s" + std::to_string(vm->warm->snapshotSeq) + "-" +
                                               (vm->warm->snapshot ? vm->warm->snapshot->id : "")
                                         : "";
      std::vector<DiskStatus> disks;
      int i = 0;
      for (const auto& d : (*inv_vm)["disks"]) {
        DiskStatus x;
        x.key = d.value("key", 0);
        x.file = d.value("file", "");
        x.capacity = d.value("capacity", uint64_t{0});
        x.storageClass = classes[i];
        x.volume = target::volume_name(pspec.value("pvcNameTemplate", ""), vm->targetName,
                                       plan->key().name, i);
        x.requestedSize = target::requested_size(x.capacity, !block[i]);
        x.volumeMode = block[i] ? "Block" : "Filesystem";
        // Cluster mode: a directory per claim, the disk in it as KubeVirt
        // expects it on a Filesystem PVC (the agent makes it a PersistentVolume).
        // Block: the directory holds the device node (a loop device).
        x.relativePath = pspec.value("targetNamespace", "") + "/" + x.volume +
                         (block[i]           ? "/block"
                          : opts_.kubernetes ? "/disk.img"
                                             : ".img");
        x.node = best;
        x.sourceHost = inv_vm->value("host", "");
        x.taskId = migration_uid + "." + vm_id + "." + std::to_string(x.key) + warm_suffix;
        tasks_.track(x.taskId, TaskRef{mkey, vm_id, x.key});
        disks.push_back(std::move(x));
        i++;
      }
      vm->disks = std::move(disks);
      vm->node = best;
      return go_next();
    }
    case Phase::kCopyDisks: {
      bool all_done = true;
      for (auto& d : vm->disks) {
        TaskState st = d.state;
        if (st != TaskState::kCompleted) all_done = false;
        if (st != TaskState::kPending) continue;
        d.state = TaskState::kResolving;
        Json disk_inv;
        for (const auto& x : (*inv_vm)["disks"])
          if (x.value("key", 0) == d.key) disk_inv = x;
        auto task = std::make_shared<ferry::v1::TransferTask>();
        task->set_task_id(d.taskId);
        task->set_plan(plan->key().ns + "/" + plan->key().name);
        task->set_vm(vm->name);
        task->set_disk(d.file);
        target_volume(d, task->mutable_target());
        if (pspec.contains("transferNetwork"))
          task->set_transfer_network(pspec["transferNetwork"].value("name", ""));
        task->set_verify(true);
        std::string haddr = host_address(pk, inv_vm->value("host", ""));
        Json vmrec = *inv_vm;
        std::string task_id = d.taskId;
        // Warm: only what changed since the last copied snapshot (or every
        // allocated area for a full copy), read while this cycle's snapshot holds the base.
        std::shared_ptr<WarmDiskQuery> wq;
        if (vm->warm) {
          const auto& w = *vm->warm;
          wq = std::make_shared<WarmDiskQuery>();
          wq->vm_id = vm_id;
          wq->snapshot_id = w.snapshot ? w.snapshot->id : "";
          wq->disk_key = d.key;
          wq->capacity = d.capacity;
          auto base = w.changeIds.find(std::to_string(wq->disk_key));
          if (base != w.changeIds.end()) wq->base_change_id = base->second;
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
              VmStatus* v = vm_status(mkey, vm_id);
              if (!v || v->terminal()) return;
              DiskStatus* x = v->disk_by_task(task_id);
              if (x && x->state == TaskState::kResolving) {
                if (!s.ok()) {
                  if (wq) return warm_cycle_failed(mkey, vm_id, s.error().message);
                  return fail_vm(mkey, vm_id, s.error().message);
                }
                if (wq) {
                  // A full copy empties the volume first: the old base is
                  // meaningless from now until this copy commits.
                  if (wq->full && v->warm->changeIds.erase(std::to_string(wq->disk_key)))
                    save_status(mkey);
                  x->copy = status::WarmCopy{
                      .base = wq->base_change_id.empty() ? "*" : wq->base_change_id,
                      .changedBytes = wq->changed_bytes,
                      .full = wq->full,
                      .warning = wq->warning,
                      .sourceReported = wq->source_reports};
                  if (!wq->warning.empty()) {
                    v->warm->warnings.push_back(wq->warning);
                    kLog.warn("full copy forced", {{"vm", v->name}, {"warning", wq->warning}});
                  }
                  if (!wq->full && !wq->source_reports &&
                      task->ranges().empty()) {  // nothing changed on this disk
                    x->state = TaskState::kCompleted;
                    x->result = status::DiskResult{};
                    save_status(mkey);
                    return advance(mkey, vm_id);
                  }
                }
                x->state = TaskState::kWaiting;
                ferry::v1::AgentTask any;
                *any.mutable_transfer() = *task;
                keep_credentials(task_id, any);
                tasks_.enqueue({.id = task_id,
                                .source_host = x->sourceHost,
                                .node = x->node,
                                .wire = any.SerializeAsString(),
                                // The stream's dedupe id (".0" since the first release).
                                .msg_id = task_id + ".0",
                                .stored = [this, mkey, vm_id, task_id] {
                                  VmStatus* v = vm_status(mkey, vm_id);
                                  DiskStatus* y = v ? v->disk_by_task(task_id) : nullptr;
                                  // A claim may already have made it Running.
                                  if (y && y->state == TaskState::kWaiting) {
                                    y->state = TaskState::kQueued;
                                    save_status(mkey);
                                  }
                                }});
              }
              dispatch();
            });
      }
      if (all_done) {
        if (vm->warm) return warm_copy_done(mkey, *vm);
        return go_next();
      }
      if (auto* s = vm->step("DiskTransfer")) {
        uint64_t total = 0;
        for (const auto& d : vm->disks) total += d.capacity;
        if (!s->progress) s->progress = status::StepProgress{0, total / kMiB};
      }
      save_status(mkey);
      return;
    }
    case Phase::kConvertGuest: {
      auto* s = vm->step("ImageConversion");
      if (pspec.value("skipGuestConversion", false) || !converts_guests(pk)) {
        // Raw copy mode, or a source whose guests already run on KVM (oVirt,
        // as in MTV): no conversion process at all.
        if (s && s->phase != "Skipped") {
          s->phase = "Skipped";
          s->started.clear();  // it did not run: no elapsed time to show
          s->reason = pspec.value("skipGuestConversion", false)
                          ? "skipGuestConversion is set (raw copy mode)"
                          : "the source's guests already run on KVM: no conversion needed";
        }
        return go_next();
      }
      TaskState cst = vm->conversion ? vm->conversion->state : TaskState::kUnknown;
      if (cst == TaskState::kCompleted) return go_next();
      if (status::in_agent(cst)) return;  // waiting for the agent's result
      // Convert in place on the node that holds the volumes.
      int attempt = vm->conversion ? vm->conversion->attempt + 1 : 1;
      std::string task_id =
          mkey.ns + "." + mkey.name + "." + vm_id + ".convert." + std::to_string(attempt);
      ferry::v1::AgentTask any;
      auto* ct = any.mutable_convert();
      ct->set_task_id(task_id);
      ct->set_plan(plan->key().ns + "/" + plan->key().name);
      ct->set_vm(vm->targetName);
      for (const auto& d : vm->disks) target_volume(d, ct->add_volumes());
      ct->set_firmware(inv_vm->value("firmware", "bios"));
      ct->set_cpus(static_cast<uint32_t>(inv_vm->value("cpus", 1)));
      ct->set_memory_mb(static_cast<uint32_t>(inv_vm->value("memoryMB", 1024)));
      for (const auto& nic : (*inv_vm)["nics"]) ct->add_macs(nic.value("mac", ""));
      // preserveStaticIPs: each NIC's first IPv4 address as the guest reported it,
      // in virt-v2v's --mac MAC:ip:IP[,GW,PREFIX] form (no gateway known: the address alone).
      std::map<std::string, std::string> mac_ips;
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
      std::string node = vm->node;
      if (tasks_.publishing(task_id)) return;  // its ack comes back to here
      tasks_.track(task_id, TaskRef{mkey, vm_id, kConversionTask});
      publish_vm_task(mkey, vm_id, Phase::kConvertGuest, node, task_id, any.SerializeAsString(),
                      [task_id, node, attempt, mac_ips](VmStatus& v) {
                        auto& c = queued_work(v.conversion, task_id);
                        c.node = node;
                        c.attempt = attempt;
                        c.macIPs = mac_ips;
                      });
      return;
    }
    case Phase::kCreateVM: {
      const Resource* nmap =
          find(model::ref_key(pspec["map"]["network"], "NetworkMap", plan->key().ns));
      target::VmManifestInput in;
      in.name = vm->targetName;
      in.ns = pspec.value("targetNamespace", "");
      in.source_vm = *inv_vm;
      in.volumes = Json::array();
      for (const auto& d : vm->disks)
        in.volumes.push_back({{"name", d.volume}, {"disk_key", d.key}});
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
      in.running = tps == "on" || (tps == "auto" && vm->sourcePowerState == "On");
      // Converted guests get virtio (as virt-v2v reports it); without conversion the
      // guest may lack virtio drivers: SATA + e1000e unless useCompatibilityMode is false.
      if (vm->conversion && vm->conversion->state == TaskState::kCompleted) {
        auto rep = vm->conversion->report.value_or(status::ConversionReport{});
        in.compatibility_devices = !rep.virtioDisk;
        if (!rep.firmware.empty()) in.source_vm["firmware"] = rep.firmware;
        // e.g. "linux debian 12.15" (libguestfs' product name for Debian is just the version).
        in.guest_os = rep.os + " " + rep.distro + " " + rep.version;
      } else {
        // A source whose guests already run on KVM (oVirt) has virtio drivers.
        in.compatibility_devices = pspec.value("useCompatibilityMode", converts_guests(pk));
      }
      Json manifest = target::virtual_machine(in);
      vm->vmManifest = manifest;
      target::VmRequest req;
      req.vm = manifest;
      req.vm_id = vm_id;
      req.migration = store_->uid(mkey);
      req.plan = store_->uid(plan->key());
      for (const auto& d : vm->disks)
        req.claims.push_back({d.volume, d.storageClass, d.requestedSize, d.volumeMode == "Block"});
      std::string key = mkey.to_string() + vm_id;
      if (inflight_.count(key)) return;  // already being created
      inflight_.insert(key);
      loop_.run_blocking<Result<std::string>>(
          [sink = vm_sink_, req] { return sink->create(req); },
          [this, mkey, vm_id, key, go_next](Result<std::string> where) {
            inflight_.erase(key);
            VmStatus* v = vm_status(mkey, vm_id);
            if (!v || v->phase != migration::phase_name(Phase::kCreateVM)) return;
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
              v->vmRef = *where;
            else if (!where->empty())
              v->vmManifestPath = *where;
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
      kLog.info("VM migrated", {{"migration", mkey.to_string()}, {"vm", vm->name}});
      // Nothing of the precopies is needed now (oVirt: the last checkpoints).
      if (vm->warm) cleanup_warm_snapshots(mkey, vm_id);
      maybe_finish_migration(mkey);
      pump(mkey);
      return;
    default:  // terminal; warm-only phases are run by advance_warm
      return;
  }
}

}  // namespace ferry::coordinator::runner
