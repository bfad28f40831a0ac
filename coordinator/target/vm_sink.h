#pragma once
// VmSink: where a migrated VM goes once its volumes hold its disks, the
// target adapter of each mode:
//   - ManifestDirSink (local mode): the VirtualMachine as YAML in
//     --manifest-dir/<namespace>/<name>.yaml (nothing when no directory);
//   - KubeVmSink (cluster mode): the VirtualMachine in the Kubernetes API
//     (checked there against KubeVirt's CRD schema) and a PVC per volume with
//     Forklift's labels (migration, plan, vmID), owned by the VirtualMachine
//     so the garbage collector removes them with it.
// create() is idempotent (a phase retried after a restart finds what it made)
// and blocking: call it off the loop.
#include <memory>
#include <string>
#include <vector>

#include "common/base/result.h"
#include "common/kube/client.h"
#include "common/model/resource.h"

namespace ferry::coordinator::target {

struct Claim {  // one volume of the VM
  std::string name, storage_class;
  uint64_t bytes = 0;  // requested size
  bool block = false;  // volumeMode Block (else Filesystem)
};

struct VmRequest {
  model::Json vm;  // the VirtualMachine (target::virtual_machine)
  std::vector<Claim> claims;
  // Forklift's PVC labels: the Migration's and Plan's uid (their name where no uid is known).
  std::string migration, plan, vm_id;
};

class VmSink {
 public:
  virtual ~VmSink() = default;
  // Where it went, for the VM's status ("/dir/ns/name.yaml", "VirtualMachine ns/name").
  virtual Result<std::string> create(const VmRequest& r) = 0;
};

class ManifestDirSink : public VmSink {
 public:
  explicit ManifestDirSink(std::string dir) : dir_(std::move(dir)) {}
  Result<std::string> create(const VmRequest& r) override;

 private:
  std::string dir_;
};

class KubeVmSink : public VmSink {
 public:
  explicit KubeVmSink(std::shared_ptr<kube::Client> client) : client_(std::move(client)) {}
  Result<std::string> create(const VmRequest& r) override;

 private:
  std::shared_ptr<kube::Client> client_;
};

}  // namespace ferry::coordinator::target
