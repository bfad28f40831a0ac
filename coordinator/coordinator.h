#pragma once
// Coordinator: one per cluster. Holds the forklift resources, provider
// inventories and all migration state in its StateStore (local mode: NATS
// JetStream key-value buckets; cluster mode: the Kubernetes API for the
// resources and their statuses, NATS KV for the working state), so a
// restarted coordinator, anywhere, carries on. Serves ferryctl's API over NATS
// request/reply, validates plans and drives every VM through the cold and warm
// pipelines, handing per-disk work to node agents.
//
// The Coordinator owns the resources, the inventories, the source session
// pools and the API; it wires the components that own the rest: the
// StatusBook (every status and its writes), the MigrationRunner (the VMs'
// pipelines and the task protocol), the AgentRegistry and TaskDispatcher
// (nodes, slots, the hand-off to JetStream), the lease and the store.
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
#include "coordinator/console/console_api.h"
#include "coordinator/lease/kv_lease.h"
#include "coordinator/metrics.h"
#include "coordinator/options.h"
#include "coordinator/providers/provider.h"
#include "coordinator/providers/provider_pool.h"
#include "coordinator/runner/migration_runner.h"
#include "coordinator/status/status_book.h"
#include "coordinator/storage/local_cluster.h"
#include "coordinator/storage/storage_migrator.h"
#include "coordinator/store/state_store.h"
#include "coordinator/target/vm_sink.h"
#include "coordinator/tasks/task_dispatcher.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator {

using model::Resource;
using model::ResourceKey;

class Coordinator : private runner::RunnerHost {
 public:
  explicit Coordinator(CoordinatorOptions opts);
  ~Coordinator() override;
  // Connects, loads state, serves until stop() (any thread) or SIGTERM handled by main.
  Status run();
  void stop();
  void request_stop() { stop_requested_ = true; }  // async-signal-safe
  // After run(): it stopped because another coordinator holds the lease, or
  // it could not renew it in time; it wrote nothing after that.
  bool lease_lost() const { return !lease_lost_.empty(); }
  std::string identity() const { return lease_ ? lease_->identity() : opts_.identity; }

 private:
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
  // One API request, from NATS (`reply_to` set: a large answer goes in parts)
  // or the console's HTTP API (`reply` only).
  void serve_api(const std::string& verb, const std::string& body, Reply reply,
                 const std::string& reply_to);
  // Sends a reply; one over kReplyPartBytes is kept and sent in parts (api::PartRequest).
  void send_reply(const std::string& reply_to, const model::Json& j);
  static constexpr size_t kReplyPartBytes = 512 * 1024;
  struct LargeReply {
    std::string data;
    double expires = 0;
  };
  std::map<std::string, LargeReply> large_replies_;  // by reply id; a few, for a minute
  uint64_t large_reply_seq_ = 0;
  // How an apply ends:
  // kStore: stored and acted on;
  // kObserved: the batch is already stored (cluster mode: applied with
  //   kubectl), so nothing is written, and a Plan that cannot run is kept
  //   with its conditions instead of refused;
  // kDryRun: every check, then the answer an apply would get; nothing stored
  //   or changed.
  enum class ApplyMode { kStore, kObserved, kDryRun };
  // Checks the batch against the state as it would be after it, stores it (all
  // or nothing), then changes memory and acts; `done` when answered.
  void finish_apply(std::vector<Resource> batch, std::map<ResourceKey, model::Json> new_inv,
                    ApplyMode mode, Reply reply, std::function<void()> done);
  // Steps 2-4 of an apply: providers' inventories, then finish_apply.
  void apply_batch(std::vector<Resource> batch, ApplyMode mode, Reply reply);
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

  void api_cutover(const api::CutoverRequest& req, Reply reply);
  // Logs and counts input that is refused (ferry_coordinator_bad_input_total{source}).
  void bad_input(const char* source, const std::string& why) {
    count_bad_input(metrics_, source, why);
  }

  // Lookups (RunnerHost: the runner reads these too).
  const Resource* find(const ResourceKey& k) const override;
  std::shared_ptr<ProviderPool> provider_slot(const ResourceKey& provider_key, Error* err) override;
  // Drops a Provider's session pool (its spec, Secret or the Provider itself
  // changed); its sessions log out on a worker, never on the loop.
  void drop_provider(const ResourceKey& provider_key);
  // Logs out of sessions idle past --session-idle-timeout (on a worker).
  void trim_sessions();
  model::Json secret_for(const Resource& provider) const;
  std::string host_address(const ResourceKey& provider_key,
                           const std::string& host_id) const override;
  validation::Context validation_context() const override;

  CoordinatorOptions opts_;
  event::UvEventLoop loop_;
  std::unique_ptr<bus::CnatsBus> bus_;
  std::unique_ptr<lease::Lease> lease_;       // held while this coordinator is active
  std::string lease_lost_;                    // why it was lost (then run() fails); loop thread
  std::unique_ptr<store::StateStore> store_;  // resources, statuses, inventories; before bus_ goes
  std::unique_ptr<bus::JsPublisher> publisher_;  // tasks and cancels; before bus_ goes
  std::vector<std::unique_ptr<bus::Subscription>> subs_;
  std::unique_ptr<bus::PullConsumer> results_;
  std::thread results_thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> stop_requested_{false};

  std::map<ResourceKey, Resource> resources_;
  status::StatusBook status_{loop_};  // every status, and its writes to store_
  // By Provider key; shared with the store's writer, never changed in place
  // (a new inventory replaces the pointer).
  std::map<ResourceKey, std::shared_ptr<const model::Json>> inventories_;
  const model::Json* inventory_of(const ResourceKey& provider) const override;  // null if none
  void set_inventory(const ResourceKey& provider, Inventory inventory);         // and stores it
  // Reads again every source whose inventory is due (see run()).
  void refresh_inventories();
  std::map<ResourceKey, double> refreshed_at_;  // by Provider: the last read's end
  std::set<ResourceKey> refreshing_;            // Providers being read now
  std::map<ResourceKey, std::shared_ptr<ProviderPool>> providers_;
  agents::AgentRegistry agents_;
  // Task ids, waiting transfers (their AgentTask holds the session cookie:
  // memory only), slots, and the hand-off to JetStream.
  tasks::TaskDispatcher tasks_;
  CoordinatorMetrics metrics_;
  // Declared before http_, which stops its threads first when both go.
  std::unique_ptr<console::ConsoleApi> console_;
  std::unique_ptr<metrics::HttpEndpoint> http_;
  std::atomic<bool> ready_{false};
  void update_gauges();
  // The VMs' pipelines; built once the store is open, gone before it.
  std::unique_ptr<runner::MigrationRunner> runner_;
  // KubeVirt VMs' storage between classes (MigPlan, MigMigration).
  std::unique_ptr<storage::StorageMigrator> storage_;
  // Local mode: where ferryctl's MigPlans and MigMigrations go (null in cluster mode).
  std::shared_ptr<storage::LocalCluster> local_storage_;
  void storage_apply(std::vector<Json> docs, bool dry_run, Reply reply);
  void storage_call(const std::string& kind, std::function<Json(storage::LocalCluster&)> call,
                    Reply reply);
  // The live agents as the storage migrator sees them (asked of the loop).
  std::optional<storage::Nodes> storage_nodes();
};

}  // namespace ferry::coordinator
