// The oVirt engine's JSON collections (string-typed numbers and booleans,
// nested lists as {"outer":{"inner":[...]}}) into the neutral inventory.
#include <catch2/catch.hpp>

#include "coordinator/providers/ovirt/inventory.h"
#include "coordinator/providers/provider.h"

using ferry::coordinator::Json;
using namespace ferry::coordinator::ovirt;

namespace {

EngineCollections engine() {
  EngineCollections c;
  c.datacenters = Json::parse(R"({"data_center":[{"id":"dc1","name":"Default"}]})");
  c.clusters = Json::parse(R"({"cluster":[{"id":"cl1","name":"c1","data_center":{"id":"dc1"}}]})");
  c.hosts = Json::parse(
      R"({"host":[{"id":"h1","name":"host1","address":"10.0.0.5","cluster":{"id":"cl1"}}]})");
  c.networks = Json::parse(R"({"network":[{"id":"n1","name":"ovirtmgmt"}]})");
  c.vnicprofiles =
      Json::parse(R"({"vnic_profile":[{"id":"p1","name":"ovirtmgmt","network":{"id":"n1"}}]})");
  c.storagedomains = Json::parse(
      R"({"storage_domain":[{"id":"sd1","name":"data","available":"1000","used":"24",
          "data_centers":{"data_center":[{"id":"dc1"}]}}]})");
  c.vms = Json::parse(R"({"vm":[{
      "id":"vm1","name":"web","status":"up","cluster":{"id":"cl1"},"host":{"id":"h1"},
      "memory":"2147483648","cpu":{"topology":{"sockets":"2","cores":"2","threads":"1"}},
      "os":{"type":"rhel_9x64"},"bios":{"type":"q35_ovmf"},"has_illegal_images":"false",
      "disk_attachments":{"disk_attachment":[
        {"id":"d1","bootable":"true","interface":"virtio_scsi","disk":{"id":"d1"}},
        {"id":"d2","bootable":"false","interface":"ide","disk":{"id":"d2"}}]},
      "nics":{"nic":[{"id":"nic1","name":"nic1","interface":"virtio","plugged":"true",
        "mac":{"address":"56:6f:00:00:00:01"},"vnic_profile":{"id":"p1"},
        "reported_devices":{"reported_device":[{"ips":{"ip":[{"address":"10.1.1.9","version":"v4"}]}}]}}]},
      "snapshots":{"snapshot":[{"id":"s0","snapshot_type":"active"}]},
      "watchdogs":{"watchdog":[{"id":"w1","action":"reset"}]}}]})");
  c.disks = Json::parse(R"({"disk":[
      {"id":"d1","alias":"web_Disk1","provisioned_size":"10737418240","status":"ok",
       "storage_type":"image","shareable":"false","backup":"incremental",
       "storage_domains":{"storage_domain":[{"id":"sd1"}]}},
      {"id":"d2","alias":"web_Disk2","provisioned_size":"1073741824","status":"ok",
       "storage_type":"image","sharable":"false",
       "storage_domains":{"storage_domain":[{"id":"sd1"}]}}]})");
  return c;
}

const Json* concern(const Json& vm, const std::string& label) {
  for (const auto& c : vm["concerns"])
    if (c["label"] == label) return &c;
  return nullptr;
}

}  // namespace

TEST_CASE("ovirt inventory: the engine's collections in the neutral shape", "[ovirt]") {
  Json inv = to_inventory(engine());
  REQUIRE(inv["vms"].size() == 1);
  const Json& vm = inv["vms"][0];
  CHECK(vm["name"] == "web");
  CHECK(vm["datacenter"] == "Default");
  CHECK(vm["host"] == "h1");
  CHECK(vm["powerState"] == "On");
  CHECK(vm["firmware"] == "efi");
  CHECK(vm["cpus"] == 4);
  CHECK(vm["memoryMB"] == 2048);
  CHECK(vm["hasSnapshots"] == false);  // the "Active VM" snapshot is the VM itself
  REQUIRE(vm["disks"].size() == 2);
  // Keys are made from the engine's ids: the same disk, whatever the order.
  int key1 = vm["disks"][0]["key"], key2 = vm["disks"][1]["key"];
  CHECK(key1 > 0);
  CHECK(key1 != key2);
  auto swapped = engine();
  std::swap(swapped.vms["vm"][0]["disk_attachments"]["disk_attachment"][0],
            swapped.vms["vm"][0]["disk_attachments"]["disk_attachment"][1]);
  CHECK(to_inventory(swapped)["vms"][0]["disks"][1]["key"] == key1);
  CHECK(vm["disks"][0]["id"] == "d1");
  CHECK(vm["disks"][0]["file"] == "web_Disk1");
  CHECK(vm["disks"][0]["capacity"] == uint64_t{10737418240});
  CHECK(vm["disks"][0]["datastore"] == Json({{"id", "sd1"}, {"name", "data"}}));
  CHECK(vm["disks"][0]["cbt"] == true);
  REQUIRE(vm["nics"].size() == 1);
  CHECK(vm["nics"][0]["mac"] == "56:6f:00:00:00:01");
  CHECK(vm["nics"][0]["network"] == Json({{"id", "n1"}, {"name", "ovirtmgmt"}}));
  CHECK(vm["nics"][0]["ips"][0]["ip"] == "10.1.1.9");
  CHECK(inv["datastores"][0]["capacity"] == 1024);
  CHECK(inv["datastores"][0]["free"] == 1000);
  CHECK(inv["datastores"][0]["datacenter"] == "Default");
  CHECK(inv["hosts"][0]["datacenter"] == "Default");
  CHECK(inv["capabilities"]["guestConversion"] == false);
  // Warm through incremental backup: every disk must be backed up so.
  CHECK(inv["capabilities"]["warm"] == true);
  CHECK(inv["capabilities"]["changeTracking"]["name"] == "incremental backup");
  CHECK(inv["capabilities"]["releasesChangeIds"] == true);  // checkpoints are deleted
  CHECK(vm["disks"][1]["cbt"] == false);
  CHECK(vm["changeTrackingEnabled"] == false);  // d2's backup mode is not incremental
  auto both = engine();
  both.disks["disk"][1]["backup"] = "incremental";
  CHECK(to_inventory(both)["vms"][0]["changeTrackingEnabled"] == true);
  // cluster_default firmware is the cluster's.
  auto c = engine();
  c.vms["vm"][0]["bios"]["type"] = "cluster_default";
  c.clusters["cluster"][0]["bios_type"] = "q35_ovmf";
  CHECK(to_inventory(c)["vms"][0]["firmware"] == "efi");
  c.clusters["cluster"][0]["bios_type"] = "q35_sea_bios";
  CHECK(to_inventory(c)["vms"][0]["firmware"] == "bios");
  CHECK(inv["refreshSeconds"] == 10);
}

