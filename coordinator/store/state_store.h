#pragma once
// StateStore: where the coordinator keeps statuses and inventories so that a
// restarted coordinator carries on. KvStateStore (NATS JetStream KV) is the
// local-mode implementation; cluster mode adds a Kubernetes one.
//
// Writes are queued and return at once: the loop thread never waits for I/O.
// Queued writes to one key are coalesced (the newest value wins). barrier()
// says when everything queued before it is stored, which is what lets the
// coordinator ack a task result only after the state change it caused is stored.
//
// Resources, statuses and inventories are three stores in one: an
// implementation keeps each where its platform keeps such things.
//
// Threads: load_*() before the loop runs; every other method from the loop
// thread. barrier callbacks run on the store's writer thread.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/result.h"
#include "common/model/resource.h"

namespace ferry::coordinator::store {

using model::ResourceKey;
using Json = nlohmann::json;

struct StoreStats {
  uint64_t writes = 0, failures = 0, bytes = 0;
  uint64_t largest_value = 0;  // bytes of the largest value ever written
  uint64_t queued = 0;         // keys waiting for the writer now
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // `bad` is told of each entry that is corrupt; it is skipped, never fatal.
  using Bad = std::function<void(const std::string&)>;
  // Resources: the documents users apply (specs; statuses are separate).
  virtual Status load_resources(std::function<void(const ResourceKey&, Json)> each, Bad bad) = 0;
  struct ResourceWrite {
    ResourceKey key;
    std::optional<Json> doc;  // nullopt: delete
  };
  // Writes every document or none: if one write fails, the ones already
  // written get their previous value back. done(status) runs on the writer
  // thread; the owner changes its memory only once it is told ok.
  virtual void write_resources(std::vector<ResourceWrite> writes,
                               std::function<void(Status)> done) = 0;

  // Statuses: a Migration's comes back whole (summary and its VMs joined).
  virtual Status load_status(std::function<void(const ResourceKey&, Json)> each, Bad bad) = 0;
  virtual Status load_inventories(std::function<void(const ResourceKey&, Json)> each, Bad bad) = 0;

  // A status that is not a Migration's, or a Migration's summary (migration_summary()).
  virtual void put_status(const ResourceKey& k, const Json& status) = 0;
  virtual void put_vm_status(const ResourceKey& migration, size_t index, const Json& vm) = 0;
  // Removes a status and, for a Migration, its VMs' entries.
  virtual void erase_status(const ResourceKey& k, size_t vm_count) = 0;
  // Shared and immutable: the caller keeps using it while the store writes it.
  virtual void put_inventory(const ResourceKey& provider,
                             std::shared_ptr<const Json> inventory) = 0;
  virtual void erase_inventory(const ResourceKey& provider) = 0;
  // done(ok) once every write queued before this call is stored; a failed
  // write is retried, and done gets the first error seen meanwhile.
  virtual void barrier(std::function<void(Status)> done) = 0;
  virtual StoreStats stats() const = 0;

  // Resources changed by someone else (cluster mode: kubectl, the console).
  // `changed` runs on a thread of the store with the document as
  // load_resources() gives it, or nullopt once the resource is deleted (or,
  // cluster mode, being deleted: finalized() then lets it go). Local mode has
  // no other writer: never called.
  using Change = std::function<void(const ResourceKey&, std::optional<Json>)>;
  virtual void watch_resources(Change changed) { (void)changed; }
  // A resource reported deleted has been cleaned up after (its Migration
  // canceled, its status erased). Cluster mode removes Ferry's finalizer.
  virtual void finalized(const ResourceKey& k) { (void)k; }
  // The resource's uid where the platform gives one (cluster mode), else its name.
  virtual std::string uid(const ResourceKey& k) const { return k.name; }
  // Something worth telling about a resource (type Normal or Warning; reason
  // one CamelCase word). Cluster mode: a Kubernetes Event, which `kubectl
  // describe` shows (at most 1,000 queued; kept while the API server is
  // away, dropped if it refuses one). Local mode: the log has it.
  virtual void record_event(const ResourceKey& k, const std::string& type,
                            const std::string& reason, const std::string& message) {
    (void)k, (void)type, (void)reason, (void)message;
  }
};

}  // namespace ferry::coordinator::store
