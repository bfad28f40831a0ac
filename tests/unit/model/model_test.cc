#include <catch2/catch.hpp>

#include "common/model/names.h"
#include "common/model/resource.h"
#include "common/model/validate.h"

using namespace ferry::model;

namespace {
std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& e : decode_documents(yaml, "t.yaml").errors)
    if (!e.warning) out.push_back(e.to_string());
  return out;
}
bool has(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v)
    if (x.find(s) != std::string::npos) return true;
  return false;
}
const char* kPlan = R"(apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: p1, namespace: ns1}
spec:
  provider: {source: {name: vs}, destination: {name: host}}
  map: {network: {name: n}, storage: {name: s}}
  targetNamespace: t
  vms:
    - id: vm-1
    - name: web
      hooks: [{hook: {name: h}, step: PreHook}]
)";
}  // namespace

TEST_CASE("a valid multi-document file decodes with namespaces filled in") {
  std::string y = std::string(kPlan) +
                  "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {user: u}\n";
  auto r = decode_documents(y, "t.yaml");
  REQUIRE_FALSE(r.has_errors());
  REQUIRE(r.resources.size() == 2);
  CHECK(r.resources[0].key().to_string() == "Plan ns1/p1");
  CHECK(r.resources[1].key().to_string() == "Secret openshift-mtv/s");
  CHECK(secret_value(r.resources[1].doc, "user") == "u");
}

TEST_CASE("structural errors name the resource and the field path") {
  std::string y = kPlan;
  CHECK(has(errors_of(y.replace(y.find("  targetNamespace: t\n"), 20, "")),
            "Plan ns1/p1: spec.targetNamespace: is required"));
  y = kPlan;
  CHECK(has(errors_of(y.replace(y.find("step: PreHook"), 13, "step: Later")),
            "Plan ns1/p1: spec.vms[1].hooks[0].step: \"Later\" is not one of: PostHook, PreHook"));
  y = kPlan;
  CHECK(has(errors_of(y.replace(y.find("- id: vm-1"), 10, "- {}")),
            "Plan ns1/p1: spec.vms[0]: needs an id or a name"));
  y = kPlan;
  CHECK(has(errors_of(y.replace(y.find("name: p1"), 8, "name: P_1")),
            "metadata.name: \"P_1\" is not a valid name"));
  y = kPlan;
  CHECK(has(errors_of(y + "  warm: maybe\n"), "spec.warm: must be true or false"));
  CHECK(has(errors_of("kind: Plan\n"), "t.yaml document 1: apiVersion: is required"));
  CHECK(has(errors_of("apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"),
            "kind: unknown kind \"Pod\""));
  CHECK(has(errors_of("a: [b\n"), "t.yaml: invalid YAML at line"));
  CHECK(has(errors_of("apiVersion: forklift.konveyor.io/v1beta1\nkind: Migration\nmetadata: {name: "
                      "m}\nspec: {plan: {name: p}, cutover: tomorrow}\n"),
            "Migration openshift-mtv/m: spec.cutover: \"tomorrow\" is not an RFC 3339 time"));
  CHECK(has(errors_of("apiVersion: forklift.konveyor.io/v1beta1\nkind: Host\nmetadata: {name: "
                      "h}\nspec: {provider: {name: p}, id: host-1, ipAddress: 10.0.0.300}\n"),
            "Host openshift-mtv/h: spec.ipAddress: \"10.0.0.300\" is not an IP address"));
  CHECK(has(errors_of("apiVersion: forklift.konveyor.io/v1beta1\nkind: Provider\nmetadata: {name: "
                      "p}\nspec: {type: vmware, url: https://x/sdk, secret: {name: s}}\n"),
            "Provider openshift-mtv/p: spec.type: \"vmware\" is not one of"));
}

TEST_CASE("documents with errors are not returned, good ones in the same file are") {
  std::string y = std::string(kPlan) + "---\napiVersion: v1\nkind: Secret\n";
  auto r = decode_documents(y, "t.yaml");
  CHECK(r.has_errors());
  CHECK(r.resources.size() == 1);
}

TEST_CASE("unknown fields are warnings, not errors") {
  auto r = decode_documents(std::string(kPlan) + "  colour: blue\n", "t.yaml");
  CHECK_FALSE(r.has_errors());
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].to_string() == "warning: Plan ns1/p1: spec.colour: unknown field, ignored");
}

