#include <catch2/catch.hpp>

#include <map>

#include "coordinator/providers/vsphere/vsphere_provider.h"
#include "coordinator/validation/plan_validation.h"

using namespace ferry::coordinator;
using ferry::model::Json;
using ferry::model::Resource;
using ferry::model::ResourceKey;

namespace {

struct World {
  std::map<ResourceKey, Resource> res;
  Json inv;
  validation::Context ctx;
  World() {
    auto add = [&](const std::string& kind, const std::string& name, Json spec) {
      Resource r{{{"apiVersion", "forklift.konveyor.io/v1beta1"},
                  {"kind", kind},
                  {"metadata", {{"name", name}, {"namespace", "ns"}}},
                  {"spec", spec}}};
      res[r.key()] = r;
    };
    add("Provider", "vs", {{"type", "vsphere"}});
    add("Provider", "host", {{"type", "openshift"}});
    add("NetworkMap", "net",
        {{"map",
          {{{"source", {{"name", "VM Network"}}}, {"destination", {{"type", "pod"}}}},
           {{"source", {{"id", "dvpg-1"}}}, {"destination", {{"type", "pod"}}}}}}});
    add("StorageMap", "sto",
        {{"map", {{{"source", {{"id", "ds-1"}}}, {"destination", {{"storageClass", "local"}}}}}}});
    auto vm = [](std::string id, std::string name, std::string mac, std::string net_id) {
      return Json{
          {"id", id},
          {"name", name},
          {"disks",
           {{{"file", "[ds1] x.vmdk"},
             {"capacity", 1024},
             {"datastore", {{"id", "ds-1"}, {"name", "ds1"}}}}}},
          {"nics",
           {{{"mac", mac},
             {"network", {{"id", net_id}, {"name", net_id == "net-1" ? "VM Network" : net_id}}}}}},
          {"cdroms", Json::array()}};
    };
    inv = {{"networks",
            {{{"id", "net-1"}, {"name", "VM Network"}}, {{"id", "dvpg-1"}, {"name", "DVPG"}}}},
           {"datastores", {{{"id", "ds-1"}, {"name", "ds1"}}}},
           {"vms",
            {vm("vm-1", "web-01", "00:50:56:00:00:01", "net-1"),
             vm("vm-2", "Web_02", "00:50:56:00:00:02", "net-1"),
             vm("vm-3", "db-01", "00:50:56:00:00:01", "net-1"),
             vm("vm-4", "two-nics", "00:50:56:00:00:04", "net-1"),
             vm("vm-5", "odd-net", "00:50:56:00:00:05", "net-9")}}};
    inv["vms"][3]["nics"].push_back(
        {{"mac", "00:50:56:00:00:14"}, {"network", {{"id", "dvpg-1"}, {"name", "DVPG"}}}});
    inv["vms"][0]["cdroms"].push_back({{"iso", "[ds1] a.iso"}, {"connected", false}});
    ctx.find = [this](const ResourceKey& k) -> const Resource* {
      auto it = res.find(k);
      return it == res.end() ? nullptr : &it->second;
    };
    ctx.inventory = [this](const ResourceKey& k) -> const Json* {
      return k.name == "vs" ? &inv : nullptr;
    };
  }
  validation::Result check(Json vms, Json extra = Json::object()) {
    Json spec = {{"provider", {{"source", {{"name", "vs"}}}, {"destination", {{"name", "host"}}}}},
                 {"map", {{"network", {{"name", "net"}}}, {"storage", {{"name", "sto"}}}}},
                 {"targetNamespace", "t"},
                 {"vms", vms}};
    spec.update(extra);
    Resource plan{
        {{"kind", "Plan"}, {"metadata", {{"name", "p"}, {"namespace", "ns"}}}, {"spec", spec}}};
    return validation::validate_plan(plan, ctx);
  }
};

std::set<std::string> types(const validation::Result& r) {
  std::set<std::string> s;
  for (const auto& c : r.conditions) s.insert(c.type);
  return s;
}

}  // namespace

TEST_CASE("a good plan is Ready and resolves its VMs") {
  World w;
  auto r = w.check({{{"name", "web-01"}}});
  CHECK(r.ready());
  REQUIRE(r.vms.size() == 1);
  CHECK(r.vms[0].target_name == "web-01");
  CHECK(r.conditions_json().back()["type"] == "Ready");
}

