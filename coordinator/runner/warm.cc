// Warm migration: the precopy loop and the cutover of a VM whose source keeps
// running (vSphere CBT). The runner's cold pipeline runs the shared phases
// (volumes, power, conversion, VM creation); this file owns the snapshot
// phases. Order per cycle, never changed: create the snapshot -> record each
// disk's change ID from it -> copy what changed since the last recorded IDs
// (read while the snapshot freezes the base disk) -> remove the snapshot ->
// commit the new IDs. Only one Ferry snapshot exists per VM at any time, and
// each is named with the Migration's prefix so that a restarted coordinator,
// or the cleanup after a failure or cancel, finds it.
#include <algorithm>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/model/validate.h"
#include "coordinator/migration/warm.h"
#include "coordinator/runner/migration_runner.h"
#include "coordinator/status/reports.h"

namespace ferry::coordinator::runner {

using migration::Phase;
using migration::WarmStage;
using model::Json;
using status::TaskState;
using status::VmStatus;
using status::WarmStatus;

namespace {

const Logger kLog("coordinator");

WarmStage stage_of(const VmStatus& vm) {
  return migration::stage_from_name(vm.warm ? vm.warm->stage : "").value_or(WarmStage::kInitial);
}

std::vector<migration::CycleSample> samples(const WarmStatus& w) {
  std::vector<migration::CycleSample> out;
  for (const auto& c : w.precopies) {
    migration::CycleSample s;
    s.snapshot_at = c.snapshotAt.value_or(0);
    s.changed_bytes = c.changedBytes.value_or(0);
    s.copy_seconds = c.copySeconds.value_or(0);
    s.snapshot_seconds = c.snapshotSeconds.value_or(0);
    s.full = c.full.value_or(false);
    out.push_back(s);
  }
  return out;
}

void add_once(std::vector<std::string>& ids, const std::string& id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

// Removes a snapshot no cycle will copy from (never recorded, or its cycle
// failed before its change IDs were) and releases those IDs, which are
// nobody's base but `keep`'s; the ones it could not release are appended
// to `unreleased`. A snapshot not ready yet has no change IDs.
Status drop_snapshot(SourceProvider& p, const std::string& vm_id, const std::string& snap,
                     const std::set<std::string>& keep, std::vector<std::string>& unreleased) {
  auto ids = p.snapshot_change_ids(vm_id, snap);
  FERRY_TRY(p.remove_snapshot(vm_id, snap));
  if (!ids.ok()) return {};
  std::vector<std::string> drop;
  for (const auto& [key, id] : *ids)
    if (!keep.count(id)) add_once(drop, id);
  if (!drop.empty() && !p.release_change_ids(vm_id, drop).ok())
    unreleased.insert(unreleased.end(), drop.begin(), drop.end());
  return {};
}

std::set<std::string> bases(const WarmStatus& w) {
  std::set<std::string> out;
  for (const auto& [key, id] : w.changeIds) out.insert(id);
  return out;
}

// Queues a change ID for release_change_ids, unless it is still a base.
void queue_release(WarmStatus& w, const std::string& id) {
  if (!bases(w).count(id)) add_once(w.releaseChangeIds, id);
}

}  // namespace

double MigrationRunner::precopy_interval(const Resource& plan) const {
  double s = opts_.precopy_interval_seconds;
  model::parse_duration(plan.spec().value("precopyInterval", ""), &s);
  return s;
}

Status MigrationRunner::query_changes(SourceProvider& p, WarmDiskQuery& q,
                                      ferry::v1::TransferTask& task) {
  std::string base = q.base_change_id.empty() ? "*" : q.base_change_id;
  auto r = p.changed_areas(q.vm_id, q.snapshot_id, q.disk_key, q.capacity, base);
  if (!r.ok()) return r.error();
  if (r->change_id_invalid) {
    // CBT was reset or the disk replaced: the old change ID means nothing now.
    // Copy the whole disk again rather than trust a delta we cannot get.
    q.warning = "disk " + std::to_string(q.disk_key) + ": change ID " + base +
                " is no longer valid (" + r->detail + "); copying the whole disk again";
    r = p.changed_areas(q.vm_id, q.snapshot_id, q.disk_key, q.capacity, "*");
    if (!r.ok()) return r.error();
    base = "*";
  }
  q.full = base == "*";
  q.changed_bytes = 0;
  task.clear_ranges();
  if (r->source_reports && !q.full) {
    // The agent reads the changed areas from the snapshot's source itself
    // and updates the earlier copy with them.
    if (!task.has_http())
      return Error(ErrorCode::kInternal, "disk " + std::to_string(q.disk_key) +
                                             ": the source reports its changes only over HTTP");
    task.mutable_http()->set_dirty_extents(true);
    task.set_fresh_target(false);
    q.source_reports = true;
    return {};
  }
  for (const auto& a : r->areas) {
    *task.add_ranges() = a;
    q.changed_bytes += a.length();
  }
  // A full copy starts from an empty volume. If nothing is allocated at all,
  // a whole-disk copy still creates the (empty) volume.
  task.set_fresh_target(q.full);
  return {};
}

void MigrationRunner::wake_at(const ResourceKey& mkey, const std::string& vm_id, double when) {
  std::string key = mkey.to_string() + vm_id;
  double now = now_seconds();
  when = std::min(when, now + 60);  // re-checked at least every minute
  auto it = wake_at_.find(key);
  if (it != wake_at_.end() && it->second > now && it->second <= when) return;
  wake_at_[key] = when;
  auto ms = static_cast<int64_t>(std::max(0.0, when - now) * 1000) + 20;
  loop_.after(std::chrono::milliseconds(ms), [this, mkey, vm_id, key, when] {
    auto it = wake_at_.find(key);
    if (it == wake_at_.end() || it->second != when) return;  // superseded
    wake_at_.erase(it);
    advance(mkey, vm_id);
  });
}

void MigrationRunner::update_prediction(VmStatus& vm, const Resource& plan) {
  WarmStatus& w = *vm.warm;
  auto p = migration::predict_downtime(samples(w), now_seconds());
  status::PredictedDowntime pd;
  if (!p.available) {
    pd.reason = "needs the initial copy and one precopy after it";
    w.predictedDowntime = pd;
    return;
  }
  pd.available = true;
  pd.seconds = p.seconds;
  pd.changeRateBytesPerSecond = p.change_rate;
  pd.copyRateBytesPerSecond = p.copy_rate;
  pd.fixedSeconds = p.fixed_seconds;
  pd.snapshotSeconds = p.snapshot_seconds;
  pd.expectedBytes = p.expected_bytes;
  pd.asOf = now_iso();
  pd.excludes = "source power-off and guest conversion";
  double max_dt = 0;
  if (model::parse_duration(plan.spec().value("maxDowntime", ""), &max_dt))
    pd.maxDowntimeSeconds = max_dt;
  w.predictedDowntime = pd;
}

bool MigrationRunner::cutover_due(const ResourceKey& mkey, VmStatus& vm, const Resource& plan) {
  WarmStatus& w = *vm.warm;
  double now = now_seconds();
  std::string at = w.cutover;
  std::string source = "the VM's cutover time";
  if (at.empty()) {
    const Resource* mig = find(mkey);
    at = mig ? mig->spec().value("cutover", "") : "";
    source = mkey.to_string() + " spec.cutover";
  }
  double t = 0;
  if (!at.empty() && model::parse_rfc3339(at, &t)) {
    if (now >= t) {
      w.cutoverReason = source + " " + at + " reached";
      return true;
    }
    wake_at(mkey, vm.id, t);
  }
  double max_dt = 0;
  if (model::parse_duration(plan.spec().value("maxDowntime", ""), &max_dt)) {
    auto p = migration::predict_downtime(samples(w), now);
    if (p.available && p.seconds <= max_dt) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "predicted downtime %.1f s is within spec.maxDowntime %.0f s",
                    p.seconds, max_dt);
      w.cutoverReason = buf;
      return true;
    }
  }
  return false;
}

