#pragma once
// KvStateStore: the StateStore of local mode, in three NATS JetStream KV
// buckets (ferry-resources, ferry-status, ferry-inventory) with the layout of
// layout.h.
//
// Owns both buckets and one writer thread. Writes are queued by the loop
// thread, coalesced per key and written by the writer thread in batches: VM
// entries before their Migration's summary, inventory chunks before their
// header. A failed write stays queued (unless a newer value replaced it) and is
// tried again a second later. The destructor writes what is still queued
// (one attempt) and joins the writer.
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "common/bus/nats_bus.h"
#include "coordinator/store/secret_box.h"
#include "coordinator/store/state_store.h"

namespace ferry::coordinator::store {

class KvStateStore : public StateStore {
 public:
  // `secrets`: Secrets' values are sealed with it before they are stored
  // (null: stored as they are; cluster mode keeps Secrets in the API).
  KvStateStore(std::unique_ptr<bus::KvBucket> resources, std::unique_ptr<bus::KvBucket> status,
               std::unique_ptr<bus::KvBucket> inventory,
               std::shared_ptr<const SecretBox> secrets = nullptr);
  ~KvStateStore() override;

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

 private:
  using Value = std::optional<std::string>;  // nullopt: erase the key
  struct InventoryOp {
    std::shared_ptr<const Json> inventory;  // null: erase
  };
  void enqueue_status(const std::string& key, Value v);
  void writer_main();
  struct ResourceTxn {
    std::vector<ResourceWrite> writes;
    std::function<void(Status)> done;
  };
  // Writer thread: one all-or-nothing batch of resource writes.
  Status write_txn(const ResourceTxn& t);
  // Writer thread: one batch; returns the first error (failed keys are re-queued).
  Status write_batch(std::map<std::string, Value>& status,
                     std::map<std::string, InventoryOp>& inventory);
  Status write_inventory(const std::string& key, const InventoryOp& op);
  Status put(bus::KvBucket& b, const std::string& key, const std::string& value);

  std::unique_ptr<bus::KvBucket> resources_, status_, inventory_;
  std::shared_ptr<const SecretBox> secrets_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Value> status_q_;
  std::map<std::string, InventoryOp> inventory_q_;
  std::vector<ResourceTxn> resource_q_;  // in order, never coalesced
  std::vector<std::function<void(Status)>> barriers_;
  bool stop_ = false;
  StoreStats stats_;
  // Each inventory's generation and chunk count (load and the writer thread).
  std::mutex gen_mu_;
  std::map<std::string, std::pair<uint64_t, size_t>> inv_gen_;
  std::thread writer_;
};

}  // namespace ferry::coordinator::store
