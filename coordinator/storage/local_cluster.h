#pragma once
// LocalCluster: the StorageMigrator's Cluster in local mode, where no
// Kubernetes API exists.
//   - MigPlans and MigMigrations are applied with ferryctl and kept, spec and
//     status together, in the KV bucket ferry-storage (its revision is the
//     document's resourceVersion, so a status write over a newer apply fails);
//   - VirtualMachines are the manifests in --manifest-dir/<ns>/<name>.yaml
//     (where imports write them), changed by rewriting the file atomically;
//     no VM runs, so none has an instance;
//   - a claim is a volume an agent holds, <root>/<ns>/<name>.img (or
//     <ns>/<name>/block), found through the agents' heartbeats; the claims a
//     storage migration made are recorded in the bucket with what they copy;
//   - a storage class exists where a live agent has a volume root for it.
// Thread-safe: apply/get/remove come from the coordinator's workers, the rest
// from the migrator's thread; KV revisions order the writes.
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "common/bus/nats_bus.h"
#include "coordinator/storage/cluster.h"

namespace ferry::coordinator::storage {

class LocalCluster : public Cluster {
 public:
  // nodes: the live agents (nullopt: cannot say now).
  LocalCluster(std::unique_ptr<bus::KvBucket> kv, std::string manifest_dir,
               std::function<std::optional<Nodes>()> nodes);

  // ferryctl's verbs for MigPlan and MigMigration. apply: every document is
  // checked first and any error stores nothing (the errors name the document
  // and the field); a MigPlan's spec may change, a MigMigration's may not.
  // Returns [{resource: "MigPlan ns/name", result: created|configured|unchanged}];
  // refused: an kInvalidArgument Error, one problem per line.
  Result<Json> apply(const std::vector<Json>& docs, bool dry_run);
  Result<std::vector<Json>> find(const std::string& kind, const std::string& ns,
                                 const std::string& name);
  Status remove(const std::string& kind, const std::string& ns, const std::string& name);

  Result<std::vector<Json>> list(const std::string& kind) override;
  Result<std::optional<Json>> get(const std::string& kind, const std::string& ns,
                                  const std::string& name) override;
  Status write_status(const Json& doc) override;
  Result<std::optional<std::vector<Vm>>> list_vms(const std::string& ns, std::string* why) override;
  Result<std::optional<Vm>> get_vm(const std::string& ns, const std::string& name) override;
  Result<std::optional<VmInstance>> get_instance(const std::string&, const std::string&) override {
    return std::optional<VmInstance>();  // local mode runs no VM
  }
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
    return ns + "/" + name + (block ? "/block" : ".img");
  }

 private:
  // Why ns/name cannot be a key or a file name ("" : it can).
  static std::string name_problem(const std::string& ns, const std::string& name);
  // The manifest's VirtualMachine (nullopt: no file; kInvalidArgument: not one).
  Result<std::optional<Json>> read_vm(const std::string& ns, const std::string& name);
  Result<Json> read_vm_or_gone(const std::string& ns,
                               const std::string& name);  // kFailedPrecondition
  Status write_vm(const std::string& ns, const std::string& name, const Json& vm);
  // Agents say hello within seconds of a start: until then "not found" is "cannot say".
  bool settling() const;
  std::optional<Nodes> nodes();  // the agents, at most a second old

  std::unique_ptr<bus::KvBucket> kv_;
  std::string manifest_dir_;
  std::function<std::optional<Nodes>()> nodes_;
  std::mutex nodes_mu_;
  std::optional<Nodes> nodes_cache_;
  double nodes_at_ = 0;
  std::atomic<double> started_{0};
  std::mutex apply_mu_;  // one apply at a time
};

}  // namespace ferry::coordinator::storage
