#pragma once
// The storage-migration resources, migration.openshift.io/v1alpha1 MigPlan and
// MigMigration (MTC's names and fields, docs/storage-migration.md), read into
// typed structs. Structural problems come back as FieldErrors naming the
// resource and the field; what needs the cluster (does the class exist, is
// the VM running) is checked by the StorageMigrator. Pure; unit tested in
// tests/unit/coordinator/mig_resources_test.cc.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/model/resource.h"

namespace ferry::coordinator::storage {

using model::FieldError;
using model::Json;

inline constexpr const char* kMigApiGroup = "migration.openshift.io";
inline constexpr const char* kMigApiVersion = "migration.openshift.io/v1alpha1";

// One PersistentVolume of the plan and what to do with it.
struct PlanVolume {
  std::string pv;             // the source PV's name (informational; the claim decides)
  std::string pvc, pvc_ns;    // the source claim
  std::string action;         // "copy" or "skip"
  std::string copy_method;    // "filesystem", "block" or "snapshot" (all copy the volume's bytes)
  std::string storage_class;  // the target class
  bool verify = false;        // compare every block's digest on both ends
  uint64_t capacity = 0;      // the target's size (Ferry: selection.capacity; 0 = the source's)
  size_t index = 0;           // in spec.persistentVolumes
};

struct MigPlan {
  std::string name, ns, uid;
  std::vector<std::string> namespaces;
  bool live_migrate = false;
  std::string transfer_network;  // an agent network name ("" : the node's first)
  std::vector<PlanVolume> volumes;
};

struct MigMigration {
  std::string name, ns, uid;
  std::string plan_name, plan_ns;
  bool stage = false;
  bool rollback = false;
  bool keep_new_volumes = false;  // rollback: leave the new claims in place
  bool canceled = false;          // MTC's spec.canceled: stop what has not switched yet
  std::string created;            // metadata.creationTimestamp
};

// "1Gi", "500M", "1073741824" (Kubernetes quantities, binary and decimal
// suffixes) as bytes; nullopt for anything else.
std::optional<uint64_t> parse_quantity(const std::string& q);

// A document's problems are appended to `errors`; the struct is returned
// only when there are none.
std::optional<MigPlan> read_mig_plan(const Json& doc, std::vector<FieldError>& errors);
std::optional<MigMigration> read_mig_migration(const Json& doc, std::vector<FieldError>& errors);

// "Where" for messages: "MigPlan ns/name".
std::string where(const Json& doc);

}  // namespace ferry::coordinator::storage
