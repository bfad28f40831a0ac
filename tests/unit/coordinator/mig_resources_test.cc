// MigPlan and MigMigration read into typed structs (coordinator/storage/mig_resources.h):
// MTC's fields, defaults, and errors that name the resource and the field.
#include <catch2/catch.hpp>

#include "coordinator/storage/cluster.h"
#include "coordinator/storage/mig_resources.h"

using namespace ferry::coordinator::storage;
using ferry::model::FieldError;
using ferry::model::Json;

namespace {

std::string all(const std::vector<FieldError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.to_string() + "\n";
  return out;
}

Json plan(const Json& spec) {
  return {{"apiVersion", kMigApiVersion},
          {"kind", "MigPlan"},
          {"metadata", {{"name", "move"}, {"namespace", "vms"}, {"uid", "u-1"}}},
          {"spec", spec}};
}

}  // namespace

TEST_CASE("quantities as Kubernetes writes them", "[unit][storage]") {
  CHECK(parse_quantity("1Gi") == (1ull << 30));
  CHECK(parse_quantity("72Mi") == 72ull * (1 << 20));
  CHECK(parse_quantity("500M") == 500000000ull);
  CHECK(parse_quantity("55574528") == 55574528ull);
  CHECK(parse_quantity("2k") == 2000ull);
  CHECK_FALSE(parse_quantity(""));
  CHECK_FALSE(parse_quantity("Gi"));
  CHECK_FALSE(parse_quantity("1.5Gi"));
  CHECK_FALSE(parse_quantity("1GB"));
  CHECK_FALSE(parse_quantity("99999999999999999999"));
  CHECK_FALSE(parse_quantity("99999999999Pi"));  // overflows
}

TEST_CASE("a MigPlan: defaults and MTC's fields", "[unit][storage]") {
  std::vector<FieldError> errors;
  auto p = read_mig_plan(
      plan({{"namespaces", {"vms"}},
            {"liveMigrate", true},
            {"transferNetwork", "migration"},
            {"persistentVolumes",
             {{{"name", "pv-1"},
               {"pvc", {{"name", "disk-0"}}},
               {"selection", {{"storageClass", "fast"}, {"verify", true}, {"capacity", "2Gi"}}}},
              {{"pvc", {{"name", "disk-1"}, {"namespace", "vms"}}},
               {"selection", {{"action", "skip"}}}}}}}),
      errors);
  INFO(all(errors));
  REQUIRE(p);
  CHECK(p->name == "move");
  CHECK(p->ns == "vms");
  CHECK(p->uid == "u-1");
  CHECK(p->live_migrate);
  CHECK(p->transfer_network == "migration");
  REQUIRE(p->volumes.size() == 2);
  CHECK(p->volumes[0].pv == "pv-1");
  CHECK(p->volumes[0].pvc == "disk-0");
  CHECK(p->volumes[0].pvc_ns == "vms");   // the plan's first namespace
  CHECK(p->volumes[0].action == "copy");  // MTC's default
  CHECK(p->volumes[0].copy_method == "filesystem");
  CHECK(p->volumes[0].storage_class == "fast");
  CHECK(p->volumes[0].verify);
  CHECK(p->volumes[0].capacity == (2ull << 30));
  CHECK(p->volumes[1].action == "skip");
  CHECK(p->volumes[1].storage_class.empty());  // not needed to skip
  CHECK(p->volumes[1].index == 1);
}

TEST_CASE("a MigPlan's bad fields are named, and nothing is returned", "[unit][storage]") {
  struct Case {
    Json spec;
    std::string expect;
  };
  Json ok_pv = {{"pvc", {{"name", "d"}}}, {"selection", {{"storageClass", "fast"}}}};
  for (const auto& c : std::vector<Case>{
           {Json::object(), "MigPlan vms/move: spec.namespaces: must name the VMs' namespace"},
           {{{"namespaces", {"Bad_NS"}}}, "spec.namespaces[0]: must be a namespace name"},
           {{{"namespaces", {"vms"}}, {"liveMigrate", "yes"}},
            "spec.liveMigrate: must be true or false"},
           {{{"namespaces", {"vms"}}, {"persistentVolumes", "all"}},
            "spec.persistentVolumes: must be a list"},
           {{{"namespaces", {"vms"}},
             {"persistentVolumes", {{{"selection", {{"storageClass", "f"}}}}}}},
            "spec.persistentVolumes[0].pvc: is required"},
           {{{"namespaces", {"vms"}},
             {"persistentVolumes",
              {{{"pvc", {{"name", "d"}}}, {"selection", {{"action", "move"}}}}}}},
            "spec.persistentVolumes[0].selection.action: \"move\" is not supported for VM storage"},
           {{{"namespaces", {"vms"}},
             {"persistentVolumes", {{{"pvc", {{"name", "d"}}}, {"selection", Json::object()}}}}},
            "spec.persistentVolumes[0].selection.storageClass: is required"},
           {{{"namespaces", {"vms"}},
             {"persistentVolumes",
              {ok_pv,
               {{"pvc", {{"name", "d"}}},
                {"selection", {{"storageClass", "f"}, {"copyMethod", "rsync"}}}}}}},
            "spec.persistentVolumes[1].selection.copyMethod: must be \"filesystem\", \"block\" or "
            "\"snapshot\", not \"rsync\""},
           {{{"namespaces", {"vms"}},
             {"persistentVolumes",
              {{{"pvc", {{"name", "d"}}},
                {"selection", {{"storageClass", "f"}, {"capacity", "big"}}}}}}},
            "spec.persistentVolumes[0].selection.capacity: \"big\" is not a quantity like 10Gi"}}) {
    std::vector<FieldError> errors;
    auto p = read_mig_plan(plan(c.spec), errors);
    INFO(c.spec.dump());
    INFO(all(errors));
    CHECK_FALSE(p);
    CHECK(all(errors).find(c.expect) != std::string::npos);
  }
}

