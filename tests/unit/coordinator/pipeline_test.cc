#include <catch2/catch.hpp>

#include "coordinator/migration/pipeline.h"
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
  CHECK(names == std::vector<std::string>{"Started", "PreHook", "StorePowerState", "PowerOffSource",
                                          "WaitForPowerOff", "CreateDataVolumes", "CopyDisks",
                                          "ConvertGuest", "CreateVM", "PostHook"});
  CHECK(migration::step_of(Phase::kCopyDisks) == "DiskTransfer");
  CHECK(migration::step_of(Phase::kCreateDataVolumes) == "DiskAllocation");
  CHECK(migration::phase_from_name("CopyDisks") == Phase::kCopyDisks);
  CHECK_FALSE(migration::phase_from_name("Pending").has_value());
}

TEST_CASE(
    "every invalid transition is refused; failure and cancel are allowed from any live phase") {
  const Phase all[] = {Phase::kStarted,        Phase::kPreHook,         Phase::kStorePowerState,
                       Phase::kPowerOffSource, Phase::kWaitForPowerOff, Phase::kCreateDataVolumes,
                       Phase::kCopyDisks,      Phase::kConvertGuest,    Phase::kCreateVM,
                       Phase::kPostHook,       Phase::kCompleted,       Phase::kFailed,
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
  CHECK(vm["spec"]["running"] == true);
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
