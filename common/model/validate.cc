#include "common/model/validate.h"

#include <arpa/inet.h>

#include <ctime>
#include <functional>
#include <regex>
#include <set>

#include <yaml-cpp/yaml.h>

#include "common/model/names.h"

namespace ferry::model {
namespace {

// Walks one document, collecting errors with their field paths.
class Checker {
 public:
  Checker(std::string where, std::vector<FieldError>& out) : where_(std::move(where)), out_(out) {}

  void error(const std::string& path, const std::string& msg) {
    out_.push_back({where_, path, msg});
  }
  void warn(const std::string& path, const std::string& msg) {
    out_.push_back({where_, path, msg, true});
  }
  void set_where(std::string w) { where_ = std::move(w); }

  // Each returns the child (or nullptr) after checking presence and type.
  const Json* object(const Json& parent, const std::string& path, const char* field,
                     bool required) {
    return typed(parent, path, field, required, Json::value_t::object, "an object");
  }
  const Json* array(const Json& parent, const std::string& path, const char* field, bool required) {
    return typed(parent, path, field, required, Json::value_t::array, "a list");
  }
  const Json* string(const Json& parent, const std::string& path, const char* field,
                     bool required) {
    const Json* v = typed(parent, path, field, required, Json::value_t::string, "a string");
    if (v && required && v->get<std::string>().empty())
      error(join(path, field), "must not be empty");
    return v;
  }
  const Json* boolean(const Json& parent, const std::string& path, const char* field) {
    return typed(parent, path, field, false, Json::value_t::boolean, "true or false");
  }
  void enumeration(const Json& parent, const std::string& path, const char* field, bool required,
                   const std::set<std::string>& allowed) {
    const Json* v = string(parent, path, field, required);
    if (!v || v->get<std::string>().empty()) return;
    if (!allowed.count(v->get<std::string>())) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      error(join(path, field), "\"" + v->get<std::string>() + "\" is not one of: " + list);
    }
  }
  // {name, namespace} reference to another resource.
  void ref(const Json& parent, const std::string& path, const char* field, bool required) {
    const Json* r = object(parent, path, field, required);
    if (!r) return;
    std::string p = join(path, field);
    const Json* n = string(*r, p, "name", true);
    if (n && !n->get<std::string>().empty() && !is_dns1123_subdomain(n->get<std::string>()))
      error(p + ".name", "\"" + n->get<std::string>() + "\" is not a valid resource name");
    const Json* ns = string(*r, p, "namespace", false);
    if (ns && !ns->get<std::string>().empty() && !is_dns1123_label(ns->get<std::string>()))
      error(p + ".namespace", "\"" + ns->get<std::string>() + "\" is not a valid namespace");
  }
  // A source {id or name} selector, as in maps and plan VMs.
  void id_or_name(const Json& item, const std::string& path) {
    bool has_id =
        item.contains("id") && item["id"].is_string() && !item["id"].get<std::string>().empty();
    bool has_name = item.contains("name") && item["name"].is_string() &&
                    !item["name"].get<std::string>().empty();
    if (item.contains("id") && !item["id"].is_string()) error(path + ".id", "must be a string");
    if (item.contains("name") && !item["name"].is_string())
      error(path + ".name", "must be a string");
    if (!has_id && !has_name) error(path, "needs an id or a name");
  }
  void known_fields(const Json& obj, const std::string& path, const std::set<std::string>& known) {
    if (!obj.is_object()) return;
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (!known.count(it.key())) warn(join(path, it.key().c_str()), "unknown field, ignored");
  }

  static std::string join(const std::string& path, const char* field) {
    return path.empty() ? field : path + "." + field;
  }
  static std::string index(const std::string& path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
  }

 private:
  const Json* typed(const Json& parent, const std::string& path, const char* field, bool required,
                    Json::value_t type, const char* type_name) {
    if (!parent.is_object() || !parent.contains(field) || parent[field].is_null()) {
      if (required) error(join(path, field), "is required");
      return nullptr;
    }
    const Json& v = parent[field];
    bool ok = v.type() == type;
    if (!ok) {
      error(join(path, field), std::string("must be ") + type_name);
      return nullptr;
    }
    return &v;
  }

