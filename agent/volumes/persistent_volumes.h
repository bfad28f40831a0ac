#pragma once
// PersistentVolumes for the volumes this node's agent writes (cluster mode):
// a `local` PV for the volume's directory (Block mode: its device node), with nodeAffinity to this
// node, the storage class, the capacity the claim asks for, and a claimRef to the PVC the
// coordinator creates, so kube-controller-manager's binder binds the two. The agent knows volumes,
// nodes and claims, nothing of any source.
//
// Thread-safe (each call is its own request); calls block: worker threads only.
#include <memory>
#include <string>

#include "common/base/result.h"
#include "common/kube/client.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::agent::volumes {

class PersistentVolumes {
 public:
  PersistentVolumes(std::shared_ptr<kube::Client> client, std::string node)
      : client_(std::move(client)), node_(std::move(node)) {}
  // Registers the PV for `local_path` (idempotent: one already there for the
  // same claim is kept). Errors name the PV and the API's answer.
  Status register_volume(const ferry::v1::TargetVolume& t, const std::string& local_path);
  // Removes the volume's PV (absent is fine).
  Status remove(const ferry::v1::TargetVolume& t);
  // "<claim namespace>.<claim>.<node>": unique per node and claim, a DNS-1123 subdomain.
  std::string pv_name(const ferry::v1::VolumeClaim& c) const;

 private:
  std::shared_ptr<kube::Client> client_;
  std::string node_;
};

}  // namespace ferry::agent::volumes
