#include "coordinator/store/kube_state_store.h"

#include <chrono>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "common/model/resource.h"
#include "coordinator/store/status_view.h"

namespace ferry::coordinator::store {
namespace {

const Logger kLog("kube-store");

ResourceKey key_of(const std::string& kind, const Json& object) {
  const Json& md = object.value("metadata", Json::object());
  return {kind, md.value("namespace", ""), md.value("name", "")};
}

bool has_finalizer(const Json& object) {
  for (const auto& f : object.value("metadata", Json::object()).value("finalizers", Json::array()))
    if (f == kFinalizer) return true;
  return false;
}

std::string object_path(const ResourceKey& k) {
  const auto& ki = kind_info(k.kind);
  return kube::path_of(ki.group_version, ki.plural, k.ns, k.name);
}

}  // namespace

const KindInfo& kind_info(const std::string& kind) {
  static const std::map<std::string, KindInfo> m = {
      {"Secret", {"v1", "secrets"}},
      {"Provider", {"forklift.konveyor.io/v1beta1", "providers"}},
      {"Host", {"forklift.konveyor.io/v1beta1", "hosts"}},
      {"NetworkMap", {"forklift.konveyor.io/v1beta1", "networkmaps"}},
      {"StorageMap", {"forklift.konveyor.io/v1beta1", "storagemaps"}},
      {"Hook", {"forklift.konveyor.io/v1beta1", "hooks"}},
      {"Plan", {"forklift.konveyor.io/v1beta1", "plans"}},
      {"Migration", {"forklift.konveyor.io/v1beta1", "migrations"}},
      {"NetworkAttachmentDefinition", {"k8s.cni.cncf.io/v1", "network-attachment-definitions"}}};
  static const KindInfo none;
  auto it = m.find(kind);
  return it == m.end() ? none : it->second;
}

Json document_of(const Json& object) {
  Json doc = Json::object();
  doc["apiVersion"] = object.value("apiVersion", "");
  doc["kind"] = object.value("kind", "");
  const Json& md = object.value("metadata", Json::object());
  Json m = {{"name", md.value("name", "")}, {"namespace", md.value("namespace", "")}};
  for (const char* f : {"labels", "annotations"})
    if (md.contains(f) && md[f].is_object() && !md[f].empty()) m[f] = md[f];
  doc["metadata"] = m;
  if (doc["kind"] == "Secret") {
    if (object.contains("type")) doc["type"] = object["type"];
    Json sd = Json::object();
    const Json data = object.value("data", Json::object());
    if (data.is_object())
      for (auto it = data.begin(); it != data.end(); ++it)
        if (it.value().is_string())
          sd[it.key()] = model::base64_decode(it.value().get<std::string>());
    doc["stringData"] = sd;
  } else {
    doc["spec"] = object.value("spec", Json::object());
  }
  return doc;
}

KubeStateStore::KubeStateStore(std::shared_ptr<kube::Client> client,
                               std::unique_ptr<StateStore> internal)
    : client_(std::move(client)), internal_(std::move(internal)) {
  status_thread_ = std::thread([this] { status_main(); });
}

KubeStateStore::~KubeStateStore() {
  {
    std::lock_guard<std::mutex> l(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  status_thread_.join();
  for (auto& t : watches_) t.join();
  // Its last barriers call back into this store (finalized()): while it is whole.
  internal_.reset();
}

Result<std::string> KubeStateStore::list(const std::string& kind,
                                         const std::function<void(const Json&)>& each) {
  const auto& ki = kind_info(kind);
  std::string cont, version;
  do {
    std::string path = kube::path_of(ki.group_version, ki.plural) + "?limit=500";
    if (!cont.empty()) path += "&continue=" + kube::escape(cont);
    auto r = client_->get(path);
    if (!r.ok()) return r.error();
    if (!r->ok()) return Error(ErrorCode::kUnavailable, "list " + ki.plural + ": " + r->message());
    if (!r->body.is_object() || !r->body.value("items", Json::array()).is_array())
      return Error(ErrorCode::kUnavailable, "list " + ki.plural + ": not a list");
    for (const auto& item : r->body.value("items", Json::array())) {
      if (!item.is_object() || !item.contains("metadata") || !item["metadata"].is_object())
        continue;
      Json obj = item;
      obj["kind"] = kind;  // list items carry no kind
      obj["apiVersion"] = ki.group_version;
      each(obj);
    }
    const Json& md = r->body.value("metadata", Json::object());
    cont = md.value("continue", "");
    version = md.value("resourceVersion", "");
  } while (!cont.empty());
  return version;
}

void KubeStateStore::note(const ResourceKey& k, const Json& object) {
  const Json& md = object.value("metadata", Json::object());
  std::lock_guard<std::mutex> l(mu_);
  Known& n = known_[k];
  n.resource_version = md.value("resourceVersion", "");
  n.uid = md.value("uid", "");
  n.finalizer = has_finalizer(object);
  n.deleting = md.contains("deletionTimestamp") && !md["deletionTimestamp"].is_null();
}

const std::vector<std::string>& followed_kinds() {
  static const std::vector<std::string> kinds = [] {
    auto k = model::known_kinds();
    k.push_back("NetworkAttachmentDefinition");  // Multus' (optional): what multus maps name
    return k;
  }();
  return kinds;
}

Status KubeStateStore::load_resources(std::function<void(const ResourceKey&, Json)> each, Bad bad) {
  (void)bad;  // the API server checked every document against its CRD
  for (const auto& kind : followed_kinds()) {
    auto v = list(kind, [&](const Json& obj) {
      ResourceKey k = key_of(kind, obj);
      note(k, obj);
      bool deleting = false, ours = false;
      {
        std::lock_guard<std::mutex> l(mu_);
        deleting = known_[k].deleting;
        ours = known_[k].finalizer;
      }
      // A Migration deleted while no coordinator ran waits for our finalizer:
      // it is loaded like the others, so that the watch's first list reports
      // the deletion to a coordinator that knows it and cancels what it runs.
      if (!deleting || ours) each(k, document_of(obj));
    });
    if (!v.ok() && kind == "NetworkAttachmentDefinition") {
      // No Multus (its CRD is absent) or no right to read them: multus maps
      // then name nothing that exists, and Plans using them say so.
      kLog.warn("NetworkAttachmentDefinitions are not readable; multus maps cannot be satisfied",
                {{"error", v.error().message}});
      continue;
    }
    if (!v.ok()) return v.error().wrap("loading resources from the Kubernetes API");
    list_versions_[kind] = *v;
  }
  return {};
}

void KubeStateStore::watch_resources(Change changed) {
  changed_ = std::move(changed);
  for (const auto& kind : followed_kinds())
    if (list_versions_.count(kind))
      watches_.emplace_back([this, kind, v = list_versions_[kind]] { watch_main(kind, v); });
}

void KubeStateStore::ensure_finalizer(const ResourceKey& k, const Json& object) {
  if (k.kind != "Migration" || has_finalizer(object)) return;
  const Json md = object.value("metadata", Json::object());
  if (md.contains("deletionTimestamp") && !md["deletionTimestamp"].is_null()) return;
  Json fin = md.value("finalizers", Json::array());
  fin.push_back(kFinalizer);
  Json patch = {
      {"metadata", {{"finalizers", fin}, {"resourceVersion", md.value("resourceVersion", "")}}}};
  auto r = client_->request("PATCH", object_path(k), &patch, "application/merge-patch+json");
  // A 409 means a newer version exists: its watch event comes next and tries again.
  if (!r.ok() || (!r->ok() && r->code != 409 && r->code != 404))
    kLog.warn("adding the finalizer failed",
              {{"resource", k.to_string()}, {"error", r.ok() ? r->message() : r.error().message}});
}

void KubeStateStore::watch_main(std::string kind, std::string version) {
  const auto& ki = kind_info(kind);
  std::set<ResourceKey> seen;  // what this kind holds now, for re-lists
  {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& [k, n] : known_)
      if (k.kind == kind) seen.insert(k);
  }
  // Objects loaded before the watch: Migrations get their finalizer, and
  // those already being deleted are reported (load_resources skipped them).
  if (kind == "Migration")
    (void)list(kind, [&](const Json& obj) {
      ResourceKey k = key_of(kind, obj);
      const Json md = obj.value("metadata", Json::object());
      if (md.contains("deletionTimestamp") && !md["deletionTimestamp"].is_null())
        changed_(k, std::nullopt);
      else
        ensure_finalizer(k, obj);
    });
  auto deliver = [&](const ResourceKey& k, const Json& obj, bool gone) {
    note(k, obj);
    bool deleting = false;
    {
      std::lock_guard<std::mutex> l(mu_);
      deleting = known_[k].deleting;
      if (gone) known_.erase(k);
    }
    if (gone || deleting) {
      seen.erase(k);
      changed_(k, std::nullopt);
      return;
    }
    seen.insert(k);
    ensure_finalizer(k, obj);
    changed_(k, document_of(obj));
  };
  int failures = 0;
  auto backoff = [&] {  // 1, 2, 4, 8, 10, 10... seconds while failures go on
    std::this_thread::sleep_for(std::chrono::seconds(std::min(1 << std::min(failures++, 4), 10)));
  };
  while (!stop_) {
    if (version.empty()) {  // (re-)list: report what changed while the watch was away
      std::set<ResourceKey> now;
      std::vector<Json> objects;
      auto v = list(kind, [&](const Json& obj) { objects.push_back(obj); });
      if (!v.ok()) {
        kLog.warn("list failed", {{"kind", kind}, {"error", v.error().message}});
        backoff();
        continue;
      }
      for (const auto& obj : objects) {
        ResourceKey k = key_of(kind, obj);
        now.insert(k);
        deliver(k, obj, false);
      }
      for (const auto& k : std::set<ResourceKey>(seen))
        if (!now.count(k)) deliver(k, {{"metadata", Json::object()}}, true);
      version = *v;
    }
    std::string path = kube::path_of(ki.group_version, ki.plural) +
                       "?watch=1&allowWatchBookmarks=true&timeoutSeconds=300&resourceVersion=" +
                       kube::escape(version);
    bool gone410 = false, errored = false;
    auto r = client_->watch(
        path,
        [&](const Json& ev) {
          try {  // nothing from the server may end the process
            const std::string type = ev.value("type", "");
            Json obj = ev.value("object", Json::object());
            if (!obj.is_object()) return true;
            if (type == "ERROR") {  // 410 Gone (or reason Expired): the version is too old
              if (obj.value("code", 0) == 410 || obj.value("reason", "") == "Expired")
                gone410 = true;
              else
                errored = true;
              kLog.warn("watch error", {{"kind", kind}, {"error", obj.dump().substr(0, 300)}});
              return false;
            }
            if (!obj.contains("metadata") || !obj["metadata"].is_object()) return true;
            std::string rv = obj["metadata"].value("resourceVersion", "");
            if (!rv.empty()) version = rv;
            if (type == "BOOKMARK") return true;
            obj["kind"] = kind;
            obj["apiVersion"] = ki.group_version;
            deliver(key_of(kind, obj), obj, type == "DELETED");
            failures = 0;
          } catch (const std::exception& e) {  // a bug, not the server's: say so, go on
            kLog.error("watch event not handled", {{"kind", kind}, {"error", e.what()}});
          }
          return true;
        },
        stop_);
    if (errored && !stop_) {  // not a 410: back off before watching again
      backoff();
      continue;
    }
    if (stop_) return;
    if (!r.ok() || gone410 || r->code == 410) {
      if (!r.ok()) {
        kLog.warn("watch lost; reconnecting", {{"kind", kind}, {"error", r.error().message}});
        backoff();
      }
      if (gone410 || (r.ok() && r->code == 410)) {
        kLog.info("watch expired (410 Gone); listing again", {{"kind", kind}});
        version.clear();
      }
      continue;
    }
    if (!r->ok()) {
      kLog.warn("watch refused", {{"kind", kind}, {"error", r->message()}});
      version.clear();
      backoff();
    }
  }
}

Result<std::optional<Json>> KubeStateStore::get_object(const ResourceKey& k) {
  auto r = client_->get(object_path(k));
  if (!r.ok()) return r.error();
  if (r->code == 404) return std::optional<Json>();
  if (!r->ok()) return Error(ErrorCode::kUnavailable, "get " + k.to_string() + ": " + r->message());
  return std::optional<Json>(r->body);
}

Status KubeStateStore::apply_object(const ResourceKey& k, const Json& doc) {
  Json body = doc;
  body.erase("status");
  if (k.kind == "Secret" && body.contains("stringData")) {  // stored as data, as the server does
    Json data = body.value("data", Json::object());
    for (auto it = body["stringData"].begin(); it != body["stringData"].end(); ++it)
      data[it.key()] = model::base64_encode(it.value().is_string() ? it.value().get<std::string>()
                                                                   : it.value().dump());  // true, 5
    body["data"] = data;
    body.erase("stringData");
  }
  body["metadata"]["namespace"] = k.ns;
  auto r = client_->request("PATCH", object_path(k) + "?fieldManager=ferry&force=true", &body,
                            "application/apply-patch+yaml");
  if (!r.ok()) return r.error();
  if (!r->ok())
    return Error(r->code == 422 ? ErrorCode::kInvalidArgument : ErrorCode::kUnavailable,
                 k.to_string() + ": " + r->message());
  note(k, r->body);
  return {};
}

Status KubeStateStore::delete_object(const ResourceKey& k) {
  auto r = client_->request("DELETE", object_path(k));
  if (!r.ok()) return r.error();
  if (!r->ok() && r->code != 404)
    return Error(ErrorCode::kUnavailable, "delete " + k.to_string() + ": " + r->message());
  return {};
}

Status KubeStateStore::write_txn(const std::vector<ResourceWrite>& writes) {
  std::vector<std::pair<ResourceKey, std::optional<Json>>> undo;  // previous documents
  Status failed;
  for (const auto& w : writes) {
    auto before = get_object(w.key);
    if (!before.ok()) {
      failed = before.error();
      break;
    }
    Status s = w.doc ? apply_object(w.key, *w.doc) : delete_object(w.key);
    if (!s.ok()) {
      failed = s;
      break;
    }
    undo.emplace_back(w.key, *before ? std::optional<Json>(document_of(**before)) : std::nullopt);
  }
  if (failed.ok()) return {};
  std::string rollback;
  for (auto it = undo.rbegin(); it != undo.rend(); ++it) {
    Status s = it->second ? apply_object(it->first, *it->second) : delete_object(it->first);
    if (!s.ok())
      rollback += "; restoring " + it->first.to_string() + " failed: " + s.error().message;
  }
  return Error(failed.error().code,
               failed.error().message + (rollback.empty() ? "; nothing was applied" : rollback));
}

void KubeStateStore::write_resources(std::vector<ResourceWrite> writes,
                                     std::function<void(Status)> done) {
  {
    std::lock_guard<std::mutex> l(mu_);
    txns_.push_back({std::move(writes), std::move(done)});
  }
  cv_.notify_all();
}

Status KubeStateStore::load_status(std::function<void(const ResourceKey&, Json)> each, Bad bad) {
  return internal_->load_status(
      [&](const ResourceKey& k, Json st) {
        {
          std::lock_guard<std::mutex> l(mu_);
          Json summary = st;
          summary.erase("vms");
          summary_[k] = summary;
          if (k.kind == "Migration" && st.contains("vms") && st["vms"].is_array())
            for (size_t i = 0; i < st["vms"].size(); i++)
              vms_[k][i] = std::make_shared<const Json>(vm_view(st["vms"][i]));
        }
        each(k, std::move(st));
      },
      bad);
}

Status KubeStateStore::load_inventories(std::function<void(const ResourceKey&, Json)> each,
                                        Bad bad) {
  return internal_->load_inventories(std::move(each), std::move(bad));
}

void KubeStateStore::put_status(const ResourceKey& k, const Json& status) {
  internal_->put_status(k, status);
  if (k.kind == "Secret") return;  // no status in the API
  {
    std::lock_guard<std::mutex> l(mu_);
    summary_[k] = status;
    if (k.kind == "Migration") {  // VMs beyond the count are gone
      size_t n = status.value("vmCount", size_t{0});
      auto& v = vms_[k];
      v.erase(v.lower_bound(n), v.end());
    }
    dirty_.insert(k);
  }
  cv_.notify_all();
}

void KubeStateStore::put_vm_status(const ResourceKey& m, size_t index, const Json& vm) {
  internal_->put_vm_status(m, index, vm);
  auto view = std::make_shared<const Json>(vm_view(vm));  // without the working fields
  std::lock_guard<std::mutex> l(mu_);
  vms_[m][index] = std::move(view);
  dirty_.insert(m);
}

void KubeStateStore::erase_status(const ResourceKey& k, size_t vm_count) {
  internal_->erase_status(k, vm_count);
  std::lock_guard<std::mutex> l(mu_);
  summary_.erase(k);
  vms_.erase(k);
  dirty_.erase(k);
}

void KubeStateStore::put_inventory(const ResourceKey& p, std::shared_ptr<const Json> inventory) {
  internal_->put_inventory(p, std::move(inventory));
}
void KubeStateStore::erase_inventory(const ResourceKey& p) { internal_->erase_inventory(p); }
void KubeStateStore::barrier(std::function<void(Status)> done) {
  internal_->barrier(std::move(done));
}

StoreStats KubeStateStore::stats() const {
  StoreStats s = internal_->stats();
  std::lock_guard<std::mutex> l(mu_);
  s.writes += status_writes_;
  s.failures += status_failures_;
  s.largest_value = std::max(s.largest_value, largest_status_);
  s.queued += dirty_.size();
  return s;
}

std::string KubeStateStore::uid(const ResourceKey& k) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = known_.find(k);
  return it == known_.end() || it->second.uid.empty() ? k.name : it->second.uid;
}

void KubeStateStore::finalized(const ResourceKey& k) {
  {
    std::lock_guard<std::mutex> l(mu_);
    if (k.kind != "Migration") return;
    release_.insert(k);
  }
  cv_.notify_all();
}

void KubeStateStore::record_event(const ResourceKey& k, const std::string& type,
                                  const std::string& reason, const std::string& message) {
  if (k.kind == "Secret") return;
  {
    std::lock_guard<std::mutex> l(mu_);
    if (events_.size() >= kMaxQueuedEvents) {
      if (events_dropped_++ % 1000 == 0)
        kLog.warn("events dropped: too many queued",
                  {{"dropped", std::to_string(events_dropped_)}});
      return;
    }
    events_.push_back({k, type, reason, message.substr(0, 1024), now_iso()});
  }
  cv_.notify_all();
}

bool KubeStateStore::post_event(const Event& e) {
  std::string uid, version;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = known_.find(e.key);
    if (it == known_.end()) return true;  // not (or no longer) in the API
    uid = it->second.uid;
    version = it->second.resource_version;
  }
  const auto& ki = kind_info(e.key.kind);
  Json ev = {{"apiVersion", "v1"},
             {"kind", "Event"},
             {"metadata", {{"generateName", e.key.name + "."}, {"namespace", e.key.ns}}},
             {"involvedObject",
              {{"apiVersion", ki.group_version},
               {"kind", e.key.kind},
               {"name", e.key.name},
               {"namespace", e.key.ns},
               {"uid", uid},
               {"resourceVersion", version}}},
             {"type", e.type},
             {"reason", e.reason},
             {"message", e.message},
             {"firstTimestamp", e.time},
             {"lastTimestamp", e.time},
             {"count", 1},
             {"source", {{"component", "ferry-coordinator"}}}};
  auto r = client_->request("POST", kube::path_of("v1", "events", e.key.ns), &ev);
  if (!r.ok()) return false;  // the API server is away: again in a second
  if (!r->ok())
    kLog.warn("event not recorded",
              {{"resource", e.key.to_string()}, {"reason", e.reason}, {"error", r->message()}});
  return true;
}

