#pragma once
// MigrationRunner: drives every VM of every running Migration through its
// pipeline (cold, warm, hooks; coordinator/migration/pipeline.h) and speaks
// the task protocol with the agents (heartbeats, claims, progress, results,
// cancels).
//
// It owns what only running VMs need: provider calls under way, placement
// waits, warm wake-ups, VM-creation retries, credential fetches and the hook
// runner. It does not own:
//   - the VMs' statuses: the StatusBook (it changes them, the book stores them);
//   - the resources (Plans, Providers, Hooks) and the inventories: the
//     Coordinator, read through RunnerHost;
//   - the agents and their slots: the AgentRegistry and TaskDispatcher.
//
// Loop thread only; provider calls run on the loop's workers and come back to it.
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "common/bus/nats_bus.h"
#include "common/event/loop.h"
#include "common/model/resource.h"
#include "coordinator/agents/agent_registry.h"
#include "coordinator/api/requests.h"
#include "coordinator/hooks/hook_runner.h"
#include "coordinator/metrics.h"
#include "coordinator/migration/pipeline.h"
#include "coordinator/options.h"
#include "coordinator/providers/provider.h"
#include "coordinator/providers/provider_pool.h"
#include "coordinator/status/status_book.h"
#include "coordinator/status/task_state.h"
#include "coordinator/status/vm_status.h"
#include "coordinator/store/state_store.h"
#include "coordinator/target/vm_sink.h"
#include "coordinator/tasks/task_dispatcher.h"
#include "coordinator/validation/plan_validation.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator::runner {

using model::Resource;
using model::ResourceKey;

// What the runner reads of the Coordinator's resources and inventories.
class RunnerHost {
 public:
  virtual ~RunnerHost() = default;
  virtual const Resource* find(const ResourceKey& k) const = 0;
  virtual const model::Json* inventory_of(const ResourceKey& provider) const = 0;
  // The Provider's session pool (null and `err` if it cannot be had).
  virtual std::shared_ptr<ProviderPool> provider_slot(const ResourceKey& provider, Error* err) = 0;
  // A Host resource's migration-network address for the source's host id ("" if none).
  virtual std::string host_address(const ResourceKey& provider,
                                   const std::string& host_id) const = 0;
  // What plan validation reads (resources, inventories, networks, mode).
  virtual validation::Context validation_context() const = 0;
};

class MigrationRunner {
 public:
  using Json = model::Json;
  using VmStatus = status::VmStatus;
  using DiskStatus = status::DiskStatus;
  using Reply = std::function<void(const Json&)>;
  struct Deps {
    RunnerHost& host;
    const CoordinatorOptions& opts;
    event::UvEventLoop& loop;
    status::StatusBook& statuses;
    agents::AgentRegistry& agents;
    tasks::TaskDispatcher& tasks;
    CoordinatorMetrics& metrics;
    store::StateStore& store;
    std::shared_ptr<target::VmSink> vm_sink;  // where migrated VMs go (called off the loop)
    std::unique_ptr<hooks::HookRunner> hooks;
  };
  explicit MigrationRunner(Deps d);
  ~MigrationRunner();

  // At start: rebuilds a loaded Running Migration's task bookkeeping and
  // slots (its in-memory-only work goes back to Pending).
  void restore(const ResourceKey& mkey);
  // Once loaded: nodes holding live work get --agent-timeout to come back,
  // running Migrations resume, warm snapshots not yet removed are removed.
  void resume();
  // Kills running hooks (a VM in a hook phase runs it again at the next start).
  void stop_hooks();

  // Migrations (the API and observed changes call these).
  void start_migration(const ResourceKey& mkey);
  void pump(const ResourceKey& mkey);  // starts waiting VMs up to the in-flight limit
  // Moves a live VM to `to`, saves, and runs the new phase.
  void go(const ResourceKey& mkey, const std::string& vm_id, migration::Phase to);
  void cancel_vm(const ResourceKey& mkey, const std::string& vm_id);
  void maybe_finish_migration(const ResourceKey& mkey);
  void dispatch();  // hands queued disk tasks to JetStream while slots allow
  // ferryctl retry: a VM that failed at ImageConversion or a hook runs it again.
  void retry(const api::RetryRequest& req, Reply reply);

  // Agents (bus messages, posted to the loop). `subject` names the sending
  // node; a message about another node is refused.
  void on_heartbeat(const std::string& subject, const std::string& data);
  // Fails the work of nodes silent past --agent-timeout and frees their slots.
  void expire_agents();
  void on_progress(const std::string& subject, const std::string& data);
  // The answer to an agent's claim of a task.
  ferry::v1::ClaimReply on_claim(const bus::Message& msg);
  void on_result(const ferry::v1::TaskResult& r);

