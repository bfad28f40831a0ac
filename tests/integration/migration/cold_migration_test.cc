// Cold migration from the vSphere simulator, end to end, with real processes:
// nats-server, vsphere-sim, ferry-coordinator, ferry-agent, ferryctl.
#include <catch2/catch.hpp>

#include <set>

#include <csignal>
#include <filesystem>
#include <thread>

#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

std::string yaml_value(const std::string& yaml, const std::string& key) {
  auto p = yaml.find(key + ": ");
  if (p == std::string::npos) return "";
  auto e = yaml.find('\n', p);
  return yaml.substr(p + key.size() + 2, e - p - key.size() - 2);
}

}  // namespace

TEST_CASE("cold migration copies the disk byte for byte and writes the VM manifest", "[e2e]") {
  Cluster c({{.name = "web-01", .disk_mib = 96, .data_mib = 12, .macs = {"00:50:56:aa:bb:01"}}});
  c.start_coordinator();
  c.start_agent("node-1");
  auto apply = c.ctl({"apply", "-f", c.write_manifests("plan-a", {"web-01"})});
  REQUIRE(apply.rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-a", "plan-a")}).rc == 0);
  REQUIRE(wait_migration(c, "mig-a") == "Succeeded");
  // Forklift's execution conditions, behind the CRDs' printer columns.
  auto conditions = [&](const char* kind, const char* name) {
    std::set<std::string> t;
    for (const auto& x : c.get_json(kind, name)["status"].value("conditions", Json::array()))
      if (x.value("status", "") == "True") t.insert(x.value("type", ""));
    return t;
  };
  CHECK(conditions("plan", "plan-a") == std::set<std::string>{"Ready", "Succeeded"});
  CHECK(conditions("migration", "mig-a") == std::set<std::string>{"Ready", "Succeeded"});

  Json vm = vm_status(c, "mig-a");
  CHECK(vm["phase"] == "Completed");
  std::string volume = vm["disks"][0]["path"];
  CHECK(volume == c.volume_root("node-1") + "/target/web-01-disk-0.img");
  // Byte for byte, and the holes stayed holes.
  std::string flat = c.flat_path("web-01");
  CHECK(file_size(volume) == file_size(flat));
  CHECK_FALSE(first_difference(flat, volume).has_value());
  CHECK(allocated_bytes(volume) <= allocated_bytes(flat) + (1 << 20));
  CHECK(allocated_bytes(volume) < file_size(volume) / 2);
  // The disk was read through the datastore /folder access, with the session cookie.
  Json stats = c.sim_stats();
  CHECK(stats["folder_unauthorized"] == 0);
  CHECK(stats["folder_bytes"].get<uint64_t>() >= file_size(flat));
  // Every step of the pipeline is accounted for.
  CHECK(pipeline_steps(vm) ==
        std::vector<std::string>{"Initialize=Completed", "DiskAllocation=Completed",
                                 "DiskTransfer=Completed", "ImageConversion=Skipped",
                                 "VirtualMachineCreation=Completed"});
  // The VirtualMachine manifest: MAC, disk, firmware, power state restored.
  std::string manifest = read_file(vm["vmManifestPath"]);
  CHECK(manifest.find("kind: VirtualMachine") != std::string::npos);
  CHECK(yaml_value(manifest, "macAddress") == "00:50:56:aa:bb:01");
  CHECK(yaml_value(manifest, "claimName") == "web-01-disk-0");
  CHECK(yaml_value(manifest, "runStrategy") == "Always");  // the source was powered on
  CHECK(manifest.find("bios") != std::string::npos);
  CHECK(manifest.find("networkName: target/vlan-10") != std::string::npos);
  // Raw copy mode (skipGuestConversion): no conversion ran, compatibility devices.
  CHECK(manifest.find("bus: sata") != std::string::npos);
  CHECK(manifest.find("model: e1000e") != std::string::npos);
  CHECK(read_file(c.dir().file("agent-node-1.stderr")).find("conversion started") ==
        std::string::npos);
  CHECK_FALSE(vm.contains("conversion"));
  // The source stays powered off after a cold migration (as MTV leaves it).
  auto vms = c.ctl({"get", "vms", "--provider", "vsphere", "--refresh"});
  CHECK(vms.out.find("web-01") != std::string::npos);
  CHECK(vms.out.find(" Off ") != std::string::npos);
  // describe shows the pipeline, the data copied and the manifest.
  auto d = c.ctl({"describe", "plan", "plan-a"});
  CHECK(d.rc == 0);
  CHECK(d.out.find("DiskTransfer") != std::string::npos);
  CHECK(d.out.find("96/96 MB") != std::string::npos);
  CHECK(d.out.find("Succeeded") != std::string::npos);

  SECTION("a second Migration of the same Plan migrates only what is not done") {
    REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-b", "plan-a")}).rc == 0);
    REQUIRE(wait_migration(c, "mig-b") == "Succeeded");
    CHECK(c.get_json("migration", "mig-b")["status"]["vms"].empty());
  }
}

TEST_CASE("an EFI VM that was powered off stays off on the target", "[e2e]") {
  Cluster c({{.name = "db-01",
              .disk_mib = 32,
              .data_mib = 2,
              .power_state = "poweredOff",
              .firmware = "efi"}});
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"db-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m") == "Succeeded");
  std::string manifest = read_file(vm_status(c, "m")["vmManifestPath"]);
  CHECK(yaml_value(manifest, "runStrategy") == "Halted");
  CHECK(manifest.find("efi") != std::string::npos);
  CHECK_FALSE(
      first_difference(c.flat_path("db-01"), vm_status(c, "m")["disks"][0]["path"]).has_value());
}