Status KubeStateStore::remove_finalizer(const ResourceKey& k) {
  for (int attempt = 0; attempt < 5; attempt++) {
    auto obj = get_object(k);
    if (!obj.ok()) return obj.error();
    if (!*obj || !has_finalizer(**obj)) return {};
    Json fin = Json::array();
    for (const auto& f : (**obj)["metadata"].value("finalizers", Json::array()))
      if (f != kFinalizer) fin.push_back(f);
    Json patch = {{"metadata",
                   {{"finalizers", fin},
                    {"resourceVersion", (**obj)["metadata"].value("resourceVersion", "")}}}};
    auto r = client_->request("PATCH", object_path(k), &patch, "application/merge-patch+json");
    if (!r.ok()) return r.error();
    if (r->ok() || r->code == 404) return {};
    if (r->code != 409)
      return Error(ErrorCode::kUnavailable,
                   "removing the finalizer of " + k.to_string() + ": " + r->message());
  }
  return Error(ErrorCode::kUnavailable,
               "removing the finalizer of " + k.to_string() + ": conflicts on 5 attempts");
}

Status KubeStateStore::write_status(const ResourceKey& k, const Json& status) {
  std::string version;
  {
    std::lock_guard<std::mutex> l(mu_);
    auto it = known_.find(k);
    if (it != known_.end()) version = it->second.resource_version;
  }
  const auto& ki = kind_info(k.kind);
  for (int attempt = 0; attempt < 5; attempt++) {
    if (version.empty()) {
      auto obj = get_object(k);
      if (!obj.ok()) return obj.error();
      if (!*obj) return {};  // gone: nothing to show it on
      version = (**obj)["metadata"].value("resourceVersion", "");
    }
    Json body = {
        {"apiVersion", ki.group_version},
        {"kind", k.kind},
        {"metadata", {{"name", k.name}, {"namespace", k.ns}, {"resourceVersion", version}}},
        {"status", status}};
    auto r = client_->request("PUT", object_path(k) + "/status", &body);
    if (!r.ok()) return r.error();
    {
      std::lock_guard<std::mutex> l(mu_);
      status_writes_++;
      largest_status_ = std::max<uint64_t>(largest_status_, body.dump().size());
    }
    if (r->code == 404) return {};
    if (r->ok()) {
      note(k, r->body);
      return {};
    }
    if (r->code != 409)
      return Error(ErrorCode::kUnavailable, "status of " + k.to_string() + ": " + r->message());
    version.clear();  // 409 Conflict: someone changed it since; read it again
  }
  return Error(ErrorCode::kUnavailable, "status of " + k.to_string() + ": conflicts on 5 attempts");
}