TEST_CASE("plan conditions use Forklift's names and name the field") {
  World w;
  CHECK(types(w.check({{{"id", "vm-404"}}})) == std::set<std::string>{"VMNotFound"});
  CHECK(types(w.check({{{"id", "vm-1"}}, {{"name", "web-01"}}})) ==
        std::set<std::string>{"DuplicateVM"});
  CHECK(types(w.check({{{"id", "vm-1"}}, {{"id", "vm-3"}}})) ==
        std::set<std::string>{"MacConflicts"});
  CHECK(types(w.check({{{"id", "vm-4"}}})) ==
        std::set<std::string>{"VMMultiplePodNetworkMappings"});
  CHECK(types(w.check({{{"id", "vm-5"}}})) == std::set<std::string>{"VMNetworksNotMapped"});
  auto renamed = w.check({{{"id", "vm-2"}}});
  CHECK(renamed.ready());
  CHECK(types(renamed) == std::set<std::string>{"TargetNameNotValid"});
  CHECK(renamed.vms[0].target_name == "web-02");
  auto missing =
      w.check({{{"id", "vm-1"}}},
              {{"map", {{"network", {{"name", "gone"}}}, {"storage", {{"name", "sto"}}}}}});
  CHECK(missing.summary() ==
        "NetworkMapRefNotValid: Plan ns/p: spec.map.network: NetworkMap ns/gone not found");
  {
    // Warm: CBT is required, the user's snapshots block, a powered-off VM goes cold.
    World warm;
    CHECK(types(warm.check({{{"id", "vm-1"}}}, {{"warm", true}})) ==
          std::set<std::string>{"VMMissingChangedBlockTracking", "VMPoweredOff"});
    warm.inv["vms"][0]["changeTrackingEnabled"] = true;
    warm.inv["vms"][0]["powerState"] = "On";
    CHECK(warm.check({{{"id", "vm-1"}}}, {{"warm", true}}).conditions.empty());
    warm.inv["vms"][0]["hasSnapshots"] = true;
    warm.inv["vms"][0]["disks"][0]["cbt"] = false;
    auto r = warm.check({{{"id", "vm-1"}}}, {{"type", "warm"}});
    CHECK(types(r) == std::set<std::string>{"VMHasSnapshots", "VMMissingChangedBlockTracking"});
    CHECK_FALSE(r.ready());
    // The same VM in a cold plan: none of that matters.
    CHECK(warm.check({{{"id", "vm-1"}}}).conditions.empty());
  }
  CHECK(types(w.check({{{"id", "vm-1"}}}, {{"transferNetwork", {{"name", "x"}}}}))
            .count("TransferNetworkNotValid"));
  w.ctx.existing_target_vms.insert("t/web-01");
  CHECK(types(w.check({{{"id", "vm-1"}}})) == std::set<std::string>{"VMAlreadyExists"});
}

TEST_CASE("disks larger than 2 GiB are not mistaken for disks without a size") {
  World w;
  w.inv["vms"][0]["disks"][0]["capacity"] = uint64_t{3} << 30;
  CHECK(w.check({{{"id", "vm-1"}}}).ready());
  w.inv["vms"][0]["disks"][0]["capacity"] = 0;
  CHECK(types(w.check({{{"id", "vm-1"}}})) == std::set<std::string>{"VMCriticalConcerns"});
}

TEST_CASE("VM concerns: shared disks, connected ISOs, storage not mapped, already migrated VMs") {
  World w;
  w.inv["vms"][0]["disks"][0]["shared"] = true;
  w.inv["vms"][0]["cdroms"][0]["connected"] = true;
  w.inv["vms"][0]["disks"].push_back({{"file", "[ds9] y.vmdk"},
                                      {"capacity", 1},
                                      {"datastore", {{"id", "ds-9"}, {"name", "ds9"}}}});
  auto r = w.check({{{"id", "vm-1"}}});
  CHECK(types(r) ==
        std::set<std::string>{"SharedDisks", "VMCriticalConcerns", "VMStorageNotMapped"});
  CHECK(r.summary().find("spec.vms[0]: VM \"web-01\" has ISO [ds1] a.iso mounted") !=
        std::string::npos);
  w.ctx.completed_vm_ids.insert("vm-1");
  CHECK(w.check({{{"id", "vm-1"}}}).ready());
}