void MigrationRunner::advance_warm(const ResourceKey& mkey, const std::string& vm_id, Phase phase,
                                   const Resource& plan, const Json& inv_vm) {
  VmStatus* vmp = vm_status(mkey, vm_id);
  if (!vmp->warm) return fail_vm(mkey, vm_id, "internal error: a warm phase for a cold VM");
  WarmStatus& w = *vmp->warm;
  double now = now_seconds();
  if (phase != Phase::kCopyingPaused && w.notBefore.value_or(0) > now)
    return wake_at(mkey, vm_id, *w.notBefore);
  auto on_error = [this, mkey, vm_id](const Error& e) {
    warm_cycle_failed(mkey, vm_id, e.message);
  };
  auto next = [this, mkey, vm_id, phase] {
    VmStatus* v = vm_status(mkey, vm_id);
    if (v) go(mkey, vm_id, migration::next_warm_phase(phase, stage_of(*v), false));
  };
  std::string prefix = migration::warm_snapshot_prefix(mkey.ns, mkey.name);
  switch (phase) {
    case Phase::kCreateInitialSnapshot:
    case Phase::kCreateSnapshot:
    case Phase::kCreateFinalSnapshot: {
      int seq = w.snapshotSeq + 1;
      std::string name = prefix + std::to_string(seq);
      std::string desc = "Ferry warm migration " + mkey.to_string() + ": precopy snapshot " +
                         std::to_string(seq) + " of VM " + vmp->name +
                         "; Ferry removes it when the copy is done";
      WarmStage stage = phase == Phase::kCreateInitialSnapshot ? WarmStage::kInitial
                        : phase == Phase::kCreateFinalSnapshot ? WarmStage::kFinal
                                                               : WarmStage::kPrecopy;
      auto id = std::make_shared<std::string>();
      auto secs = std::make_shared<double>(0);
      auto unreleased = std::make_shared<std::vector<std::string>>();
      std::map<int, std::string> base;
      for (const auto& [key, cid] : w.changeIds) base[std::atoi(key.c_str())] = cid;
      return provider_call(
          mkey, vm_id, phase,
          [vm_id, prefix, name, desc, id, secs, base, keep = bases(w),
           unreleased](SourceProvider& p) -> Status {
            // A snapshot of ours not recorded yet (the coordinator stopped
            // between creating and recording it) goes first, with its change IDs.
            auto list = p.list_snapshots(vm_id);
            if (!list.ok()) return list.error();
            for (const auto& s : *list)
              if (s.name.rfind(prefix, 0) == 0)
                FERRY_TRY(drop_snapshot(p, vm_id, s.id, keep, *unreleased));
            double t0 = now_seconds();
            auto r = p.create_snapshot(vm_id, name, desc, base);
            if (!r.ok()) return r.error();
            *id = *r;
            *secs = now_seconds() - t0;
            return {};
          },
          [this, mkey, vm_id, seq, name, id, secs, stage, unreleased](VmStatus& v) {
            WarmStatus& w = *v.warm;
            for (const auto& cid : *unreleased) queue_release(w, cid);
            w.snapshotSeq = seq;
            w.stage = migration::stage_name(stage);
            w.snapshot = status::Snapshot{*id, name, now_iso()};
            w.current.emplace();
            w.current->snapshot = seq;
            w.current->stage = migration::stage_name(stage);
            w.current->snapshotAt = now_seconds();
            w.current->createSeconds = *secs;
            kLog.info("snapshot created", {{"migration", mkey.to_string()},
                                           {"vm", v.name},
                                           {"snapshot", *id},
                                           {"name", name}});
            go(mkey, vm_id,
               stage == WarmStage::kInitial ? Phase::kPreflightInspection
                                            : Phase::kStoreSnapshotDeltas);
          },
          on_error);
    }
    case Phase::kStoreInitialSnapshotDeltas:
    case Phase::kStoreSnapshotDeltas: {
      std::string snap = w.snapshot ? w.snapshot->id : "";
      auto ids = std::make_shared<std::map<int, std::string>>();
      // The disks (key, file) whose change IDs this snapshot must have.
      std::vector<std::pair<int, std::string>> disks;
      if (phase == Phase::kStoreInitialSnapshotDeltas) {
        for (const auto& d : inv_vm.value("disks", Json::array()))
          disks.emplace_back(d.value("key", 0), d.value("file", ""));
      } else {
        for (const auto& d : vmp->disks) disks.emplace_back(d.key, d.file);
      }
      return provider_call(
          mkey, vm_id, phase,
          [vm_id, snap, ids](SourceProvider& p) -> Status {
            auto r = p.snapshot_change_ids(vm_id, snap);
            if (!r.ok()) return r.error();
            *ids = *r;
            return {};
          },
          [this, mkey, vm_id, phase, ids, disks, next](VmStatus& v) {
            WarmStatus& w = *v.warm;
            std::map<std::string, std::string> pending;
            for (const auto& [key, file] : disks) {
              if (!ids->count(key))
                return fail_vm(mkey, vm_id,
                               "disk " + file + " (key " + std::to_string(key) +
                                   ") is no longer attached to the source VM; the migration "
                                   "cannot continue with a disk missing");
              pending[std::to_string(key)] = (*ids)[key];
            }
            if (ids->size() > disks.size())
              return fail_vm(mkey, vm_id,
                             "the source VM has " + std::to_string(ids->size()) + " disks now, " +
                                 std::to_string(disks.size()) +
                                 " when the migration started (a disk was added); start a new "
                                 "migration to include it");
            w.pendingChangeIds = pending;
            w.copyStartedAt = now_seconds();
            if (phase == Phase::kStoreSnapshotDeltas) {
              // A new copy task per disk for this snapshot. The snapshot's id
              // makes the task (and its agent checkpoint) unique even across a
              // Migration deleted and created again with the same name.
              std::string seq =
                  std::to_string(w.snapshotSeq) + "-" + (w.snapshot ? w.snapshot->id : "");
              for (auto& d : v.disks) {
                std::string id = mkey.ns + "." + mkey.name + "." + vm_id + "." +
                                 std::to_string(d.key) + ".s" + seq;
                d.taskId = id;
                d.state = TaskState::kPending;
                d.bytesDone = 0;
                d.bytesTotal.reset();  // the agent reports this delta's size
                d.rate.reset();
                d.result.reset();
                d.copy.reset();
                tasks_.track(id, TaskRef{mkey, vm_id, d.key});
              }
            }
            next();
          },
          on_error);
    }
    case Phase::kRemovePreviousSnapshot:
    case Phase::kRemoveFinalSnapshot: {
      // Tasks of an aborted cycle may still read the base disk: wait for them
      // (their result, or their refused claim, brings the VM back here).
      for (const auto& d : vmp->disks)
        if (d.state == TaskState::kAborting) return save_status(mkey);
      std::string snap = w.snapshot ? w.snapshot->id : "";
      auto secs = std::make_shared<double>(0);
      // A cycle that failed before recording its change IDs: they go with it.
      bool recorded = w.pendingChangeIds.has_value();
      auto unreleased = std::make_shared<std::vector<std::string>>();
      return provider_call(
          mkey, vm_id, phase,
          [vm_id, snap, secs, recorded, keep = bases(w), unreleased](SourceProvider& p) -> Status {
            if (snap.empty()) return {};
            double t0 = now_seconds();
            if (recorded)
              FERRY_TRY(p.remove_snapshot(vm_id, snap));
            else
              FERRY_TRY(drop_snapshot(p, vm_id, snap, keep, *unreleased));
            *secs = now_seconds() - t0;
            return {};
          },
          [this, mkey, vm_id, snap, secs, next, unreleased](VmStatus& v) {
            WarmStatus& w = *v.warm;
            for (const auto& cid : *unreleased) queue_release(w, cid);
            w.snapshot.reset();
            if (w.current) w.current->removeSeconds = *secs;
            kLog.info("snapshot removed",
                      {{"migration", mkey.to_string()}, {"vm", v.name}, {"snapshot", snap}});
            if (w.retrying) return warm_retry(mkey, vm_id);
            next();
          },
          on_error);
    }
    case Phase::kAddCheckpoint:
    case Phase::kAddFinalCheckpoint: {
      // The copied snapshot's change IDs become the base of the next delta;
      // the ones they replace are released below.
      bool releases = releases_change_ids(plan);
      if (w.pendingChangeIds) {
        auto old = w.changeIds;
        w.changeIds = *w.pendingChangeIds;
        w.pendingChangeIds.reset();
        if (releases)
          for (const auto& [key, cid] : old) queue_release(w, cid);
      }
      if (w.current) {
        status::PrecopyCycle c = *w.current;
        c.snapshotSeconds = c.createSeconds.value_or(0) + c.removeSeconds.value_or(0);
        c.completed = now_iso();
        w.precopies.push_back(c);
        w.current.reset();
      }
      w.failures = 0;
      w.lastError.clear();
      if (phase == Phase::kAddFinalCheckpoint) {
        double started = w.cutoverStartedAt.value_or(now);
        w.downtime = status::Downtime{now - started,
                                      "source off from PowerOffSource to the end of the final "
                                      "copy; guest conversion follows"};
      } else {
        double last_at = w.precopies.empty() ? now : w.precopies.back().snapshotAt.value_or(now);
        w.nextPrecopyAt = last_at + precopy_interval(plan);
        update_prediction(*vmp, plan);
      }
      // The final one waits for the end (the source is off: no delay now).
      if (w.releaseChangeIds.empty() || phase == Phase::kAddFinalCheckpoint) return next();
      // Best effort: what fails now is released with the next cycle or at the end.
      std::vector<std::string> release = w.releaseChangeIds;
      save_status(mkey);
      return provider_call(
          mkey, vm_id, phase,
          [vm_id, release](SourceProvider& p) { return p.release_change_ids(vm_id, release); },
          [release, next](VmStatus& v) {
            auto& r = v.warm->releaseChangeIds;
            for (const auto& id : release) r.erase(std::remove(r.begin(), r.end(), id), r.end());
            next();
          },
          [mkey, vm_id, next](const Error& e) {
            kLog.warn("releasing old change IDs failed; tried again later",
                      {{"migration", mkey.to_string()}, {"vm", vm_id}, {"error", e.message}});
            next();
          });
    }
    case Phase::kCopyingPaused: {
      if (cutover_due(mkey, *vmp, plan)) {
        if (w.predictedDowntime) w.predictedAtCutover = w.predictedDowntime;
        w.cutoverStartedAt = now;
        kLog.info(
            "cutover",
            {{"migration", mkey.to_string()}, {"vm", vmp->name}, {"reason", w.cutoverReason}});
        return go(mkey, vm_id, Phase::kStorePowerState);
      }
      double at = w.nextPrecopyAt.value_or(now);
      if (now >= at) return go(mkey, vm_id, Phase::kCreateSnapshot);
      update_prediction(*vmp, plan);
      save_status(mkey);
      return wake_at(mkey, vm_id, at);
    }
    default:
      return;
  }
}