void KubeStateStore::status_main() {
  std::unique_lock<std::mutex> l(mu_);
  bool failing = false;  // the last round could not reach the API server: wait the whole second
  while (!stop_) {
    cv_.wait_for(l, std::chrono::seconds(1), [this, failing] {
      return stop_ || !txns_.empty() || (!failing && (!release_.empty() || !events_.empty()));
    });
    if (stop_) break;
    auto txns = std::move(txns_);
    txns_.clear();
    if (!txns.empty()) {
      l.unlock();
      for (auto& t : txns) {
        Status s = write_txn(t.writes);
        if (t.done) t.done(s);
      }
      l.lock();
    }
    // Statuses at most once a second each: a Migration's changes coalesce.
    // What to write is taken under the lock (the VM views are shared, so
    // that is a copy of pointers) and built after it is let go.
    struct Work {
      ResourceKey key;
      Json summary;
      VmViews vms;
    };
    std::vector<Work> work;
    for (const auto& k : dirty_) {
      auto it = summary_.find(k);
      if (it == summary_.end()) continue;
      auto v = vms_.find(k);
      work.push_back({k, it->second, v == vms_.end() ? VmViews{} : v->second});
    }
    dirty_.clear();
    auto release = std::move(release_);
    release_.clear();
    auto events = std::move(events_);
    events_.clear();
    l.unlock();
    std::vector<Event> unsent;
    for (const auto& e : events)
      if (!unsent.empty() || !post_event(e)) unsent.push_back(e);  // keeps their order
    std::set<ResourceKey> retry;
    for (const auto& w : work) {
      const ResourceKey& k = w.key;
      Status s = write_status(k, status_view(k.kind, w.summary, w.vms));
      if (!s.ok()) {
        kLog.warn("status not written",
                  {{"resource", k.to_string()}, {"error", s.error().message}});
        retry.insert(k);
      }
    }
    for (const auto& k : release) {
      Status s = remove_finalizer(k);
      if (!s.ok()) {
        kLog.warn("finalizer not removed",
                  {{"resource", k.to_string()}, {"error", s.error().message}});
        std::lock_guard<std::mutex> g(mu_);
        release_.insert(k);
      }
    }
    l.lock();
    if (!unsent.empty()) {
      unsent.insert(unsent.end(), events_.begin(), events_.end());
      if (unsent.size() > kMaxQueuedEvents) unsent.resize(kMaxQueuedEvents);
      events_ = std::move(unsent);
    }
    failing = !unsent.empty() || !retry.empty() || !release_.empty();
    status_failures_ += retry.size();
    dirty_.insert(retry.begin(), retry.end());
  }
}

}  // namespace ferry::coordinator::store
