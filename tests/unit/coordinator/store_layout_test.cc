#include <catch2/catch.hpp>

#include "coordinator/store/layout.h"

using namespace ferry::coordinator::store;

TEST_CASE("a Migration's summary holds everything but its VMs, and their count") {
  Json st = {{"phase", "Running"},
             {"plan", "Plan ns/p"},
             {"vms", Json::array({{{"id", "a"}}, {{"id", "b"}}})}};
  Json s = migration_summary(st);
  CHECK_FALSE(s.contains("vms"));
  CHECK(s["vmCount"] == 2);
  CHECK(s["phase"] == "Running");
  CHECK(migration_summary(Json::object())["vmCount"] == 0);
}

TEST_CASE("VM keys round-trip and other keys are not VM keys") {
  std::string rk;
  size_t i = 0;
  REQUIRE(parse_vm_key(vm_key("Migration.ns.m.with.dots", 42), &rk, &i));
  CHECK(rk == "Migration.ns.m.with.dots");
  CHECK(i == 42);
  CHECK_FALSE(parse_vm_key("Migration.ns.m", &rk, &i));
  CHECK_FALSE(parse_vm_key("Migration.ns.m/", &rk, &i));
  CHECK_FALSE(parse_vm_key("Migration.ns.m/x1", &rk, &i));
  CHECK_FALSE(parse_vm_key("/3", &rk, &i));
  CHECK_FALSE(parse_vm_key("a/99999999999999999999999", &rk, &i));
}

TEST_CASE("an inventory of 10000 VMs splits into chunks under the limit and joins back whole") {
  Json inv = {{"type", "vsphere"},
              {"vms", Json::array()},
              {"hosts", Json::array()},
              {"networks", Json::array()}};
  for (int i = 0; i < 10000; i++)
    inv["vms"].push_back(
        {{"id", "vm-" + std::to_string(i)},
         {"name", "machine-" + std::to_string(i)},
         {"disks", Json::array({{{"key", 2000},
                                 {"capacity", 1 << 30},
                                 {"file", "[ds] vm/vm-" + std::to_string(i) + ".vmdk"}}})},
         {"nics", Json::array({{{"mac", "00:50:56:00:00:01"}}})}});
  for (int i = 0; i < 50; i++) inv["hosts"].push_back({{"id", "host-" + std::to_string(i)}});
  auto split = split_inventory(inv, 7);
  CHECK(split.header["generation"] == 7);
  CHECK(split.header["chunks"] == split.chunks.size());
  CHECK(split.header["type"] == "vsphere");
  CHECK(split.chunks.size() > 5);
  for (const auto& c : split.chunks) CHECK(c.size() <= kChunkBytes);
  Json back = split.header;
  back.erase("generation");
  back.erase("chunks");
  for (const auto& c : split.chunks) REQUIRE(join_inventory_chunk(back, c));
  CHECK(back == inv);  // every list in order, the empty one kept
  CHECK(inventory_chunk_key("ns.vs", 7, 3) == "ns.vs/7/3");
}

TEST_CASE("a chunk that is not an object of lists is refused and changes nothing") {
  Json inv = {{"vms", Json::array({1})}};
  for (const char* bad : {"[]", "{\"vms\": 3}", "not json", "{\"vms\": [2], \"x\": 1}"}) {
    INFO(bad);
    CHECK_FALSE(join_inventory_chunk(inv, bad));
    CHECK(inv == Json{{"vms", Json::array({1})}});
  }
}
