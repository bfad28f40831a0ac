#include <catch2/catch.hpp>

#include "coordinator/migration/pipeline.h"
#include "coordinator/migration/warm.h"
#include "coordinator/scheduler/scheduler.h"
#include "coordinator/target/kubevirt.h"

using namespace ferry::coordinator;
using migration::Phase;

TEST_CASE("the cold pipeline walks Forklift's phases in order") {
  std::vector<std::string> names;
  Phase p = Phase::kStarted;
  while (!migration::is_terminal(p)) {
    names.push_back(migration::phase_name(p));
    Phase n = migration::next_phase(p);
    CHECK(migration::can_transition(p, n));
    p = n;
  }
  CHECK(names == std::vector<std::string>{"Started", "PreHook", "PreflightInspection",
                                          "StorePowerState", "PowerOffSource", "WaitForPowerOff",
                                          "CreateDataVolumes", "CopyDisks", "ConvertGuest",
                                          "CreateVM", "PostHook"});
  CHECK(migration::step_of(Phase::kCopyDisks) == "DiskTransfer");
  CHECK(migration::step_of(Phase::kCreateDataVolumes) == "DiskAllocation");
  CHECK(migration::phase_from_name("CopyDisks") == Phase::kCopyDisks);
  CHECK_FALSE(migration::phase_from_name("Pending").has_value());
}

TEST_CASE(
    "every invalid transition is refused, failure and cancel are allowed from any live phase") {
  const Phase all[] = {Phase::kStarted,
                       Phase::kPreHook,
                       Phase::kPreflightInspection,
                       Phase::kStorePowerState,
                       Phase::kPowerOffSource,
                       Phase::kWaitForPowerOff,
                       Phase::kCreateDataVolumes,
                       Phase::kCopyDisks,
                       Phase::kConvertGuest,
                       Phase::kCreateVM,
                       Phase::kPostHook,
                       Phase::kCompleted,
                       Phase::kFailed,
                       Phase::kCanceled};
  for (Phase from : all)
    for (Phase to : all) {
      bool expected =
          !migration::is_terminal(from) &&
          (to == Phase::kFailed || to == Phase::kCanceled || to == migration::next_phase(from));
      INFO(migration::phase_name(from) << " -> " << migration::phase_name(to));
      CHECK(migration::can_transition(from, to) == expected);
    }
}

TEST_CASE("the warm pipeline: initial copy, precopy loop, cutover") {
  using migration::WarmStage;
  auto walk = [](Phase p, WarmStage stage, bool cutover, int steps) {
    std::vector<std::string> names;
    for (int i = 0; i < steps; i++) {
      names.push_back(migration::phase_name(p));
      if (p == Phase::kCreateSnapshot) stage = WarmStage::kPrecopy;
      if (p == Phase::kCreateFinalSnapshot) stage = WarmStage::kFinal;
      p = migration::next_warm_phase(p, stage, cutover);
    }
    return names;
  };
  CHECK(walk(Phase::kStarted, WarmStage::kInitial, false, 14) ==
        std::vector<std::string>{"Started", "PreHook", "CreateInitialSnapshot",
                                 "PreflightInspection", "StoreInitialSnapshotDeltas",
                                 "CreateDataVolumes", "CopyDisks", "RemovePreviousSnapshot",
                                 "AddCheckpoint", "CopyingPaused", "CreateSnapshot",
                                 "StoreSnapshotDeltas", "CopyDisks", "RemovePreviousSnapshot"});
  CHECK(walk(Phase::kCopyingPaused, WarmStage::kPrecopy, true, 14) ==
        std::vector<std::string>{"CopyingPaused", "StorePowerState", "PowerOffSource",
                                 "WaitForPowerOff", "CreateFinalSnapshot", "StoreSnapshotDeltas",
                                 "CopyDisks", "RemoveFinalSnapshot", "AddFinalCheckpoint",
                                 "ConvertGuest", "CreateVM", "PostHook", "Completed", "Completed"});
  // Shared phases are shown under DiskTransfer while precopying, Cutover at the end.
  CHECK(migration::warm_step_of(Phase::kCopyDisks, WarmStage::kPrecopy) == "DiskTransfer");
  CHECK(migration::warm_step_of(Phase::kCopyDisks, WarmStage::kFinal) == "Cutover");
  CHECK(migration::warm_step_of(Phase::kPowerOffSource, WarmStage::kPrecopy) == "Cutover");
  CHECK(migration::step_of(Phase::kPowerOffSource) == "Initialize");  // cold
  CHECK(migration::step_names(true)[4] == "Cutover");
  CHECK(migration::step_names(false).size() == 7);
  // Warm phases are not part of the cold itinerary.
  CHECK_FALSE(migration::can_transition(Phase::kCopyingPaused, Phase::kCreateSnapshot));
}