  std::string where_;
  std::vector<FieldError>& out_;
};

// A field's string (or bool) value; "" (false) when the field is missing or of
// another type: the typed checks report that, and nothing here may throw
// (tests/fuzz/manifest_fuzz found `type: 5`).
std::string text_of(const Json& j, const char* field) {
  if (!j.is_object()) return "";
  auto it = j.find(field);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
bool flag_of(const Json& j, const char* field) {
  if (!j.is_object()) return false;
  auto it = j.find(field);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const std::set<std::string> kProviderTypes = {"vsphere", "ovirt", "openstack", "ova", "openshift"};

void check_provider_pair(Checker& c, const Json& spec) {
  const Json* p = c.object(spec, "spec", "provider", true);
  if (!p) return;
  c.ref(*p, "spec.provider", "source", true);
  c.ref(*p, "spec.provider", "destination", true);
}

void check_provider(Checker& c, const Json& spec) {
  c.known_fields(spec, "spec", {"type", "url", "secret", "settings"});
  c.enumeration(spec, "spec", "type", true, kProviderTypes);
  std::string type = text_of(spec, "type");
  bool host_cluster = type == "openshift";
  const Json* url = c.string(spec, "spec", "url", !host_cluster);
  if (url && !url->get<std::string>().empty()) {
    static const std::regex re(R"(^https?://[^/\s]+(/\S*)?$)");
    if (!std::regex_match(url->get<std::string>(), re))
      c.error("spec.url", "\"" + url->get<std::string>() + "\" is not an http(s) URL");
  }
  if (!host_cluster || spec.contains("secret")) c.ref(spec, "spec", "secret", !host_cluster);
  const Json* settings = c.object(spec, "spec", "settings", false);
  if (settings)
    for (auto it = settings->begin(); it != settings->end(); ++it)
      if (!it.value().is_string()) c.error("spec.settings." + it.key(), "must be a string");
  if (settings && settings->contains("sdkEndpoint") && (*settings)["sdkEndpoint"].is_string()) {
    auto v = (*settings)["sdkEndpoint"].get<std::string>();
    if (v != "vcenter" && v != "esxi")
      c.error("spec.settings.sdkEndpoint", "\"" + v + "\" is not one of: esxi, vcenter");
  }
}

void check_host(Checker& c, const Json& spec) {
  c.known_fields(spec, "spec", {"provider", "id", "ipAddress", "secret"});
  c.ref(spec, "spec", "provider", true);
  c.string(spec, "spec", "id", true);
  const Json* ip = c.string(spec, "spec", "ipAddress", true);
  if (ip && !ip->get<std::string>().empty()) {
    unsigned char buf[16];
    const std::string& s = ip->get_ref<const std::string&>();
    if (inet_pton(AF_INET, s.c_str(), buf) != 1 && inet_pton(AF_INET6, s.c_str(), buf) != 1)
      c.error("spec.ipAddress", "\"" + s + "\" is not an IP address");
  }
  if (spec.contains("secret")) c.ref(spec, "spec", "secret", false);
}

// The common shape of NetworkMap and StorageMap: provider pair and map[] of
// {source: {id|name}, destination: {...}}; `destination` checks the kind's own part.
void check_map(Checker& c, const Json& spec,
               const std::function<void(const Json& dst, const std::string& path)>& destination) {
  c.known_fields(spec, "spec", {"provider", "map"});
  check_provider_pair(c, spec);
  const Json* map = c.array(spec, "spec", "map", true);
  if (!map) return;
  for (size_t i = 0; i < map->size(); i++) {
    std::string p = Checker::index("spec.map", i);
    const Json& m = (*map)[i];
    if (!m.is_object()) {
      c.error(p, "must be an object");
      continue;
    }
    const Json* src = c.object(m, p, "source", true);
    if (src) c.id_or_name(*src, p + ".source");
    const Json* dst = c.object(m, p, "destination", true);
    if (dst) destination(*dst, p + ".destination");
  }
}

void check_network_map(Checker& c, const Json& spec) {
  check_map(c, spec, [&](const Json& dst, const std::string& p) {
    c.enumeration(dst, p, "type", true, {"pod", "multus", "ignored"});
    if (text_of(dst, "type") == "multus") c.string(dst, p, "name", true);
  });
}

void check_storage_map(Checker& c, const Json& spec) {
  check_map(c, spec, [&](const Json& dst, const std::string& p) {
    const Json* sc = c.string(dst, p, "storageClass", true);
    if (sc && !sc->get<std::string>().empty() && !is_dns1123_subdomain(sc->get<std::string>()))
      c.error(p + ".storageClass",
              "\"" + sc->get<std::string>() + "\" is not a valid storage class name");
    c.enumeration(dst, p, "accessMode", false, {"ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"});
    c.enumeration(dst, p, "volumeMode", false, {"Filesystem", "Block"});
  });
}

void check_plan(Checker& c, const Json& spec) {
  c.known_fields(spec, "spec",
                 {"provider",
                  "map",
                  "targetNamespace",
                  "vms",
                  "warm",
                  "type",
                  "transferNetwork",
                  "archived",
                  "preserveStaticIPs",
                  "skipGuestConversion",
                  "useCompatibilityMode",
                  "pvcNameTemplate",
                  "description",
                  "targetPowerState",
                  "preserveClusterCpuModel",
                  "diskBus",
                  "migrateSharedDisks",
                  "precopyInterval",
                  "maxDowntime",
                  "skipPreflightInspection"});
  check_provider_pair(c, spec);
  const Json* map = c.object(spec, "spec", "map", true);
  if (map) {
    c.ref(*map, "spec.map", "network", true);
    c.ref(*map, "spec.map", "storage", true);
  }
  const Json* tns = c.string(spec, "spec", "targetNamespace", true);
  if (tns && !tns->get<std::string>().empty() && !is_dns1123_label(tns->get<std::string>()))
    c.error("spec.targetNamespace",
            "\"" + tns->get<std::string>() + "\" is not a valid namespace (DNS-1123 label)");
  for (const char* b : {"warm", "archived", "preserveStaticIPs", "skipGuestConversion",
                        "useCompatibilityMode", "migrateSharedDisks", "skipPreflightInspection"})
    c.boolean(spec, "spec", b);
  c.enumeration(spec, "spec", "type", false, {"cold", "warm"});
  if (text_of(spec, "type") == "cold" && flag_of(spec, "warm"))
    c.error("spec.type", "\"cold\" contradicts spec.warm: true");
  c.enumeration(spec, "spec", "targetPowerState", false, {"on", "off", "auto"});
  // Ferry's warm settings (durations): time between precopies, and the
  // predicted downtime under which Ferry cuts over by itself.
  for (const char* d : {"precopyInterval", "maxDowntime"}) {
    const Json* v = c.string(spec, "spec", d, false);
    if (v && !parse_duration(v->get<std::string>()))
      c.error(std::string("spec.") + d,
              "\"" + v->get<std::string>() + "\" is not a duration (e.g. \"90s\", \"5m\", \"1h\")");
  }
  bool warm = (spec.contains("warm") && spec["warm"] == true) ||
              (spec.contains("type") && spec["type"] == "warm");
  if (!warm)
    for (const char* d : {"precopyInterval", "maxDowntime"})
      if (spec.contains(d))
        c.error(std::string("spec.") + d, "only applies to a warm plan (spec.warm: true)");
  if (spec.contains("transferNetwork")) c.ref(spec, "spec", "transferNetwork", false);
  c.string(spec, "spec", "pvcNameTemplate", false);
  const Json* vms = c.array(spec, "spec", "vms", true);
  if (!vms) return;
  if (vms->empty()) c.error("spec.vms", "must list at least one VM");
  for (size_t i = 0; i < vms->size(); i++) {
    std::string p = Checker::index("spec.vms", i);
    const Json& vm = (*vms)[i];
    if (!vm.is_object()) {
      c.error(p, "must be an object");
      continue;
    }
    c.known_fields(vm, p, {"id", "name", "hooks", "targetName", "type", "rootDisk", "luks"});
    c.id_or_name(vm, p);
    const Json* tn = c.string(vm, p, "targetName", false);
    if (tn && !tn->get<std::string>().empty() && !is_dns1123_label(tn->get<std::string>()))
      c.error(p + ".targetName",
              "\"" + tn->get<std::string>() + "\" is not a valid VM name (DNS-1123 label)");
    const Json* hooks = c.array(vm, p, "hooks", false);
    if (!hooks) continue;
    if (hooks->size() > 2) c.error(p + ".hooks", "at most two hooks (one PreHook, one PostHook)");
    for (size_t h = 0; h < hooks->size(); h++) {
      std::string hp = Checker::index(p + ".hooks", h);
      c.ref((*hooks)[h], hp, "hook", true);
      c.enumeration((*hooks)[h], hp, "step", true, {"PreHook", "PostHook"});
    }
  }
}

void check_migration(Checker& c, const Json& spec) {
  c.known_fields(spec, "spec", {"plan", "cancel", "cutover"});
  c.ref(spec, "spec", "plan", true);
  const Json* cancel = c.array(spec, "spec", "cancel", false);
  if (cancel)
    for (size_t i = 0; i < cancel->size(); i++) {
      if (!(*cancel)[i].is_object()) {
        c.error(Checker::index("spec.cancel", i), "must be an object");
        continue;
      }
      c.id_or_name((*cancel)[i], Checker::index("spec.cancel", i));
    }
  const Json* cut = c.string(spec, "spec", "cutover", false);
  if (cut && !parse_rfc3339(cut->get<std::string>()))
    c.error("spec.cutover",
            "\"" + cut->get<std::string>() + "\" is not an RFC 3339 time (2021-04-04T01:23:45Z)");
}

void check_hook(Checker& c, const Json& spec) {
  c.known_fields(spec, "spec", {"image", "playbook", "deadline", "serviceAccount"});
  c.string(spec, "spec", "image", false);
  const Json* pb = c.string(spec, "spec", "playbook", false);
  if (pb) {
    bool ok = true;
    std::string yaml = base64_decode(pb->get<std::string>(), &ok);
    if (!ok) {
      c.error("spec.playbook", "must be base64-encoded");
    } else {
      try {
        YAML::Node plays = YAML::Load(yaml);
        if (!plays.IsSequence() || plays.size() == 0)
          c.error("spec.playbook", "is not an Ansible playbook (a YAML list of plays)");
      } catch (const YAML::Exception& e) {
        c.error("spec.playbook",
                "is not YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
      }
    }
  }
  if (spec.contains("deadline") && !spec["deadline"].is_number_integer())
    c.error("spec.deadline", "must be a whole number of seconds");
  c.string(spec, "spec", "serviceAccount", false);
}

void check_secret(Checker& c, const Json& doc) {
  for (const char* f : {"stringData", "data"}) {
    const Json* m = c.object(doc, "", f, false);
    if (!m) continue;
    for (auto it = m->begin(); it != m->end(); ++it) {
      if (!it.value().is_string() && !(std::string(f) == "stringData" && it.value().is_boolean()))
        c.error(std::string(f) + "." + it.key(), "must be a string");
      if (std::string(f) == "data" && it.value().is_string()) {
        bool ok = true;
        base64_decode(it.value().get<std::string>(), &ok);
        if (!ok) c.error("data." + it.key(), "must be base64-encoded");
      }
    }
  }
  std::string thumb = secret_value(doc, "thumbprint");
  if (!thumb.empty()) {
    static const std::regex re("^([0-9A-Fa-f]{2}:){19}[0-9A-Fa-f]{2}$");
    if (!std::regex_match(thumb, re))
      c.error(doc.contains("stringData") ? "stringData.thumbprint" : "data.thumbprint",
              "must be a SHA-1 fingerprint: 20 hex bytes separated by ':'");
  }
}

}  // namespace

bool parse_rfc3339(const std::string& s, double* epoch_seconds) {
  static const std::regex re(
      R"(^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = std::stoi(m[4]);
  tm.tm_min = std::stoi(m[5]);
  tm.tm_sec = std::stoi(m[6]);
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60)
    return false;
  double t = static_cast<double>(timegm(&tm));
  if (m[7].matched) t += std::stod("0" + m[7].str());
  std::string off = m[8];
  if (off != "Z" && off != "z") {
    int sign = off[0] == '-' ? -1 : 1;
    int h = std::stoi(off.substr(1, 2)), mi = std::stoi(off.substr(4, 2));
    t -= sign * (h * 3600 + mi * 60);
  }
  if (epoch_seconds) *epoch_seconds = t;
  return true;
}

bool parse_duration(const std::string& s, double* seconds) {
  static const std::regex part(R"((\d+(?:\.\d+)?)(ms|h|m|s))");
  if (s.empty()) return false;
  double total = 0;
  auto it = std::sregex_iterator(s.begin(), s.end(), part);
  size_t pos = 0;
  for (; it != std::sregex_iterator(); ++it) {
    if (static_cast<size_t>(it->position()) != pos) return false;
    pos += it->length();
    double v = std::stod((*it)[1]);
    std::string unit = (*it)[2];
    total += unit == "h" ? v * 3600 : unit == "m" ? v * 60 : unit == "s" ? v : v / 1000;
  }
  if (pos != s.size() || total <= 0) return false;
  if (seconds) *seconds = total;
  return true;
}

void validate_document(const Json& doc, const std::string& where, std::vector<FieldError>& out) {
  Checker c(where, out);
  const Json* kind = c.string(doc, "", "kind", true);
  const Json* api = c.string(doc, "", "apiVersion", true);
  const Json* md = c.object(doc, "", "metadata", true);
  std::string k = kind ? kind->get<std::string>() : "";
  if (md) {
    const Json* name = c.string(*md, "metadata", "name", true);
    std::string ns = kDefaultNamespace;
    const Json* nsj = c.string(*md, "metadata", "namespace", false);
    if (nsj) ns = nsj->get<std::string>();
    if (name && !k.empty() && !name->get<std::string>().empty()) {
      c.set_where(k + " " + ns + "/" + name->get<std::string>());
      if (!is_dns1123_subdomain(name->get<std::string>()))
        c.error("metadata.name", "\"" + name->get<std::string>() +
                                     "\" is not a valid name: lowercase letters, digits, '-' and "
                                     "'.', starting and ending with a letter or digit");
    }
    if (nsj && !is_dns1123_label(ns))
      c.error("metadata.namespace", "\"" + ns + "\" is not a valid namespace (DNS-1123 label)");
  }
  if (!kind || k.empty()) return;
  if (!is_known_kind(k)) {
    std::string list;
    for (const auto& x : known_kinds()) list += (list.empty() ? "" : ", ") + x;
    c.error("kind", "unknown kind \"" + k + "\" (Ferry holds " + list + ")");
    return;
  }
  std::string want = k == "Secret" ? "v1" : kForkliftApiVersion;
  if (api && api->get<std::string>() != want)
    c.error("apiVersion", "\"" + api->get<std::string>() + "\" is not " + want);
  if (k == "Secret") {
    check_secret(c, doc);
    return;
  }
  const Json* spec = c.object(doc, "", "spec", true);
  if (!spec) return;
  if (k == "Provider") check_provider(c, *spec);
  if (k == "Host") check_host(c, *spec);
  if (k == "NetworkMap") check_network_map(c, *spec);
  if (k == "StorageMap") check_storage_map(c, *spec);
  if (k == "Plan") check_plan(c, *spec);
  if (k == "Migration") check_migration(c, *spec);
  if (k == "Hook") check_hook(c, *spec);
}

}  // namespace ferry::model
