#include "coordinator/storage/local_cluster.h"

#include <openssl/rand.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/base/clock.h"
#include "common/base/files.h"
#include "common/model/names.h"
#include "common/model/resource.h"
#include "coordinator/storage/json_read.h"
#include "coordinator/storage/mig_resources.h"

namespace ferry::coordinator::storage {

namespace fs = std::filesystem;

namespace {

constexpr double kSettleSeconds = 30;

std::string key_of(const std::string& kind, const std::string& ns, const std::string& name) {
  return kind + "." + ns + "." + name;
}

std::string new_uid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return "";
  b[6] = (b[6] & 0x0f) | 0x40;  // a version 4 UUID
  b[8] = (b[8] & 0x3f) | 0x80;
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[b[i] >> 4];
    out += hex[b[i] & 15];
  }
  return out;
}

// A stored document as a reader sees it: its KV revision is its resourceVersion.
Result<std::optional<Json>> parse_entry(const Result<std::optional<bus::KvEntry>>& e) {
  if (!e.ok()) return e.error();
  if (!*e) return std::optional<Json>();
  Json doc = Json::parse((*e)->value, nullptr, false);
  // Not ours (another writer, another version): nothing there.
  if (!doc.is_object() || !at(doc, {"metadata"}).is_object()) return std::optional<Json>();
  doc["metadata"]["resourceVersion"] = std::to_string((*e)->revision);
  return std::optional<Json>(std::move(doc));
}

uint64_t revision_of(const Json& doc) {
  std::string rv = str_at(doc, {"metadata", "resourceVersion"});
  return rv.empty() ? 0 : std::strtoull(rv.c_str(), nullptr, 10);
}

Json stored_form(Json doc) {
  if (doc.contains("metadata") && doc["metadata"].is_object())
    doc["metadata"].erase("resourceVersion");
  return doc;
}

}  // namespace

LocalCluster::LocalCluster(std::unique_ptr<bus::KvBucket> kv, std::string manifest_dir,
                           std::function<std::optional<Nodes>()> nodes)
    : kv_(std::move(kv)), manifest_dir_(std::move(manifest_dir)), nodes_(std::move(nodes)) {}

// ------------------------------------------------------------ ferryctl's verbs

// A namespace is a DNS-1123 label (no dots), so "<kind>.<ns>.<name>" keys
// cannot collide; names are DNS-1123 subdomains (what KV keys allow).
std::string LocalCluster::name_problem(const std::string& ns, const std::string& name) {
  if (!model::is_dns1123_label(ns))
    return "namespace \"" + ns + "\" is not a valid namespace (lowercase letters, digits, '-')";
  if (!model::is_dns1123_subdomain(name))
    return "\"" + name + "\" is not a valid name (lowercase letters, digits, '-' and '.')";
  return "";
}