TEST_CASE("a MigMigration: stage, cutover, rollback and their conflicts", "[unit][storage]") {
  auto mig = [](const Json& spec) {
    return Json{{"kind", "MigMigration"},
                {"metadata",
                 {{"name", "m1"},
                  {"namespace", "vms"},
                  {"uid", "u-2"},
                  {"creationTimestamp", "2026-12-05T10:00:00Z"}}},
                {"spec", spec}};
  };
  std::vector<FieldError> errors;
  auto m = read_mig_migration(mig({{"migPlanRef", {{"name", "move"}}}, {"stage", true}}), errors);
  REQUIRE(m);
  CHECK(m->plan_name == "move");
  CHECK(m->plan_ns == "vms");  // its own namespace
  CHECK(m->stage);
  CHECK_FALSE(m->rollback);
  CHECK(m->created == "2026-12-05T10:00:00Z");
  m = read_mig_migration(mig({{"migPlanRef", {{"name", "move"}, {"namespace", "other"}}},
                              {"rollback", true},
                              {"keepNewVolumes", true}}),
                         errors);
  REQUIRE(m);
  CHECK(m->plan_ns == "other");
  CHECK(m->rollback);
  CHECK(m->keep_new_volumes);
  CHECK_FALSE(m->canceled);
  CHECK(errors.empty());
  m = read_mig_migration(mig({{"migPlanRef", {{"name", "move"}}}, {"canceled", true}}), errors);
  REQUIRE(m);
  CHECK(m->canceled);
  CHECK_FALSE(
      read_mig_migration(mig({{"migPlanRef", {{"name", "move"}}}, {"canceled", "yes"}}), errors));
  CHECK(all(errors).find("spec.canceled") != std::string::npos);
  errors.clear();

  CHECK_FALSE(read_mig_migration(mig({{"stage", true}}), errors));
  CHECK(all(errors).find("MigMigration vms/m1: spec.migPlanRef: is required") != std::string::npos);
  errors.clear();
  CHECK_FALSE(read_mig_migration(
      mig({{"migPlanRef", {{"name", "move"}}}, {"stage", true}, {"rollback", true}}), errors));
  CHECK(all(errors).find("spec.rollback: cannot be set together with spec.stage") !=
        std::string::npos);
  errors.clear();
  CHECK_FALSE(read_mig_migration(Json("not an object"), errors));
  CHECK_FALSE(errors.empty());
}

TEST_CASE("a VirtualMachine object as the storage migrator reads it", "[storage]") {
  Json vm = Json::parse(R"({"metadata": {"name": "db", "namespace": "vms"},
    "spec": {"running": true, "template": {"spec": {
      "domain": {"devices": {"disks": [{"name": "a"}, {"name": "b", "shareable": true}]}},
      "volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": "db-a"}},
                  {"name": "b", "dataVolume": {"name": "db-b"}},
                  {"name": "c", "cloudInitNoCloud": {}}]}}}})");
  Vm v = vm_from_object(vm);
  CHECK(v.name == "db");
  CHECK(v.ns == "vms");
  CHECK(v.run_strategy == "Always");  // from spec.running
  CHECK(v.wants_running);
  REQUIRE(v.volumes.size() == 3);
  CHECK(v.volumes[0].claim == "db-a");
  CHECK_FALSE(v.volumes[0].shareable);
  CHECK(v.volumes[1].data_volume == "db-b");
  CHECK(v.volumes[1].shareable);
  CHECK(v.volumes[2].claim.empty());
  vm["spec"] = {{"runStrategy", "Manual"}};
  v = vm_from_object(vm);
  CHECK(v.run_strategy == "Manual");
  CHECK_FALSE(v.wants_running);
  CHECK(v.volumes.empty());
  CHECK(run_strategy_of(Json::object()) == "Halted");
  // Any shape reads without throwing.
  CHECK(vm_from_object(Json("not an object")).volumes.empty());
  CHECK(
      vm_from_object(Json{{"spec", {{"template", {{"spec", {{"volumes", 3}}}}}}}}).volumes.empty());
}
