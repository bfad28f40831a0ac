#include "coordinator/store/kv_state_store.h"

#include <malloc.h>

#include <chrono>
#include <set>

#include "common/base/failpoint.h"
#include "common/base/log.h"
#include "common/protocol/subjects.h"
#include "coordinator/store/layout.h"

namespace ferry::coordinator::store {
namespace {
const Logger kLog("store");
}  // namespace

KvStateStore::KvStateStore(std::unique_ptr<bus::KvBucket> resources,
                           std::unique_ptr<bus::KvBucket> status,
                           std::unique_ptr<bus::KvBucket> inventory,
                           std::shared_ptr<const SecretBox> secrets)
    : resources_(std::move(resources)),
      status_(std::move(status)),
      inventory_(std::move(inventory)),
      secrets_(std::move(secrets)) {
  writer_ = std::thread([this] { writer_main(); });
}

KvStateStore::~KvStateStore() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  writer_.join();
}

Status KvStateStore::load_resources(std::function<void(const ResourceKey&, Json)> each, Bad bad) {
  const std::string bucket = subjects::kResourcesBucket;
  auto keys = resources_->keys();
  if (!keys.ok()) return keys.error();
  for (const auto& key : *keys) {
    auto e = resources_->get(key);
    if (!e.ok()) return e.error();
    if (!*e) continue;
    auto rk = ResourceKey::from_kv_key(key);
    if (!rk.ok()) {
      bad(bucket + "/" + key + ": not a resource key; skipped");
      continue;
    }
    Json doc = Json::parse((*e)->value, nullptr, false);
    if (!doc.is_object() || !doc.contains("kind") || !doc["kind"].is_string() ||
        !doc.contains("metadata") || !doc["metadata"].is_object()) {
      bad(bucket + "/" + key + ": " + (doc.is_discarded() ? "not JSON" : "not a valid entry") +
          "; skipped");
      continue;
    }
    model::Resource r{doc};
    if (!(r.key() == *rk)) {
      bad(bucket + "/" + key + ": holds " + r.key().to_string() + "; skipped");
      continue;
    }
    if (secrets_ && rk->kind == "Secret") {
      bool sealed = false;
      auto open = secrets_->unseal(doc, &sealed);
      if (!open.ok()) {
        bad(bucket + "/" + key + ": " + open.error().message + "; skipped");
        continue;
      }
      if (!sealed) {  // stored in clear by an older coordinator: sealed now
        auto s = secrets_->seal(doc);
        if (s.ok() && put(*resources_, key, s->dump()).ok())
          kLog.info("a Secret stored in clear was sealed", {{"secret", rk->to_string()}});
      }
      doc = std::move(*open);
    }
    each(*rk, std::move(doc));
  }
  return {};
}

void KvStateStore::write_resources(std::vector<ResourceWrite> writes,
                                   std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    resource_q_.push_back({std::move(writes), std::move(done)});
  }
  cv_.notify_one();
}

Status KvStateStore::write_txn(const ResourceTxn& t) {
  struct Undo {
    std::string key;
    std::optional<std::string> before;  // nullopt: the key did not exist
  };
  std::vector<Undo> undo;
  Status failed;
  for (size_t i = 0; i < t.writes.size() && failed.ok(); i++) {
    const auto& w = t.writes[i];
    std::string key = w.key.kv_key();
    auto before = resources_->get(key);
    if (!before.ok()) {
      failed = before.error();
      break;
    }
    // resource_txn_test: the second write of a batch fails.
    if (i == 1 && failpoint("fail-second-resource-write")) {
      failed = Error(ErrorCode::kUnavailable, "kv put " + key + ": failpoint");
      break;
    }
    Status s;
    if (w.doc && secrets_ && w.key.kind == "Secret") {  // its values never reach NATS in clear
      auto sealed = secrets_->seal(*w.doc);
      s = sealed.ok() ? put(*resources_, key, sealed->dump()) : Status(sealed.error());
    } else {
      s = w.doc ? put(*resources_, key, w.doc->dump()) : resources_->erase(key);
    }
    if (!s.ok()) {
      failed = s;
      break;
    }
    undo.push_back({key, *before ? std::optional<std::string>((*before)->value) : std::nullopt});
  }
  if (failed.ok()) return {};
  std::string rollback;
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    Status s = it->before ? put(*resources_, it->key, *it->before) : resources_->erase(it->key);
    if (!s.ok()) rollback += "; restoring " + it->key + " failed: " + s.error().message;
  }
  return Error(failed.error().code,
               failed.error().message + (rollback.empty() ? "; nothing was applied" : rollback));
}

