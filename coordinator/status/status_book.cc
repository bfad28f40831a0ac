#include "coordinator/status/status_book.h"

#include "coordinator/store/layout.h"

namespace ferry::coordinator::status {

Status StatusBook::load(const ResourceKey& k, Json st) {
  if (!st.is_object()) return Error(ErrorCode::kInvalidArgument, "not an object");
  if (k.kind == "Migration" && !st["vms"].is_array())
    return Error(ErrorCode::kInvalidArgument, "vms is not a list");
  docs_[k] = std::move(st);
  if (k.kind == "Migration") index_vms(k);
  return {};
}

void StatusBook::start_migration(const ResourceKey& k, Json st) {
  docs_[k] = std::move(st);
  index_vms(k);
  mark_all_vms(k);
}

model::Json* StatusBook::vm(const ResourceKey& mkey, const std::string& vm_id) {
  auto it = docs_.find(mkey);
  auto ix = vm_index_.find(mkey);
  if (it == docs_.end() || ix == vm_index_.end()) return nullptr;
  auto i = ix->second.find(vm_id);
  if (i == ix->second.end()) return nullptr;
  dirty_vms_[mkey].insert(i->second);
  return &it->second["vms"][i->second];
}

void StatusBook::index_vms(const ResourceKey& mkey) {
  auto& ix = vm_index_[mkey];
  ix.clear();
  const Json& vms = docs_[mkey]["vms"];
  if (!vms.is_array()) return;
  for (size_t i = 0; i < vms.size(); i++) ix[vms[i].value("id", "")] = i;
}

void StatusBook::mark_all_vms(const ResourceKey& mkey) {
  auto& d = dirty_vms_[mkey];
  const Json& vms = docs_[mkey]["vms"];
  for (size_t i = 0; vms.is_array() && i < vms.size(); i++) d.insert(i);
  save(mkey);
}

void StatusBook::save(const ResourceKey& k) {
  dirty_.insert(k);
  if (flush_posted_) return;
  flush_posted_ = true;
  loop_.post([this] { flush(); });
}

void StatusBook::flush() {
  flush_posted_ = false;
  if (!store_) return;
  for (auto& [k, idx] : dirty_vms_) {
    auto it = docs_.find(k);
    if (it == docs_.end()) continue;
    const Json& vms = it->second["vms"];
    for (size_t i : idx)
      if (i < vms.size()) store_->put_vm_status(k, i, vms[i]);
    dirty_.insert(k);
  }
  dirty_vms_.clear();
  for (const auto& k : dirty_) {
    auto it = docs_.find(k);
    if (it == docs_.end()) continue;
    store_->put_status(k,
                       k.kind == "Migration" ? store::migration_summary(it->second) : it->second);
  }
  dirty_.clear();
}

void StatusBook::drop(const ResourceKey& k) {
  docs_.erase(k);
  vm_index_.erase(k);
  dirty_.erase(k);
  dirty_vms_.erase(k);
}

void StatusBook::erase(const ResourceKey& k) {
  auto it = docs_.find(k);
  if (it != docs_.end() && store_) {
    auto vms = it->second.find("vms");
    store_->erase_status(k, vms != it->second.end() && vms->is_array() ? vms->size() : 0);
  }
  drop(k);
}

}  // namespace ferry::coordinator::status