Result<Json> LocalCluster::apply(const std::vector<Json>& docs, bool dry_run) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  std::vector<std::string> problems;
  Json done = Json::array();
  auto result = [&](const Json& doc, const char* what) {
    done.push_back({{"resource", where(doc)}, {"result", what}});
  };
  struct Write {
    std::string key, what;
    Json doc;               // to store
    Json spec;              // the spec it stores (a configure: over the newest status)
    uint64_t revision = 0;  // what it replaces (0: new)
    Json old;               // the value it replaces
  };
  std::vector<Write> writes;
  std::set<std::string> seen;
  for (const auto& in : docs) {
    std::vector<FieldError> errors;
    Json doc = in;
    std::string kind = str_at(doc, {"kind"});
    if (str_at(doc, {"apiVersion"}) != kMigApiVersion) {
      problems.push_back(where(doc) + ": apiVersion: \"" + str_at(doc, {"apiVersion"}) +
                         "\" is not " + kMigApiVersion);
      continue;
    }
    // Names that become keys: the resource's, and those it refers to.
    std::vector<std::pair<std::string, std::string>> names;  // field, problem
    std::string ns = str_at(doc, {"metadata", "namespace"});
    if (ns.empty()) ns = model::kDefaultNamespace;
    std::string name = str_at(doc, {"metadata", "name"});
    if (kind == "MigPlan") {
      if (auto p = read_mig_plan(doc, errors))
        for (const auto& v : p->volumes)
          names.emplace_back("spec.persistentVolumes[" + std::to_string(v.index) + "].pvc",
                             name_problem(v.pvc_ns, v.pvc));
    } else if (kind == "MigMigration") {
      if (auto m = read_mig_migration(doc, errors))
        names.emplace_back("spec.migPlanRef", name_problem(m->plan_ns, m->plan_name));
    } else {
      errors.push_back({where(doc), "kind", "\"" + kind + "\" is not MigPlan or MigMigration"});
    }
    for (const auto& e : errors) problems.push_back(e.to_string());
    if (!errors.empty()) continue;
    names.emplace_back("metadata", name_problem(ns, name));
    bool named = true;
    for (const auto& [field, problem] : names)
      if (!problem.empty()) {
        problems.push_back(where(doc) + ": " + field + ": " + problem);
        named = false;
      }
    if (!named) continue;
    doc["metadata"]["namespace"] = ns;
    std::string key = key_of(kind, ns, name);
    if (!seen.insert(key).second) {
      problems.push_back(where(doc) + ": metadata.name: given twice in this apply");
      continue;
    }
    auto cur = parse_entry(kv_->get(key));
    if (!cur.ok()) return cur.error().wrap("reading " + where(doc));
    Write w{key, where(doc), Json::object(), doc["spec"], 0, Json()};
    if (*cur) {
      const Json& old = **cur;
      if (at(old, {"spec"}) == at(doc, {"spec"})) {
        result(doc, "unchanged");
        continue;
      }
      if (kind == "MigMigration") {
        // Only MTC's cancel may come later: spec.canceled set to true.
        Json a = at(old, {"spec"}), b = at(doc, {"spec"});
        bool cancel = !bool_at(a, {"canceled"}) && bool_at(b, {"canceled"});
        if (a.is_object()) a.erase("canceled");
        if (b.is_object()) b.erase("canceled");
        if (a != b || !cancel) {
          problems.push_back(where(doc) +
                             (a == b ? ": spec.canceled: a canceled MigMigration stays canceled"
                                     : ": spec: a MigMigration cannot be changed once created, "
                                       "except to set spec.canceled; create another one"));
          continue;
        }
      }
      w.revision = revision_of(old);
      w.old = stored_form(old);
      w.doc = w.old;
      w.doc["spec"] = doc["spec"];
      for (const char* f : {"labels", "annotations"})
        if (at(doc, {"metadata", f}).is_object()) w.doc["metadata"][f] = doc["metadata"][f];
      result(doc, "configured");
    } else {
      w.doc = doc;
      w.doc.erase("status");  // status is the coordinator's
      w.doc["metadata"]["uid"] = new_uid();
      w.doc["metadata"]["creationTimestamp"] = now_iso();
      w.doc["metadata"].erase("resourceVersion");
      result(doc, "created");
    }
    writes.push_back(std::move(w));
  }
  if (!problems.empty()) {
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "\n") + p;
    return Error(ErrorCode::kInvalidArgument, all);
  }
  if (dry_run) return done;
  // All or nothing: a failed write puts back what this apply already wrote.
  std::vector<std::pair<Write*, uint64_t>> written;  // and the revision it got
  for (auto& w : writes) {
    auto r = kv_->update(w.key, w.doc.dump(), w.revision);
    // The coordinator wrote a status in between: the spec goes over the new one.
    for (int i = 0; !r.ok() && w.revision && i < 3; i++) {
      auto cur = parse_entry(kv_->get(w.key));
      if (!cur.ok() || !*cur || at(**cur, {"spec"}) != at(w.old, {"spec"})) break;
      w.revision = revision_of(**cur);
      w.old = stored_form(**cur);
      w.doc = w.old;
      w.doc["spec"] = w.spec;
      r = kv_->update(w.key, w.doc.dump(), w.revision);
    }
    if (r.ok()) {
      written.emplace_back(&w, *r);
      continue;
    }
    std::string left;  // what could not be put back
    for (auto it = written.rbegin(); it != written.rend(); ++it) {
      const Write& back = *it->first;
      Status undo;
      if (back.revision == 0) {
        auto now = kv_->get(back.key);  // only if nobody changed it since
        if (now.ok() && *now && (*now)->revision == it->second)
          undo = kv_->erase(back.key);
        else
          undo = Error(ErrorCode::kFailedPrecondition, "changed since");
      } else {
        auto u = kv_->update(back.key, back.old.dump(), it->second);
        if (!u.ok()) undo = u.error();
      }
      if (!undo.ok()) left += (left.empty() ? "" : ", ") + back.what;
    }
    if (!left.empty())
      return r.error().wrap("storing " + w.what + " failed, and " + left +
                            " could not be put back: apply again");
    return r.error().wrap("nothing was applied: storing " + w.what);
  }
  return done;
}

