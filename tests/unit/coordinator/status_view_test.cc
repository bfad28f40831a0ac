// store::status_view: the status kubectl reads stays under etcd's object limit
// and keeps per-VM progress as long as it fits.
#include <catch2/catch.hpp>

#include "coordinator/store/status_view.h"

using namespace ferry::coordinator::store;
using Json = nlohmann::json;

namespace {
// A VM status as the coordinator keeps it, with its working fields.
Json vm(size_t i, const std::string& phase) {
  Json steps = Json::array();
  int n = 0;
  for (const char* s : {"Initialize", "DiskAllocation", "DiskTransfer", "ImageConversion",
                        "VirtualMachineCreation"})
    steps.push_back({{"name", s},
                     {"phase", phase == "Completed" ? "Completed"
                               : n++ < 2            ? "Completed"
                               : n == 3             ? "Running"
                                                    : "Pending"},
                     {"progress", {{"completed", 512}, {"total", 1024}}},
                     {"started", "2026-12-04T10:00:00Z"},
                     {"completed", "2026-12-04T10:05:00Z"}});
  return {{"id", "vm-" + std::to_string(1000 + i)},
          {"name", "app-server-" + std::to_string(i)},
          {"phase", phase},
          {"started", "2026-12-04T10:00:00Z"},
          {"pipeline", steps},
          {"disks",
           {{{"key", 2000},
             {"taskId", "0123456789abcdef0123456789abcdef"},
             {"path", "/var/lib/ferry/volumes/target/app-server-disk-0.img"},
             {"state", "Running"}}}},
          {"node", "worker-3"}};
}
}  // namespace

TEST_CASE("a VM's API view keeps Forklift's fields and drops the working ones") {
  Json v = vm_view(vm(1, "CopyingDisks"));
  CHECK(v["id"] == "vm-1001");
  CHECK(v["pipeline"].size() == 5);
  CHECK(v["pipeline"][2]["progress"]["completed"] == 512);
  CHECK_FALSE(v.contains("disks"));
  CHECK_FALSE(v.contains("node"));
  CHECK_FALSE(vm_view(vm(1, "CopyingDisks"), Detail::kNone).contains("pipeline"));
  Json running = vm_view(vm(1, "CopyingDisks"), Detail::kRunningSteps)["pipeline"];
  REQUIRE(running.size() == 1);
  CHECK(running[0]["name"] == "DiskTransfer");
}

TEST_CASE("a Migration status of 5,000 VMs stays under the limit with per-VM progress") {
  Json summary = {{"phase", "Running"}, {"vmCount", 5000}, {"plan", "Plan openshift-mtv/big"}};
  VmViews vms;
  for (size_t i = 0; i < 5000; i++)
    vms[i] = std::make_shared<const Json>(vm(i, i < 4000 ? "Completed" : "CopyingDisks"));
  Json st = status_view("Migration", summary, vms);
  size_t bytes = st.dump().size();
  CHECK(bytes <= kApiStatusBytes);
  CHECK_FALSE(st.contains("vmCount"));
  REQUIRE(st["vms"].size() == 5000);
  CHECK_FALSE(st.contains("vmsOmitted"));
  // Finished VMs lost their pipeline; running ones kept the step they run.
  CHECK_FALSE(st["vms"][0].contains("pipeline"));
  REQUIRE(st["vms"][4999]["pipeline"].size() == 1);
  CHECK(st["vms"][4999]["pipeline"][0]["progress"]["completed"] == 512);
  WARN("5,000 VMs (1,000 running): " << bytes << " bytes");

  SECTION("all 5,000 under way at once: each keeps its running step") {
    for (auto& [i, v] : vms) v = std::make_shared<const Json>(vm(i, "CopyingDisks"));
    Json all = status_view("Migration", summary, vms);
    CHECK(all.dump().size() <= kApiStatusBytes);
    CHECK(all["vms"].size() == 5000);
    CHECK(all["vms"][0]["pipeline"].size() == 1);
    CHECK(all["vms"][0]["phase"] == "CopyingDisks");
    WARN("5,000 VMs (all running): " << all.dump().size() << " bytes");
  }
  SECTION("a tiny limit cuts the list and says how many are missing") {
    Json cut = status_view("Migration", summary, vms, 64 * 1024);
    CHECK(cut.dump().size() <= 64 * 1024);
    CHECK(cut["vmsOmitted"].get<size_t>() + cut["vms"].size() == 5000);
  }
  SECTION("a small Migration shows every pipeline") {
    VmViews few = {{0, std::make_shared<const Json>(vm(0, "Completed"))},
                   {1, std::make_shared<const Json>(vm(1, "CopyingDisks"))}};
    Json s = status_view("Migration", summary, few);
    CHECK(s["vms"][0]["pipeline"].size() == 5);
  }
}
