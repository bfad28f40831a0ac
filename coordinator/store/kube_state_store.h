#pragma once
// KubeStateStore: the StateStore of cluster mode.
//   - Resources (Forklift's kinds and the Secrets they name) live in the
//     Kubernetes API: loaded with a list per kind, followed with a watch per
//     kind (resourceVersion, re-list on 410 Gone, reconnects), written by
//     ferryctl's apply through server-side apply (all or nothing, as local mode).
//   - Each resource's status is written through its status subresource, as a
//     projection that kubectl users read (status_view.h) and that stays under
//     etcd's object limit; a 409 Conflict re-reads the resourceVersion and
//     tries again.
//   - The coordinator's working state (every VM's disks, tasks, warm
//     bookkeeping) and the inventories stay in the `internal` store (NATS KV),
//     as Forklift keeps its inventory outside the API; docs/architecture.md.
//   - Migrations carry the finalizer kFinalizer, so deleting one cancels it
//     and cleans up before the object goes.
//
// Threads: a status writer thread and one watch thread per kind; see StateStore.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/kube/client.h"
#include "coordinator/store/state_store.h"
#include "coordinator/store/status_view.h"

namespace ferry::coordinator::store {

inline constexpr const char* kFinalizer = "forklift.konveyor.io/ferry";

// A kind's place in the API.
struct KindInfo {
  std::string group_version, plural;
};
const KindInfo& kind_info(const std::string& kind);  // kinds of followed_kinds()
// What the store lists and watches: model::known_kinds() and Multus'
// NetworkAttachmentDefinitions (read only, skipped where absent).
const std::vector<std::string>& followed_kinds();

// The document the coordinator keeps of an API object: apiVersion, kind, and
// metadata name/namespace/labels/annotations, with spec (a Secret: type and
// its data decoded into stringData). Resource versions and the like are the
// store's business.
Json document_of(const Json& object);

class KubeStateStore : public StateStore {
 public:
  KubeStateStore(std::shared_ptr<kube::Client> client, std::unique_ptr<StateStore> internal);
  ~KubeStateStore() override;

  Status load_resources(std::function<void(const ResourceKey&, Json)> each, Bad bad) override;
  void write_resources(std::vector<ResourceWrite> writes,
                       std::function<void(Status)> done) override;
  Status load_status(std::function<void(const ResourceKey&, Json)> each, Bad bad) override;
  Status load_inventories(std::function<void(const ResourceKey&, Json)> each, Bad bad) override;
  void put_status(const ResourceKey& k, const Json& status) override;
  void put_vm_status(const ResourceKey& migration, size_t index, const Json& vm) override;
  void erase_status(const ResourceKey& k, size_t vm_count) override;
  void put_inventory(const ResourceKey& provider, std::shared_ptr<const Json> inventory) override;
  void erase_inventory(const ResourceKey& provider) override;
  void barrier(std::function<void(Status)> done) override;
  StoreStats stats() const override;
  void watch_resources(Change changed) override;
  void finalized(const ResourceKey& k) override;
  std::string uid(const ResourceKey& k) const override;
  void record_event(const ResourceKey& k, const std::string& type, const std::string& reason,
                    const std::string& message) override;  // kept while the API server is away

 private:
  struct Known {  // what the store last saw of an object
    std::string resource_version, uid;
    bool finalizer = false, deleting = false;
  };
  // Lists one kind; `each` gets every object. Returns the list's resourceVersion.
  Result<std::string> list(const std::string& kind, const std::function<void(const Json&)>& each);
  // Records what the store last saw of an object (known_).
  void note(const ResourceKey& k, const Json& object);
  void watch_main(std::string kind, std::string resource_version);
  // Migrations: adds kFinalizer unless there or being deleted (watch threads).
  void ensure_finalizer(const ResourceKey& k, const Json& object);
  void status_main();
  Status write_status(const ResourceKey& k, const Json& status);
  Status write_txn(const std::vector<ResourceWrite>& writes);
  Result<std::optional<Json>> get_object(const ResourceKey& k);
  Status apply_object(const ResourceKey& k, const Json& doc);
  Status delete_object(const ResourceKey& k);
  Status remove_finalizer(const ResourceKey& k);

  std::shared_ptr<kube::Client> client_;
  std::unique_ptr<StateStore> internal_;
  Change changed_;
  std::atomic<bool> stop_{false};

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<ResourceKey, Known> known_;
  std::map<std::string, std::string> list_versions_;  // kind -> list resourceVersion (load)
  // The API status of each resource: a summary, and a Migration's VMs by index.
  std::map<ResourceKey, Json> summary_;
  std::map<ResourceKey, VmViews> vms_;
  std::set<ResourceKey> dirty_;
  std::set<ResourceKey> release_;  // finalizers to remove
  struct Txn {
    std::vector<ResourceWrite> writes;
    std::function<void(Status)> done;
  };
  std::vector<Txn> txns_;
  struct Event {
    ResourceKey key;
    std::string type, reason, message, time;
  };
  static constexpr size_t kMaxQueuedEvents = 1000;  // beyond: dropped (and counted in the log)
  std::vector<Event> events_;
  uint64_t events_dropped_ = 0;
  // False if the API server did not answer (the event is kept for the next round).
  bool post_event(const Event& e);
  uint64_t status_writes_ = 0, status_failures_ = 0, largest_status_ = 0;
  std::thread status_thread_;
  std::vector<std::thread> watches_;
};

}  // namespace ferry::coordinator::store