TEST_CASE("ovirt inventory: Forklift's concerns", "[ovirt]") {
  auto c = engine();
  SECTION("a healthy VM has only what it really carries") {
    Json vm = to_inventory(c)["vms"][0];
    CHECK(concern(vm, "Watchdog") != nullptr);
    const Json* iface = concern(vm, "Unsupported disk interface");
    REQUIRE(iface != nullptr);
    CHECK(iface->at("category") == "Warning");
    CHECK(iface->at("assessment").get<std::string>().find("d2") != std::string::npos);
    for (const auto& x : vm["concerns"]) CHECK(x["category"] != "Critical");
  }
  SECTION("illegal, locked, LUN and sizeless disks are Critical") {
    c.disks["disk"][0]["status"] = "locked";
    c.disks["disk"][1]["storage_type"] = "lun";
    Json vm = to_inventory(c)["vms"][0];
    REQUIRE(concern(vm, "Illegal or locked disk status") != nullptr);
    CHECK(concern(vm, "Illegal or locked disk status")->at("category") == "Critical");
    REQUIRE(concern(vm, "Direct LUN disk") != nullptr);
    CHECK(concern(vm, "Direct LUN disk")->at("category") == "Critical");
    c.disks["disk"][1]["storage_type"] = "image";
    c.disks["disk"][1]["provisioned_size"] = "0";
    vm = to_inventory(c)["vms"][0];
    CHECK(concern(vm, "Invalid disk capacity") != nullptr);
  }
  SECTION("configuration that is not kept is a Warning") {
    auto& v = c.vms["vm"][0];
    v["high_availability"] = {{"enabled", "true"}};
    v["usb"] = {{"enabled", "true"}};
    v["custom_cpu_model"] = "Haswell";
    v["bios"]["type"] = "q35_secure_boot";
    v["status"] = "suspended";
    v["nics"]["nic"][0]["plugged"] = "false";
    v["snapshots"]["snapshot"].push_back(
        {{"id", "s1"}, {"snapshot_type", "regular"}, {"persist_memorystate", "true"}});
    Json vm = to_inventory(c)["vms"][0];
    for (const char* l : {"High availability", "USB", "Custom CPU model", "UEFI secure boot",
                          "VM status", "Unplugged NIC", "Online snapshot"}) {
      INFO(l);
      REQUIRE(concern(vm, l) != nullptr);
      CHECK(concern(vm, l)->at("category") == "Warning");
    }
    CHECK(vm["hasSnapshots"] == true);
  }
}

TEST_CASE("ovirt inventory: missing and odd fields do not throw", "[ovirt]") {
  EngineCollections c;
  c.vms = Json::parse(R"({"vm":[{"id":"x","disk_attachments":{"disk_attachment":[
      {"disk":{"id":"gone"}}]},"nics":"not a list","cpu":7}]})");
  Json inv = to_inventory(c);
  REQUIRE(inv["vms"].size() == 1);
  CHECK(inv["vms"][0]["cpus"] == 1);
  CHECK(inv["vms"][0]["disks"][0]["capacity"] == 0);
  CHECK(inv["vms"][0]["nics"].empty());
  CHECK(to_inventory(EngineCollections{})["vms"].empty());
  CHECK(as_u64(Json("12")) == 12);
  CHECK(as_bool(Json("true")));
  CHECK_FALSE(as_bool(Json("false")));
}
