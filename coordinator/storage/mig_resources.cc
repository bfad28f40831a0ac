#include "coordinator/storage/mig_resources.h"

#include <cctype>

namespace ferry::coordinator::storage {

namespace {

// Reads typed fields of one object, recording what is wrong.
struct Reader {
  std::string where;
  std::vector<FieldError>& errors;
  size_t before = errors.size();

  void error(const std::string& path, const std::string& msg) {
    errors.push_back({where, path, msg});
  }
  bool ok() const { return errors.size() == before; }

  std::string str(const Json& obj, const std::string& key, const std::string& path, bool required,
                  const std::string& dflt = "") {
    if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) {
      if (required) error(path, "is required");
      return dflt;
    }
    if (!obj[key].is_string()) {
      error(path, "must be a string");
      return dflt;
    }
    return obj[key].get<std::string>();
  }
  bool boolean(const Json& obj, const std::string& key, const std::string& path) {
    if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) return false;
    if (!obj[key].is_boolean()) {
      error(path, "must be true or false");
      return false;
    }
    return obj[key].get<bool>();
  }
  const Json& object(const Json& obj, const std::string& key, const std::string& path,
                     bool required) {
    static const Json kEmpty = Json::object();
    if (!obj.is_object() || !obj.contains(key) || obj[key].is_null()) {
      if (required) error(path, "is required");
      return kEmpty;
    }
    if (!obj[key].is_object()) {
      error(path, "must be an object");
      return kEmpty;
    }
    return obj[key];
  }
};

bool dns_label(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s)
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '-'))
      return false;
  return s.front() != '-' && s.back() != '-';
}

void read_meta(const Json& doc, Reader& r, std::string& name, std::string& ns, std::string& uid) {
  const Json& meta = r.object(doc, "metadata", "metadata", true);
  name = r.str(meta, "name", "metadata.name", true);
  ns = r.str(meta, "namespace", "metadata.namespace", false, model::kDefaultNamespace);
  uid = r.str(meta, "uid", "metadata.uid", false);
}

}  // namespace

std::string where(const Json& doc) {
  std::string kind = doc.is_object() && doc.value("kind", Json()).is_string()
                         ? doc["kind"].get<std::string>()
                         : "object";
  std::string ns, name;
  if (doc.is_object() && doc.contains("metadata") && doc["metadata"].is_object()) {
    const Json& m = doc["metadata"];
    if (m.value("namespace", Json()).is_string()) ns = m["namespace"];
    if (m.value("name", Json()).is_string()) name = m["name"];
  }
  return kind + " " + (ns.empty() ? model::kDefaultNamespace : ns) + "/" + name;
}

std::optional<uint64_t> parse_quantity(const std::string& q) {
  size_t i = 0;
  uint64_t n = 0;
  while (i < q.size() && std::isdigit(static_cast<unsigned char>(q[i]))) {
    if (n > (UINT64_MAX - 9) / 10) return std::nullopt;
    n = n * 10 + static_cast<uint64_t>(q[i] - '0');
    i++;
  }
  if (i == 0) return std::nullopt;
  std::string suffix = q.substr(i);
  static const std::pair<const char*, uint64_t> kSuffixes[] = {
      {"", 1},
      {"Ki", 1ull << 10},
      {"Mi", 1ull << 20},
      {"Gi", 1ull << 30},
      {"Ti", 1ull << 40},
      {"Pi", 1ull << 50},
      {"k", 1000ull},
      {"M", 1000ull * 1000},
      {"G", 1000ull * 1000 * 1000},
      {"T", 1000ull * 1000 * 1000 * 1000},
      {"P", 1000ull * 1000 * 1000 * 1000 * 1000}};
  for (const auto& [s, mult] : kSuffixes) {
    if (suffix != s) continue;
    if (n > UINT64_MAX / mult) return std::nullopt;
    return n * mult;
  }
  return std::nullopt;
}

