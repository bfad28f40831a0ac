// Warm migration from the vSphere simulator with changed block tracking:
// precopies of what the running guest changed, cutover (by command, by
// maxDowntime), and no precopy snapshot left behind on any path.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t kMiB = 1 << 20;

size_t precopies(Cluster& c, const std::string& migration) {
  Json vm = vm_status(c, migration);
  return vm.contains("warm") ? vm["warm"]["precopies"].size() : 0;
}

// Waits until the VM has finished more than `n` copies (the initial one counts).
void wait_precopies(Cluster& c, const std::string& migration, size_t n) {
  bool ok = eventually(
      60s, [&] { return precopies(c, migration) > n; }, 100ms);
  if (!ok) FAIL("no precopy after #" << n << ": " << vm_status(c, migration).dump(1));
}

// The guest writes `data` at `offset` of its first disk (through the
// simulator, which tracks the change); `model` gets the same write.
void guest_write(Cluster& c, const std::string& vm, const std::string& model, uint64_t offset,
                 const std::string& data, size_t disk = 0) {
  c.sim_post("/ferry-sim/disk-write?vm=" + vm + "&key=" + std::to_string(c.disk_key(vm, disk)) +
                 "&offset=" + std::to_string(offset),
             data);
  std::fstream f(model, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string pattern(uint64_t n, char seed) {
  std::string s(n, '\0');
  for (uint64_t i = 0; i < n; i++) s[i] = static_cast<char>(seed + (i * 7 + i / 4096) % 251);
  return s;
}

Json snapshots(Cluster& c, const std::string& vm) {
  return c.sim_get("/ferry-sim/vm?name=" + vm)["snapshots"];
}

// A copy of the VM's disk image (disk > 0: its extra disks) that test writes keep current.
std::string model_of(Cluster& c, const std::string& vm, size_t disk = 0) {
  std::string image = c.disk_image(vm, disk);
  std::string model = image.substr(0, image.size() - 4) + ".model";
  std::filesystem::copy_file(image, model);
  return model;
}

}  // namespace

TEST_CASE(
    "warm migration copies only what changed between precopies and cuts over to an "
    "identical disk",
    "[e2e][warm]") {
  // A small QueryChangedDiskAreas window makes the coordinator page through answers.
  Cluster c({{.name = "db-01",
              .disk_mib = 64,
              .data_mib = 8,
              .macs = {"00:50:56:aa:cc:01"},
              .cbt = true}},
            ClusterOptions{.cbt_query_window_bytes = 16 * kMiB});
  std::string model = model_of(c, "db-01");
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f",
                 c.write_manifests("warm-a", {"db-01"}, "  warm: true\n  precopyInterval: 3s\n")})
              .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-w", "warm-a")}).rc == 0);
  wait_precopies(c, "mig-w", 0);
  Json vm = vm_status(c, "mig-w");
  const Json& first = vm["warm"]["precopies"][0];
  CHECK(first["full"] == true);
  // The initial copy read the allocated areas, not the whole 64 MiB disk.
  CHECK(first["bytesRead"].get<uint64_t>() < 32 * kMiB);
  CHECK(first["changedBytes"].get<uint64_t>() >= 8 * kMiB);

  // Three rounds of guest writes, each followed by a precopy that reads about
  // what changed: new data in a former hole, an overwrite, zeros over data.
  struct Change {
    uint64_t offset;
    std::string data;
  };
  std::vector<Change> rounds = {{40 * kMiB, pattern(2 * kMiB, 'a')},
                                {1 * kMiB + 4096, pattern(3 * kMiB, 'q')},
                                {2 * kMiB, std::string(1 * kMiB, '\0')}};
  for (size_t i = 0; i < rounds.size(); i++) {
    INFO("round " << i);
    size_t before = precopies(c, "mig-w");
    guest_write(c, "db-01", model, rounds[i].offset, rounds[i].data);
    if (i == 1) {
      // One precopy fails to create its snapshot: retried, not fatal.
      c.sim_post("/ferry-sim/faults", R"({"snapshot_create_fail": 1})");
    }
    if (i == 2) {
      // One precopy cannot ask what changed (its snapshot exists by then): the
      // snapshot is removed and the next precopy copies this one's changes too.
      c.sim_post("/ferry-sim/faults", R"({"query_changed_fail": 1})");
    }
    // Wait for a precopy whose snapshot was taken after the write.
    wait_precopies(c, "mig-w", before);
    wait_precopies(c, "mig-w", before + 1);
  }
  vm = vm_status(c, "mig-w");
  const Json& pre = vm["warm"]["precopies"];
  uint64_t delta_read = 0, delta_changed = 0;
  for (size_t i = 1; i < pre.size(); i++) {
    INFO(pre[i].dump());
    CHECK(pre[i]["full"] == false);
    // Verification rounds ranges out to 1 MiB blocks: a little more is read.
    CHECK(pre[i]["bytesRead"].get<uint64_t>() <= pre[i]["changedBytes"].get<uint64_t>() + 2 * kMiB);
    delta_read += pre[i]["bytesRead"].get<uint64_t>();
    delta_changed += pre[i]["changedBytes"].get<uint64_t>();
  }
  CHECK(delta_changed >= 6 * kMiB);                  // everything written was found
  CHECK(delta_changed <= 6 * kMiB + 6 * 64 * 1024);  // and little else (64 KiB CBT blocks)
  CHECK(delta_read < 16 * kMiB);                     // the 64 MiB disk was not read again
  CHECK(c.sim_stats()["faults_fired"].get<int>() >= 2);
  // The prediction is shown once there is a delta to measure.
  auto d = c.ctl({"describe", "migration", "mig-w"});
  CHECK(d.out.find("Predicted downtime: ") != std::string::npos);
  CHECK(d.out.find("copies done") != std::string::npos);
  CHECK(vm["warm"]["predictedDowntime"]["available"] == true);

  // Last writes, then the cutover: power off, final delta, conversion skipped, VM.
  guest_write(c, "db-01", model, 60 * kMiB, pattern(512 * 1024, 'z'));
  auto cut = c.ctl({"cutover", "migration", "mig-w"});
  REQUIRE(cut.rc == 0);
  CHECK(cut.out.find("VM db-01: cutover now") != std::string::npos);
  REQUIRE(wait_migration(c, "mig-w", 120) == "Succeeded");
  vm = vm_status(c, "mig-w");
  std::string volume = vm["disks"][0]["path"];
  CHECK_FALSE(first_difference(model, volume).has_value());
  CHECK_FALSE(first_difference(c.flat_path("db-01"), volume).has_value());
  CHECK(vm["warm"]["stage"] == "final");
  CHECK(vm["warm"].contains("downtime"));
  CHECK(vm["warm"]["cutoverReason"].get<std::string>().find("spec.cutover") != std::string::npos);
  std::vector<std::string> steps;
  for (const auto& s : vm["pipeline"]) steps.push_back(s["name"].get<std::string>());
  CHECK(steps == std::vector<std::string>{"Initialize", "DiskAllocation", "DiskTransfer", "Cutover",
                                          "ImageConversion", "VirtualMachineCreation"});
  // No snapshot of ours, or anyone's, is left on the source.
  CHECK(snapshots(c, "db-01").empty());
  Json stats = c.sim_stats();
  CHECK(stats["snapshots_created"] == stats["snapshots_removed"]);
  // The source was powered off for the cutover; the target VM runs.
  CHECK(read_file(vm["vmManifestPath"]).find("runStrategy: Always") != std::string::npos);
}

