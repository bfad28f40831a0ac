#pragma once
// Coordinator: one per cluster. Holds the forklift resources, provider
// inventories and all migration state in its StateStore (local mode: NATS
// JetStream key-value buckets; cluster mode: the Kubernetes API for the
// resources and their statuses, NATS KV for the working state), so a
// restarted coordinator, anywhere, carries on. Serves ferryctl's API over NATS
// request/reply, validates plans and drives every VM through the cold and warm
// pipelines, handing per-disk work to node agents.
//
// Threads: one UvEventLoop thread owns every member below; cnats callbacks,
// the results-fetch thread and the store's watch threads post to it; provider
// calls (blocking network I/O) run on the loop's worker pool, over a pool of
// sessions per provider.
#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "common/bus/nats_bus.h"
#include "common/bus/publisher.h"
#include "common/event/loop.h"
#include "common/metrics/http_endpoint.h"
#include "common/model/resource.h"
#include "coordinator/agents/agent_registry.h"
#include "coordinator/api/requests.h"
#include "coordinator/hooks/hook_runner.h"
#include "coordinator/lease/kv_lease.h"
#include "coordinator/metrics.h"
#include "coordinator/migration/pipeline.h"
#include "coordinator/providers/provider.h"
#include "coordinator/providers/provider_pool.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/status/task_state.h"
#include "coordinator/store/state_store.h"
#include "coordinator/target/vm_sink.h"
#include "coordinator/tasks/task_dispatcher.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator {

using model::Resource;
using model::ResourceKey;

struct CoordinatorOptions {
  bus::ConnectOptions nats;
  std::string manifest_dir;     // where VirtualMachine manifests are written ("" = status only)
  int per_host_transfers = 10;  // ESXi NFC limit
  int max_vms_in_flight = 20;   // per migration
  int inventory_refresh_seconds = 300;
  int sessions_per_provider = 8;      // parallel SOAP sessions per source
  double session_idle_seconds = 600;  // a source session idle this long is logged out
  int js_replicas = 1;            // replicas of Ferry's streams and buckets (3 in a NATS cluster)
  std::string metrics_address;    // "" = no HTTP endpoint; ":9465", "127.0.0.1:0"
  std::string metrics_port_file;  // written with the bound port (tests)
  double precopy_interval_seconds = 3600;  // warm: MTV's default; Plan spec.precopyInterval wins
  int warm_failure_limit = 3;              // consecutive failed precopies before the VM fails
  double agent_timeout_seconds = 180;      // a node silent this long is gone (its tasks fail)
  // Cluster mode: resources and their statuses in the Kubernetes API.
  bool kubernetes = false;
  std::string kubeconfig;       // "" in cluster mode: the pod's service account
  std::string lease_namespace;  // the Lease's; "": the kubeconfig's, else openshift-mtv
  std::string identity;         // the Lease holder's name; "": host/pid/start time
  // Local mode: the key Secrets are sealed with in NATS KV (store/secret_box.h).
  std::string secret_key_file;
  // Where Hook playbooks run (a directory per run, with its inputs and log).
  std::string hook_dir;
  std::string ansible_playbook = "ansible-playbook";
};

class Coordinator {
 public:
  explicit Coordinator(CoordinatorOptions opts);
  ~Coordinator();
  // Connects, loads state, serves until stop() (any thread) or SIGTERM handled by main.
  Status run();
  void stop();
  void request_stop() { stop_requested_ = true; }  // async-signal-safe
  // After run(): it stopped because another coordinator holds the lease, or
  // it could not renew it in time; it wrote nothing after that.
  bool lease_lost() const { return !lease_lost_.empty(); }
  std::string identity() const { return lease_ ? lease_->identity() : opts_.identity; }

 private:
  using TaskRef = tasks::TaskRef;
  static constexpr int kConversionTask = tasks::kConversionTask;
  static constexpr int kInspectionTask = tasks::kInspectionTask;

  Status load_state();
  Status subscribe();
  void results_thread_main();