TEST_CASE("the warm transition table: both walks, the recovery edges, nothing else") {
  using migration::WarmStage;
  // Every step of the walks above is allowed.
  for (bool cutover : {false, true}) {
    Phase p = Phase::kStarted;
    WarmStage stage = WarmStage::kInitial;
    for (int i = 0; i < 30 && !migration::is_terminal(p); i++) {
      if (p == Phase::kCreateSnapshot) stage = WarmStage::kPrecopy;
      if (p == Phase::kCreateFinalSnapshot) stage = WarmStage::kFinal;
      Phase n = migration::next_warm_phase(p, stage, cutover || i > 12);
      INFO(migration::phase_name(p) << " -> " << migration::phase_name(n));
      CHECK(migration::can_transition(p, n, true));
      p = n;
    }
    CHECK(p == Phase::kCompleted);
  }
  // A failed cycle removes its snapshot and goes back to wait or retry.
  CHECK(migration::can_transition(Phase::kCopyDisks, Phase::kRemovePreviousSnapshot, true));
  CHECK(migration::can_transition(Phase::kRemoveFinalSnapshot, Phase::kRemoveFinalSnapshot, true));
  CHECK(migration::can_transition(Phase::kRemovePreviousSnapshot, Phase::kCopyingPaused, true));
  CHECK(migration::can_transition(Phase::kRemoveFinalSnapshot, Phase::kCreateFinalSnapshot, true));
  CHECK(migration::can_transition(Phase::kStoreInitialSnapshotDeltas, Phase::kCreateInitialSnapshot,
                                  true));
  // Not allowed: skipping ahead, going back outside the cycle, leaving a terminal phase.
  CHECK_FALSE(migration::can_transition(Phase::kStarted, Phase::kCopyDisks, true));
  CHECK_FALSE(migration::can_transition(Phase::kCopyingPaused, Phase::kConvertGuest, true));
  CHECK_FALSE(migration::can_transition(Phase::kConvertGuest, Phase::kCopyingPaused, true));
  CHECK_FALSE(migration::can_transition(Phase::kPreHook, Phase::kRemovePreviousSnapshot, true));
  CHECK_FALSE(migration::can_transition(Phase::kCreateVM, Phase::kCreateVM, true));
  CHECK_FALSE(migration::can_transition(Phase::kCompleted, Phase::kFailed, true));
  CHECK_FALSE(migration::can_transition(Phase::kFailed, Phase::kCopyingPaused, true));
  // And the warm edges are not cold ones.
  CHECK_FALSE(migration::can_transition(Phase::kCopyDisks, Phase::kRemovePreviousSnapshot));
}

