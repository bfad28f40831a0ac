#include <catch2/catch.hpp>

#include "coordinator/api/requests.h"

using namespace ferry::coordinator;

namespace {

// The error of a refused request ("" when it was accepted).
std::string refused(const std::string& verb, const std::string& body,
                    std::string* field = nullptr) {
  auto r = api::decode(verb, body);
  auto* e = std::get_if<api::RequestError>(&r);
  if (!e) return "";
  if (field) *field = e->field;
  return e->error.message;
}

}  // namespace

TEST_CASE("every verb refuses a body that is not a JSON object, naming the verb") {
  for (const auto& verb : api::verbs())
    for (const char* body : {"[]", "null", "\"x\"", "5", "true", "{", ""}) {
      INFO(verb << " " << body);
      std::string e = refused(verb, body);
      CHECK(e.rfind("ferry.api." + verb + ": request ", 0) == 0);
    }
}

TEST_CASE("a field of the wrong type is refused with the field named") {
  std::string field;
  CHECK(refused("inventory", R"({"refresh":"yes"})", &field) ==
        "ferry.api.inventory: refresh: must be true or false, not a string");
  CHECK(field == "refresh");
  CHECK(refused("get", R"({"kind":5})", &field) ==
        "ferry.api.get: kind: must be a string, not a number");
  CHECK(field == "kind");
  CHECK(refused("cancel", R"({"name":"m","vms":"vm-1"})") ==
        "ferry.api.cancel: vms: must be an array of strings, not a string");
  CHECK(refused("cancel", R"({"name":"m","vms":["a",7]})", &field) ==
        "ferry.api.cancel: vms[1]: must be a non-empty string, not a number");
  CHECK(field == "vms[1]");
  CHECK(refused("apply", R"({"files":[{"name":"a.yaml","text":3}]})", &field) ==
        "ferry.api.apply: files[0].text: must be a string, not a number");
  CHECK(refused("apply", R"({"files":[7]})") ==
        "ferry.api.apply: files[0]: must be an object, not a number");
  CHECK(refused("gather", R"({"namespace":{}})") ==
        "ferry.api.gather: namespace: must be a string, not an object");
}

TEST_CASE("required fields, unknown fields, unknown kinds and verbs are refused") {
  CHECK(refused("get", "{}") == "ferry.api.get: kind: is required");
  CHECK(refused("delete", R"({"kind":"plan"})") == "ferry.api.delete: name: is required");
  CHECK(refused("retry", R"({"name":"m"})") == "ferry.api.retry: vm: is required");
  CHECK(refused("cancel", R"({"name":""})") == "ferry.api.cancel: name: must not be empty");
  CHECK(refused("apply", "{}") == "ferry.api.apply: files: at least one file is required");
  CHECK(refused("get", R"({"kind":"plans","nmae":"p"})") ==
        "ferry.api.get: nmae: is not a field of this request");
  CHECK(refused("get", R"({"kind":"planets"})") ==
        "ferry.api.get: kind: unknown resource type \"planets\"");
  CHECK(refused("explode", "{}").rfind("unknown API verb \"explode\"", 0) == 0);
}

TEST_CASE("well-formed requests decode to their typed form with defaults") {
  auto g = api::decode("get", R"({"kind":"plans","namespace":"ns1","name":"p"})");
  auto& get = std::get<api::GetRequest>(std::get<api::Request>(g));
  CHECK(get.kind == "Plan");
  CHECK(get.ns == "ns1");
  CHECK(get.name == "p");
  auto c = api::decode("cancel", R"({"name":"m","vms":["a","b"]})");
  auto& cancel = std::get<api::CancelRequest>(std::get<api::Request>(c));
  CHECK(cancel.migration.ns == "openshift-mtv");
  CHECK(cancel.vms == std::vector<std::string>{"a", "b"});
  auto i = api::decode("inventory", R"({"refresh":true,"provider":"vs"})");
  CHECK(std::get<api::InventoryRequest>(std::get<api::Request>(i)).refresh);
  auto a = api::decode("apply", R"({"files":[{"text":"kind: Plan"}]})");
  auto& apply = std::get<api::ApplyRequest>(std::get<api::Request>(a));
  REQUIRE(apply.files.size() == 1);
  CHECK(apply.files[0].name == "request");
  CHECK_FALSE(apply.dry_run);
  auto dry = api::decode("apply", R"({"files":[{"text":"kind: Plan"}],"dryRun":true})");
  CHECK(std::get<api::ApplyRequest>(std::get<api::Request>(dry)).dry_run);
  std::string field;
  CHECK_FALSE(refused("apply", R"({"files":[{"text":"x"}],"dryRun":"yes"})", &field).empty());
  CHECK(field == "dryRun");
  CHECK(std::holds_alternative<api::StatusRequest>(
      std::get<api::Request>(api::decode("status", "{}"))));
  // null is the same as absent.
  CHECK(refused("get", R"({"kind":"plan","name":null})").empty());
}
