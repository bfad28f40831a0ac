// NATS authorization from `ferryctl nats-config`: each agent works with its own
// user, and that user cannot read another node's tasks or the coordinator's state.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "common/bus/nats_bus.h"
#include "common/protocol/subjects.h"
#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;
namespace bus = ferry::bus;
namespace subjects = ferry::subjects;

namespace {
std::unique_ptr<bus::CnatsBus> connect_as(Cluster& c, const std::string& who,
                                          const std::string& inbox) {
  const Json& cr =
      who == "coordinator" ? c.credentials()["coordinator"] : c.credentials()["agents"][who];
  bus::ConnectOptions o;
  o.url = c.nats_url();
  o.user = cr["user"];
  o.password = cr["password"];
  o.inbox_prefix = inbox;
  o.timeout = 3s;
  auto b = bus::CnatsBus::connect(o);
  REQUIRE(b.ok());
  return std::move(*b);
}
}  // namespace

TEST_CASE("agents authenticate to NATS and are confined to their node's subjects", "[e2e]") {
  Cluster c({{.name = "sec-01", .disk_mib = 32, .data_mib = 2}}, {"node-1", "node-2"});
  c.start_coordinator();
  c.start_agent("node-1");
  // The whole cold migration works with per-node credentials.
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"sec-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m") == "Succeeded");

  // Wrong password: refused.
  bus::ConnectOptions bad;
  bad.url = c.nats_url();
  bad.user = subjects::agent_user("node-1");
  bad.password = "guess";
  bad.timeout = 2s;
  CHECK_FALSE(bus::CnatsBus::connect(bad).ok());

  auto rogue = connect_as(c, "node-1", subjects::agent_inbox_prefix("node-1"));
  // Positive control: node-1's own consumer works with node-1's credentials.
  auto own = rogue->pull_consumer(subjects::kTasksStream, subjects::task("node-1"),
                                  subjects::task_consumer("node-1"), 30s);
  CHECK(own.ok());
  // node-2's tasks: the consumer cannot be created or read.
  auto other = rogue->pull_consumer(subjects::kTasksStream, subjects::task("node-2"),
                                    subjects::task_consumer("node-2"), 30s);
  CHECK_FALSE(other.ok());
  // The coordinator's state buckets are out of reach (and exist: the coordinator reads them).
  auto coord = connect_as(c, "coordinator", "");
  auto coord_kv = coord->kv(subjects::kResourcesBucket, false);
  REQUIRE(coord_kv.ok());
  CHECK((*coord_kv)->get("Plan.openshift-mtv.p").ok());
  auto kv = rogue->kv(subjects::kResourcesBucket, false);
  CHECK_FALSE(kv.ok());
  // Publishing as another node is not delivered to subscribers.
  std::atomic<int> seen{0};
  auto sub = coord->subscribe(subjects::progress("node-2"), [&](bus::Message) { seen++; });
  REQUIRE(sub.ok());
  (void)rogue->publish(subjects::progress("node-2"), "forged");
  (void)coord->publish(subjects::progress("node-2"), "real");
  CHECK(eventually(5s, [&] { return seen.load() >= 1; }));
  std::this_thread::sleep_for(300ms);
  CHECK(seen.load() == 1);
  // No credential value reaches the coordinator's log.
  CHECK(read_file(c.dir().file("coordinator.stderr"))
            .find(c.credentials()["agents"]["node-1"]["password"].get<std::string>()) ==
        std::string::npos);
}

TEST_CASE("with TLS configured, daemons verify the NATS server and a plain client is refused",
          "[e2e]") {
  Cluster c({{.name = "tls-01", .disk_mib = 16, .data_mib = 1}}, {"node-1"}, /*tls=*/true);
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"tls-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m") == "Succeeded");
  bus::ConnectOptions o;
  o.url = c.nats_url();
  o.user = c.credentials()["coordinator"]["user"];
  o.password = c.credentials()["coordinator"]["password"];
  o.timeout = 2s;
  CHECK_FALSE(bus::CnatsBus::connect(o).ok());  // no TLS
  o.tls_ca_file = c.dir().file("server.pem");   // not the CA: verification fails
  CHECK_FALSE(bus::CnatsBus::connect(o).ok());
  o.tls_ca_file = c.ca_file();
  CHECK(bus::CnatsBus::connect(o).ok());
}