TEST_CASE("predicted downtime comes from measured change and copy rates") {
  using migration::CycleSample;
  constexpr uint64_t MiB = 1 << 20;
  // Initial copy: 1000 MiB in 10 s (100 MiB/s).
  std::vector<CycleSample> c = {{.snapshot_at = 0,
                                 .changed_bytes = 1000 * MiB,
                                 .copy_seconds = 10,
                                 .snapshot_seconds = 1,
                                 .full = true}};
  CHECK_FALSE(migration::predict_downtime(c, 100).available);  // no change rate yet
  // Two deltas: 60 MiB over 60 s, then 120 MiB over 60 s; each also paid 2 s fixed.
  c.push_back(
      {.snapshot_at = 60, .changed_bytes = 60 * MiB, .copy_seconds = 2.6, .snapshot_seconds = 1});
  c.push_back(
      {.snapshot_at = 120, .changed_bytes = 120 * MiB, .copy_seconds = 3.2, .snapshot_seconds = 1});
  auto p = migration::predict_downtime(c, 150);
  REQUIRE(p.available);
  CHECK(p.copy_rate == Approx(100.0 * MiB));
  CHECK(p.change_rate == Approx(2.0 * MiB));  // the larger of 1 and 2 MiB/s
  CHECK(p.fixed_seconds == Approx(2.0));
  CHECK(p.expected_bytes == 60 * MiB);  // 30 s since the last snapshot at 2 MiB/s
  CHECK(p.seconds == Approx(1 + 2 + 0.6));
  // Later cutover, bigger delta, longer downtime.
  CHECK(migration::predict_downtime(c, 720).seconds > p.seconds);
  // A full re-copy (CBT reset) is not taken for the guest's change rate.
  c.push_back({.snapshot_at = 180,
               .changed_bytes = 1000 * MiB,
               .copy_seconds = 10,
               .snapshot_seconds = 1,
               .full = true});
  CHECK(migration::predict_downtime(c, 180).change_rate == Approx(2.0 * MiB));
  CHECK(migration::warm_snapshot_prefix("ns", "m") == "ferry-precopy-ns.m-");
}

TEST_CASE("slots cap transfers per source host and per node") {
  scheduler::Slots s(2);
  s.set_node_limit("n1", 3);
  CHECK(s.can_start("h1", "n1"));
  s.start("h1", "n1");
  s.start("h1", "n1");
  CHECK_FALSE(s.can_start("h1", "n1"));  // host h1 is full (2)
  CHECK(s.can_start("h2", "n1"));
  s.start("h2", "n1");
  CHECK_FALSE(s.can_start("h3", "n1"));  // node n1 is full (3)
  CHECK(s.can_start("h3", "n2"));        // default node limit 4
  s.finish("h1", "n1");
  CHECK(s.can_start("h1", "n1"));
  CHECK(s.running_on_host("h1") == 1);
}

TEST_CASE("volume names and the VirtualMachine manifest") {
  CHECK(target::volume_name("", "web-01", "p", 0) == "web-01-disk-0");
  CHECK(target::volume_name("{{.PlanName}}-{{.VmName}}-{{.DiskIndex}}", "Web", "plan", 2) ==
        "plan-web-2");
  CHECK(target::requested_size(1000 << 20, true) == 1100ull << 20);
  CHECK(target::requested_size(1000 << 20, false) == 1000ull << 20);
  target::VmManifestInput in;
  in.name = "web-01";
  in.ns = "t";
  in.source_vm = {
      {"id", "vm-1"}, {"cpus", 2}, {"memoryMB", 4096}, {"firmware", "efi"}, {"uuid", "u-1"}};
  in.volumes = {{{"name", "web-01-disk-0"}}, {{"name", "web-01-disk-1"}}};
  in.networks = {
      {{"type", "pod"}, {"mac", "00:50:56:00:00:01"}},
      {{"type", "multus"}, {"name", "vlan"}, {"namespace", "t"}, {"mac", "00:50:56:00:00:02"}},
      {{"type", "ignored"}, {"mac", "00:50:56:00:00:03"}}};
  in.running = true;
  auto vm = target::virtual_machine(in);
  const auto& dom = vm["spec"]["template"]["spec"]["domain"];
  CHECK(vm["spec"]["runStrategy"] == "Always");
  CHECK(dom["devices"]["disks"].size() == 2);
  CHECK(dom["devices"]["disks"][0]["disk"]["bus"] == "virtio");
  CHECK(dom["devices"]["interfaces"].size() == 2);
  CHECK(dom["devices"]["interfaces"][1]["macAddress"] == "00:50:56:00:00:02");
  CHECK(vm["spec"]["template"]["spec"]["networks"][1]["multus"]["networkName"] == "t/vlan");
  CHECK(dom["firmware"]["bootloader"].contains("efi"));
  CHECK(dom["memory"]["guest"] == "4096Mi");
  in.compatibility_devices = true;
  auto compat = target::virtual_machine(in);
  CHECK(compat["spec"]["template"]["spec"]["domain"]["devices"]["disks"][0]["disk"]["bus"] ==
        "sata");
  CHECK(compat["spec"]["template"]["spec"]["domain"]["devices"]["interfaces"][0]["model"] ==
        "e1000e");
}