void MigrationRunner::warm_copy_done(const ResourceKey& mkey, VmStatus& vm) {
  WarmStatus& w = *vm.warm;
  uint64_t changed = 0, read = 0;
  bool full = false;
  for (auto& d : vm.disks) {
    if (d.copy && d.copy->sourceReported && d.result)  // what the agent found changed
      d.copy->changedBytes = d.result->bytesRead + d.result->bytesZero + d.result->bytesResumed;
    if (d.copy) {
      changed += d.copy->changedBytes;
      full = full || d.copy->full;
    }
    if (d.result) read += d.result->bytesRead;
  }
  if (!w.current) w.current.emplace();
  auto& c = *w.current;
  c.changedBytes = changed;
  c.bytesRead = read;
  c.full = full;
  c.copySeconds = now_seconds() - w.copyStartedAt.value_or(now_seconds());
  kLog.info("precopy copied", {{"migration", mkey.to_string()},
                               {"vm", vm.name},
                               {"stage", w.stage},
                               {"changedBytes", std::to_string(changed)},
                               {"bytesRead", std::to_string(read)}});
  go(mkey, vm.id, migration::next_warm_phase(Phase::kCopyDisks, stage_of(vm), false));
}

void MigrationRunner::warm_cycle_failed(const ResourceKey& mkey, const std::string& vm_id,
                                        const std::string& message) {
  VmStatus* vm = vm_status(mkey, vm_id);
  if (!vm || vm->terminal() || !vm->warm) return;
  WarmStatus& w = *vm->warm;
  int failures = ++w.failures;
  w.lastError = message;
  kLog.warn("precopy failed", {{"migration", mkey.to_string()},
                               {"vm", vm->name},
                               {"failures", std::to_string(failures)},
                               {"error", message}});
  // Stop this cycle's other transfers; the next snapshot's delta covers them.
  // Their volumes stay ("Aborting", never "Canceled", which would delete them),
  // and the snapshot is removed only once they have stopped (see the Remove phases).
  for (auto& d : vm->disks) {
    TaskState st = d.state;
    if (stop_transfer(d)) {
      d.state = TaskState::kAborting;
    } else if (st != TaskState::kCompleted && st != TaskState::kAborting &&
               st != TaskState::kFailed) {
      d.state = TaskState::kAborted;  // the disk that failed keeps "Failed"
    }
  }
  if (failures >= opts_.warm_failure_limit)
    return fail_vm(mkey, vm_id,
                   "precopy failed " + std::to_string(failures) + " times in a row: " + message);
  const Resource* plan = plan_of(mkey);
  if (!plan) return fail_vm(mkey, vm_id, message);
  double delay = std::min(precopy_interval(*plan), 60.0);
  w.retrying = true;
  Phase cur = migration::phase_from_name(vm->phase).value_or(Phase::kStarted);
  if (w.snapshot) {
    Phase rm = stage_of(*vm) == WarmStage::kFinal ? Phase::kRemoveFinalSnapshot
                                                  : Phase::kRemovePreviousSnapshot;
    if (cur == rm) w.notBefore = now_seconds() + delay;  // removing it failed: wait, then again
    if (!set_phase(mkey, *vm, rm)) return;
    save_status(mkey);
    return advance(mkey, vm_id);
  }
  w.notBefore = now_seconds() + delay;
  warm_retry(mkey, vm_id);
}