Result<std::vector<Json>> LocalCluster::find(const std::string& kind, const std::string& ns,
                                             const std::string& name) {
  if (!name.empty()) {
    const std::string n = ns.empty() ? model::kDefaultNamespace : ns;
    std::string problem = name_problem(n, name);
    if (!problem.empty()) return Error(ErrorCode::kInvalidArgument, kind + ": " + problem);
    auto d = get(kind, n, name);
    if (!d.ok()) return d.error();
    if (!*d) return Error(ErrorCode::kNotFound, kind + " " + n + "/" + name + " not found");
    return std::vector<Json>{**d};
  }
  auto all = list(kind);
  if (!all.ok()) return all.error();
  std::vector<Json> out;
  for (auto& d : *all)
    if (ns.empty() || str_at(d, {"metadata", "namespace"}) == ns) out.push_back(std::move(d));
  return out;
}

Status LocalCluster::remove(const std::string& kind, const std::string& ns,
                            const std::string& name) {
  std::lock_guard<std::mutex> lock(apply_mu_);
  std::string n = ns.empty() ? model::kDefaultNamespace : ns;
  std::string problem = name_problem(n, name);
  if (!problem.empty()) return Error(ErrorCode::kInvalidArgument, kind + ": " + problem);
  auto cur = kv_->get(key_of(kind, n, name));
  if (!cur.ok()) return cur.error();
  if (!*cur) return Error(ErrorCode::kNotFound, kind + " " + n + "/" + name + " not found");
  return kv_->erase(key_of(kind, n, name));
}

// ------------------------------------------------------------ Cluster

Result<std::vector<Json>> LocalCluster::list(const std::string& kind) {
  auto keys = kv_->keys();
  if (!keys.ok()) return keys.error();
  std::vector<Json> out;
  for (const auto& k : *keys) {
    if (k.rfind(kind + ".", 0) != 0) continue;
    auto d = parse_entry(kv_->get(k));
    if (!d.ok()) return d.error();
    if (*d) out.push_back(std::move(**d));
  }
  return out;
}

Result<std::optional<Json>> LocalCluster::get(const std::string& kind, const std::string& ns,
                                              const std::string& name) {
  return parse_entry(kv_->get(key_of(kind, ns, name)));
}

Status LocalCluster::write_status(const Json& doc) {
  std::string key = key_of(str_at(doc, {"kind"}), str_at(doc, {"metadata", "namespace"}),
                           str_at(doc, {"metadata", "name"}));
  uint64_t rev = revision_of(doc);
  if (rev == 0) return Error(ErrorCode::kFailedPrecondition, key + ": no resourceVersion");
  auto r = kv_->update(key, stored_form(doc).dump(), rev);
  if (!r.ok()) return r.error().wrap("writing the status of " + key);
  return {};
}

Result<std::optional<Json>> LocalCluster::read_vm(const std::string& ns, const std::string& name) {
  if (manifest_dir_.empty() || !name_problem(ns, name).empty()) return std::optional<Json>();
  fs::path file = fs::path(manifest_dir_) / ns / (name + ".yaml");
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::optional<Json>();
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Error(ErrorCode::kIo, "reading " + file.string() + " failed");
  // A file that is not a VirtualMachine is refused (kInvalidArgument), not
  // retried: it needs a person.
  auto docs = model::yaml_to_json(text.str());
  if (!docs.ok())
    return Error(ErrorCode::kInvalidArgument, file.string() + ": " + docs.error().message);
  for (const auto& d : *docs)
    if (str_at(d, {"kind"}) == "VirtualMachine" && at(d, {"spec"}).is_object())
      return std::optional<Json>(d);
  return Error(ErrorCode::kInvalidArgument,
               file.string() + ": not a VirtualMachine manifest (kind and spec)");
}