 private:
  using TaskRef = tasks::TaskRef;
  static constexpr int kConversionTask = tasks::kConversionTask;
  static constexpr int kInspectionTask = tasks::kInspectionTask;

  // Lookups through the host and the book.
  const Resource* find(const ResourceKey& k) const { return host_.find(k); }
  const Json* inventory_of(const ResourceKey& pk) const { return host_.inventory_of(pk); }
  std::shared_ptr<ProviderPool> provider_slot(const ResourceKey& pk, Error* err) {
    return host_.provider_slot(pk, err);
  }
  std::string host_address(const ResourceKey& pk, const std::string& host_id) const {
    return host_.host_address(pk, host_id);
  }
  VmStatus* vm_status(const ResourceKey& mkey, const std::string& vm_id) {
    return status_.vm(mkey, vm_id);
  }
  void save_status(const ResourceKey& k) { status_.save(k); }
  void bad_input(const char* source, const std::string& why) {
    count_bad_input(metrics_, source, why);
  }
  const Resource* plan_of(const ResourceKey& mkey) const;
  // A disk's volume as its agent sees it (cluster mode: with the claim it is for).
  void target_volume(const DiskStatus& disk, ferry::v1::TargetVolume* t) const;

  // Agents and tasks.
  void node_lost(const std::string& node);
  // Takes the source credential out of a task before it is stored, keeping
  // it for the claim (tasks_).
  void keep_credentials(const std::string& task_id, ferry::v1::AgentTask& task);
  // True if the claim can get the task's credential now; else a fresh one is
  // being fetched (the agent asks again) or the VM failed.
  bool credentials_ready(const TaskRef& ref, const ferry::v1::ClaimRequest& req);
  // Closes the sources the provider opened for this VM's claims (oVirt image
  // transfers) whose tasks are no longer with an agent: finalized when the
  // disk completed, cancelled otherwise. Each handle is closed once.
  void close_sources(const ResourceKey& mkey, const std::string& vm_id);
  void on_conversion_result(const TaskRef& ref, VmStatus& vm, const ferry::v1::TaskResult& r);
  void on_inspection_result(const TaskRef& ref, VmStatus& vm, const ferry::v1::TaskResult& r);

  // The pipeline.
  void advance(const ResourceKey& mkey, const std::string& vm_id);
  // Moves the VM to `to` through the transition table and updates its pipeline steps; past its
  // (initial) copy, the space placement reserved for it on its node is released. False (and the VM
  // failed, loudly) if the transition table forbids it.
  [[nodiscard]] bool set_phase(const ResourceKey& mkey, VmStatus& vm, migration::Phase to);
  void fail_vm(const ResourceKey& mkey, const std::string& vm_id, const std::string& message);
  // Cancels a disk's Queued/Running transfer on its agent and frees its slot;
  // false if it was in no such state. The caller sets the disk's new state.
  bool stop_transfer(const DiskStatus& disk);
  // The session pool of the Migration's source provider (null + err if gone).
  std::shared_ptr<ProviderPool> source_pool(const ResourceKey& mkey, Error* err);
  // Runs a provider call off the loop for a VM in `phase`; `then` (or
  // `on_error`, default: fail the VM) runs on the loop if the VM is still in
  // that phase. At most one call per VM is under way.
  void provider_call(const ResourceKey& mkey, const std::string& vm_id, migration::Phase phase,
                     std::function<Status(SourceProvider&)> call,
                     std::function<void(VmStatus&)> then,
                     std::function<void(const Error&)> on_error = nullptr);
  // Hands a VM-level task (inspection, conversion) to `node`'s queue; once
  // the stream has it, `stored` records it in the VM (still in `phase`), or
  // the phase runs again in 2 s if the stream refused it.
  void publish_vm_task(const ResourceKey& mkey, const std::string& vm_id, migration::Phase phase,
                       const std::string& node, const std::string& task_id, std::string wire,
                       std::function<void(VmStatus&)> stored);
  // A VM's record in a Provider's inventory, through an index by id that
  // advance() uses on every call (it re-enters a phase on every change).
  const Json* inventory_vm(const ResourceKey& provider, const std::string& vm_id);
  // Whether the source's guests need converting (its inventory's
  // capabilities.guestConversion; vSphere's do, oVirt's already run on KVM).
  bool converts_guests(const ResourceKey& provider) const;
  // The Plan's source holds something per change ID (oVirt: checkpoints)
  // that release_change_ids frees; false when its inventory does not say so.
  bool releases_change_ids(const Resource& plan) const;
  // True once the VM has waited too long for a node; else arms one retry in 2 s.
  bool placement_given_up(const ResourceKey& mkey, const std::string& vm_id);

