#pragma once
// KubeCluster: the StorageMigrator's Cluster in the Kubernetes API (cluster
// mode). Claims are PersistentVolumeClaims bound to the node-local
// PersistentVolumes the agents register (spec.local and a node affinity).
#include <memory>

#include "common/kube/client.h"
#include "coordinator/storage/cluster.h"

namespace ferry::coordinator::storage {

class KubeCluster : public Cluster {
 public:
  explicit KubeCluster(std::shared_ptr<kube::Client> api) : api_(std::move(api)) {}

  Result<std::vector<Json>> list(const std::string& kind) override;
  Result<std::optional<Json>> get(const std::string& kind, const std::string& ns,
                                  const std::string& name) override;
  Status write_status(const Json& doc) override;
  Result<std::optional<std::vector<Vm>>> list_vms(const std::string& ns, std::string* why) override;
  Result<std::optional<Vm>> get_vm(const std::string& ns, const std::string& name) override;
  Result<std::optional<VmInstance>> get_instance(const std::string& ns,
                                                 const std::string& name) override;
  Status set_run_strategy(const std::string& ns, const std::string& name,
                          const std::string& strategy) override;
  Status repoint(const std::string& ns, const std::string& name,
                 const std::map<std::string, std::string>& from_to, bool live) override;
  Result<bool> class_exists(const std::string& name) override;
  Result<std::optional<Claim>> get_claim(const std::string& ns, const std::string& name) override;
  Status create_claim(const NewClaim& c) override;
  Status delete_claim(const std::string& ns, const std::string& name) override;
  std::string volume_path(const std::string& ns, const std::string& name,
                          bool block) const override {
    return ns + "/" + name + (block ? "/block" : "/disk.img");
  }

 private:
  // GET: the object, nullopt on 404, an Error when the server could not answer.
  Result<std::optional<Json>> get_obj(const std::string& path);
  std::shared_ptr<kube::Client> api_;
};

}  // namespace ferry::coordinator::storage