Status LocalCluster::write_vm(const std::string& ns, const std::string& name, const Json& vm) {
  return write_file_atomic((fs::path(manifest_dir_) / ns / (name + ".yaml")).string(),
                           model::to_yaml(vm));
}

Result<std::optional<std::vector<Vm>>> LocalCluster::list_vms(const std::string& ns,
                                                              std::string* why) {
  if (manifest_dir_.empty()) {
    if (why)
      *why =
          "local mode keeps VirtualMachines as manifests in --manifest-dir, and this coordinator "
          "was started without one";
    return std::optional<std::vector<Vm>>();
  }
  std::vector<Vm> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(fs::path(manifest_dir_) / ns, ec)) {
    // The file names the VM (where an import writes it, and where a change goes).
    std::string name = e.path().stem().string();
    if (e.path().extension() != ".yaml" || !name_problem(ns, name).empty()) continue;
    auto vm = read_vm(ns, name);
    if (!vm.ok() && vm.error().code == ErrorCode::kInvalidArgument) {
      if (why) *why = vm.error().message;
      return std::optional<std::vector<Vm>>();
    }
    if (!vm.ok()) return vm.error();
    if (!*vm) continue;
    out.push_back(vm_from_object(**vm));
    out.back().name = name;
    out.back().ns = ns;
  }
  return std::optional<std::vector<Vm>>(std::move(out));
}

Result<std::optional<Vm>> LocalCluster::get_vm(const std::string& ns, const std::string& name) {
  auto vm = read_vm(ns, name);
  if (!vm.ok()) return vm.error();
  if (!*vm) return std::optional<Vm>();
  Vm out = vm_from_object(**vm);
  out.name = name;
  out.ns = ns;
  return std::optional<Vm>(std::move(out));
}

Result<Json> LocalCluster::read_vm_or_gone(const std::string& ns, const std::string& name) {
  auto vm = read_vm(ns, name);
  if (!vm.ok()) return vm.error();
  if (!*vm)
    return Error(ErrorCode::kFailedPrecondition,
                 "VirtualMachine " + ns + "/" + name + " is gone from " + manifest_dir_);
  return std::move(**vm);
}

Status LocalCluster::set_run_strategy(const std::string& ns, const std::string& name,
                                      const std::string& strategy) {
  auto vm = read_vm_or_gone(ns, name);
  if (!vm.ok()) return vm.error();
  Json obj = std::move(*vm);
  obj["spec"]["runStrategy"] = strategy;
  obj["spec"].erase("running");
  return write_vm(ns, name, obj);
}

Status LocalCluster::repoint(const std::string& ns, const std::string& name,
                             const std::map<std::string, std::string>& from_to, bool live) {
  auto vm = read_vm_or_gone(ns, name);
  if (!vm.ok()) return vm.error();
  Json obj = std::move(*vm);
  if (!at(obj, {"spec", "template", "spec", "volumes"}).is_array())
    return Error(ErrorCode::kFailedPrecondition,
                 "VirtualMachine " + ns + "/" + name + " has no spec.template.spec.volumes");
  bool changed = false;
  for (auto& v : obj["spec"]["template"]["spec"]["volumes"]) {
    if (!at(v, {"persistentVolumeClaim"}).is_object()) continue;
    auto it = from_to.find(str_at(v, {"persistentVolumeClaim", "claimName"}));
    if (it == from_to.end()) continue;
    v["persistentVolumeClaim"]["claimName"] = it->second;
    changed = true;
  }
  if (live) {
    obj["spec"]["updateVolumesStrategy"] = "Migration";
    changed = true;
  }
  return changed ? write_vm(ns, name, obj) : Status{};
}

// One snapshot of the agents serves the lookups of a pass (each asks the loop).
std::optional<Nodes> LocalCluster::nodes() {
  std::lock_guard<std::mutex> lock(nodes_mu_);
  double now = now_seconds();
  if (!nodes_cache_ || now - nodes_at_ > 1.0) {
    nodes_cache_ = nodes_();
    nodes_at_ = now;
  }
  if (!started_) started_ = now;  // the settle window starts with the first look
  return nodes_cache_;
}

bool LocalCluster::settling() const {
  return !started_ || now_seconds() - started_ < kSettleSeconds;
}

