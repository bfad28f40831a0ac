// No input ends the coordinator: malformed API requests, garbage on the agent
// subjects and corrupt stored entries are refused, logged and counted, and the
// coordinator goes on serving. State that grows with a source or a plan is
// stored in entries that stay under NATS' payload limit.
#include <catch2/catch.hpp>

#include "common/bus/nats_bus.h"
#include "common/protocol/subjects.h"
#include "ferry/v1/agent.pb.h"
#include "tests/integration/migration/cluster.h"

using namespace ferry;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<bus::CnatsBus> connect(Cluster& c) {
  bus::ConnectOptions o;
  o.url = c.nats_url();
  auto b = bus::CnatsBus::connect(o);
  REQUIRE(b.ok());
  return std::move(*b);
}

double bad_inputs(Cluster& c, const std::string& source) {
  return metric(c.http_get("coordinator", "/metrics"), "ferry_coordinator_bad_input_total",
                {"source=\"" + source + "\""})
      .value_or(0);
}

}  // namespace

TEST_CASE("malformed API requests are refused with the field named and crash nothing", "[e2e]") {
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1}});
  c.start_coordinator();
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"vm-a"})}).rc == 0);
  auto b = connect(c);
  const std::vector<std::string> verbs = {"apply",   "get",       "delete", "cancel", "retry",
                                          "cutover", "inventory", "gather", "status", "part"};
  const std::vector<std::string> bodies = {"[]",
                                           "null",
                                           "\"plan\"",
                                           "5",
                                           "{",
                                           "",
                                           R"({"refresh":"yes"})",
                                           R"({"kind":5})",
                                           R"({"name":7})",
                                           R"({"vms":{}})",
                                           R"({"files":"x"})",
                                           R"({"kind":"plan","name":"p","x":1})",
                                           R"({"replyId":"nope","part":0})"};
  int refused = 0;
  for (const auto& verb : verbs)
    for (const auto& body : bodies) {
      INFO(verb << " " << body);
      auto rep = b->request(subjects::api(verb), body, 5s);
      REQUIRE(rep.ok());  // the coordinator answered
      Json j = Json::parse(*rep, nullptr, false);
      REQUIRE(j.is_object());
      if (j.value("ok", false)) continue;  // e.g. status ignores nothing but takes {}
      refused++;
      std::string e = j.value("error", "");
      CHECK((e.find("ferry.api." + verb + ": ") == 0 || j.contains("errors")));
    }
  CHECK(refused >= 100);
  // An unknown verb, and a request with no reply subject at all.
  auto rep = b->request(subjects::api("explode"), "{}", 5s);
  REQUIRE(rep.ok());
  CHECK(Json::parse(*rep)["error"].get<std::string>().find("unknown API verb") == 0);
  REQUIRE(b->publish(subjects::api("get"), "[]").ok());

  // Garbage on every subject an agent may publish on.
  REQUIRE(b->publish(subjects::heartbeat("node-x"), "\xff\xfe garbage").ok());
  REQUIRE(b->publish(subjects::progress("node-x"), "\x08\x96\x01").ok());
  auto claim = b->request(subjects::claim("node-x"), "not a claim", 5s);
  REQUIRE(claim.ok());
  REQUIRE(b->js_publish(subjects::result("node-x"), "\x01\x02\x03").ok());
  // A well-formed heartbeat for another node than the subject's.
  ferry::v1::AgentHeartbeat hb;
  hb.set_node("node-y");
  REQUIRE(b->publish(subjects::heartbeat("node-x"), hb.SerializeAsString()).ok());

  REQUIRE(eventually(10s, [&] { return bad_inputs(c, "result") >= 1; }));
  CHECK(c.coordinator_alive());
  CHECK(bad_inputs(c, "api") >= refused);
  CHECK(bad_inputs(c, "heartbeat") >= 2);
  CHECK(bad_inputs(c, "claim") >= 1);
  // The store is as it was: the good plan, no agent named node-x or node-y.
  auto plans = c.ctl({"get", "plans", "-o", "json"});
  REQUIRE(plans.rc == 0);
  CHECK(Json::parse(plans.out)["items"].size() == 1);
  auto st = c.ctl({"status"});
  CHECK(st.out.find("node-x") == std::string::npos);
  CHECK(st.out.find("node-y") == std::string::npos);
}

