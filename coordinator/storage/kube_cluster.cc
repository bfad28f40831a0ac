#include "coordinator/storage/kube_cluster.h"

#include "coordinator/storage/json_read.h"
#include "coordinator/storage/mig_resources.h"

namespace ferry::coordinator::storage {

namespace {

std::string mig_path(const std::string& kind, const std::string& ns = "",
                     const std::string& name = "") {
  return kube::path_of(kMigApiVersion, kind == "MigPlan" ? "migplans" : "migmigrations", ns, name);
}
std::string vm_path(const std::string& ns, const std::string& name = "") {
  return kube::path_of("kubevirt.io/v1", "virtualmachines", ns, name);
}
std::string pvc_path(const std::string& ns, const std::string& name = "") {
  return kube::path_of("v1", "persistentvolumeclaims", ns, name);
}
std::string vm_name(const std::string& ns, const std::string& name) {
  return "VirtualMachine " + ns + "/" + name;
}

}  // namespace

Result<std::optional<Json>> KubeCluster::get_obj(const std::string& path) {
  auto r = api_->get(path);
  if (!r.ok()) return r.error();
  if (r->code == 404) return std::optional<Json>();
  if (!r->ok()) return Error(ErrorCode::kUnavailable, path + ": " + r->message());
  return std::optional<Json>(r->body);
}

Result<std::vector<Json>> KubeCluster::list(const std::string& kind) {
  auto r = get_obj(mig_path(kind));
  if (!r.ok()) return r.error();
  if (!*r) return Error(ErrorCode::kUnavailable, "the " + kind + " CRD is not installed");
  std::vector<Json> out;
  for (const auto& d : list_at(**r, {"items"})) {
    if (!d.is_object()) continue;
    out.push_back(d);
    out.back()["kind"] = kind;  // (a list's items need not carry it)
    out.back()["apiVersion"] = kMigApiVersion;
  }
  return out;
}

Result<std::optional<Json>> KubeCluster::get(const std::string& kind, const std::string& ns,
                                             const std::string& name) {
  return get_obj(mig_path(kind, ns, name));
}

Status KubeCluster::write_status(const Json& doc) {
  std::string path = mig_path(str_at(doc, {"kind"}), str_at(doc, {"metadata", "namespace"}),
                              str_at(doc, {"metadata", "name"})) +
                     "/status";
  auto r = api_->request("PUT", path, &doc);
  if (!r.ok()) return r.error();
  if (!r->ok()) return Error(ErrorCode::kUnavailable, r->message());
  return {};
}

Result<std::optional<std::vector<Vm>>> KubeCluster::list_vms(const std::string& ns,
                                                             std::string* why) {
  auto r = get_obj(vm_path(ns));
  if (!r.ok()) return r.error();
  if (!*r) {
    if (why) *why = "not found (is KubeVirt's VirtualMachine CRD installed?)";
    return std::optional<std::vector<Vm>>();
  }
  std::vector<Vm> out;
  for (const auto& vm : list_at(**r, {"items"})) out.push_back(vm_from_object(vm));
  return std::optional<std::vector<Vm>>(std::move(out));
}

Result<std::optional<Vm>> KubeCluster::get_vm(const std::string& ns, const std::string& name) {
  auto r = get_obj(vm_path(ns, name));
  if (!r.ok()) return r.error();
  if (!*r) return std::optional<Vm>();
  return std::optional<Vm>(vm_from_object(**r));
}

Result<std::optional<VmInstance>> KubeCluster::get_instance(const std::string& ns,
                                                            const std::string& name) {
  auto r = get_obj(kube::path_of("kubevirt.io/v1", "virtualmachineinstances", ns, name));
  if (!r.ok()) return r.error();
  if (!*r) return std::optional<VmInstance>();
  const Json& st = at(**r, {"status", "migrationState"});
  VmInstance i;
  i.migration_started = str_at(st, {"startTimestamp"});
  i.migration_completed = bool_at(st, {"completed"});
  i.migration_failed = bool_at(st, {"failed"});
  return std::optional<VmInstance>(i);
}

Status KubeCluster::set_run_strategy(const std::string& ns, const std::string& name,
                                     const std::string& strategy) {
  Json patch = {{"spec", {{"runStrategy", strategy}, {"running", nullptr}}}};
  std::string what = "setting " + vm_name(ns, name) + " runStrategy " + strategy;
  auto r = api_->request("PATCH", vm_path(ns, name), &patch, "application/merge-patch+json");
  if (!r.ok()) return r.error().wrap(what);
  if (r->code == 404 || r->code == 422)
    return Error(ErrorCode::kFailedPrecondition, what + ": " + r->message());
  if (!r->ok()) return Error(ErrorCode::kUnavailable, what + ": " + r->message());
  return {};
}

// One JSON patch, each replacement guarded by a test of the old name.
Status KubeCluster::repoint(const std::string& ns, const std::string& name,
                            const std::map<std::string, std::string>& from_to, bool live) {
  auto cur = get_obj(vm_path(ns, name));
  if (!cur.ok()) return cur.error();
  if (!*cur) return Error(ErrorCode::kFailedPrecondition, vm_name(ns, name) + " is gone");
  const Json& vols = list_at(**cur, {"spec", "template", "spec", "volumes"});
  Json ops = Json::array();
  for (size_t i = 0; i < vols.size(); i++) {
    std::string claim = str_at(vols[i], {"persistentVolumeClaim", "claimName"});
    auto it = from_to.find(claim);
    if (it == from_to.end()) continue;
    std::string p =
        "/spec/template/spec/volumes/" + std::to_string(i) + "/persistentVolumeClaim/claimName";
    ops.push_back({{"op", "test"}, {"path", p}, {"value", it->first}});
    ops.push_back({{"op", "replace"}, {"path", p}, {"value", it->second}});
  }
  if (live)
    ops.push_back({{"op", "add"}, {"path", "/spec/updateVolumesStrategy"}, {"value", "Migration"}});
  if (ops.empty()) return {};
  auto r = api_->request("PATCH", vm_path(ns, name), &ops, "application/json-patch+json");
  std::string what = "updating the volumes of " + vm_name(ns, name);
  if (!r.ok()) return r.error().wrap(what);
  if (r->code == 404 || r->code == 422)  // gone, or its volumes are not what they were
    return Error(ErrorCode::kFailedPrecondition, what + ": " + r->message());
  if (!r->ok()) return Error(ErrorCode::kUnavailable, what + ": " + r->message());
  return {};
}

Result<bool> KubeCluster::class_exists(const std::string& name) {
  auto r = get_obj(kube::path_of("storage.k8s.io/v1", "storageclasses", "", name));
  if (!r.ok()) return r.error();
  return r->has_value();
}

Result<std::optional<Claim>> KubeCluster::get_claim(const std::string& ns,
                                                    const std::string& name) {
  auto r = get_obj(pvc_path(ns, name));
  if (!r.ok()) return r.error();
  if (!*r) return std::optional<Claim>();
  const Json& c = **r;
  Claim out;
  out.volume = str_at(c, {"spec", "volumeName"});
  out.bound = !out.volume.empty() && str_at(c, {"status", "phase"}) == "Bound";
  out.request = str_at(c, {"spec", "resources", "requests", "storage"});
  if (at(c, {"spec", "accessModes"}).is_array())
    out.access_modes_json = at(c, {"spec", "accessModes"}).dump();
  out.copy_of = str_at(c, {"metadata", "annotations", "migration.openshift.io/source-pvc"});
  if (out.volume.empty()) return std::optional<Claim>(out);
  auto pv = get_obj(kube::path_of("v1", "persistentvolumes", "", out.volume));
  if (!pv.ok()) return pv.error();
  if (!*pv) {
    out.volume_found = false;
    return std::optional<Claim>(out);
  }
  const Json& p = **pv;
  std::string local = str_at(p, {"spec", "local", "path"});
  out.node = str_at(p, {"spec", "nodeAffinity", "required", "nodeSelectorTerms", "0",
                        "matchExpressions", "0", "values", "0"});
  out.storage_class = str_at(p, {"spec", "storageClassName"});
  out.block = str_at(p, {"spec", "volumeMode"}) == "Block";
  // A Filesystem volume's disk is disk.img in the volume's directory.
  if (!local.empty()) out.local_path = local + (out.block ? "" : "/disk.img");
  return std::optional<Claim>(out);
}

Status KubeCluster::create_claim(const NewClaim& n) {
  Json pvc = {{"apiVersion", "v1"},
              {"kind", "PersistentVolumeClaim"},
              {"metadata",
               {{"name", n.name},
                {"namespace", n.ns},
                {"labels",
                 {{"migration.openshift.io/migplan-name", n.plan},
                  {"migration.openshift.io/source-pvc", n.source}}},
                {"annotations", {{"migration.openshift.io/source-pvc", n.ns + "/" + n.source}}}}},
              {"spec",
               {{"accessModes", Json::parse(n.access_modes_json)},
                {"storageClassName", n.storage_class},
                {"volumeMode", n.block ? "Block" : "Filesystem"},
                {"resources", {{"requests", {{"storage", std::to_string(n.bytes)}}}}}}}};
  auto r = api_->request("POST", pvc_path(n.ns), &pvc);
  std::string what = "PersistentVolumeClaim " + n.ns + "/" + n.name;
  if (!r.ok()) return r.error().wrap("creating " + what);
  if (r->ok()) return {};
  if (r->code == 409) {
    auto cur = get_claim(n.ns, n.name);
    if (!cur.ok()) return cur.error();
    if (*cur && (*cur)->copy_of == n.ns + "/" + n.source) return {};
    return Error(ErrorCode::kAlreadyExists,
                 what + " already exists and is not a copy of " + n.ns + "/" + n.source);
  }
  return Error(r->code >= 400 && r->code < 500 && r->code != 429 ? ErrorCode::kInvalidArgument
                                                                 : ErrorCode::kUnavailable,
               "creating " + what + ": " + r->message());
}

Status KubeCluster::delete_claim(const std::string& ns, const std::string& name) {
  auto r = api_->request("DELETE", pvc_path(ns, name));
  if (!r.ok()) return r.error();
  if (!r->ok() && r->code != 404) return Error(ErrorCode::kUnavailable, r->message());
  return {};
}

}  // namespace ferry::coordinator::storage
