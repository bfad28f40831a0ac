// Source credentials: the vCenter session cookie travels only in the claim
// reply, never in a stream; an agent whose cookie stops working claims the
// task again and resumes; the coordinator logs out of every session it opened.
#include <catch2/catch.hpp>

#include <sstream>

#include "common/bus/nats_bus.h"
#include "common/protocol/subjects.h"
#include "ferry/v1/agent.pb.h"
#include "tests/integration/migration/cluster.h"

using namespace ferry;
using namespace ferry::test;
using namespace std::chrono_literals;

TEST_CASE(
    "a vCenter session ended mid-copy is replaced through a new claim, the copy resumes, no "
    "cookie is stored in NATS and no session is left",
    "[e2e][credentials]") {
  Cluster c({{.name = "ses-01", .disk_mib = 48, .data_mib = 32}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(2 << 20)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"ses-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  auto done_bytes = [&] {
    Json vm = vm_status(c, "m");
    return vm.contains("disks") && !vm["disks"].empty()
               ? vm["disks"][0].value("bytesDone", uint64_t{0})
               : 0;
  };
  REQUIRE(eventually(
      120s, [&] { return done_bytes() >= (8u << 20); }, 100ms));
  // Another node cannot claim this task, nor get its credential.
  {
    bus::ConnectOptions o;
    o.url = c.nats_url();
    auto b = bus::CnatsBus::connect(o);
    REQUIRE(b.ok());
    ferry::v1::ClaimRequest req;
    req.set_task_id(vm_status(c, "m")["disks"][0].value("taskId", ""));
    req.set_node("node-2");
    req.set_needs_credentials(true);
    auto rep = (*b)->request(subjects::claim("node-2"), req.SerializeAsString(), 5s);
    REQUIRE(rep.ok());
    ferry::v1::ClaimReply cr;
    REQUIRE(cr.ParseFromString(*rep));
    CHECK_FALSE(cr.proceed());
    CHECK(cr.source_headers_size() == 0);
    CHECK(cr.reason() == "task is for node node-1");
  }
  REQUIRE(eventually(
      120s, [&] { return done_bytes() >= (24u << 20); }, 100ms));
  // Every session vCenter knows ends for datastore access: the agent's
  // next read gets 401.
  Json revoked = c.sim_post("/ferry-sim/revoke-sessions", "");
  CHECK(revoked["revoked"].get<int>() >= 1);
  REQUIRE(wait_migration(c, "m", 180) == "Succeeded");
  CHECK(c.agent("node-1").stderr_text().find(
            "the source refused the credential; claiming the task again") != std::string::npos);
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("ses-01"), vm["disks"][0]["path"]).has_value());
  // Resumed from its checkpoint: the second start kept what the first copied
  // (the source is still read whole once more: verify digests the disk).
  uint64_t resumed = 0;
  std::istringstream log(c.agent("node-1").stderr_text());
  for (std::string line; std::getline(log, line);) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == "copy starting")
      resumed = std::stoull(j.value("resumed_bytes", "0"));
  }
  CHECK(resumed >= (16u << 20));
  Json stats;
  // Neither the cookie nor the Secret's password ever reached NATS's storage
  // (the task stream, KV, anything); the password is sealed with a key NATS
  // never sees.
  CHECK(files_containing(c.dir().file("nats"), "vmware_soap_session").empty());
  CHECK(files_containing(c.dir().file("nats"), "ferry-sim-pass").empty());
  CHECK_FALSE(files_containing(c.dir().file("nats"), "ferrySealed").empty());
  // Stopped, the coordinator logs out of every session it opened.
  c.stop_coordinator();
  stats = c.sim_stats();
  CHECK(stats["logins"].get<int64_t>() >= 2);
  CHECK(stats["logouts"] == stats["logins"]);
  CHECK(stats["sessions"] == 0);
}

TEST_CASE(
    "a canceled migration, a deleted Provider, idle sessions and a restart leave no vCenter "
    "session open",
    "[e2e][credentials]") {
  Cluster c({{.name = "ses-02", .disk_mib = 48, .data_mib = 32}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(2 << 20)});
  std::string manifests = c.write_manifests("p", {"ses-02"});
  REQUIRE(c.ctl({"apply", "-f", manifests}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  auto done_bytes = [&](const std::string& m) {
    Json vm = vm_status(c, m);
    return vm.contains("disks") && !vm["disks"].empty()
               ? vm["disks"][0].value("bytesDone", uint64_t{0})
               : 0;
  };
  REQUIRE(eventually(
      120s, [&] { return done_bytes("m") >= (4u << 20); }, 100ms));
  // Canceled mid-copy: the Provider's sessions stay pooled for its next use
  // (fewer than the pool's 8), and go with the Provider.
  REQUIRE(c.ctl({"cancel", "migration", "m"}).rc == 0);
  REQUIRE(wait_migration(c, "m", 60) == "Canceled");
  Json stats = c.sim_stats();
  CHECK(stats["sessions"].get<int>() >= 1);
  CHECK(stats["sessions"].get<int>() <= 8);
  REQUIRE(c.ctl({"delete", "migration", "m"}).rc == 0);
  REQUIRE(c.ctl({"delete", "plan", "p"}).rc == 0);
  REQUIRE(c.ctl({"delete", "provider", "vsphere"}).rc == 0);
  CHECK(eventually(
      10s, [&] { return c.sim_stats()["sessions"] == 0; }, 100ms));
  stats = c.sim_stats();
  CHECK(stats["logouts"] == stats["logins"]);

  // Restarted with a short idle limit: the sessions a migration used are
  // logged out once idle, while the coordinator runs on.
  c.stop_coordinator();
  c.start_coordinator({"--session-idle-timeout", "2"});
  REQUIRE(c.ctl({"apply", "-f", manifests}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m2", "p")}).rc == 0);
  int most = 0;
  REQUIRE(eventually(
      180s,
      [&] {
        most = std::max(most, c.sim_stats()["sessions"].get<int>());
        std::string phase = vm_status(c, "m2").value("phase", "");
        return phase == "Completed" || phase == "Failed";
      },
      200ms));
  REQUIRE(wait_migration(c, "m2", 60) == "Succeeded");
  CHECK(most >= 1);
  CHECK(most <= 8);  // never more than the pool's size
  CHECK(eventually(
      20s, [&] { return c.sim_stats()["sessions"] == 0; }, 200ms));
  CHECK(c.coordinator_alive());
  CHECK(c.coordinator_log().find("idle source sessions logged out") != std::string::npos);
  c.stop_coordinator();
  stats = c.sim_stats();
  CHECK(stats["sessions"] == 0);
  CHECK(stats["logouts"] == stats["logins"]);
}
