// VmStatus: the JSON it writes is the shape ferryctl and stored statuses
// know (fields not set are left out), and it reads back what it wrote.
#include <catch2/catch.hpp>

#include "coordinator/status/vm_status.h"

using namespace ferry::coordinator::status;
using Json = nlohmann::json;

TEST_CASE("a new VM's status has only what is set", "[vm_status]") {
  VmStatus vm;
  vm.id = "vm-1";
  vm.name = "web";
  vm.targetName = "web";
  PipelineStep s;
  s.name = "Initialize";
  vm.pipeline.push_back(s);
  Json j = vm;
  CHECK(j ==
        Json::parse(R"({"id":"vm-1","name":"web","targetName":"web","phase":"Pending","disks":[],
                             "pipeline":[{"name":"Initialize","phase":"Pending"}]})"));
  CHECK(j.get<VmStatus>().pipeline.at(0).name == "Initialize");
}

TEST_CASE("a VM's status reads back what it wrote, field by field", "[vm_status]") {
  VmStatus vm;
  vm.id = "vm-7";
  vm.name = "db";
  vm.targetName = "db";
  vm.phase = "CopyDisks";
  vm.node = "node-a";
  vm.sourcePowerState = "On";
  vm.poweredOff = true;
  DiskStatus d;
  d.key = 2000;
  d.file = "[ds] db/db.vmdk";
  d.capacity = 1 << 30;
  d.storageClass = "local";
  d.taskId = "ns.m.vm-7.2000";
  d.state = TaskState::kRunning;
  d.bytesDone = 4096;
  d.bytesTotal = 1 << 30;
  d.result = DiskResult{.bytesRead = 1,
                        .bytesWritten = 2,
                        .bytesZero = 3,
                        .bytesResumed = 0,
                        .seconds = 1.5,
                        .digest = "xxh3:ab"};
  d.copy = WarmCopy{.base = "*", .changedBytes = 7, .full = true, .warning = ""};
  vm.disks.push_back(d);
  vm.hooks["PreHook"].hook = {"ns", "h"};
  vm.hooks["PreHook"].state = TaskState::kCompleted;
  vm.hooks["PreHook"].runs = 1;
  vm.hooks["PreHook"].attempts = 1;
  vm.hooks["PreHook"].seconds = 0;  // a run's end writes these even when zero
  vm.hooks["PreHook"].log = "";
  vm.warm.emplace();
  vm.warm->snapshotSeq = 3;
  vm.warm->changeIds["2000"] = "52 aa/4";
  vm.warm->snapshot = Snapshot{"snapshot-9", "ferry-ns-m-3", "2026-12-05T00:00:00Z"};
  PrecopyCycle c;
  c.snapshot = 2;
  c.stage = "precopy";
  c.snapshotAt = 100;
  c.changedBytes = 5;
  vm.warm->precopies.push_back(c);
  vm.warm->nextPrecopyAt = 160;
  vm.warm->predictedDowntime = PredictedDowntime{};
  vm.warm->predictedDowntime->reason = "needs the initial copy";
  vm.conversion.emplace();
  vm.conversion->taskId = "t";
  vm.conversion->state = TaskState::kFailed;
  vm.error = VmError{"ConvertGuest", "ImageConversion", {"virt-v2v failed"}};

  Json j = vm;
  CHECK(j["disks"][0]["state"] == "Running");
  CHECK(j["disks"][0]["copy"]["full"] == true);
  CHECK_FALSE(j["disks"][0].contains("rate"));  // not set: left out
  CHECK(j["hooks"]["PreHook"]["hook"] == Json{{"namespace", "ns"}, {"name", "h"}});
  CHECK(j["hooks"]["PreHook"]["seconds"] == 0);
  CHECK(j["hooks"]["PreHook"]["log"] == "");
  CHECK(j["warm"]["changeIds"]["2000"] == "52 aa/4");
  CHECK(j["warm"]["predictedDowntime"] ==
        Json{{"available", false}, {"reason", "needs the initial copy"}});
  CHECK_FALSE(j["warm"].contains("notBefore"));
  CHECK_FALSE(j.contains("inspection"));
  CHECK(j["poweredOff"] == true);

  VmStatus back = j.get<VmStatus>();
  CHECK(Json(back) == j);
  CHECK(back.disks.at(0).state == TaskState::kRunning);
  CHECK(back.disks.at(0).result->digest == "xxh3:ab");
  CHECK(back.warm->snapshot->id == "snapshot-9");
  CHECK(back.warm->precopies.at(0).changedBytes == 5u);
  CHECK_FALSE(back.warm->precopies.at(0).copySeconds.has_value());
  CHECK(back.error->reasons.at(0) == "virt-v2v failed");
}

TEST_CASE("a stored VM of the wrong shape does not load", "[vm_status]") {
  CHECK_THROWS(Json::array().get<VmStatus>());
  CHECK_THROWS(Json{{"id", "x"}, {"disks", "none"}}.get<VmStatus>());
  CHECK_THROWS(Json{{"id", "x"}, {"disks", Json::array({{{"capacity", "big"}}})}}.get<VmStatus>());
  CHECK_THROWS(Json{{"id", 5}}.get<VmStatus>());
  // A state that is not one, or none, is read as Unknown, not refused, and an
  // unknown state is never written as null.
  auto vm = Json{{"id", "x"}, {"disks", Json::array({{{"state", "Sleeping"}}, {{"key", 1}}})}}
                .get<VmStatus>();
  CHECK(vm.disks.at(0).state == TaskState::kUnknown);
  CHECK(vm.disks.at(1).state == TaskState::kUnknown);
  CHECK_FALSE(Json(vm)["disks"][0].contains("state"));
}