  // Hooks (PreHook, PostHook; hooks.cc). True when the VM's hook for `step`
  // has run (or it has none); else it is started (or still running) and
  // advance() runs again once it ends.
  bool hook_finished(const ResourceKey& mkey, VmStatus& vm, const std::string& hook_step,
                     const Resource& plan, const Json& inv_vm);
  void on_hook_result(const ResourceKey& mkey, const std::string& vm_id,
                      const std::string& hook_step, const hooks::HookResult& r);
  // Kills the VM's running hook (its end is then ignored); Running becomes Canceled.
  void stop_hooks(const ResourceKey& mkey, VmStatus& vm);
  static std::string hook_run_id(const ResourceKey& mkey, const std::string& vm_id,
                                 const std::string& hook_step);

  // Warm migration (warm.cc).
  struct WarmDiskQuery {  // one disk's changed areas for one precopy
    std::string vm_id, snapshot_id, base_change_id;
    int disk_key = 0;
    uint64_t capacity = 0;
    uint64_t changed_bytes = 0;   // out
    bool full = false;            // out: copying every allocated area
    std::string warning;          // out: why a full copy was forced
    bool source_reports = false;  // out: the agent's reader finds the changed areas
  };
  static Status query_changes(SourceProvider& p, WarmDiskQuery& q, ferry::v1::TransferTask& task);
  void advance_warm(const ResourceKey& mkey, const std::string& vm_id, migration::Phase phase,
                    const Resource& plan, const Json& inv_vm);
  // Where a failed precopy goes once its snapshot is gone.
  void warm_retry(const ResourceKey& mkey, const std::string& vm_id);
  void update_prediction(VmStatus& vm, const Resource& plan);
  void warm_copy_done(const ResourceKey& mkey, VmStatus& vm);
  void warm_cycle_failed(const ResourceKey& mkey, const std::string& vm_id,
                         const std::string& message);
  // Removes every snapshot of the VM named with the Migration's prefix; retried
  // up to 5 times, and again at the next start while the status says Pending.
  // Then releases every change ID of the VM (`ids`: read from its status on
  // the first attempt, and kept for the retries).
  void cleanup_warm_snapshots(const ResourceKey& mkey, const std::string& vm_id,
                              std::shared_ptr<ProviderPool> slot = nullptr, int attempt = 1,
                              std::shared_ptr<const std::vector<std::string>> ids = nullptr);
  bool cutover_due(const ResourceKey& mkey, VmStatus& vm, const Resource& plan);
  void wake_at(const ResourceKey& mkey, const std::string& vm_id, double when);
  double precopy_interval(const Resource& plan) const;

  RunnerHost& host_;
  const CoordinatorOptions& opts_;
  event::UvEventLoop& loop_;
  status::StatusBook& status_;
  agents::AgentRegistry& agents_;
  tasks::TaskDispatcher& tasks_;
  CoordinatorMetrics& metrics_;
  store::StateStore* store_;
  std::shared_ptr<target::VmSink> vm_sink_;
  double started_at_ = 0;

  std::set<std::string> inflight_;              // migration+vm with a provider call under way
  std::set<std::string> fetching_credentials_;  // task ids
  std::set<std::string> closing_sources_;       // handles being closed
  std::map<std::string, int>
      vm_create_retries_;  // migration+vm -> attempts while the target is away
  // VMs waiting for a node (DiskAllocation, PreflightInspection): since when,
  // and whether a retry is armed. Given up after kPlacementWaitSeconds (longer
  // right after a start, when no heartbeat has come in yet).
  struct PlacementWait {
    double since = 0;
    bool armed = false;
  };
  static constexpr double kPlacementWaitSeconds = 30;
  std::map<std::string, PlacementWait> placement_wait_;
  std::map<std::string, double> wake_at_;  // migration+vm -> armed timer (warm waits)
  std::map<ResourceKey, std::unordered_map<std::string, size_t>> inv_vm_index_;
  // Hook playbooks (threads of their own; their ends are posted to loop_, so
  // this goes first).
  std::unique_ptr<hooks::HookRunner> hooks_;
};

}  // namespace ferry::coordinator::runner