TEST_CASE(
    "with maxDowntime Ferry cuts over by itself, a CBT reset forces a full copy, not "
    "corruption",
    "[e2e][warm]") {
  Cluster c({{.name = "app-01",
              .disk_mib = 48,
              .data_mib = 6,
              .macs = {"00:50:56:aa:cc:02"},
              .cbt = true}});
  std::string model = model_of(c, "app-01");
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(c.ctl({"apply", "-f",
                 c.write_manifests("warm-b", {"app-01"},
                                   "  warm: true\n  precopyInterval: 4s\n  maxDowntime: 10m\n")})
              .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-b", "warm-b")}).rc == 0);
  wait_precopies(c, "mig-b", 0);
  // CBT is reset under Ferry (old change IDs mean nothing now) and the guest writes.
  c.sim_post("/ferry-sim/cbt-reset", R"({"vm": "app-01"})");
  guest_write(c, "app-01", model, 30 * kMiB, pattern(kMiB, 'r'));
  REQUIRE(wait_migration(c, "mig-b", 180) == "Succeeded");
  Json vm = vm_status(c, "mig-b");
  const Json& w = vm["warm"];
  INFO(w.dump(1));
  bool warned = false;
  for (const auto& x : w["warnings"])
    warned = warned || x.get<std::string>().find("is no longer valid") != std::string::npos;
  CHECK(warned);
  bool refull = false;
  for (size_t i = 1; i < w["precopies"].size(); i++) refull = refull || w["precopies"][i]["full"];
  CHECK(refull);
  CHECK(w["cutoverReason"].get<std::string>().find("maxDowntime") != std::string::npos);
  CHECK(w["predictedAtCutover"]["available"] == true);
  CHECK(w["predictedAtCutover"]["seconds"].get<double>() <= 600);
  std::string volume = vm["disks"][0]["path"];
  CHECK_FALSE(first_difference(model, volume).has_value());
  CHECK(snapshots(c, "app-01").empty());
}

TEST_CASE("no precopy snapshot is left after a cancel or a coordinator restart mid-precopy",
          "[e2e][warm]") {
  Cluster c(
      {{.name = "c-01", .disk_mib = 64, .data_mib = 16, .macs = {"00:50:56:aa:cc:03"}, .cbt = true},
       {.name = "r-01",
        .base = "DC0_H0_VM1",
        .disk_mib = 64,
        .data_mib = 16,
        .macs = {"00:50:56:aa:cc:04"},
        .cbt = true}});
  std::string model = model_of(c, "r-01");
  c.start_coordinator();
  // 4 MiB/s: a precopy of a few MiB holds its snapshot for a second or more.
  c.start_agent("node-1", {"--bandwidth", std::to_string(4 * kMiB)});
  auto plan = [&](const std::string& name, const std::string& vm) {
    REQUIRE(c.ctl({"apply", "-f",
                   c.write_manifests(name, {vm}, "  warm: true\n  precopyInterval: 1s\n")})
                .rc == 0);
  };
  // Catches the moment a precopy snapshot of `vm` exists.
  auto while_snapshot = [&](const std::string& vm) {
    return eventually(
        60s, [&] { return !snapshots(c, vm).empty(); }, 20ms);
  };

  SECTION("cancel") {
    plan("warm-c", "c-01");
    REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-c", "warm-c")}).rc == 0);
    wait_precopies(c, "mig-c", 0);
    guest_write(c, "c-01", c.dir().file("c-01.img"), 20 * kMiB, pattern(4 * kMiB, 'c'));
    REQUIRE(while_snapshot("c-01"));
    REQUIRE(c.ctl({"cancel", "migration", "mig-c"}).rc == 0);
    REQUIRE(wait_migration(c, "mig-c") == "Canceled");
    CHECK(eventually(30s, [&] {
      return vm_status(c, "mig-c")["warm"].value("snapshotCleanup", "") == "Completed";
    }));
    CHECK(snapshots(c, "c-01").empty());
    // The cleanup found the precopy's snapshot (the cancel came mid-precopy).
    CHECK(read_file(c.dir().file("coordinator.stderr")).find(R"("removed":"1")") !=
          std::string::npos);
    // Nothing is left on the node either (the agent removes the volume when the
    // cancel reaches it, which may be a moment after the snapshot cleanup).
    CHECK(eventually(10s, [&] {
      return !std::filesystem::exists(c.volume_root("node-1") + "/target/c-01-disk-0.img");
    }));
  }

  SECTION("coordinator restart") {
    plan("warm-r", "r-01");
    REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-r", "warm-r")}).rc == 0);
    wait_precopies(c, "mig-r", 0);
    guest_write(c, "r-01", model, 24 * kMiB, pattern(4 * kMiB, 'k'));
    REQUIRE(while_snapshot("r-01"));
    c.kill_coordinator();
    // The guest keeps writing while no coordinator runs.
    guest_write(c, "r-01", model, 50 * kMiB, pattern(kMiB, 'm'));
    c.start_coordinator();
    size_t now = precopies(c, "mig-r");
    wait_precopies(c, "mig-r", now);  // cycling again
    REQUIRE(c.ctl({"cutover", "migration", "mig-r"}).rc == 0);
    REQUIRE(wait_migration(c, "mig-r", 120) == "Succeeded");
    Json vm = vm_status(c, "mig-r");
    CHECK_FALSE(first_difference(model, vm["disks"][0]["path"].get<std::string>()).has_value());
    CHECK(snapshots(c, "r-01").empty());
  }
}

TEST_CASE(
    "a precopy that fails on one disk of two aborts the other's transfer, the next precopy "
    "catches up and the cutover gives identical disks",
    "[e2e][warm][faults]") {
  Cluster c({{.name = "pair-01", .disk_mib = 64, .data_mib = 8, .cbt = true, .extra_disks = 1}});
  std::string model0 = model_of(c, "pair-01", 0), model1 = model_of(c, "pair-01", 1);
  c.start_coordinator();
  // Slow copies, so that one disk's transfer is still running when the other fails.
  c.start_agent("node-1", {"--bandwidth", std::to_string(1 << 20)});
  REQUIRE(c.ctl({"apply", "-f",
                 c.write_manifests("warm-p", {"pair-01"}, "  warm: true\n  precopyInterval: 4s\n")})
              .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-p", "warm-p")}).rc == 0);
  wait_precopies(c, "mig-p", 0);
  REQUIRE(vm_status(c, "mig-p")["disks"].size() == 2);
  std::set<std::string> initial_tasks;
  Json at_start = vm_status(c, "mig-p");  // (a range-for over a temporary's member would dangle)
  for (const auto& d : at_start["disks"]) initial_tasks.insert(d.value("taskId", ""));

  // Both disks change by 6 MiB (6 s each at the agent's 1 MiB/s).
  guest_write(c, "pair-01", model0, 40 * kMiB, pattern(6 * kMiB, 'a'), 0);
  guest_write(c, "pair-01", model1, 20 * kMiB, pattern(6 * kMiB, 'b'), 1);
  // Once both deltas are being copied, every datastore read fails (HTTP 500).
  const size_t before = precopies(c, "mig-p");
  REQUIRE(eventually(
      60s,
      [&] {
        Json now = vm_status(c, "mig-p");
        for (const auto& d : now["disks"]) {
          uint64_t total = d.value("bytesTotal", uint64_t{0});
          if (initial_tasks.count(d.value("taskId", "")) || d.value("state", "") != "Running" ||
              d.value("bytesDone", 0) == 0 || total < 6 * kMiB || total > 7 * kMiB)
            return false;
        }
        return true;
      },
      50ms));
  c.sim_post("/ferry-sim/faults", R"({"folder_fail_after_bytes": 0})");
  std::set<std::string> seen;  // disk states while the failed cycle unwinds
  REQUIRE(eventually(
      90s,
      [&] {
        Json vm = vm_status(c, "mig-p");
        bool busy = false;
        for (const auto& d : vm["disks"]) {
          std::string st = d.value("state", "");
          seen.insert(st);
          busy = busy || st == "Running" || st == "Aborting" || st == "Queued";
        }
        return vm["warm"].value("failures", 0) >= 1 && !busy;
      },
      50ms));
  Json vm = vm_status(c, "mig-p");
  INFO(vm.dump(1));
  CHECK(vm["phase"] != "Failed");
  CHECK_THAT(vm["warm"].value("lastError", ""), Catch::Contains("500"));
  // One transfer failed; the other was stopped, not deleted: Aborting, then Aborted.
  CHECK(seen.count("Failed") == 1);
  CHECK(seen.count("Aborted") == 1);
  c.sim_post("/ferry-sim/faults", "{}");

  // The retried precopy (a new snapshot) covers both disks' changes.
  wait_precopies(c, "mig-p", before);
  vm = vm_status(c, "mig-p");
  CHECK(vm["warm"]["failures"] == 0);
  guest_write(c, "pair-01", model1, 2 * kMiB, pattern(256 * 1024, 'c'), 1);
  REQUIRE(c.ctl({"cutover", "migration", "mig-p"}).rc == 0);
  REQUIRE(wait_migration(c, "mig-p", 120) == "Succeeded");
  vm = vm_status(c, "mig-p");
  CHECK_FALSE(first_difference(model0, vm["disks"][0]["path"].get<std::string>()).has_value());
  CHECK_FALSE(first_difference(model1, vm["disks"][1]["path"].get<std::string>()).has_value());
  CHECK(snapshots(c, "pair-01").empty());
  Json stats = c.sim_stats();
  CHECK(stats["snapshots_created"] == stats["snapshots_removed"]);
}

TEST_CASE("cluster mode: a warm migration cuts over when kubectl patch sets spec.cutover",
          "[e2e][warm][k8s]") {
  Cluster c({{.name = "kw-01", .disk_mib = 64, .data_mib = 8, .cbt = true}});
  std::string model = model_of(c, "kw-01");
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1");
  REQUIRE(
      k8s.kubectl({"apply", "-f",
                   c.write_manifests("warm-k", {"kw-01"}, "  warm: true\n  precopyInterval: 3s\n")})
          .rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "warm-k") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("mig-k", "warm-k")}).rc == 0);
  wait_precopies(c, "mig-k", 0);
  guest_write(c, "kw-01", model, 40 * kMiB, pattern(2 * kMiB, 'k'));
  size_t before = precopies(c, "mig-k");
  wait_precopies(c, "mig-k", before);
  // Still copying: no cutover without spec.cutover.
  CHECK(k8s.phase("migration", "mig-k") == "Running");
  guest_write(c, "kw-01", model, 60 * kMiB, pattern(512 * 1024, 'z'));
  REQUIRE(k8s.kubectl({"patch", "migration", "mig-k", "-n", "openshift-mtv", "--type=merge", "-p",
                       R"({"spec":{"cutover":"2026-01-01T00:00:00Z"}})"})
              .rc == 0);
  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "mig-k") == "Succeeded"; }, 500ms));
  Json vm = vm_status(c, "mig-k");
  CHECK(vm["warm"]["cutoverReason"].get<std::string>().find("spec.cutover") != std::string::npos);
  CHECK_FALSE(first_difference(model, vm["disks"][0]["path"]).has_value());
  CHECK(snapshots(c, "kw-01").empty());
}