TEST_CASE("corrupt stored entries are reported, counted and skipped at start", "[e2e]") {
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1}});
  c.start_coordinator();
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"vm-a"})}).rc == 0);
  c.kill_coordinator();
  auto b = connect(c);
  auto put = [&](const char* bucket, const std::string& key, const std::string& value) {
    auto kv = b->kv(bucket, false);
    REQUIRE(kv.ok());
    REQUIRE((*kv)->put(key, value).ok());
  };
  put(subjects::kResourcesBucket, "Plan.openshift-mtv.broken", "{not json");
  put(subjects::kResourcesBucket, "Plan.openshift-mtv.array", "[1,2]");
  put(subjects::kResourcesBucket, "Plan.openshift-mtv.other",
      R"({"kind":"Plan","metadata":{"name":"elsewhere","namespace":"openshift-mtv"}})");
  put(subjects::kResourcesBucket, "nodots", "{}");
  put(subjects::kStatusBucket, "Plan.openshift-mtv.p", "\"a string\"");
  put(subjects::kStatusBucket, "Migration.openshift-mtv.ghost/3", "{}");
  put(subjects::kInventoryBucket, "openshift-mtv.vsphere", "{\"generation\": 9, \"chunks\": 2}");
  c.start_coordinator();
  CHECK(bad_inputs(c, "stored") >= 7);
  auto plans = c.ctl({"get", "plans", "-o", "json"});
  INFO(plans.err);
  REQUIRE(plans.rc == 0);
  Json items = Json::parse(plans.out)["items"];
  REQUIRE(items.size() == 1);
  CHECK(items[0]["metadata"]["name"] == "p");
  // The inventory whose chunks are gone is skipped; a refresh loads it again.
  CHECK(c.ctl({"get", "vms", "--provider", "vsphere"}).rc != 0);
  CHECK(c.ctl({"get", "vms", "--provider", "vsphere", "--refresh"}).rc == 0);
  // And a restart after that finds a whole inventory (written in the chunked layout).
  c.kill_coordinator();
  c.start_coordinator();
  auto vms = c.ctl({"get", "vms", "--provider", "vsphere", "-o", "json"});
  REQUIRE(vms.rc == 0);
  CHECK(vms.out.find("vm-a") != std::string::npos);
}

TEST_CASE("a 2000-VM source is stored in chunks and served in parts", "[e2e]") {
  ClusterOptions o;
  o.vm_count = 1000;  // per host and per cluster of the simulator's model: 2,000 VMs
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1}}, o);
  c.start_coordinator();
  auto a = c.ctl({"apply", "-f", c.write_manifests("p", {"vm-a"})});
  INFO(a.err);
  REQUIRE(a.rc == 0);
  auto vms = c.ctl({"get", "vms", "--provider", "vsphere", "-o", "json"});
  REQUIRE(vms.rc == 0);
  Json items = Json::parse(vms.out);
  size_t n = 0;
  for (const auto& p : items["items"]) n += p["inventory"]["vms"].size();
  CHECK(n >= 2000);
  // Read a page at a time (250 VMs: the simulator splits its answer as
  // vCenter does when asked for maxObjects), never all 2,000 at once.
  CHECK(c.sim_stats()["pages_served"].get<int64_t>() >= 8);
  // Every stored value is under the limit: the header and its chunks.
  auto b = connect(c);
  auto kv = b->kv(subjects::kInventoryBucket, false);
  REQUIRE(kv.ok());
  auto keys = (*kv)->keys();
  REQUIRE(keys.ok());
  CHECK(keys->size() > 3);
  for (const auto& k : *keys) {
    auto e = (*kv)->get(k);
    REQUIRE(e.ok());
    if (*e) CHECK((*e)->value.size() <= 300 * 1024);
  }
  // The same after a restart.
  c.kill_coordinator();
  c.start_coordinator();
  auto again = c.ctl({"get", "vms", "--provider", "vsphere", "-o", "json"});
  REQUIRE(again.rc == 0);
  CHECK(Json::parse(again.out) == items);
}