Status KvStateStore::load_status(std::function<void(const ResourceKey&, Json)> each, Bad bad) {
  const std::string bucket = subjects::kStatusBucket;
  auto keys = status_->keys();
  if (!keys.ok()) return keys.error();
  std::map<std::string, std::map<size_t, std::string>> parts;  // resource key -> index -> key
  std::vector<std::string> heads;
  for (const auto& key : *keys) {
    std::string rk;
    size_t idx = 0;
    if (parse_vm_key(key, &rk, &idx))
      parts[rk][idx] = key;
    else
      heads.push_back(key);
  }
  auto get_json = [&](const std::string& key) -> std::optional<Json> {
    auto e = status_->get(key);
    if (!e.ok() || !*e) {
      if (!e.ok()) bad(bucket + "/" + key + ": " + e.error().message + "; skipped");
      return std::nullopt;
    }
    Json j = Json::parse((*e)->value, nullptr, false);
    if (!j.is_object()) {
      bad(bucket + "/" + key + ": not a JSON object; skipped");
      return std::nullopt;
    }
    return j;
  };
  for (const auto& key : heads) {
    auto rk = ResourceKey::from_kv_key(key);
    if (!rk.ok()) {
      bad(bucket + "/" + key + ": not a resource key; skipped");
      continue;
    }
    auto st = get_json(key);
    if (!st) continue;
    if (rk->kind == "Migration") {
      bool relayout = st->contains("vms");  // written inline by an older coordinator
      Json vms = relayout && (*st)["vms"].is_array() ? (*st)["vms"] : Json::array();
      size_t want = 0;
      if (!relayout) {
        const Json& n = (*st)["vmCount"];
        want = n.is_number_unsigned() ? n.get<size_t>() : 0;
        auto& p = parts[key];
        for (size_t i = 0; i < want; i++) {
          auto it = p.find(i);
          std::optional<Json> vm = it == p.end() ? std::nullopt : get_json(it->second);
          if (vm && vm->contains("id") && (*vm)["id"].is_string())
            vms.push_back(std::move(*vm));
          else
            bad(bucket + "/" + vm_key(key, i) + ": VM " + std::to_string(i) + " of " +
                std::to_string(want) + " is missing or not a VM status; skipped");
        }
      }
      for (auto& vm : vms)
        if (!vm.is_object()) vm = Json::object();
      st->erase("vmCount");
      (*st)["vms"] = vms;
      // Write it back in the current layout if anything was moved or lost.
      if (relayout || vms.size() != want) {
        put_status(*rk, migration_summary(*st));
        for (size_t i = 0; i < vms.size(); i++) put_vm_status(*rk, i, vms[i]);
        for (size_t i = vms.size(); i < want; i++) enqueue_status(vm_key(key, i), std::nullopt);
      }
      // Entries beyond the VM count are left over from a crash: remove them.
      for (const auto& [i, k] : parts[key])
        if (i >= std::max(want, vms.size())) enqueue_status(k, std::nullopt);
      parts.erase(key);
    }
    each(*rk, std::move(*st));
  }
  for (const auto& [rk, p] : parts)
    for (const auto& [i, k] : p) {
      bad(bucket + "/" + k + ": a VM status without its Migration; removed");
      enqueue_status(k, std::nullopt);
    }
  return {};
}