Result<bool> LocalCluster::class_exists(const std::string& name) {
  auto nodes = this->nodes();
  if (!nodes) return Error(ErrorCode::kUnavailable, "the agents are not known now");
  for (const auto& [n, view] : *nodes)
    if (view.roots.count(name)) return true;
  if (settling()) return Error(ErrorCode::kUnavailable, "agents are still saying hello");
  return false;
}

Result<std::optional<Claim>> LocalCluster::get_claim(const std::string& ns,
                                                     const std::string& name) {
  if (!name_problem(ns, name).empty()) return std::optional<Claim>();
  auto rec = kv_->get(key_of("Claim", ns, name));
  if (!rec.ok()) return rec.error();
  Json record = *rec ? Json::parse((*rec)->value, nullptr, false) : Json();
  auto nodes = this->nodes();
  if (!nodes) return Error(ErrorCode::kUnavailable, "the agents are not known now");
  std::vector<Claim> found;
  std::vector<std::string> partial;  // nodes whose heartbeat lists only some volumes
  for (const auto& [node, view] : *nodes) {
    for (const auto& [cls, held] : view.volumes)
      for (bool block : {false, true}) {
        auto it = held.find(volume_path(ns, name, block));
        if (it == held.end() || !view.roots.count(cls)) continue;
        Claim c;
        c.bound = true;
        c.volume = it->first;
        c.request = std::to_string(it->second.size_bytes);
        c.node = node;
        c.storage_class = cls;
        c.local_path = view.roots.at(cls) + "/" + it->first;
        c.block = it->second.block;
        c.copy_of = str_at(record, {"copyOf"});
        found.push_back(c);
      }
    if (!view.truncated.empty()) partial.push_back(node);
  }
  if (found.size() > 1) {  // which one is the VM's disk? Not a guess to make.
    Claim c = found.front();
    c.refusal = "claim " + ns + "/" + name + " is held twice: by node " + found[0].node + " (" +
                found[0].local_path + ") and node " + found[1].node + " (" + found[1].local_path +
                "); remove the stale one";
    return std::optional<Claim>(c);
  }
  if (found.size() == 1) return std::optional<Claim>(found.front());
  if (record.is_object()) {  // made for a copy that has not written yet
    Claim c;
    c.copy_of = str_at(record, {"copyOf"});
    c.node = str_at(record, {"node"});
    c.storage_class = str_at(record, {"storageClass"});
    return std::optional<Claim>(c);
  }
  if (settling()) return Error(ErrorCode::kUnavailable, "agents are still saying hello");
  if (!partial.empty()) {
    Claim c;
    c.refusal = "claim " + ns + "/" + name + " is not among the volumes node " + partial.front() +
                " lists, and that node holds more volumes than its heartbeat lists";
    return std::optional<Claim>(c);
  }
  return std::optional<Claim>();
}

Status LocalCluster::create_claim(const NewClaim& n) {
  const std::string key = key_of("Claim", n.ns, n.name);
  const std::string what = "claim " + n.ns + "/" + n.name;
  auto cur = get_claim(n.ns, n.name);
  if (!cur.ok()) return cur.error().wrap("creating " + what);
  // (A refusal with no node is "not found where the agents' lists are whole".)
  if (*cur && !((*cur)->node.empty() && !(*cur)->refusal.empty())) {
    if ((*cur)->copy_of == n.ns + "/" + n.source) return {};
    return Error(ErrorCode::kAlreadyExists,
                 what + " already exists" +
                     ((*cur)->node.empty() ? "" : " (a volume on node " + (*cur)->node + ")") +
                     " and is not a copy of " + n.ns + "/" + n.source);
  }
  Json record = {{"copyOf", n.ns + "/" + n.source},
                 {"plan", n.plan},
                 {"storageClass", n.storage_class},
                 {"node", n.node},
                 {"bytes", n.bytes},
                 {"block", n.block}};
  auto r = kv_->update(key, record.dump(), 0);
  if (!r.ok()) return r.error().wrap("creating " + what);
  return {};
}

Status LocalCluster::delete_claim(const std::string& ns, const std::string& name) {
  return kv_->erase(key_of("Claim", ns, name));
}

}  // namespace ferry::coordinator::storage
