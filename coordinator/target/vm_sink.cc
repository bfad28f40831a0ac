#include "coordinator/target/vm_sink.h"

#include <filesystem>
#include <fstream>

#include "common/base/files.h"

namespace ferry::coordinator::target {

using model::Json;

Result<std::string> ManifestDirSink::create(const VmRequest& r) {
  if (dir_.empty()) return std::string();
  namespace fs = std::filesystem;
  const Json& md = r.vm["metadata"];
  fs::path dir = fs::path(dir_) / md.value("namespace", "");
  std::error_code ec;
  fs::create_directories(dir, ec);
  fs::path file = dir / (md.value("name", "") + ".yaml");
  FERRY_TRY(write_file_atomic(file.string(), model::to_yaml(r.vm)));
  return file.string();
}

namespace {

// POSTs `obj`; an object of that name already there is fine if `ours` says it
// is the one a previous attempt made. Returns the stored object.
Result<Json> create_once(kube::Client& c, const std::string& collection, const Json& obj,
                         const std::string& what, const std::function<bool(const Json&)>& ours) {
  auto r = c.request("POST", collection, &obj);
  if (!r.ok()) return r.error().wrap(what);
  if (r->ok()) return r->body;
  if (r->code == 409) {
    auto cur = c.get(collection + "/" + obj["metadata"].value("name", ""));
    if (!cur.ok()) return cur.error().wrap(what);
    if (cur->ok() && ours(cur->body)) return cur->body;
    return Error(ErrorCode::kAlreadyExists,
                 what + " already exists and was not made by this migration");
  }
  // 422/400: refused (KubeVirt's schema); 404: no such namespace; 403: RBAC
  // (also, for a moment, an API server that just restarted); 5xx and 429: busy.
  ErrorCode code = r->code == 422 || r->code == 400 ? ErrorCode::kInvalidArgument
                   : r->code == 404                 ? ErrorCode::kNotFound
                   : r->code == 403                 ? ErrorCode::kPermissionDenied
                                                    : ErrorCode::kUnavailable;
  return Error(code, what + ": " + r->message());
}

}  // namespace

Result<std::string> KubeVmSink::create(const VmRequest& r) {
  const Json& md = r.vm["metadata"];
  const std::string ns = md.value("namespace", ""), name = md.value("name", "");
  const std::string what = "VirtualMachine " + ns + "/" + name;
  // Ours: made by an earlier attempt of this migration for this VM (not by
  // another migration of the same source VM, nor by anyone else).
  auto labelled = [&](const Json& o) {
    const Json labels = o.value("metadata", Json::object()).value("labels", Json::object());
    return labels.value("vmID", "") == r.vm_id && labels.value("migration", "") == r.migration;
  };
  Json obj = r.vm;  // with Forklift's labels, as its PVCs have them
  obj["metadata"]["labels"]["migration"] = r.migration;
  obj["metadata"]["labels"]["plan"] = r.plan;
  obj["metadata"]["labels"]["vmID"] = r.vm_id;
  auto vm = create_once(*client_, kube::path_of("kubevirt.io/v1", "virtualmachines", ns), obj, what,
                        labelled);
  if (!vm.ok()) return vm.error();
  Json owner = {{"apiVersion", "kubevirt.io/v1"},
                {"kind", "VirtualMachine"},
                {"name", name},
                {"uid", (*vm)["metadata"].value("uid", "")}};
  for (const auto& c : r.claims) {
    Json pvc = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata",
                 {{"name", c.name},
                  {"namespace", ns},
                  {"labels", {{"migration", r.migration}, {"plan", r.plan}, {"vmID", r.vm_id}}},
                  {"ownerReferences", Json::array({owner})}}},
                {"spec",
                 {{"accessModes", Json::array({"ReadWriteOnce"})},
                  {"volumeMode", c.block ? "Block" : "Filesystem"},
                  {"storageClassName", c.storage_class},
                  {"resources", {{"requests", {{"storage", std::to_string(c.bytes)}}}}}}}};
    auto made = create_once(*client_, kube::path_of("v1", "persistentvolumeclaims", ns), pvc,
                            "PersistentVolumeClaim " + ns + "/" + c.name, labelled);
    if (!made.ok()) return made.error();
  }
  return what;
}

}  // namespace ferry::coordinator::target