Status KvStateStore::load_inventories(std::function<void(const ResourceKey&, Json)> each, Bad bad) {
  const std::string bucket = subjects::kInventoryBucket;
  auto keys = inventory_->keys();
  if (!keys.ok()) return keys.error();
  std::set<std::string> chunk_keys;
  std::vector<std::string> heads;
  for (const auto& key : *keys)
    (key.find('/') == std::string::npos ? heads.push_back(key) : (void)chunk_keys.insert(key));
  for (const auto& key : heads) {
    size_t dot = key.find('.');
    if (dot == std::string::npos || dot == 0 || dot + 1 == key.size()) {
      bad(bucket + "/" + key + ": not <namespace>.<provider>; skipped");
      continue;
    }
    ResourceKey pk{"Provider", key.substr(0, dot), key.substr(dot + 1)};
    auto e = inventory_->get(key);
    if (!e.ok()) {
      bad(bucket + "/" + key + ": " + e.error().message + "; skipped");
      continue;
    }
    if (!*e) continue;
    Json inv = Json::parse((*e)->value, nullptr, false);
    if (!inv.is_object()) {
      bad(bucket + "/" + key + ": not a JSON object; skipped");
      continue;
    }
    if (!inv.contains("generation")) {  // an older coordinator's single entry
      put_inventory(pk, std::make_shared<const Json>(inv));
      each(pk, std::move(inv));
      continue;
    }
    uint64_t gen = inv["generation"].is_number_unsigned() ? inv["generation"].get<uint64_t>() : 0;
    size_t n = inv["chunks"].is_number_unsigned() ? inv["chunks"].get<size_t>() : 0;
    inv.erase("generation");
    inv.erase("chunks");
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
      std::string ck = inventory_chunk_key(key, gen, i);
      chunk_keys.erase(ck);
      auto c = inventory_->get(ck);
      ok = c.ok() && *c && join_inventory_chunk(inv, (*c)->value);
      if (!ok)
        bad(bucket + "/" + ck + ": chunk missing or corrupt; inventory of " + pk.to_string() +
            " skipped (refreshed at the next inventory refresh)");
    }
    {
      std::lock_guard<std::mutex> g(gen_mu_);
      inv_gen_[key] = {gen, n};
    }
    if (ok) each(pk, std::move(inv));
  }
  // Chunks of no current generation: a write that crashed before its header.
  for (const auto& k : chunk_keys) (void)inventory_->erase(k);
  return {};
}

void KvStateStore::enqueue_status(const std::string& key, Value v) {
  {
    std::lock_guard<std::mutex> l(mu_);
    status_q_[key] = std::move(v);
  }
  cv_.notify_one();
}

void KvStateStore::put_status(const ResourceKey& k, const Json& status) {
  enqueue_status(k.kv_key(), status.dump());
}

void KvStateStore::put_vm_status(const ResourceKey& m, size_t index, const Json& vm) {
  enqueue_status(vm_key(m.kv_key(), index), vm.dump());
}

void KvStateStore::erase_status(const ResourceKey& k, size_t vm_count) {
  std::string key = k.kv_key();
  {
    std::lock_guard<std::mutex> l(mu_);
    status_q_[key] = std::nullopt;
    for (size_t i = 0; i < vm_count; i++) status_q_[vm_key(key, i)] = std::nullopt;
  }
  cv_.notify_one();
}

void KvStateStore::put_inventory(const ResourceKey& p, std::shared_ptr<const Json> inventory) {
  {
    std::lock_guard<std::mutex> l(mu_);
    inventory_q_[p.ns + "." + p.name] = InventoryOp{std::move(inventory)};
  }
  cv_.notify_one();
}

void KvStateStore::erase_inventory(const ResourceKey& p) {
  {
    std::lock_guard<std::mutex> l(mu_);
    inventory_q_[p.ns + "." + p.name] = InventoryOp{nullptr};
  }
  cv_.notify_one();
}

void KvStateStore::barrier(std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    barriers_.push_back(std::move(done));
  }
  cv_.notify_one();
}