const Resource* MigrationRunner::plan_of(const ResourceKey& mkey) const {
  const Resource* mig = find(mkey);
  return mig ? find(model::ref_key(mig->spec()["plan"], "Plan", mkey.ns)) : nullptr;
}

void MigrationRunner::warm_retry(const ResourceKey& mkey, const std::string& vm_id) {
  VmStatus* vm = vm_status(mkey, vm_id);
  const Resource* planp = plan_of(mkey);
  if (!vm || vm->terminal() || !vm->warm) return;
  if (!planp) return fail_vm(mkey, vm_id, "the Plan of " + mkey.to_string() + " was deleted");
  const Resource& plan = *planp;
  WarmStatus& w = *vm->warm;
  w.retrying = false;
  w.current.reset();
  if (w.pendingChangeIds && releases_change_ids(plan))  // the failed cycle's: no base
    for (const auto& [k, id] : *w.pendingChangeIds) queue_release(w, id);
  w.pendingChangeIds.reset();
  double at =
      std::max(w.notBefore.value_or(0), now_seconds() + std::min(precopy_interval(plan), 60.0));
  Phase to;
  if (stage_of(*vm) == WarmStage::kFinal) {
    to = Phase::kCreateFinalSnapshot;  // the source is off: try the final delta again
    w.notBefore = at;
  } else if (vm->disks.empty()) {
    to = Phase::kCreateInitialSnapshot;  // no volumes yet
    w.notBefore = at;
  } else {
    to = Phase::kCopyingPaused;  // the next precopy's delta includes this one's
    w.nextPrecopyAt = at;
    w.notBefore.reset();
  }
  if (!set_phase(mkey, *vm, to)) return;
  save_status(mkey);
  advance(mkey, vm_id);
}

