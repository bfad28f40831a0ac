#pragma once
// StatusBook: the one owner of every resource's status as the coordinator
// holds it (a Migration's as a summary document plus a typed VmStatus per
// VM), and of the way those reach the store. A changed status is marked (save(), or asking for a
// VM's status), and everything marked is written at the end of the loop turn: a Migration's summary
// plus each changed VM under its own key, so a change costs O(1) in the size of the plan.
//
// Loop thread only. Reading and changing go through the map-like calls; a
// change is stored only once it is marked.
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/base/result.h"
#include "common/event/loop.h"
#include "common/model/resource.h"
#include "coordinator/status/vm_status.h"
#include "coordinator/store/state_store.h"

namespace ferry::coordinator::status {

class StatusBook {
 public:
  using Json = model::Json;
  using ResourceKey = model::ResourceKey;
  using Map = std::map<ResourceKey, Json>;

  explicit StatusBook(event::UvEventLoop& loop) : loop_(loop) {}
  // Where flush() writes; set once the store is open.
  void attach(store::StateStore* store) { store_ = store; }

  // A stored status, at load: a Migration's VMs are read into VmStatus and
  // indexed by id. A status of the wrong shape is refused and nothing of it
  // kept; a VM whose stored status cannot be read is kept as Failed, saying
  // so, and `bad` is told (the rest of the Migration and its history stay).
  Status load(const ResourceKey& k, Json st,
              const std::function<void(const std::string&)>& bad = nullptr);
  // A new run of a Migration: its summary and VMs replaced, every VM written.
  void start_migration(const ResourceKey& k, Json summary, std::vector<VmStatus> vms);

  // A status document; a Migration's is its summary (its VMs are apart).
  Json& operator[](const ResourceKey& k) { return docs_[k]; }
  Map::iterator find(const ResourceKey& k) { return docs_.find(k); }
  Map::const_iterator find(const ResourceKey& k) const { return docs_.find(k); }
  Map::iterator begin() { return docs_.begin(); }
  Map::iterator end() { return docs_.end(); }
  Map::const_iterator begin() const { return docs_.begin(); }
  Map::const_iterator end() const { return docs_.end(); }
  size_t count(const ResourceKey& k) const { return docs_.count(k); }

  // A Migration VM's status (null if there is none). Marked changed:
  // whoever asks for it may change it.
  VmStatus* vm(const ResourceKey& mkey, const std::string& vm_id);
  // A Migration's VMs, to read (empty if it has none).
  const std::vector<VmStatus>& vms(const ResourceKey& mkey) const;
  // A Migration's VMs, to change: every one is marked.
  std::vector<VmStatus>* vms_for_update(const ResourceKey& mkey);
  // The status as the API shows it: a Migration's with its VMs.
  Json document(const ResourceKey& k) const;
  // Every VM of the Migration changed (a loop over its vms that wrote).
  void mark_all_vms(const ResourceKey& mkey);
  // The status changed: it is written at the end of this loop turn.
  void save(const ResourceKey& k);
  // The status changed, and may wait for the next flush (at most a second:
  // the coordinator flushes on a timer), e.g. for progress.
  void touch(const ResourceKey& k) { dirty_.insert(k); }
  // Writes every marked status now.
  void flush();
  // Forgets a status in memory only (a stored one that could not be used).
  void drop(const ResourceKey& k);
  // Forgets a status and erases it from the store, VMs and all.
  void erase(const ResourceKey& k);

 private:
  void index_vms(const ResourceKey& mkey);

  event::UvEventLoop& loop_;
  store::StateStore* store_ = nullptr;
  Map docs_;
  std::map<ResourceKey, std::vector<VmStatus>> vms_;               // Migration -> its VMs
  std::map<ResourceKey, std::map<std::string, size_t>> vm_index_;  // Migration -> VM id -> index
  std::set<ResourceKey> dirty_;                                    // changed since the last flush
  std::map<ResourceKey, std::set<size_t>> dirty_vms_;              // Migration -> changed VMs
  bool flush_posted_ = false;
};

}  // namespace ferry::coordinator::status