TEST_CASE("VMDK descriptors and datastore paths") {
  using namespace vsphere;
  auto e = parse_descriptor_extents(
      "# Disk DescriptorFile\nversion=1\nRW 204800 FLAT \"web-flat.vmdk\" 0\nddb.adapterType = "
      "\"lsilogic\"\n");
  REQUIRE(e.ok());
  CHECK(*e == std::vector<std::string>{"web-flat.vmdk"});
  CHECK(parse_descriptor_extents("RW 100 SPARSE \"x-s001.vmdk\"\n")
            .error()
            .message.find("needs VDDK") != std::string::npos);
  CHECK_FALSE(parse_descriptor_extents("KDMV\x01").ok());
  CHECK(split_datastore_path("[LocalDS_0] dir/a b.vmdk") ==
        std::pair<std::string, std::string>{"LocalDS_0", "dir/a b.vmdk"});
}

TEST_CASE("cluster mode: a multus destination must name an existing NetworkAttachmentDefinition") {
  World w;
  w.res[ResourceKey{"NetworkMap", "ns", "net"}].doc["spec"]["map"][1]["destination"] = {
      {"type", "multus"}, {"name", "vlan-10"}};
  // Local mode does not check (no API to ask).
  CHECK(w.check(Json::array({{{"name", "web-01"}}})).ready());
  std::set<std::string> nads;
  w.ctx.network_attachment = [&](const ResourceKey& k) {
    return k.kind == "NetworkAttachmentDefinition" && nads.count(k.ns + "/" + k.name) > 0;
  };
  auto r = w.check(Json::array({{{"name", "web-01"}}}));
  CHECK_FALSE(r.ready());
  REQUIRE(types(r).count("DestinationNetworkNotValid"));
  // Its namespace defaults to the plan's targetNamespace, and the message names field and NAD.
  CHECK(r.summary().find("NetworkMap ns/net spec.map[1].destination: "
                         "NetworkAttachmentDefinition t/vlan-10 not found") != std::string::npos);
  nads.insert("t/vlan-10");
  CHECK(w.check(Json::array({{{"name", "web-01"}}})).ready());
}

TEST_CASE("a provider's VM concerns become Forklift's conditions, and warm needs a source for it") {
  World w;
  w.inv["vms"][0]["concerns"] = {
      {{"category", "Critical"}, {"label", "Direct LUN disk"}, {"assessment", "Disk x is a LUN."}},
      {{"category", "Warning"}, {"label", "USB"}, {"assessment", "USB is not kept."}},
      {{"category", "Information"}, {"label", "SPICE display"}, {"assessment", "It becomes VNC."}}};
  auto r = w.check({{{"id", "vm-1"}}});
  CHECK(types(r) ==
        std::set<std::string>{"VMCriticalConcerns", "VMWarningConcerns", "VMInformationConcerns"});
  CHECK_FALSE(r.ready());
  CHECK(r.summary() ==
        "VMCriticalConcerns: Plan ns/p: spec.vms[0]: VM \"web-01\": Direct LUN disk: Disk x is a "
        "LUN.");
  w.inv["vms"][0]["concerns"].erase(0);
  CHECK(w.check({{{"id", "vm-1"}}}).ready());  // warnings are reported, not blocking
  // A source that cannot do warm migration says so in its inventory.
  w.inv["capabilities"] = {{"warm", false}, {"guestConversion", false}};
  w.inv["vms"][0]["changeTrackingEnabled"] = true;
  w.inv["vms"][0]["powerState"] = "On";
  auto warm = w.check({{{"id", "vm-1"}}}, {{"warm", true}});
  CHECK(types(warm).count("WarmMigrationNotSupported"));
  CHECK(warm.summary().find("spec.warm: warm migration from Provider ns/vs (type vsphere) is not "
                            "supported yet") != std::string::npos);
  CHECK(w.check({{{"id", "vm-1"}}}).ready());
  // A source's own name for change tracking is in the message; one whose
  // warm copies read the current state allows snapshots.
  w.inv["capabilities"] = {
      {"warm", true},
      {"warmWithSnapshots", true},
      {"changeTracking",
       {{"name", "incremental backup"}, {"where", "each disk's backup mode: incremental"}}}};
  w.inv["vms"][0]["changeTrackingEnabled"] = false;
  w.inv["vms"][0]["hasSnapshots"] = true;
  auto tracked = w.check({{{"id", "vm-1"}}}, {{"warm", true}});
  CHECK(types(tracked).count("VMMissingChangedBlockTracking"));
  CHECK_FALSE(types(tracked).count("VMHasSnapshots"));
  CHECK(tracked.summary().find("does not have incremental backup enabled (each disk's backup "
                               "mode: incremental)") != std::string::npos);
}
