#include "coordinator/status/status_book.h"

namespace ferry::coordinator::status {

Status StatusBook::load(const ResourceKey& k, Json st,
                        const std::function<void(const std::string&)>& bad) {
  if (!st.is_object()) return Error(ErrorCode::kInvalidArgument, "not an object");
  std::vector<VmStatus> vms;
  auto it = st.find("vms");
  bool has_vms = k.kind == "Migration" && it != st.end();  // none before it runs
  if (has_vms) {
    if (!it->is_array()) return Error(ErrorCode::kInvalidArgument, "vms is not a list");
    vms.reserve(it->size());
    std::vector<size_t> unreadable;
    for (size_t i = 0; i < it->size(); i++) {
      const Json& j = (*it)[i];
      try {
        vms.push_back(j.get<VmStatus>());
      } catch (const std::exception& e) {
        // Kept in its place (the VMs' keys are their indexes), ended, and saying why.
        VmStatus v;
        if (j.is_object()) {
          if (auto id = j.find("id"); id != j.end() && id->is_string()) v.id = *id;
          if (auto n = j.find("name"); n != j.end() && n->is_string()) v.name = *n;
        }
        std::string why = "its stored status could not be read (" + std::string(e.what()) + ")";
        v.phase = "Failed";
        v.error = VmError{"", "", {why}};
        vms.push_back(std::move(v));
        unreadable.push_back(i);
        if (bad) bad("vms[" + std::to_string(i) + "]: " + why + "; kept as Failed");
      }
    }
    st.erase(it);
    for (size_t i : unreadable) dirty_vms_[k].insert(i);  // stored as it now reads
  }
  docs_[k] = std::move(st);
  if (has_vms) {
    vms_[k] = std::move(vms);
    index_vms(k);
  }
  return {};
}

void StatusBook::start_migration(const ResourceKey& k, Json summary, std::vector<VmStatus> vms) {
  docs_[k] = std::move(summary);
  vms_[k] = std::move(vms);
  index_vms(k);
  mark_all_vms(k);
}

VmStatus* StatusBook::vm(const ResourceKey& mkey, const std::string& vm_id) {
  auto it = vms_.find(mkey);
  auto ix = vm_index_.find(mkey);
  if (it == vms_.end() || ix == vm_index_.end()) return nullptr;
  auto i = ix->second.find(vm_id);
  if (i == ix->second.end() || i->second >= it->second.size()) return nullptr;
  dirty_vms_[mkey].insert(i->second);
  return &it->second[i->second];
}

const std::vector<VmStatus>& StatusBook::vms(const ResourceKey& mkey) const {
  static const std::vector<VmStatus> none;
  auto it = vms_.find(mkey);
  return it == vms_.end() ? none : it->second;
}

std::vector<VmStatus>* StatusBook::vms_for_update(const ResourceKey& mkey) {
  auto it = vms_.find(mkey);
  if (it == vms_.end()) return nullptr;
  mark_all_vms(mkey);
  return &it->second;
}

model::Json StatusBook::document(const ResourceKey& k) const {
  auto it = docs_.find(k);
  if (it == docs_.end()) return Json();
  Json doc = it->second;
  if (auto v = vms_.find(k); v != vms_.end()) doc["vms"] = v->second;
  return doc;
}

void StatusBook::index_vms(const ResourceKey& mkey) {
  auto& ix = vm_index_[mkey];
  ix.clear();
  const auto& vms = vms_[mkey];
  for (size_t i = 0; i < vms.size(); i++) ix[vms[i].id] = i;
}

void StatusBook::mark_all_vms(const ResourceKey& mkey) {
  auto& d = dirty_vms_[mkey];
  auto it = vms_.find(mkey);
  for (size_t i = 0; it != vms_.end() && i < it->second.size(); i++) d.insert(i);
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
    auto it = vms_.find(k);
    if (it == vms_.end()) continue;
    for (size_t i : idx)
      if (i < it->second.size()) store_->put_vm_status(k, i, Json(it->second[i]));
    dirty_.insert(k);
  }
  dirty_vms_.clear();
  for (const auto& k : dirty_) {
    auto it = docs_.find(k);
    if (it == docs_.end()) continue;
    if (k.kind == "Migration") {
      Json summary = it->second;  // the VMs are stored under keys of their own
      auto v = vms_.find(k);
      summary["vmCount"] = v == vms_.end() ? 0 : v->second.size();
      store_->put_status(k, summary);
    } else {
      store_->put_status(k, it->second);
    }
  }
  dirty_.clear();
}

void StatusBook::drop(const ResourceKey& k) {
  docs_.erase(k);
  vms_.erase(k);
  vm_index_.erase(k);
  dirty_.erase(k);
  dirty_vms_.erase(k);
}

void StatusBook::erase(const ResourceKey& k) {
  if (docs_.count(k) && store_) {
    auto v = vms_.find(k);
    store_->erase_status(k, v == vms_.end() ? 0 : v->second.size());
  }
  drop(k);
}

}  // namespace ferry::coordinator::status
