// The coordinator's and agent's durability rules, each against real
// processes: a result is acked only once stored (kill -9 at that moment), an
// agent gone for good, a cancel sent while the agent is down, an agent's result
// kept across its own restart while NATS is away, and a second coordinator
// that waits for the lease and takes over; an apply that cannot be stored
// whole stores nothing.
#include <catch2/catch.hpp>

#include <filesystem>
#include <thread>

#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kMiB = 1 << 20;

// Waits until the VM's first disk has copied some bytes.
void wait_copying(Cluster& c, const std::string& migration) {
  bool ok = eventually(
      60s,
      [&] {
        Json vm = vm_status(c, migration);
        return vm.contains("disks") && vm["disks"].size() >= 1 &&
               vm["disks"][0].value("bytesDone", 0) > 0;
      },
      100ms);
  if (!ok) FAIL("no copy started: " << vm_status(c, migration).dump(1));
}

std::string reasons(const Json& vm) {
  return vm.value("error", Json::object()).value("reasons", Json::array()).dump();
}

}  // namespace

TEST_CASE("a coordinator killed between applying a result and storing it gets it again",
          "[e2e][durability]") {
  Cluster c({{.name = "res-01", .disk_mib = 48, .data_mib = 8}});
  // The failpoint kills the coordinator (SIGKILL) right after the first result
  // changed its memory, before the change is stored and the result acked.
  c.start_coordinator({}, {"FERRY_FAILPOINTS=kill-after-result"});
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"res-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return !c.coordinator_alive(); }, 100ms));
  uint64_t served = c.sim_stats()["folder_bytes"];
  c.start_coordinator();
  REQUIRE(wait_migration(c, "m", 120) == "Succeeded");
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("res-01"), vm["disks"][0]["path"]).has_value());
  // The redelivered result completed the disk: no data was read from the
  // source again. The restarted coordinator may hand the task out again before
  // the result comes back; the agent then finds its checkpoint complete and
  // reads only the one-byte size probe (a few hundred bytes with headers).
  CHECK(c.sim_stats()["folder_bytes"].get<uint64_t>() - served < 4096);
  CHECK(vm["disks"][0]["result"]["bytesRead"].get<uint64_t>() > 0);
}

TEST_CASE("a node whose agent is gone for good fails its VM and frees its slots",
          "[e2e][durability]") {
  // Both VMs come from host DC0_H0, which gets one transfer slot: the second VM
  // can only start if the dead node's slot was released.
  Cluster c({{.name = "gone-01", .disk_mib = 96, .data_mib = 32},
             {.name = "next-01", .base = "DC0_H0_VM1", .disk_mib = 32, .data_mib = 4}});
  c.start_coordinator({"--agent-timeout", "6", "--per-host-transfers", "1"});
  c.start_agent("node-1", {"--bandwidth", std::to_string(2 * kMiB)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p1", {"gone-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m1", "p1")}).rc == 0);
  wait_copying(c, "m1");
  c.kill_agent("node-1");  // SIGKILL: no goodbye, its volume stays on node-1
  REQUIRE(wait_migration(c, "m1", 60) == "Failed");
  Json vm = vm_status(c, "m1");
  CHECK(reasons(vm).find("node node-1: its agent has not been heard from for 6 s") !=
        std::string::npos);
  CHECK(vm["disks"][0]["state"] == "Canceled");
  CHECK(c.ctl({"status"}).out.find("node-1") == std::string::npos);
  CHECK(read_file(c.dir().file("coordinator.stderr")).find("agent gone") != std::string::npos);

  c.start_agent("node-2");
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p2", {"next-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m2", "p2")}).rc == 0);
  REQUIRE(wait_migration(c, "m2", 60) == "Succeeded");
  CHECK(vm_status(c, "m2")["disks"][0]["node"] == "node-2");
}

TEST_CASE("a cancel sent while the agent is down reaches it when it is back", "[e2e][durability]") {
  Cluster c({{.name = "w-01",
              .disk_mib = 32,
              .data_mib = 8,
              .macs = {"00:50:56:aa:dd:01"},
              .cbt = true}});
  c.start_coordinator();
  c.start_agent("node-1");
  // Warm, with an hour between precopies: after the initial copy the VM waits
  // in CopyingPaused with its volume on node-1 and no task running there.
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"w-01"}, "  warm: true\n")}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return vm_status(c, "m").value("phase", "") == "CopyingPaused"; }, 100ms));
  std::string volume = c.volume_root("node-1") + "/target/w-01-disk-0.img";
  REQUIRE(path_exists(volume));
  c.kill_agent("node-1");
  REQUIRE(c.ctl({"cancel", "migration", "m"}).rc == 0);
  REQUIRE(wait_migration(c, "m", 30) == "Canceled");
  // Nobody is there to remove it yet.
  std::this_thread::sleep_for(2s);
  CHECK(path_exists(volume));
  c.start_agent("node-1");
  CHECK(eventually(30s, [&] { return !path_exists(volume); }));
}