StoreStats KvStateStore::stats() const {
  std::lock_guard<std::mutex> l(mu_);
  StoreStats s = stats_;
  s.queued = status_q_.size() + inventory_q_.size();
  return s;
}

Status KvStateStore::put(bus::KvBucket& b, const std::string& key, const std::string& value) {
  auto r = b.put(key, value);
  std::lock_guard<std::mutex> l(mu_);
  stats_.writes++;
  stats_.bytes += value.size();
  stats_.largest_value = std::max<uint64_t>(stats_.largest_value, value.size());
  if (!r.ok()) {
    stats_.failures++;
    return r.error();
  }
  return {};
}

Status KvStateStore::write_inventory(const std::string& key, const InventoryOp& op) {
  std::lock_guard<std::mutex> g(gen_mu_);
  auto old = inv_gen_.count(key) ? inv_gen_[key] : std::pair<uint64_t, size_t>{0, 0};
  if (op.inventory) {
    uint64_t gen = old.first + 1;
    auto split = split_inventory(*op.inventory, gen);
    for (size_t i = 0; i < split.chunks.size(); i++)
      FERRY_TRY(put(*inventory_, inventory_chunk_key(key, gen, i), split.chunks[i]));
    FERRY_TRY(put(*inventory_, key, split.header.dump()));
    inv_gen_[key] = {gen, split.chunks.size()};
  } else {
    FERRY_TRY(inventory_->erase(key));
    inv_gen_.erase(key);
  }
  for (size_t i = 0; i < old.second; i++)
    (void)inventory_->erase(inventory_chunk_key(key, old.first, i));
  malloc_trim(0);  // the chunks and the queued copy were the size of the inventory
  return {};
}

Status KvStateStore::write_batch(std::map<std::string, Value>& status,
                                 std::map<std::string, InventoryOp>& inventory) {
  Status first;
  auto keep = [&](const Status& s) {
    if (!s.ok() && first.ok()) first = s;
    return s.ok();
  };
  std::map<std::string, InventoryOp> inv_failed;
  for (auto& [k, op] : inventory)
    if (!keep(write_inventory(k, op))) inv_failed[k] = std::move(op);
  // VM entries ("<key>/<n>") before the summaries that count them.
  std::map<std::string, Value> failed;
  for (int pass = 0; pass < 2; pass++)
    for (auto& [k, v] : status) {
      if ((k.find('/') != std::string::npos) != (pass == 0)) continue;
      Status s = v ? put(*status_, k, *v) : status_->erase(k);
      if (!keep(s)) failed[k] = std::move(v);
    }
  if (!failed.empty() || !inv_failed.empty()) {
    std::lock_guard<std::mutex> l(mu_);
    for (auto& [k, v] : failed) status_q_.try_emplace(k, std::move(v));  // newer value wins
    for (auto& [k, op] : inv_failed) inventory_q_.try_emplace(k, std::move(op));
  }
  return first;
}

void KvStateStore::writer_main() {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [this] {
      return stop_ || !status_q_.empty() || !inventory_q_.empty() || !barriers_.empty() ||
             !resource_q_.empty();
    });
    bool stopping = stop_;
    // Resource batches first, in order: statuses of new resources are only
    // queued once their batch is stored.
    auto txns = std::move(resource_q_);
    resource_q_.clear();
    if (!txns.empty()) {
      l.unlock();
      for (auto& t : txns) {
        Status s = write_txn(t);
        if (t.done) t.done(s);
      }
      l.lock();
    }
    auto status = std::move(status_q_);
    auto inventory = std::move(inventory_q_);
    auto barriers = std::move(barriers_);
    status_q_.clear();
    inventory_q_.clear();
    barriers_.clear();
    l.unlock();
    Status s = write_batch(status, inventory);
    for (auto& b : barriers) b(s);
    l.lock();
    if (stopping) return;
    if (!s.ok())  // NATS away or refusing: try the re-queued writes again in a second
      cv_.wait_for(l, std::chrono::seconds(1), [this] { return stop_; });
  }
}

}  // namespace ferry::coordinator::store
