#include "agent/volumes/persistent_volumes.h"

namespace ferry::agent::volumes {

using kube::Json;

std::string PersistentVolumes::pv_name(const ferry::v1::VolumeClaim& c) const {
  std::string n = c.namespace_() + "." + c.name() + "." + node_;
  for (auto& ch : n) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return n.substr(0, 253);
}

Status PersistentVolumes::register_volume(const ferry::v1::TargetVolume& t,
                                          const std::string& dir) {
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
               {"volumeMode", "Filesystem"},
               {"persistentVolumeReclaimPolicy", "Retain"},
               {"storageClassName", t.storage_class()},
               {"local", {{"path", dir}}},
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
  if (r->code == 409) {  // registered by an earlier attempt (a warm disk's next copy)
    auto cur = client_->get(coll + "/" + name);
    if (cur.ok() && cur->ok()) {
      const Json& ref = cur->body["spec"].value("claimRef", Json::object());
      if (ref.value("namespace", "") == c.namespace_() && ref.value("name", "") == c.name())
        return {};
    }
    return Error(ErrorCode::kAlreadyExists,
                 "PersistentVolume " + name + " exists for another claim");
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