std::optional<MigPlan> read_mig_plan(const Json& doc, std::vector<FieldError>& errors) {
  Reader r{where(doc), errors};
  MigPlan p;
  read_meta(doc, r, p.name, p.ns, p.uid);
  const Json& spec = r.object(doc, "spec", "spec", true);
  if (spec.contains("namespaces") && spec["namespaces"].is_array()) {
    for (size_t i = 0; i < spec["namespaces"].size(); i++) {
      const Json& n = spec["namespaces"][i];
      std::string path = "spec.namespaces[" + std::to_string(i) + "]";
      if (!n.is_string() || !dns_label(n.get<std::string>()))
        r.error(path, "must be a namespace name");
      else
        p.namespaces.push_back(n.get<std::string>());
    }
  }
  if (p.namespaces.empty() && r.ok()) r.error("spec.namespaces", "must name the VMs' namespace");
  p.live_migrate = r.boolean(spec, "liveMigrate", "spec.liveMigrate");
  p.transfer_network = r.str(spec, "transferNetwork", "spec.transferNetwork", false);
  if (spec.contains("persistentVolumes") && !spec["persistentVolumes"].is_array())
    r.error("spec.persistentVolumes", "must be a list");
  const Json pvs = spec.value("persistentVolumes", Json::array());
  if (pvs.is_array()) {
    for (size_t i = 0; i < pvs.size(); i++) {
      std::string base = "spec.persistentVolumes[" + std::to_string(i) + "]";
      const Json& v = pvs[i];
      if (!v.is_object()) {
        r.error(base, "must be an object");
        continue;
      }
      PlanVolume pv;
      pv.index = i;
      pv.pv = r.str(v, "name", base + ".name", false);
      const Json& pvc = r.object(v, "pvc", base + ".pvc", true);
      pv.pvc = r.str(pvc, "name", base + ".pvc.name", true);
      pv.pvc_ns = r.str(pvc, "namespace", base + ".pvc.namespace", false,
                        p.namespaces.empty() ? "" : p.namespaces.front());
      const Json& sel = r.object(v, "selection", base + ".selection", true);
      pv.action = r.str(sel, "action", base + ".selection.action", false, "copy");
      if (pv.action == "move")
        r.error(base + ".selection.action",
                "\"move\" is not supported for VM storage: use \"copy\" (the data is copied to a "
                "new claim in the target class)");
      else if (pv.action != "copy" && pv.action != "skip")
        r.error(base + ".selection.action",
                "must be \"copy\" or \"skip\", not \"" + pv.action + "\"");
      pv.copy_method =
          r.str(sel, "copyMethod", base + ".selection.copyMethod", false, "filesystem");
      if (pv.copy_method != "filesystem" && pv.copy_method != "block" &&
          pv.copy_method != "snapshot")
        r.error(
            base + ".selection.copyMethod",
            "must be \"filesystem\", \"block\" or \"snapshot\", not \"" + pv.copy_method + "\"");
      pv.storage_class =
          r.str(sel, "storageClass", base + ".selection.storageClass", pv.action == "copy");
      pv.verify = r.boolean(sel, "verify", base + ".selection.verify");
      std::string cap = r.str(sel, "capacity", base + ".selection.capacity", false);
      if (!cap.empty()) {
        auto bytes = parse_quantity(cap);
        if (!bytes)
          r.error(base + ".selection.capacity", "\"" + cap + "\" is not a quantity like 10Gi");
        else
          pv.capacity = *bytes;
      }
      p.volumes.push_back(std::move(pv));
    }
  }
  if (!r.ok()) return std::nullopt;
  return p;
}

std::optional<MigMigration> read_mig_migration(const Json& doc, std::vector<FieldError>& errors) {
  Reader r{where(doc), errors};
  MigMigration m;
  read_meta(doc, r, m.name, m.ns, m.uid);
  if (doc.is_object() && doc.contains("metadata") && doc["metadata"].is_object() &&
      doc["metadata"].value("creationTimestamp", Json()).is_string())
    m.created = doc["metadata"]["creationTimestamp"].get<std::string>();
  const Json& spec = r.object(doc, "spec", "spec", true);
  const Json& ref = r.object(spec, "migPlanRef", "spec.migPlanRef", true);
  m.plan_name = r.str(ref, "name", "spec.migPlanRef.name", true);
  m.plan_ns = r.str(ref, "namespace", "spec.migPlanRef.namespace", false, m.ns);
  m.stage = r.boolean(spec, "stage", "spec.stage");
  m.rollback = r.boolean(spec, "rollback", "spec.rollback");
  m.keep_new_volumes = r.boolean(spec, "keepNewVolumes", "spec.keepNewVolumes");
  m.canceled = r.boolean(spec, "canceled", "spec.canceled");
  if (m.stage && m.rollback) r.error("spec.rollback", "cannot be set together with spec.stage");
  if (!r.ok()) return std::nullopt;
  return m;
}

}  // namespace ferry::coordinator::storage
