#pragma once
// The forklift.konveyor.io/v1beta1 resources (and v1 Secret) as JSON documents,
// and the YAML/JSON codec. A Resource is the whole object (apiVersion, kind,
// metadata, spec, status); typed helpers read the fields the coordinator uses.
// Errors name the resource and the field path: `Plan openshift-mtv/p1: spec.vms[2].id: ...`.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/result.h"

namespace ferry::model {

using Json = nlohmann::json;

inline constexpr const char* kForkliftApiVersion = "forklift.konveyor.io/v1beta1";
// Where a resource without metadata.namespace lands: MTV's own namespace.
inline constexpr const char* kDefaultNamespace = "openshift-mtv";

// The kinds Ferry holds, in the order `apply` stores them (dependencies first).
const std::vector<std::string>& known_kinds();
bool is_known_kind(const std::string& kind);
// "plans", "plan", "Plan" -> "Plan"; "" when unknown.
std::string kind_from_user(const std::string& word);
// MTC's storage-migration kinds (migration.openshift.io): MigPlan, MigMigration.
// kind_from_user knows them too; they are not among known_kinds().
bool is_storage_kind(const std::string& kind);

struct ResourceKey {
  std::string kind;
  std::string ns;
  std::string name;
  std::string to_string() const { return kind + " " + ns + "/" + name; }
  // Key in the NATS KV buckets: "<kind>.<namespace>.<name>" (names are DNS-1123, no dots in ns).
  std::string kv_key() const;
  static Result<ResourceKey> from_kv_key(const std::string& key);
  bool operator==(const ResourceKey&) const = default;
  auto operator<=>(const ResourceKey&) const = default;
};

struct Resource {
  Json doc;  // the whole object
  ResourceKey key() const;
  const Json& spec() const;
};

// One problem found in a manifest. `where` names the resource ("Plan ns/p1") or,
// before its kind and name are known, the document ("file.yaml document 2").
struct FieldError {
  std::string where;
  std::string path;  // "spec.vms[2].id"; empty for whole-document problems
  std::string message;
  bool warning = false;
  std::string to_string() const;
};

struct DecodeResult {
  std::vector<Resource> resources;
  std::vector<FieldError> errors;  // includes warnings
  bool has_errors() const;
};

// Parses one or more YAML (or JSON) documents. Each document is checked
// structurally (see validate.h); documents with errors are not returned.
DecodeResult decode_documents(const std::string& text, const std::string& source_name);

// Converts a YAML text's documents to JSON without schema checks (used by tests/tools).
Result<std::vector<Json>> yaml_to_json(const std::string& text);
std::string to_yaml(const Json& j);

// Reads a file, or every *.yaml/*.yml/*.json file in a directory (sorted).
Result<std::vector<std::pair<std::string, std::string>>> read_manifest_files(
    const std::string& path);

// A Secret's string value: stringData[key] or base64-decoded data[key]; "" if absent.
std::string secret_value(const Json& secret, const std::string& key);
std::string base64_decode(const std::string& in, bool* ok = nullptr);
std::string base64_encode(const std::string& in);

// A {name, namespace} reference inside `of` (namespace defaults to `default_ns`).
ResourceKey ref_key(const Json& ref, const std::string& kind, const std::string& default_ns);

}  // namespace ferry::model
