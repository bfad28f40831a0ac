#pragma once
// Cluster: what the StorageMigrator reads and changes outside Ferry, as typed
// values, in one of two places:
//   - KubeCluster (cluster mode): MigPlans and MigMigrations, KubeVirt's
//     VirtualMachines and VirtualMachineInstances, claims, PersistentVolumes
//     and StorageClasses in the Kubernetes API;
//   - LocalCluster (local mode): MigPlans and MigMigrations applied with
//     ferryctl (NATS KV), VirtualMachines as the manifests of --manifest-dir,
//     claims as the volumes the agents hold (their heartbeats).
// Every call blocks (the migrator's own thread). An Error means "cannot say
// now" (the API server or NATS away): the migrator decides nothing on it and
// asks again on its next pass, unless a method says otherwise.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/result.h"

namespace ferry::coordinator::storage {

using Json = nlohmann::json;

// What the coordinator's AgentRegistry knows of one live node.
struct HeldVolume {
  uint64_t size_bytes = 0;
  bool block = false;
};
struct NodeView {
  std::map<std::string, std::string> roots;     // storage class -> volume root
  std::map<std::string, uint64_t> free_bytes;   // storage class -> free
  std::map<std::string, std::string> networks;  // network name -> address
  // storage class -> the volumes under its root (path relative to the root).
  std::map<std::string, std::map<std::string, HeldVolume>> volumes;
  std::set<std::string> truncated;  // classes whose volumes are listed only in part
};
using Nodes = std::map<std::string, NodeView>;

struct VmVolume {
  std::string name;         // spec.template.spec.volumes[].name
  std::string claim;        // persistentVolumeClaim.claimName ("" : another kind)
  std::string data_volume;  // dataVolume.name
  bool shareable = false;   // its disk is marked shareable
};

struct Vm {
  std::string name, ns;
  std::string run_strategy;  // spec.runStrategy, or Always/Halted from spec.running
  bool wants_running = false;
  std::vector<VmVolume> volumes;
};

// A VM's running instance (a VirtualMachineInstance).
struct VmInstance {
  // status.migrationState: when the last migration started (RFC 3339), and how it ended.
  std::string migration_started;
  bool migration_completed = false, migration_failed = false;
};

struct Claim {
  bool bound = false;        // it has a volume
  std::string volume;        // the PersistentVolume's name (local: the volume's path)
  bool volume_found = true;  // that PersistentVolume exists
  std::string request;       // the requested size as written ("10Gi", "1073741824")
  std::string access_modes_json = "[\"ReadWriteOnce\"]";
  std::string copy_of;  // "ns/claim" when it is a storage migration's copy of it
  // Where its bytes are: a node-local volume an agent holds ("" node: not one).
  std::string node, storage_class;
  std::string local_path;  // the file or device, absolute on that node
  bool block = false;
  std::string refusal;  // why no migration may use it ("" : none), e.g. held twice
};

struct NewClaim {
  std::string ns, name;
  std::string source;  // the claim it is a copy of (same namespace)
  std::string plan;    // the MigPlan's name
  std::string storage_class, node;
  std::string access_modes_json;
  uint64_t bytes = 0;
  bool block = false;
};

class Cluster {
 public:
  virtual ~Cluster() = default;

  // MigPlans ("MigPlan") or MigMigrations ("MigMigration") as documents, with
  // metadata.uid, metadata.creationTimestamp and their status.
  virtual Result<std::vector<Json>> list(const std::string& kind) = 0;
  virtual Result<std::optional<Json>> get(const std::string& kind, const std::string& ns,
                                          const std::string& name) = 0;
  // Writes `doc`'s status; `doc` is the object as listed, so a write over a
  // newer change (or a deleted object) is refused.
  virtual Status write_status(const Json& doc) = 0;

  // The namespace's VMs; nullopt with `why` set when they cannot be listed at all.
  virtual Result<std::optional<std::vector<Vm>>> list_vms(const std::string& ns,
                                                          std::string* why) = 0;
  virtual Result<std::optional<Vm>> get_vm(const std::string& ns, const std::string& name) = 0;
  virtual Result<std::optional<VmInstance>> get_instance(const std::string& ns,
                                                         const std::string& name) = 0;
  // kInvalidArgument, kFailedPrecondition: refused (not "cannot say now").
  virtual Status set_run_strategy(const std::string& ns, const std::string& name,
                                  const std::string& strategy) = 0;
  // Points the VM's claims named in `from_to` at their new claims, all or
  // none, each only if it still names the old one (kFailedPrecondition when
  // not, or when the VM is gone). live: KubeVirt's updateVolumesStrategy Migration.
  virtual Status repoint(const std::string& ns, const std::string& name,
                         const std::map<std::string, std::string>& from_to, bool live) = 0;

  virtual Result<bool> class_exists(const std::string& name) = 0;
  virtual Result<std::optional<Claim>> get_claim(const std::string& ns,
                                                 const std::string& name) = 0;
  // Idempotent for the same copy. kAlreadyExists: a claim of that name that is
  // not this copy; kInvalidArgument: refused (quota, a webhook).
  virtual Status create_claim(const NewClaim& c) = 0;
  virtual Status delete_claim(const std::string& ns, const std::string& name) = 0;
  // Where a claim's volume lives under its class's volume root.
  virtual std::string volume_path(const std::string& ns, const std::string& name,
                                  bool block) const = 0;
};

}  // namespace ferry::coordinator::storage

namespace ferry::coordinator::storage {

// A KubeVirt VirtualMachine object (the API's or a manifest's) as a Vm.
Vm vm_from_object(const Json& obj);
// The runStrategy a VM object asks for ("Halted" when none and not spec.running).
std::string run_strategy_of(const Json& obj);

}  // namespace ferry::coordinator::storage