  // API (loop thread). `reply` sends the JSON answer.
  using Reply = std::function<void(const model::Json&)>;
  void handle_api(const api::Request& req, Reply reply);
  void api_apply(const api::ApplyRequest& req, Reply reply);
  void api_get(const api::GetRequest& req, Reply reply);
  void api_delete(const api::DeleteRequest& req, Reply reply);
  void api_cancel(const api::CancelRequest& req, Reply reply);
  void api_inventory(const api::InventoryRequest& req, Reply reply);
  void api_gather(const api::GatherRequest& req, Reply reply);
  void api_status(Reply reply);
  void api_part(const api::PartRequest& req, const std::string& reply_to);
  // Sends a reply; one over kReplyPartBytes is kept and sent in parts (api::PartRequest).
  void send_reply(const std::string& reply_to, const model::Json& j);
  static constexpr size_t kReplyPartBytes = 512 * 1024;
  struct LargeReply {
    std::string data;
    double expires = 0;
  };
  std::map<std::string, LargeReply> large_replies_;  // by reply id; a few, for a minute
  uint64_t large_reply_seq_ = 0;
  // Checks the batch against the state as it would be after it, stores it (all
  // or nothing), then changes memory and acts; `done` when answered.
  // `observed`: the batch is already stored (cluster mode: applied with
  // kubectl), so nothing is written, and a Plan that cannot run is kept with
  // its conditions instead of refused.
  void finish_apply(std::vector<Resource> batch, std::map<ResourceKey, model::Json> new_inv,
                    bool observed, Reply reply, std::function<void()> done);
  // Steps 2-4 of an apply: providers' inventories, then finish_apply.
  void apply_batch(std::vector<Resource> batch, bool observed, Reply reply);
  // Drops a deleted resource from memory and the store (a running Migration is canceled first).
  void forget_resource(const ResourceKey& k);
  // Cluster mode: a resource someone changed in the API (nullopt: deleted).
  // Runs the checks of an apply; what a user must fix becomes a condition.
  void observe(const ResourceKey& k, std::optional<model::Json> doc);
  // The checks of an apply for an observed document; on success, the
  // resources in not_ready_ are checked again (a Provider's inventory may have
  // been what they lacked).
  void check_observed(const ResourceKey& k, const model::Json& doc);
  std::set<ResourceKey> not_ready_;  // observed resources with a Critical condition
  // A Hook changed or went: the Plans that use it are checked again.
  void recheck_plans_using(const ResourceKey& hook);
  // A Migration already running whose spec changed: cutover and cancel apply.
  void observe_migration_spec(const ResourceKey& k, const model::Json& doc);
  // Resource changes (apply, delete, a Migration's cutover) run one at a time,
  // each checked against what the one before it stored. `txn` calls `done`
  // once it has answered.
  using Txn = std::function<void(std::function<void()> done)>;
  void resource_txn(Txn txn);
  // Stores resource documents (all or none); `then` runs on the loop.
  void write_resources(std::vector<store::StateStore::ResourceWrite> writes,
                       std::function<void(Status)> then);
  bool txn_busy_ = false;
  std::deque<Txn> txn_queue_;

  // Agents and tasks (loop thread).
  // `subject` names the sending node; a message about another node is refused.
  void on_heartbeat(const std::string& subject, const std::string& data);
  // Fails the work of nodes silent past --agent-timeout and frees their slots.
  void expire_agents();
  void node_lost(const std::string& node);
  void on_progress(const std::string& subject, const std::string& data);
  // Logs and counts input that is refused (ferry_coordinator_bad_input_total{source}).
  void bad_input(const char* source, const std::string& why);
  void on_claim(const bus::Message& msg);
  // Takes the source credential out of a task before it is stored, keeping
  // it for the claim (tasks_).
  void keep_credentials(const std::string& task_id, ferry::v1::AgentTask& task);
  // True if the claim can get the task's credential now; else a fresh one is
  // being fetched (the agent asks again) or the VM failed.
  bool credentials_ready(const TaskRef& ref, const ferry::v1::ClaimRequest& req);
  std::set<std::string> fetching_credentials_;  // task ids
  void on_result(const ferry::v1::TaskResult& r);
  void on_conversion_result(const TaskRef& ref, model::Json& vm, const ferry::v1::TaskResult& r);
  void on_inspection_result(const TaskRef& ref, model::Json& vm, const ferry::v1::TaskResult& r);
  void api_retry(const api::RetryRequest& req, Reply reply);
  void api_cutover(const api::CutoverRequest& req, Reply reply);

