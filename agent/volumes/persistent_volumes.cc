#include "agent/volumes/persistent_volumes.h"

namespace ferry::agent::volumes {

using kube::Json;

std::string PersistentVolumes::pv_name(const ferry::v1::VolumeClaim& c) const {
  std::string n = c.namespace_() + "." + c.name() + "." + node_;
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return n.substr(0, 253);
}

Status PersistentVolumes::register_volume(const ferry::v1::TargetVolume& t,
                                          const std::string& local_path) {
  const auto& c = t.claim();
  const std::string name = pv_name(c);
  Json pv = {{"apiVersion", "v1"},
             {"kind", "PersistentVolume"},
             {"metadata",
              {{"name", name},
               {"labels", {{"app.kubernetes.io/managed-by", "ferry"}, {"ferry.io/node", node_}}}}},
             {"spec",
              {{"capacity", {{"storage", std::to_string(c.request_bytes())}}},
               {"accessModes", Json::array({"ReadWriteOnce"})},
               {"volumeMode", t.block() ? "Block" : "Filesystem"},
               {"persistentVolumeReclaimPolicy", "Retain"},
               {"storageClassName", t.storage_class()},
               {"local", {{"path", local_path}}},
               {"nodeAffinity",
                {{"required",
                  {{"nodeSelectorTerms",
                    Json::array({{{"matchExpressions",
                                   Json::array({{{"key", "kubernetes.io/hostname"},
                                                 {"operator", "In"},
                                                 {"values", Json::array({node_})}}})}}})}}}}},
               {"claimRef",
                {{"apiVersion", "v1"},
                 {"kind", "PersistentVolumeClaim"},
                 {"namespace", c.namespace_()},
                 {"name", c.name()}}}}}};
  const std::string coll = kube::path_of("v1", "persistentvolumes");
  auto r = client_->request("POST", coll, &pv);
  if (!r.ok()) return r.error().wrap("PersistentVolume " + name);
  if (r->ok()) return {};
  for (int attempt = 0; r->code == 409 && attempt < 5; ++attempt) {
    // Registered before: by an earlier attempt (a warm disk's next copy), or
    // for an earlier claim of the same name that is gone (its VM deleted;
    // the PV, kept by its Retain policy, is Released and would never bind
    // the new claim). That one is registered again for the new claim.
    auto cur = client_->get(coll + "/" + name);
    if (!cur.ok()) return cur.error().wrap("PersistentVolume " + name);
    if (cur->code == 404) {  // deleted meanwhile
      r = client_->request("POST", coll, &pv);
      if (!r.ok()) return r.error().wrap("PersistentVolume " + name);
      if (r->ok()) return {};
      continue;
    }
    if (!cur->ok() || !cur->body.is_object())
      return Error(ErrorCode::kUnavailable, "PersistentVolume " + name + ": " + cur->message());
    const Json spec = cur->body.value("spec", Json::object());
    const Json ref = spec.value("claimRef", Json::object());
    if (ref.value("namespace", "") != c.namespace_() || ref.value("name", "") != c.name())
      return Error(ErrorCode::kAlreadyExists,
                   "PersistentVolume " + name + " exists for another claim");
    std::string phase = cur->body.value("status", Json::object()).value("phase", "");
    if (phase != "Released" && phase != "Failed") return {};
    Json again = pv;  // its metadata as it is (resourceVersion: 409 if it changed meanwhile)
    again["metadata"] = cur->body.value("metadata", Json::object());
    again["metadata"]["labels"].update(pv["metadata"]["labels"]);
    r = client_->request("PUT", coll + "/" + name, &again);
    if (!r.ok()) return r.error().wrap("PersistentVolume " + name);
    if (r->ok()) return {};
  }
  return Error(r->code == 422 ? ErrorCode::kInvalidArgument : ErrorCode::kUnavailable,
               "PersistentVolume " + name + ": " + r->message());
}

Status PersistentVolumes::remove(const ferry::v1::TargetVolume& t) {
  const std::string name = pv_name(t.claim());
  auto r = client_->request("DELETE", kube::path_of("v1", "persistentvolumes", "", name));
  if (!r.ok()) return r.error().wrap("PersistentVolume " + name);
  if (!r->ok() && r->code != 404)
    return Error(ErrorCode::kUnavailable, "PersistentVolume " + name + ": " + r->message());
  return {};
}

}  // namespace ferry::agent::volumes