void MigrationRunner::cleanup_warm_snapshots(const ResourceKey& mkey, const std::string& vm_id,
                                             std::shared_ptr<ProviderPool> slot, int attempt,
                                             std::shared_ptr<const std::vector<std::string>> ids) {
  std::string key = mkey.to_string() + vm_id;
  VmStatus* vm = vm_status(mkey, vm_id);
  if (vm && vm->warm) {
    vm->warm->snapshotCleanup = "Pending";  // a restart before the end does it again
    save_status(mkey);
  }
  // Every change ID the VM's cycles made: none is a base for anything now.
  // Read once: the Migration (and its status) may be gone by a retry.
  if (!ids) {
    auto all = std::make_shared<std::vector<std::string>>();
    if (vm && vm->warm) {
      const WarmStatus& w = *vm->warm;
      *all = w.releaseChangeIds;
      for (const auto& [k, id] : w.changeIds) add_once(*all, id);
      if (w.pendingChangeIds)
        for (const auto& [k, id] : *w.pendingChangeIds) add_once(*all, id);
    }
    ids = all;
  }
  // The pool is taken now: the Migration (and its status) may be deleted
  // before the cleanup has run, the snapshots must go anyway.
  Error err;
  if (!slot) slot = source_pool(mkey, &err);
  if (!slot) {
    kLog.error("removing precopy snapshots impossible",
               {{"migration", mkey.to_string()}, {"vm", vm_id}, {"error", err.message}});
    return;
  }
  if (inflight_.count(key)) {
    // A snapshot call is under way; clean up once it has returned, so that a
    // snapshot it creates is not missed.
    loop_.after(std::chrono::seconds(1), [this, mkey, vm_id, slot, attempt, ids] {
      cleanup_warm_snapshots(mkey, vm_id, slot, attempt, ids);
    });
    return;
  }
  std::string prefix = migration::warm_snapshot_prefix(mkey.ns, mkey.name);
  auto removed = std::make_shared<int>(0);
  inflight_.insert(key);
  loop_.run_blocking<Status>(
      [slot, vm_id, prefix, removed, ids]() -> Status {
        return slot->with<Status>([&](SourceProvider& p) -> Status {
          auto list = p.list_snapshots(vm_id);
          if (!list.ok()) return list.error();
          std::vector<std::string> release = *ids;
          for (const auto& s : *list)
            if (s.name.rfind(prefix, 0) == 0) {
              FERRY_TRY(drop_snapshot(p, vm_id, s.id, {}, release));
              (*removed)++;
            }
          // After the snapshots: a source may refuse while one is open.
          if (!release.empty()) FERRY_TRY(p.release_change_ids(vm_id, release));
          return {};
        });
      },
      [this, mkey, vm_id, key, removed, attempt, slot, ids](Status s) {
        inflight_.erase(key);
        VmStatus* vm = vm_status(mkey, vm_id);
        if (s.ok()) {
          kLog.info("precopy snapshots cleaned up", {{"migration", mkey.to_string()},
                                                     {"vm", vm_id},
                                                     {"removed", std::to_string(*removed)}});
        } else {
          kLog.error(
              "removing precopy snapshots failed",
              {{"migration", mkey.to_string()}, {"vm", vm_id}, {"error", s.error().message}});
          if (attempt < 5)
            loop_.after(std::chrono::seconds(10 * attempt),
                        [this, mkey, vm_id, slot, attempt, ids] {
                          cleanup_warm_snapshots(mkey, vm_id, slot, attempt + 1, ids);
                        });
        }
        if (!vm || !vm->warm) return;
        WarmStatus& w = *vm->warm;
        w.snapshotCleanup = s.ok() ? std::string("Completed") : "Failed: " + s.error().message;
        if (s.ok()) {
          w.snapshot.reset();
          w.releaseChangeIds.clear();
        }
        save_status(mkey);
      });
}

}  // namespace ferry::coordinator::runner