  // Migration driving (loop thread).
  void start_migration(const ResourceKey& mkey);
  void pump(const ResourceKey& mkey);  // starts waiting VMs up to the in-flight limit
  void advance(const ResourceKey& mkey, const std::string& vm_id);
  // Moves the VM to `to` through the transition table and updates its pipeline steps; past its
  // (initial) copy, the space placement reserved for it on its node is released. False (and the VM
  // failed, loudly) if the transition table forbids it.
  [[nodiscard]] bool set_phase(const ResourceKey& mkey, model::Json& vm, migration::Phase to);
  void fail_vm(const ResourceKey& mkey, const std::string& vm_id, const std::string& message);
  void cancel_vm(const ResourceKey& mkey, const std::string& vm_id);
  // Cancels a disk's Queued/Running transfer on its agent and frees its slot;
  // false if it was in no such state. The caller sets the disk's new state.
  bool stop_transfer(const model::Json& disk);
  void dispatch();  // hands queued disk tasks to JetStream while slots allow
  void maybe_finish_migration(const ResourceKey& mkey);
  model::Json* vm_status(const ResourceKey& mkey, const std::string& vm_id);
  // A VM status's pipeline step by name (null if it is not listed).
  static model::Json* pipeline_step(model::Json& vm, const std::string& name);
  // Moves a live VM to `to`, saves, and runs the new phase.
  void go(const ResourceKey& mkey, const std::string& vm_id, migration::Phase to);
  // The session pool of the Migration's source provider (null + err if gone).
  std::shared_ptr<ProviderPool> source_pool(const ResourceKey& mkey, Error* err);
  // Runs a provider call off the loop for a VM in `phase`; `then` (or
  // `on_error`, default: fail the VM) runs on the loop if the VM is still in
  // that phase. At most one call per VM is under way.
  void provider_call(const ResourceKey& mkey, const std::string& vm_id, migration::Phase phase,
                     std::function<Status(SourceProvider&)> call,
                     std::function<void(model::Json&)> then,
                     std::function<void(const Error&)> on_error = nullptr);

  // Hooks (PreHook, PostHook). True when the VM's hook for `step` has run
  // (or it has none); else it is started (or still running) and advance()
  // runs again once it ends.
  bool hook_finished(const ResourceKey& mkey, model::Json& vm, const std::string& hook_step,
                     const Resource& plan, const model::Json& inv_vm);
  void on_hook_result(const ResourceKey& mkey, const std::string& vm_id,
                      const std::string& hook_step, const hooks::HookResult& r);
  // Kills the VM's running hook (its end is then ignored); Running becomes Canceled.
  void stop_hooks(const ResourceKey& mkey, model::Json& vm);
  static std::string hook_run_id(const ResourceKey& mkey, const std::string& vm_id,
                                 const std::string& hook_step);

  // Warm migration (warm.cc).
  struct WarmDiskQuery {  // one disk's changed areas for one precopy
    std::string vm_id, snapshot_id, base_change_id;
    int disk_key = 0;
    uint64_t capacity = 0;
    uint64_t changed_bytes = 0;  // out
    bool full = false;           // out: copying every allocated area
    std::string warning;         // out: why a full copy was forced
  };
  static Status query_changes(SourceProvider& p, WarmDiskQuery& q, ferry::v1::TransferTask& task);
  void advance_warm(const ResourceKey& mkey, const std::string& vm_id, migration::Phase phase,
                    const Resource& plan, const model::Json& inv_vm);
  // Where a failed precopy goes once its snapshot is gone.
  void warm_retry(const ResourceKey& mkey, const std::string& vm_id);
  const Resource* plan_of(const ResourceKey& mkey) const;
  void update_prediction(model::Json& vm, const Resource& plan);
  void warm_copy_done(const ResourceKey& mkey, model::Json& vm);
  void warm_cycle_failed(const ResourceKey& mkey, const std::string& vm_id,
                         const std::string& message);
  // Removes every snapshot of the VM named with the Migration's prefix; retried
  // up to 5 times, and again at the next start while the status says Pending.
  void cleanup_warm_snapshots(const ResourceKey& mkey, const std::string& vm_id,
                              std::shared_ptr<ProviderPool> slot = nullptr, int attempt = 1);
  bool cutover_due(const ResourceKey& mkey, model::Json& vm, const Resource& plan);
  void wake_at(const ResourceKey& mkey, const std::string& vm_id, double when);
  double precopy_interval(const Resource& plan) const;
  // Marks a status changed; it is queued to the store at the end of this loop turn.
  void save_status(const ResourceKey& key);
  // Queues every changed status (Migration: its summary and each changed VM) to the store.
  void flush_dirty();
  // Rebuilds the id -> index map of a Migration's VMs (after its vms array was replaced).
  void index_vms(const ResourceKey& mkey);
  // Every VM of a Migration changed (a loop over its vms that writes).
  void mark_all_vms(const ResourceKey& mkey);