TEST_CASE("YAML scalars keep their types and round-trip through to_yaml") {
  auto j = yaml_to_json("a: true\nb: '42'\nc: 42\nd: 1.5\ne: ~\nf: \"true\"\n");
  REQUIRE(j.ok());
  CHECK((*j)[0]["a"] == true);
  CHECK((*j)[0]["b"] == "42");
  CHECK((*j)[0]["c"] == 42);
  CHECK((*j)[0]["d"] == 1.5);
  CHECK((*j)[0]["e"].is_null());
  CHECK((*j)[0]["f"] == "true");
  auto back = yaml_to_json(to_yaml((*j)[0]));
  REQUIRE(back.ok());
  CHECK((*back)[0] == (*j)[0]);
}

TEST_CASE("names, kinds, secrets and times") {
  CHECK(is_dns1123_label("web-01"));
  CHECK_FALSE(is_dns1123_label("Web_01"));
  CHECK_FALSE(is_dns1123_label("-a"));
  CHECK(is_dns1123_subdomain("a.b-c"));
  CHECK(to_dns1123_label("My VM_01!") == "my-vm-01");
  CHECK(kind_from_user("plans") == "Plan");
  CHECK(kind_from_user("StorageMap") == "StorageMap");
  CHECK(kind_from_user("pods").empty());
  CHECK(kind_from_user("migplans") == "MigPlan");  // MTC's storage kinds, not forklift's
  CHECK(kind_from_user("MigMigration") == "MigMigration");
  CHECK(is_storage_kind("MigPlan"));
  CHECK_FALSE(is_known_kind("MigPlan"));
  CHECK(secret_value(Json{{"data", {{"password", "c2VjcmV0"}}}}, "password") == "secret");
  double t = 0;
  CHECK(parse_rfc3339("2021-04-04T01:23:45.678+09:00", &t));
  CHECK(t == Approx(1617467025.678));
  CHECK_FALSE(parse_rfc3339("2021-13-04T01:23:45Z"));
  auto k = ResourceKey::from_kv_key("Plan.ns.my.plan");
  REQUIRE(k.ok());
  CHECK(k->name == "my.plan");
}

TEST_CASE("YAML that would make the parser loop or explode is refused at once") {
  // yaml-cpp 0.7 loops forever, allocating, on a lone "," (found by tests/fuzz/manifest_fuzz).
  auto r = yaml_to_json(",");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("line 1") != std::string::npos);
  // Nine levels of nine aliases: 9^7 values from 300 bytes.
  std::string laughs = "a: &a [x,x,x,x,x,x,x,x,x]\n";
  for (char c = 'b'; c <= 'g'; c++)
    laughs += std::string(1, c) + ": &" + c + " [" + [&] {
      std::string s;
      for (int i = 0; i < 9; i++) s += std::string(i ? "," : "") + "*" + char(c - 1);
      return s;
    }() + "]\n";
  auto l = yaml_to_json(laughs);
  REQUIRE_FALSE(l.ok());
  CHECK(l.error().message.find("aliases expand") != std::string::npos);
  // A few aliases are fine.
  auto ok = yaml_to_json("a: &x {b: 1}\nc: *x\n");
  REQUIRE(ok.ok());
  CHECK((*ok)[0]["c"]["b"] == 1);
}

TEST_CASE("a resource's key reads fields of the wrong type as missing") {
  // Found by tests/fuzz/manifest_fuzz: key() threw type_error on a null namespace.
  Resource r{Json::parse(R"({"kind": "Plan", "metadata": {"name": 5, "namespace": null}})")};
  CHECK(r.key().kind == "Plan");
  CHECK(r.key().name.empty());
  CHECK(r.key().ns == kDefaultNamespace);
  CHECK(Resource{Json::array()}.key().kind.empty());
  CHECK(Resource{Json::parse(R"({"kind": [], "metadata": "x"})")}.key().name.empty());
}

TEST_CASE("an alias inside its own anchor is refused, not followed forever") {
  // Found by tests/fuzz/manifest_fuzz: a cycle overflowed the stack.
  auto r = yaml_to_json("a: &a [x, *a]\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("levels deep") != std::string::npos);
  Json deep = Json::parse(std::string(50, '[') + std::string(50, ']'));
  auto ok = yaml_to_json(deep.dump());  // JSON is YAML; 50 levels are fine
  REQUIRE(ok.ok());
}

TEST_CASE("base64_encode is what base64_decode reads back, padding included") {
  for (const std::string& s : std::vector<std::string>{"", "a", "ab", "abc", "abcd", "true",
                                                       std::string("\0\xff\x10", 3)}) {
    bool ok = false;
    CHECK(ferry::model::base64_decode(ferry::model::base64_encode(s), &ok) == s);
    CHECK(ok);
  }
  CHECK(ferry::model::base64_encode("true") == "dHJ1ZQ==");
}
