// A VM's pipeline steps keep the times they ran: as the runner's phase
// changes enter them (VmStatus::enter_step), in the status document
// (store::vm_view) and in ferryctl's `describe` (ferryctl::elapsed).
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "common/base/clock.h"
#include "coordinator/migration/pipeline.h"
#include "coordinator/status/vm_status.h"
#include "coordinator/store/status_view.h"
#include "tools/ferryctl/ferryctl.h"

using namespace ferry::coordinator;
using ferry::coordinator::migration::Phase;
using Json = nlohmann::json;

namespace {
constexpr double kT0 = 1796000000;  // 2026-11-30T00:53:20Z

// A cold VM's pipeline as the runner lists it: PreHook and PostHook only with a hook.
status::VmStatus cold_vm(bool hooks) {
  status::VmStatus vm;
  vm.id = "vm-1";
  vm.name = "web";
  for (const auto& s : migration::step_names(false)) {
    if (!hooks && (s == "PreHook" || s == "PostHook")) continue;
    status::PipelineStep step;
    step.name = s;
    vm.pipeline.push_back(step);
  }
  return vm;
}

// Each phase entered at kT0 + its second, as set_phase does.
void run(status::VmStatus& vm, const std::vector<std::pair<Phase, double>>& phases) {
  for (const auto& [p, t] : phases) vm.enter_step(migration::step_of(p), ferry::iso_time(kT0 + t));
}

const Json& step_named(const Json& vm, const std::string& name) {
  for (const auto& s : vm["pipeline"])
    if (s["name"] == name) return s;
  FAIL("no step " << name);
  static const Json none;
  return none;
}

// A cold migration without hooks; the guest's conversion takes 165 s.
const std::vector<std::pair<Phase, double>> kCold = {{Phase::kStarted, 0},
                                                     {Phase::kPreHook, 0},
                                                     {Phase::kPreflightInspection, 0},
                                                     {Phase::kStorePowerState, 12},
                                                     {Phase::kPowerOffSource, 12},
                                                     {Phase::kWaitForPowerOff, 13},
                                                     {Phase::kCreateDataVolumes, 20},
                                                     {Phase::kCopyDisks, 25},
                                                     {Phase::kConvertGuest, 125},
                                                     {Phase::kCreateVM, 290},
                                                     {Phase::kPostHook, 296}};
}  // namespace

TEST_CASE("steps keep their start and end times when the VM has no hooks", "[step_times]") {
  status::VmStatus vm = cold_vm(false);
  run(vm, kCold);
  auto* conv = vm.step("ImageConversion");
  REQUIRE(conv);
  CHECK(conv->phase == "Completed");
  CHECK(conv->started == ferry::iso_time(kT0 + 125));
  CHECK(conv->completed == ferry::iso_time(kT0 + 290));
  // Not listed, PostHook leaves VirtualMachineCreation running.
  CHECK(vm.step("VirtualMachineCreation")->phase == "Running");
  CHECK(vm.step("VirtualMachineCreation")->started == ferry::iso_time(kT0 + 290));
  CHECK(vm.step("VirtualMachineCreation")->completed.empty());

  // The status document (what kubectl and the console read) and ferryctl's describe.
  Json doc = store::vm_view(Json(vm));
  CHECK(step_named(doc, "ImageConversion")["started"].get<std::string>() ==
        ferry::iso_time(kT0 + 125));
  CHECK(step_named(doc, "ImageConversion")["completed"].get<std::string>() ==
        ferry::iso_time(kT0 + 290));
  CHECK(ferry::ferryctl::elapsed(step_named(doc, "Initialize")) == "20s");
  CHECK(ferry::ferryctl::elapsed(step_named(doc, "DiskAllocation")) == "5s");
  CHECK(ferry::ferryctl::elapsed(step_named(doc, "DiskTransfer")) == "1m40s");
  CHECK(ferry::ferryctl::elapsed(step_named(doc, "ImageConversion")) == "2m45s");
  // Stored and loaded again, the same.
  CHECK(Json(Json(vm).get<status::VmStatus>()) == Json(vm));
}

TEST_CASE("a hook step that is not listed does not end the pipeline", "[step_times]") {
  status::VmStatus vm = cold_vm(false);
  run(vm, {{Phase::kStarted, 0}, {Phase::kPreHook, 1}});
  CHECK(vm.step("Initialize")->phase == "Running");
  CHECK(vm.step("Initialize")->started == ferry::iso_time(kT0));
  for (const char* s :
       {"DiskAllocation", "DiskTransfer", "ImageConversion", "VirtualMachineCreation"}) {
    INFO(s);
    CHECK(vm.step(s)->phase == "Pending");
    CHECK(vm.step(s)->started.empty());
    CHECK(vm.step(s)->completed.empty());
  }
}

TEST_CASE("with hooks, each step runs from its phase to the next step's", "[step_times]") {
  status::VmStatus vm = cold_vm(true);
  run(vm, kCold);
  CHECK(vm.step("Initialize")->completed == ferry::iso_time(kT0));  // PreHook came at once
  CHECK(vm.step("PreHook")->started == ferry::iso_time(kT0));
  CHECK(vm.step("ImageConversion")->started == ferry::iso_time(kT0 + 125));
  CHECK(vm.step("ImageConversion")->completed == ferry::iso_time(kT0 + 290));
  CHECK(vm.step("VirtualMachineCreation")->completed == ferry::iso_time(kT0 + 296));
  CHECK(vm.step("PostHook")->phase == "Running");
  CHECK(ferry::ferryctl::elapsed(Json(*vm.step("ImageConversion"))) == "2m45s");
}