  // Lookups.
  const Resource* find(const ResourceKey& k) const;
  std::shared_ptr<ProviderPool> provider_slot(const ResourceKey& provider_key, Error* err);
  // Drops a Provider's session pool (its spec, Secret or the Provider itself
  // changed); its sessions log out on a worker, never on the loop.
  void drop_provider(const ResourceKey& provider_key);
  // Logs out of sessions idle past --session-idle-timeout (on a worker).
  void trim_sessions();
  model::Json secret_for(const Resource& provider) const;
  std::string host_address(const ResourceKey& provider_key, const std::string& host_id) const;
  std::set<std::string> transfer_networks() const;
  // Cluster mode: whether a NetworkAttachmentDefinition exists (the store
  // follows them like resources); local mode: null (not checked).
  std::function<bool(const ResourceKey&)> attachment_lookup() const;
  // A disk's volume as its agent sees it (cluster mode: with the claim it is for).
  void target_volume(const model::Json& disk, ferry::v1::TargetVolume* t) const;

  CoordinatorOptions opts_;
  event::UvEventLoop loop_;
  std::unique_ptr<bus::CnatsBus> bus_;
  std::unique_ptr<lease::Lease> lease_;       // held while this coordinator is active
  std::string lease_lost_;                    // why it was lost (then run() fails); loop thread
  std::unique_ptr<store::StateStore> store_;  // resources, statuses, inventories; before bus_ goes
  std::unique_ptr<bus::JsPublisher> publisher_;  // tasks and cancels; before bus_ goes
  std::shared_ptr<target::VmSink> vm_sink_;      // where migrated VMs go (called off the loop)
  std::map<std::string, int>
      vm_create_retries_;  // migration+vm -> attempts while the target is away
  std::vector<std::unique_ptr<bus::Subscription>> subs_;
  std::unique_ptr<bus::PullConsumer> results_;
  std::thread results_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stop_requested_{false};

  std::map<ResourceKey, Resource> resources_;
  std::map<ResourceKey, model::Json> status_;
  // By Provider key; shared with the store's writer, never changed in place
  // (a new inventory replaces the pointer).
  std::map<ResourceKey, std::shared_ptr<const model::Json>> inventories_;
  const model::Json* inventory_of(const ResourceKey& provider) const;    // null if none
  void set_inventory(const ResourceKey& provider, Inventory inventory);  // and stores it
  std::map<ResourceKey, std::shared_ptr<ProviderPool>> providers_;
  agents::AgentRegistry agents_;
  // Task ids, waiting transfers (their AgentTask holds the session cookie:
  // memory only), slots, and the hand-off to JetStream.
  tasks::TaskDispatcher tasks_;
  std::set<std::string> inflight_;  // migration+vm with a provider call under way
  // VMs waiting for a node (DiskAllocation, PreflightInspection): since when,
  // and whether a retry is armed. Given up after kPlacementWaitSeconds (longer
  // right after a start, when no heartbeat has come in yet).
  struct PlacementWait {
    double since = 0;
    bool armed = false;
  };
  static constexpr double kPlacementWaitSeconds = 30;
  std::map<std::string, PlacementWait> placement_wait_;
  double started_at_ = 0;
  // A VM's record in a Provider's inventory, through an index by id that
  // advance() uses on every call (it re-enters a phase on every change).
  const model::Json* inventory_vm(const ResourceKey& provider, const std::string& vm_id);
  std::map<ResourceKey, std::unordered_map<std::string, size_t>> inv_vm_index_;
  // True once the VM has waited too long; else arms one retry in 2 s.
  bool placement_given_up(const ResourceKey& mkey, const std::string& vm_id);
  std::map<std::string, double> wake_at_;              // migration+vm -> armed timer (warm waits)
  std::set<ResourceKey> dirty_;                        // statuses changed since the last flush
  std::map<ResourceKey, std::set<size_t>> dirty_vms_;  // Migration -> changed VM indexes
  std::map<ResourceKey, std::map<std::string, size_t>> vm_index_;  // Migration -> VM id -> index
  bool flush_posted_ = false;
  CoordinatorMetrics metrics_;
  std::unique_ptr<metrics::HttpEndpoint> http_;
  std::atomic<bool> ready_{false};
  void update_gauges();
  // Hook playbooks (threads of their own; their ends are posted to loop_, so
  // this goes first).
  std::unique_ptr<hooks::HookRunner> hooks_;
};

}  // namespace ferry::coordinator