TEST_CASE("an agent keeps a result NATS could not take across its own restart",
          "[e2e][durability]") {
  Cluster c({{.name = "sp-01", .disk_mib = 48, .data_mib = 16}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(4 * kMiB)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"sp-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  wait_copying(c, "m");
  c.stop_nats();  // the copy goes on (the source is the simulator), its result cannot be sent
  std::string spool = c.volume_root("node-1") + "/.ferry-agent/results";
  auto spooled = [&] {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(spool, ec))
      if (e.path().extension() == ".result") return true;
    return false;
  };
  REQUIRE(eventually(60s, spooled, 100ms));
  c.kill_agent("node-1");  // SIGKILL with the result only in the spool
  c.start_nats();
  uint64_t served = c.sim_stats()["folder_bytes"];
  c.start_agent("node-1");
  REQUIRE(wait_migration(c, "m", 120) == "Succeeded");
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("sp-01"), vm["disks"][0]["path"]).has_value());
  CHECK(c.sim_stats()["folder_bytes"].get<uint64_t>() == served);  // not copied again
  CHECK(read_file(c.dir().file("agent-node-1.stderr")).find("spooled result published") !=
        std::string::npos);
  CHECK_FALSE(spooled());
  // Its lease expired while NATS was away; nobody else held it, so it carried on.
  CHECK(c.coordinator_alive());
}

TEST_CASE("a second coordinator waits for the lease and takes over when the first dies",
          "[e2e][durability]") {
  Cluster c({{.name = "ha-01", .disk_mib = 64, .data_mib = 16}});
  c.start_coordinator();
  auto standby = c.spawn_coordinator("coordinator-2");
  REQUIRE(eventually(20s, [&] {
    return standby->stderr_text().find("another coordinator is active") != std::string::npos;
  }));
  c.start_agent("node-1", {"--bandwidth", std::to_string(4 * kMiB)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"ha-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  wait_copying(c, "m");
  CHECK(standby->stderr_text().find("coordinator ready") == std::string::npos);
  c.kill_coordinator();
  REQUIRE(eventually(
      30s, [&] { return standby->stderr_text().find("coordinator ready") != std::string::npos; }));
  REQUIRE(wait_migration(c, "m", 120) == "Succeeded");
  CHECK_FALSE(
      first_difference(c.flat_path("ha-01"), vm_status(c, "m")["disks"][0]["path"]).has_value());
}

TEST_CASE("an apply whose second write fails stores none of it", "[e2e][durability]") {
  Cluster c({{.name = "txn-01", .disk_mib = 16, .data_mib = 1}});
  // The failpoint fails the second resource write of every batch, after the
  // first one was stored: the first must be rolled back.
  c.start_coordinator({}, {"FERRY_FAILPOINTS=fail-second-resource-write"});
  std::string manifests = c.write_manifests("p", {"txn-01"});
  auto r = c.ctl({"apply", "-f", manifests});
  CHECK(r.rc != 0);
  CHECK((r.out + r.err).find("nothing was applied") != std::string::npos);
  for (const char* kind : {"secret", "provider", "networkmap", "storagemap", "plan"})
    CHECK(c.listed(kind) == 0);
  // Nothing was stored either: a new coordinator finds none of it, and the
  // same manifests then apply whole.
  c.kill_coordinator();
  c.start_coordinator();
  for (const char* kind : {"secret", "provider", "networkmap", "storagemap", "plan"})
    CHECK(c.listed(kind) == 0);
  REQUIRE(c.ctl({"apply", "-f", manifests}).rc == 0);
  CHECK(c.get_json("plan", "p")["status"].value("phase", "") == "Ready");
}