TEST_CASE("cancel stops a VM's transfer and removes its partial volume", "[e2e]") {
  Cluster c({{.name = "big-01", .disk_mib = 128, .data_mib = 16}});
  c.start_coordinator();
  // 4 MiB/s: the copy takes ~30 s, long enough to cancel in the middle.
  c.start_agent("node-1", {"--bandwidth", std::to_string(4 << 20)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"big-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  std::string volume = c.volume_root("node-1") + "/target/big-01-disk-0.img";
  REQUIRE(eventually(
      60s,
      [&] {
        Json vm = vm_status(c, "m");
        return vm["disks"].size() == 1 && vm["disks"][0].value("bytesDone", 0) > 0 &&
               path_exists(volume);
      },
      200ms));

  SECTION("a second Migration is refused while the first runs, and changes nothing") {
    auto r = c.ctl({"apply", "-f", c.write_migration("m2", "p")});
    CHECK(r.rc != 0);
    CHECK(r.err.find("Migration openshift-mtv/m2: spec.plan: Plan openshift-mtv/p is already being "
                     "run by Migration openshift-mtv/m") != std::string::npos);
    CHECK(c.ctl({"get", "migration", "m2"}).rc != 0);
  }

  auto r = c.ctl({"cancel", "migration", "m", "--vm", "big-01"});
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("big-01 canceled") != std::string::npos);
  REQUIRE(wait_migration(c, "m", 30) == "Canceled");
  // The agent stops and deletes the partial volume and its checkpoint.
  CHECK(eventually(
      10s, [&] { return !path_exists(volume) && !path_exists(volume + ".ferry-checkpoint"); }));
  Json vm = vm_status(c, "m");
  CHECK(vm["phase"] == "Canceled");
  CHECK(vm["disks"][0]["state"] == "Canceled");
  // The source VM, powered off for the cold copy, is powered on again.
  CHECK(eventually(
      20s,
      [&] {
        auto st = c.ctl({"get", "vms", "--provider", "vsphere", "--refresh", "-o", "json"});
        return st.rc == 0 &&
               Json::parse(st.out)["items"][0]["inventory"]["vms"][0]["powerState"] == "On";
      },
      500ms));
}

TEST_CASE("a coordinator killed mid-transfer is restarted and the migration completes", "[e2e]") {
  Cluster c({{.name = "app-01", .disk_mib = 96, .data_mib = 16}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(8 << 20)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"app-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s,
      [&] {
        Json vm = vm_status(c, "m");
        return vm["disks"].size() == 1 && vm["disks"][0].value("bytesDone", 0) > (8 << 20);
      },
      200ms));
  c.kill_coordinator();
  std::this_thread::sleep_for(
      2s);  // the agent keeps copying and then queues its result in JetStream
  c.start_coordinator();
  REQUIRE(wait_migration(c, "m", 120) == "Succeeded");
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("app-01"), vm["disks"][0]["path"]).has_value());
}

