// Node-local metrics and health endpoints of live daemons during a migration.
#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

TEST_CASE("metrics move during a migration and agree with the copied bytes", "[e2e]") {
  Cluster c({{.name = "obs-01", .disk_mib = 48, .data_mib = 6}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(8 << 20)});
  CHECK(c.http_get("node-1", "/healthz").find("200") != std::string::npos);
  CHECK(c.http_get("node-1", "/readyz").find("\n200") != std::string::npos);
  CHECK(c.http_get("coordinator", "/readyz").find("\n200") != std::string::npos);
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"obs-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);

  // While the (bandwidth-capped) copy runs: one transfer in flight, bytes counter rising.
  double first = 0;
  REQUIRE(eventually(
      30s,
      [&] {
        std::string m = c.http_get("node-1", "/metrics");
        auto in_flight = metric(m, "ferry_agent_transfers_in_flight");
        auto bytes = metric(m, "ferry_agent_transferred_bytes_total", {"vm=\"obs-01\""});
        if (in_flight && *in_flight == 1 && bytes && *bytes > 0) {
          first = *bytes;
          return true;
        }
        return false;
      },
      100ms));
  CHECK(eventually(
      10s,
      [&] {
        auto b = metric(c.http_get("node-1", "/metrics"), "ferry_agent_transferred_bytes_total",
                        {"vm=\"obs-01\""});
        return b && *b > first;
      },
      200ms));
  CHECK(metric(c.http_get("coordinator", "/metrics"), "ferry_coordinator_disk_tasks",
               {"state=\"Running\""}) == 1.0);

  REQUIRE(wait_migration(c, "m") == "Succeeded");
  Json disk = c.get_json("migration", "m")["status"]["vms"][0]["disks"][0];
  double size = disk["capacity"].get<double>();
  std::string agent = c.http_get("node-1", "/metrics");
  CHECK(metric(agent, "ferry_agent_transferred_bytes_total",
               {"vm=\"obs-01\"", "plan=\"openshift-mtv/p\""}) == size);
  CHECK(metric(agent, "ferry_agent_source_read_bytes_total") ==
        disk["result"]["bytesRead"].get<double>());
  CHECK(metric(agent, "ferry_agent_transfers_in_flight") == 0.0);
  CHECK(metric(agent, "ferry_agent_tasks_total", {"result=\"succeeded\""}) == 1.0);
  CHECK(metric(agent, "ferry_agent_transfer_duration_seconds_count") == 1.0);
  std::string coord;
  REQUIRE(eventually(
      5s,
      [&] {
        coord = c.http_get("coordinator", "/metrics");
        return metric(coord, "mtv_plans_status", {"status=\"Succeeded\""}) == 1.0;
      },
      200ms));
  CHECK(metric(coord, "mtv_migrations_status_total", {"status=\"succeeded\""}) == 1.0);
  CHECK(metric(coord, "mtv_migrated_vms_total", {"status=\"succeeded\""}) == 1.0);
  CHECK(metric(coord, "mtv_migration_data_transferred_bytes", {"plan=\"Plan openshift-mtv/p\""}) ==
        size);
  CHECK(metric(coord, "mtv_migration_duration_seconds_count") == 1.0);
  auto age = metric(coord, "ferry_coordinator_agent_heartbeat_age_seconds", {"node=\"node-1\""});
  REQUIRE(age.has_value());
  CHECK(*age < 10);
}

TEST_CASE(
    "must-gather writes one archive with resources, statuses, logs and metrics, and no secrets",
    "[e2e]") {
  // The simulator gives its default VMs the same MAC: set distinct ones.
  Cluster c({{.name = "mg-01", .disk_mib = 16, .data_mib = 1, .macs = {"00:50:56:01:00:01"}},
             {.name = "mg-02",
              .base = "DC0_H0_VM1",
              .disk_mib = 16,
              .data_mib = 1,
              .macs = {"00:50:56:01:00:02"}}});
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"mg-01", "mg-02"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m") == "Succeeded");
  std::string archive = c.dir().file("mg.tar.gz");
  auto r = c.ctl({"must-gather", "--plan", "p", "--vm", "mg-02", "--out", archive});
  REQUIRE(r.rc == 0);
  std::string x = c.dir().file("x");
  std::filesystem::create_directories(x);
  Subprocess tar({require_program("tar"), "-xzf", archive, "-C", x}, {.log_dir = c.dir().path()});
  REQUIRE(tar.wait(30s) == 0);
  std::string root;
  for (const auto& e : std::filesystem::directory_iterator(x)) root = e.path().string();
  REQUIRE(root.find("must-gather-") != std::string::npos);
  CHECK(path_exists(root + "/resources/Plan/openshift-mtv.p.yaml"));
  CHECK(path_exists(root + "/resources/Migration/openshift-mtv.m.yaml"));
  CHECK(path_exists(root + "/resources/Provider/openshift-mtv.vsphere.yaml"));
  CHECK(path_exists(root + "/inventories/openshift-mtv.vsphere.json"));
  CHECK(read_file(root + "/metrics/coordinator.prom").find("mtv_migrations_status_total") !=
        std::string::npos);
  std::string logs = read_file(root + "/logs/coordinator.log");
  CHECK(logs.find("mg-02") != std::string::npos);
  CHECK(logs.find("\"vm\":\"mg-01\"") == std::string::npos);  // narrowed to the VM asked for
  std::string mig = read_file(root + "/resources/Migration/openshift-mtv.m.yaml");
  CHECK(mig.find("mg-02") != std::string::npos);
  CHECK(mig.find("name: mg-01") == std::string::npos);
  // No secret value anywhere in the archive.
  std::string secret = read_file(root + "/resources/Secret/openshift-mtv.vsphere-credentials.yaml");
  CHECK(secret.find("<redacted>") != std::string::npos);
  Subprocess grep({require_program("grep"), "-r", "-l", "ferry-sim-pass", root},
                  {.log_dir = c.dir().path()});
  CHECK(grep.wait(10s) == 1);  // grep: 1 = no match
}