TEST_CASE("a plan's transferNetwork makes the agent pull disks from that network's address",
          "[e2e]") {
  Cluster c({{.name = "net-01", .disk_mib = 48, .data_mib = 4}});
  c.start_coordinator();
  // This node reaches the source over "migration" from 127.0.0.2; its default route is 127.0.0.1.
  c.start_agent("node-1", {"--network", "migration=127.0.0.2"});
  REQUIRE(
      c.ctl({"apply", "-f",
             c.write_manifests("p", {"net-01"},
                               "  transferNetwork: {name: migration, namespace: openshift-mtv}\n")})
          .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m") == "Succeeded");
  Json by_remote = c.sim_stats()["folder_bytes_by_remote"];
  uint64_t disk = file_size(c.flat_path("net-01"));
  CHECK(by_remote.value("127.0.0.2", uint64_t{0}) >= disk);
  // Only the coordinator's small descriptor read came from the default address.
  CHECK(by_remote.value("127.0.0.1", uint64_t{0}) < 64 * 1024);
  CHECK_FALSE(
      first_difference(c.flat_path("net-01"), vm_status(c, "m")["disks"][0]["path"]).has_value());
}

TEST_CASE("SIGTERM makes an agent checkpoint and release its task, its successor resumes",
          "[e2e]") {
  Cluster c({{.name = "term-01", .disk_mib = 96, .data_mib = 16}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(8 << 20)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"term-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s,
      [&] {
        Json vm = c.get_json("migration", "m")["status"]["vms"][0];
        return vm["disks"].size() == 1 && vm["disks"][0].value("bytesDone", 0) > (16 << 20);
      },
      200ms));
  c.agent("node-1").signal(SIGTERM);
  auto rc = c.agent("node-1").wait(15s);
  REQUIRE(rc.has_value());
  CHECK(*rc == 0);
  std::string volume = c.volume_root("node-1") + "/target/term-01-disk-0.img";
  CHECK(path_exists(volume + ".ferry-checkpoint"));
  c.start_agent("node-1");  // same node, no bandwidth cap: the redelivered task resumes
  REQUIRE(wait_migration(c, "m", 120) == "Succeeded");
  Json disk = c.get_json("migration", "m")["status"]["vms"][0]["disks"][0];
  CHECK(disk["result"]["bytesResumed"].get<uint64_t>() >= (8u << 20));
  CHECK_FALSE(first_difference(c.flat_path("term-01"), volume).has_value());
  CHECK_FALSE(path_exists(volume + ".ferry-checkpoint"));
}

TEST_CASE(
    "a source that keeps failing fails the VM with the source's error, stops its other disk, "
    "and a new Migration resumes both disks",
    "[e2e][faults]") {
  Cluster c({{.name = "two-01", .disk_mib = 64, .data_mib = 16, .extra_disks = 1}});
  c.start_coordinator();
  c.start_agent("node-1", {"--bandwidth", std::to_string(4 << 20)});
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("p", {"two-01"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m1", "p")}).rc == 0);
  // Both disks copy at once; once each has some data, every datastore read fails (HTTP 500).
  REQUIRE(eventually(
      60s,
      [&] {
        Json vm = vm_status(c, "m1");
        return vm["disks"].size() == 2 && vm["disks"][0].value("bytesDone", 0) > (4 << 20) &&
               vm["disks"][1].value("bytesDone", 0) > (4 << 20);
      },
      100ms));
  c.sim_post("/ferry-sim/faults", R"({"folder_fail_after_bytes": 0})");
  REQUIRE(wait_migration(c, "m1", 120) == "Failed");
  Json vm = vm_status(c, "m1");
  INFO(vm.dump(2));
  CHECK(vm["phase"] == "Failed");
  REQUIRE(vm["error"]["reasons"].size() == 1);
  std::string reason = vm["error"]["reasons"][0];
  // The source's own message (the body of its 500) and where it failed, after the retries.
  CHECK_THAT(reason, Catch::Contains("HTTP 500: 500 injected fault") && Catch::Contains("offset"));
  int failed = 0, stopped = 0;
  for (const auto& d : vm["disks"]) {
    std::string st = d.value("state", "");
    failed += st == "Failed";
    stopped += st == "Canceled";
  }
  CHECK(failed >= 1);
  CHECK(failed + stopped == 2);  // the other disk failed too, or was stopped by the VM's failure
  // The agent runs nothing for this VM any more; the volumes and their checkpoints stay.
  REQUIRE(eventually(10s, [&] {
    Json st = Json::parse(c.ctl({"status", "-o", "json"}).out);
    for (const auto& a : st["agents"])
      if (a.value("tasksRunning", 0) != 0) return false;
    return true;
  }));
  const std::string vol0 = c.volume_root("node-1") + "/target/two-01-disk-0.img",
                    vol1 = c.volume_root("node-1") + "/target/two-01-disk-1.img";
  CHECK(path_exists(vol0 + ".ferry-checkpoint"));
  CHECK(path_exists(vol1 + ".ferry-checkpoint"));

  // The source is healthy again: a new Migration of the same Plan (as in MTV)
  // finishes the VM, continuing both copies from their checkpoints.
  c.sim_post("/ferry-sim/faults", "{}");
  c.agent("node-1").kill();
  c.start_agent("node-1");  // no bandwidth cap now
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m2", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m2", 120) == "Succeeded");
  Json vm2 = vm_status(c, "m2");
  INFO(vm2.dump(2));
  REQUIRE(vm2["disks"].size() == 2);
  for (const auto& d : vm2["disks"])
    CHECK(d["result"]["bytesResumed"].get<uint64_t>() >= (4u << 20));
  CHECK_FALSE(first_difference(c.flat_path("two-01", 0), vol0).has_value());
  CHECK_FALSE(first_difference(c.flat_path("two-01", 1), vol1).has_value());
  CHECK_FALSE(path_exists(vol0 + ".ferry-checkpoint"));
  CHECK_FALSE(path_exists(vol1 + ".ferry-checkpoint"));
}
