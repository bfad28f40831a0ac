// Storage migration between storage classes (MigPlan, MigMigration) against
// the real control plane, KubeVirt's VirtualMachine CRD and two agents on two
// "nodes": VMs imported from the vSphere simulator onto node-1 (class local),
// then their claims moved to class fast (only node-2 has it: the volume is
// served over NBD with TLS on node-1's migration address) and class local2
// (node-1 only: a local copy). Stages, an agent killed mid-copy, cutover,
// rollback, and the bad input the issue lists.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <thread>

#include "common/model/resource.h"
#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

constexpr uint64_t MiB = 1 << 20;

void apply(ControlPlane& k8s, const Cluster& c, const std::string& name, const std::string& yaml) {
  std::string path = c.dir().file(name + ".yaml");
  write_file(path, yaml);
  auto r = k8s.kubectl({"apply", "-f", path});
  INFO(r.err);
  REQUIRE(r.rc == 0);
}

std::string mig(const std::string& name, const std::string& extra,
                const std::string& plan = "move") {
  return "apiVersion: migration.openshift.io/v1alpha1\nkind: MigMigration\nmetadata: {name: " +
         name + ", namespace: target}\nspec:\n  migPlanRef: {name: " + plan + "}\n" + extra;
}

Json get_mig(ControlPlane& k8s, const std::string& name) {
  return k8s.get_in("target", "migmigration", name);
}

// Waits until get() shows a final phase; returns it.
std::string wait_final(const std::function<Json()>& get, int seconds) {
  std::string phase;
  eventually(
      std::chrono::seconds(seconds),
      [&] {
        Json m = get();
        phase = m.is_object() && m.contains("status") ? m["status"].value("phase", "") : "";
        return phase == "Completed" || phase == "Failed" || phase == "Canceled";
      },
      500ms);
  return phase;
}

std::string wait_mig(ControlPlane& k8s, const std::string& name, int seconds = 120) {
  return wait_final([&] { return get_mig(k8s, name); }, seconds);
}

// status.<list> of a MigMigration (empty while it has none).
Json status_list(const Json& m, const char* list) {
  if (!m.is_object() || !m.contains("status") || !m["status"].is_object()) return Json::array();
  Json l = m["status"].value(list, Json::array());
  return l.is_array() ? l : Json::array();
}

Json volume_of(const Json& m, const std::string& pvc) {
  for (const auto& v : status_list(m, "volumes"))
    if (v.is_object() && v.value("pvcRef", Json::object()).value("name", "") == pvc) return v;
  return Json();
}

Json vm_of(const Json& m, const std::string& vm) {
  for (const auto& v : status_list(m, "vms"))
    if (v.is_object() && v.value("name", "") == vm) return v;
  return Json();
}

std::string messages(const Json& m) {
  std::string out;
  for (const auto& c : status_list(m, "conditions"))
    out += c.value("type", "") + ": " + c.value("message", "") + "\n";
  return out;
}

// A VirtualMachine's claims, in order.
std::vector<std::string> claims_in(const Json& vm) {
  std::vector<std::string> out;
  for (const auto& x : vm["spec"]["template"]["spec"]["volumes"])
    out.push_back(x["persistentVolumeClaim"].value("claimName", ""));
  return out;
}

std::vector<std::string> claims_of(ControlPlane& k8s, const std::string& vm) {
  return claims_in(k8s.get_in("target", "vm", vm));
}

}  // namespace

TEST_CASE("storage migration: stages copy changed blocks, cutover switches claims, rollback undoes",
          "[e2e][k8s][storage]") {
  Cluster c({{.name = "db-01",
              .disk_mib = 48,
              .data_mib = 8,
              .power_state = "poweredOff",
              .extra_disks = 1},
             {.name = "web-02", .base = "DC0_H0_VM1", .disk_mib = 32, .data_mib = 4}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  const std::string local2 = c.dir().file("node-1/local2"), fast = c.dir().file("node-2/fast");
  std::vector<std::string> node1 = {"--kubeconfig", k8s.agent_kubeconfig(),
                                    "--volume-root=local2=" + local2, "--network",
                                    "migration=127.0.0.1"};
  c.start_agent("node-1", node1);
  std::string classes;  // whose volumes the agents register
  for (const char* name : {"local", "local2", "fast"})
    classes +=
        std::string("---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: ") +
        name + "}\nprovisioner: kubernetes.io/no-provisioner\nvolumeBindingMode: Immediate\n";
  apply(k8s, c, "classes", classes);
  // The VMs arrive on node-1 with an ordinary import.
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("plan-a", {"db-01", "web-02"})}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "plan-a") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("mig-a", "plan-a")}).rc == 0);
  REQUIRE(eventually(
      180s, [&] { return k8s.phase("migration", "mig-a") == "Succeeded"; }, 500ms));
  // node-2 holds class fast; its copies are slowed so one can be cut short.
  std::vector<std::string> node2 = {
      "--kubeconfig",        k8s.agent_kubeconfig(), "--volume-root=fast=" + fast, "--network",
      "migration=127.0.0.2", "--bandwidth",          std::to_string(2 * MiB)};
  c.start_agent("node-2", node2);
  const std::string v1 = c.volume_root("node-1") + "/target/";
  REQUIRE(path_exists(v1 + "db-01-disk-1/disk.img"));
  REQUIRE(path_exists(v1 + "web-02-disk-0/disk.img"));

  apply(k8s, c, "plan", R"(apiVersion: migration.openshift.io/v1alpha1
kind: MigPlan
metadata: {name: move, namespace: target}
spec:
  namespaces: [target]
  transferNetwork: migration
  persistentVolumes:
  - pvc: {name: db-01-disk-0}
    selection: {action: copy, storageClass: fast, verify: true}
  - pvc: {name: db-01-disk-1}
    selection: {storageClass: fast}
  - pvc: {name: web-02-disk-0}
    selection: {storageClass: local2, verify: true}
)");

  // MTC's Ready condition on the plan.
  REQUIRE(eventually(
      30s,
      [&] {
        return messages(k8s.get_in("target", "migplan", "move"))
                   .find("Ready: The migration plan is ready.") != std::string::npos;
      },
      250ms));

  // Stage 1: the stopped VM's disks, node-1 to node-2 over TLS; the running
  // one skipped. node-2's agent is killed mid-copy and the copy resumes.
  apply(k8s, c, "stage-1", mig("stage-1", "  stage: true\n"));
  std::string target0;
  REQUIRE(eventually(
      60s,
      [&] {
        Json v = volume_of(get_mig(k8s, "stage-1"), "db-01-disk-0");
        target0 = v.is_object() ? v["targetPvcRef"].value("name", "") : "";
        return !target0.empty() && v.value("phase", "") == "Copying";
      },
      200ms));
  // Once a checkpoint holds some of the copy, the copying agent dies.
  const std::string fast0 = fast + "/target/" + target0 + "/disk.img";
  REQUIRE(eventually(
      60s,
      [&] {
        for (const auto& f : std::filesystem::directory_iterator(fast + "/target/" + target0))
          if (f.path().filename().string().find("ferry-checkpoint") != std::string::npos &&
              read_file(f.path().string()).find("done ") != std::string::npos)
            return true;
        return false;
      },
      100ms));
  c.kill_agent("node-2");
  c.start_agent("node-2", node2);
  REQUIRE(wait_mig(k8s, "stage-1", 180) == "Completed");
  Json s1 = get_mig(k8s, "stage-1");
  INFO(s1.dump(2));
  Json d0 = volume_of(s1, "db-01-disk-0"), d1 = volume_of(s1, "db-01-disk-1");
  CHECK(d0["phase"] == "Completed");
  CHECK(d1["phase"] == "Completed");
  CHECK(d0.value("resumedBytes", 0) > 0);  // the second agent went on from the checkpoint
  CHECK(d0.value("transport", "").rfind("nbd+tls nbd://127.0.0.1:", 0) == 0);
  CHECK(d0["sourceNode"] == "node-1");
  CHECK(d0["targetNode"] == "node-2");
  CHECK(d0.value("verified", false));
  CHECK(d0["blocks"] == 48);
  CHECK(d0["changedBlocks"] == 48);  // the first stage copies the whole disk
  CHECK(vm_of(s1, "web-02")["phase"] == "Skipped");
  CHECK(volume_of(s1, "web-02-disk-0")["phase"] == "Skipped");
  std::string target1 = d1["targetPvcRef"]["name"];
  CHECK_FALSE(first_difference(v1 + "db-01-disk-0/disk.img", fast0));
  CHECK_FALSE(
      first_difference(v1 + "db-01-disk-1/disk.img", fast + "/target/" + target1 + "/disk.img"));
  CHECK(allocated_bytes(fast0) <= 10 * MiB);  // holes stayed holes
  // Nothing about the VMs changed.
  CHECK(claims_of(k8s, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  // The source agent served on its migration address, with TLS.
  CHECK(c.agent("node-1").stderr_text().find("serving volume") != std::string::npos);

  // Between stages the disk changes in two 1 MiB blocks.
  write_run(v1 + "db-01-disk-0/disk.img", {5 * MiB + 100, 3000, Fill::kRandom, 21});
  write_run(v1 + "db-01-disk-0/disk.img", {30 * MiB, 1 * MiB, Fill::kRandom, 22});
  apply(k8s, c, "stage-2", mig("stage-2", "  stage: true\n"));
  REQUIRE(wait_mig(k8s, "stage-2") == "Completed");
  Json s2 = get_mig(k8s, "stage-2");
  INFO(s2.dump(2));
  CHECK(volume_of(s2, "db-01-disk-0")["changedBlocks"] == 2);
  CHECK(volume_of(s2, "db-01-disk-0")["transferredBytes"] == 2 * MiB);
  CHECK(volume_of(s2, "db-01-disk-1")["changedBlocks"] == 0);
  CHECK_FALSE(first_difference(v1 + "db-01-disk-0/disk.img", fast0));

  // Cutover: web-02 runs (runStrategy Always; no VMI exists here, so it
  // counts as stopped once Halted), is copied on its own node, and starts again.
  apply(k8s, c, "cutover", mig("cutover", "  stage: false\n"));
  REQUIRE(wait_mig(k8s, "cutover") == "Completed");
  Json cut = get_mig(k8s, "cutover");
  INFO(cut.dump(2));
  std::string target2 = volume_of(cut, "web-02-disk-0")["targetPvcRef"]["name"];
  CHECK(volume_of(cut, "web-02-disk-0")["transport"] == "local");
  CHECK(volume_of(cut, "web-02-disk-0")["targetNode"] == "node-1");
  CHECK(volume_of(cut, "db-01-disk-0")["changedBlocks"] == 0);  // nothing changed since stage-2
  CHECK(vm_of(cut, "web-02")["wasRunning"] == true);
  CHECK(claims_of(k8s, "db-01") == std::vector<std::string>{target0, target1});
  CHECK(claims_of(k8s, "web-02") == std::vector<std::string>{target2});
  CHECK(k8s.get_in("target", "vm", "web-02")["spec"]["runStrategy"] == "Always");
  CHECK(k8s.get_in("target", "vm", "db-01")["spec"]["runStrategy"] == "Halted");
  CHECK_FALSE(
      first_difference(v1 + "web-02-disk-0/disk.img", local2 + "/target/" + target2 + "/disk.img"));
  CHECK(k8s.pvc_bound("target", target0, "target." + target0 + ".node-2"));
  CHECK(k8s.pvc_bound("target", target2, "target." + target2 + ".node-1"));
  Json newpvc = k8s.get_in("target", "pvc", target0);
  CHECK(newpvc["spec"]["storageClassName"] == "fast");
  // The old claims stay, and the status says so.
  CHECK(k8s.get_in("target", "pvc", "db-01-disk-0").is_object());
  CHECK(messages(cut).find("SourceVolumesKept") != std::string::npos);

  // A stage after the cutover would copy the now unused old claims over the
  // VMs' new disks: refused, nothing touched.
  apply(k8s, c, "stage-3", mig("stage-3", "  stage: true\n"));
  REQUIRE(wait_mig(k8s, "stage-3") == "Failed");
  CHECK(messages(get_mig(k8s, "stage-3"))
            .find("MigPlan target/move: spec.persistentVolumes[0].pvc.name: claim "
                  "target/db-01-disk-0 is not used by any VirtualMachine") != std::string::npos);
  CHECK(claims_of(k8s, "db-01") == std::vector<std::string>{target0, target1});

  // Two rollbacks at once: the second is refused while the first runs.
  apply(
      k8s, c, "rollbacks",
      mig("rollback-1", "  rollback: true\n") + "---\n" + mig("rollback-2", "  rollback: true\n"));
  REQUIRE(wait_mig(k8s, "rollback-1") == "Completed");
  REQUIRE(wait_mig(k8s, "rollback-2") == "Failed");
  CHECK(
      messages(get_mig(k8s, "rollback-2"))
          .find("spec.migPlanRef: MigMigration target/rollback-1 of the same MigPlan is running") !=
      std::string::npos);
  CHECK(claims_of(k8s, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  CHECK(claims_of(k8s, "web-02") == std::vector<std::string>{"web-02-disk-0"});
  CHECK(k8s.get_in("target", "vm", "web-02")["spec"]["runStrategy"] == "Always");
  CHECK(k8s.get_in("target", "vm", "db-01")["spec"]["runStrategy"] == "Halted");
  CHECK(eventually(
      30s, [&] { return !k8s.get_in("target", "pvc", target0).is_object(); }, 250ms));
  CHECK(eventually(
      30s, [&] { return !path_exists(fast0); }, 250ms));  // the agent removed the new volume
  CHECK(get_mig(k8s, "rollback-1")["status"]["rollbackOf"] == "cutover");

  // Nothing left to roll back.
  apply(k8s, c, "rollback-3", mig("rollback-3", "  rollback: true\n"));
  REQUIRE(wait_mig(k8s, "rollback-3") == "Failed");
  CHECK(messages(get_mig(k8s, "rollback-3"))
            .find("spec.rollback: MigPlan target/move has no completed migration to roll back") !=
        std::string::npos);

  // Bad plans: each refused with the field named, the VMs untouched.
  struct Bad {
    std::string volume, field;
  };
  for (const auto& entry : std::vector<std::pair<int, Bad>>{
           {1,
            {"  - pvc: {name: db-01-disk-0, namespace: other}\n    selection: {storageClass: "
             "fast}\n",
             "spec.persistentVolumes[0].pvc.namespace: \"other\" is not one of the plan's "
             "namespaces"}},
           {2,
            {"  - pvc: {name: db-01-disk-0}\n    selection: {storageClass: nope}\n",
             "spec.persistentVolumes[0].selection.storageClass: StorageClass \"nope\" not found"}},
           {3,
            {"  - pvc: {name: db-01-disk-0}\n    selection: {storageClass: fast, capacity: 1Mi}\n",
             "spec.persistentVolumes[0].selection.capacity: 1048576 bytes is smaller than the "
             "source claim's"}}}) {
    const int i = entry.first;  // (clang: no lambda capture of structured bindings)
    const Bad& bad = entry.second;
    std::string plan = "bad-" + std::to_string(i);
    apply(k8s, c, plan,
          "apiVersion: migration.openshift.io/v1alpha1\nkind: MigPlan\nmetadata: {name: " + plan +
              ", namespace: target}\nspec:\n  namespaces: [target]\n  persistentVolumes:\n" +
              bad.volume);
    std::string m = plan + "-run";
    apply(k8s, c, m,
          "apiVersion: migration.openshift.io/v1alpha1\nkind: MigMigration\nmetadata: {name: " + m +
              ", namespace: target}\nspec:\n  migPlanRef: {name: " + plan + "}\n  stage: true\n");
    REQUIRE(wait_mig(k8s, m) == "Failed");
    INFO(messages(get_mig(k8s, m)));
    if (i != 3)  // a size needs the claim: the plan's own check does not read it
      CHECK(eventually(
          30s,
          [&] {
            return messages(k8s.get_in("target", "migplan", plan))
                       .find("InvalidPlan: MigPlan target/" + plan + ": " + bad.field) !=
                   std::string::npos;
          },
          250ms));
    CHECK(messages(get_mig(k8s, m)).find("MigPlan target/" + plan + ": " + bad.field) !=
          std::string::npos);
  }
  CHECK(claims_of(k8s, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  // liveMigrate on a running VM with no VMI (no KubeVirt runs here): refused, nothing changed.
  apply(k8s, c, "live", R"(apiVersion: migration.openshift.io/v1alpha1
kind: MigPlan
metadata: {name: live, namespace: target}
spec:
  namespaces: [target]
  liveMigrate: true
  persistentVolumes:
  - pvc: {name: web-02-disk-0}
    selection: {storageClass: local2}
---
apiVersion: migration.openshift.io/v1alpha1
kind: MigMigration
metadata: {name: live-run, namespace: target}
spec:
  migPlanRef: {name: live}
)");
  REQUIRE(wait_mig(k8s, "live-run") == "Failed");
  CHECK(vm_of(get_mig(k8s, "live-run"), "web-02")
            .value("message", "")
            .find("has no VirtualMachineInstance") != std::string::npos);
  // A shared disk cannot move live: refused before anything runs.
  REQUIRE(
      k8s.kubectl(
             {"patch", "vm", "web-02", "-n", "target", "--type=json", "-p",
              R"([{"op":"add","path":"/spec/template/spec/domain/devices/disks/0/shareable","value":true}])"})
          .rc == 0);
  apply(k8s, c, "live-shared", mig("live-shared", "", "live"));
  REQUIRE(wait_mig(k8s, "live-shared") == "Failed");
  CHECK(messages(get_mig(k8s, "live-shared"))
            .find("MigPlan target/live: spec.liveMigrate: claim target/web-02-disk-0 is a shared "
                  "disk; shared disks cannot be migrated live") != std::string::npos);
  CHECK(claims_of(k8s, "web-02") == std::vector<std::string>{"web-02-disk-0"});
  CHECK(k8s.get_in("target", "vm", "web-02")["spec"].value("updateVolumesStrategy", "") == "");
}

namespace {

// Local mode: ferryctl, the VMs' manifests and the agents' volumes.
CtlResult local_apply(Cluster& c, const std::string& name, const std::string& yaml) {
  std::string path = c.dir().file(name + ".yaml");
  write_file(path, yaml);
  return c.ctl({"apply", "-f", path});
}

Json local_get(Cluster& c, const std::string& kind, const std::string& name) {
  auto r = c.ctl({"get", kind, name, "-n", "target", "-o", "json"});
  return r.rc == 0 ? Json::parse(r.out) : Json();
}

std::string wait_local(Cluster& c, const std::string& name, int seconds = 120) {
  return wait_final([&] { return local_get(c, "migmigration", name); }, seconds);
}

// The VM manifest local mode wrote (--manifest-dir/target/<vm>.yaml).
Json manifest(Cluster& c, const std::string& vm) {
  auto docs = ferry::model::yaml_to_json(read_file(c.dir().file("cluster/target/" + vm + ".yaml")));
  return docs.ok() && !docs->empty() ? (*docs)[0] : Json();
}

std::vector<std::string> manifest_claims(Cluster& c, const std::string& vm) {
  return claims_in(manifest(c, vm));
}

}  // namespace

TEST_CASE("storage migration in local mode: ferryctl's MigPlan on manifests and agents' volumes",
          "[e2e][storage][local]") {
  Cluster c({{.name = "db-01",
              .disk_mib = 24,
              .data_mib = 6,
              .power_state = "poweredOff",
              .extra_disks = 1},
             {.name = "web-02", .base = "DC0_H0_VM1", .disk_mib = 16, .data_mib = 4}});
  c.start_coordinator();
  const std::string local2 = c.dir().file("node-1/local2"), fast = c.dir().file("node-2/fast");
  c.start_agent("node-1", {"--volume-root=local2=" + local2, "--network", "migration=127.0.0.1"});
  // The VMs arrive on node-1 with an ordinary local-mode import: manifests
  // in --manifest-dir, volumes <root>/target/<claim>.img.
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("plan-a", {"db-01", "web-02"})}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("mig-a", "plan-a")}).rc == 0);
  REQUIRE(wait_migration(c, "mig-a", 180) == "Succeeded");
  c.start_agent("node-2", {"--volume-root=fast=" + fast, "--network", "migration=127.0.0.2"});
  const std::string v1 = c.volume_root("node-1") + "/target/";
  REQUIRE(path_exists(v1 + "db-01-disk-0.img"));
  REQUIRE(manifest_claims(c, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  const std::string web_strategy = manifest(c, "web-02")["spec"].value("runStrategy", "");
  REQUIRE(web_strategy == "Always");

  const std::string plan = R"(apiVersion: migration.openshift.io/v1alpha1
kind: MigPlan
metadata: {name: move, namespace: target}
spec:
  namespaces: [target]
  transferNetwork: migration
  persistentVolumes:
  - pvc: {name: db-01-disk-0}
    selection: {storageClass: fast, verify: true}
  - pvc: {name: db-01-disk-1}
    selection: {storageClass: fast}
  - pvc: {name: web-02-disk-0}
    selection: {storageClass: local2}
)";
  // Bad input changes nothing: mixed with forklift documents, a bad field.
  auto mixed = local_apply(c, "mixed", plan + "---\n" + read_file(c.write_migration("m", "p")));
  CHECK(mixed.rc != 0);
  CHECK(mixed.err.find("applied on their own") != std::string::npos);
  auto badfield = local_apply(
      c, "badfield",
      "apiVersion: migration.openshift.io/v1alpha1\nkind: MigMigration\nmetadata: {name: x, "
      "namespace: target}\nspec:\n  migPlanRef: {name: move}\n  stage: true\n  rollback: true\n");
  CHECK(badfield.rc != 0);
  CHECK(badfield.err.find("MigMigration target/x: spec.rollback: cannot be set together with "
                          "spec.stage") != std::string::npos);
  auto none = c.ctl({"get", "migplans", "-n", "target", "-o", "json"});
  CHECK(none.rc == 0);
  CHECK(Json::parse(none.out)["items"].empty());

  auto applied = local_apply(c, "plan", plan);
  INFO(applied.err);
  REQUIRE(applied.rc == 0);
  CHECK(applied.out.find("MigPlan target/move created") != std::string::npos);
  CHECK(local_apply(c, "plan", plan).out.find("MigPlan target/move unchanged") !=
        std::string::npos);
  // A plan's spec may change (and change back): "configured".
  std::string plan2 = plan;
  plan2.replace(plan2.find("storageClass: local2}"), 21, "storageClass: local2, verify: true}");
  CHECK(local_apply(c, "plan2", plan2).out.find("MigPlan target/move configured") !=
        std::string::npos);
  CHECK(local_get(c, "migplan", "move")["spec"]["persistentVolumes"][2]["selection"].value("verify",
                                                                                           false));
  CHECK(local_apply(c, "plan", plan).out.find("MigPlan target/move configured") !=
        std::string::npos);
  REQUIRE(eventually(
      60s,
      [&] {
        return messages(local_get(c, "migplan", "move"))
                   .find("Ready: The migration plan is ready.") != std::string::npos;
      },
      250ms));

  // Stage: the stopped VM's disks go to node-2 over TLS; the running one is skipped.
  REQUIRE(local_apply(c, "stage-1", mig("stage-1", "  stage: true\n")).rc == 0);
  // A MigMigration does not change once made.
  auto changed = local_apply(c, "stage-1b", mig("stage-1", "  stage: false\n"));
  CHECK(changed.rc != 0);
  CHECK(changed.err.find("MigMigration target/stage-1: spec: a MigMigration cannot be changed") !=
        std::string::npos);
  REQUIRE(wait_local(c, "stage-1") == "Completed");
  Json s1 = local_get(c, "migmigration", "stage-1");
  INFO(s1.dump(2));
  Json d0 = volume_of(s1, "db-01-disk-0"), d1 = volume_of(s1, "db-01-disk-1");
  CHECK(d0["phase"] == "Completed");
  CHECK(d1["phase"] == "Completed");
  CHECK(d0.value("transport", "").rfind("nbd+tls nbd://127.0.0.1:", 0) == 0);
  CHECK(d0["targetNode"] == "node-2");
  CHECK(d0.value("verified", false));
  CHECK(d0["changedBlocks"] == 24);
  CHECK(vm_of(s1, "web-02")["phase"] == "Skipped");
  const std::string target0 = d0["targetPvcRef"]["name"], target1 = d1["targetPvcRef"]["name"];
  const std::string fast0 = fast + "/target/" + target0 + ".img";
  CHECK_FALSE(first_difference(v1 + "db-01-disk-0.img", fast0));
  CHECK_FALSE(first_difference(v1 + "db-01-disk-1.img", fast + "/target/" + target1 + ".img"));
  CHECK(allocated_bytes(fast0) <= 8 * MiB);  // holes stayed holes
  CHECK(manifest_claims(c, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});

  // A second stage copies just the two changed blocks.
  write_run(v1 + "db-01-disk-0.img", {3 * MiB + 7, 1000, Fill::kRandom, 31});
  write_run(v1 + "db-01-disk-0.img", {20 * MiB, 1 * MiB, Fill::kRandom, 32});
  REQUIRE(local_apply(c, "stage-2", mig("stage-2", "  stage: true\n")).rc == 0);
  REQUIRE(wait_local(c, "stage-2") == "Completed");
  Json s2 = local_get(c, "migmigration", "stage-2");
  INFO(s2.dump(2));
  CHECK(volume_of(s2, "db-01-disk-0")["changedBlocks"] == 2);
  CHECK(volume_of(s2, "db-01-disk-1")["changedBlocks"] == 0);
  CHECK_FALSE(first_difference(v1 + "db-01-disk-0.img", fast0));

  // Cutover: the manifests name the new claims; web-02 (runStrategy Always)
  // is halted in its manifest, copied on its node, and gets Always back.
  REQUIRE(local_apply(c, "cutover", mig("cutover", "  stage: false\n")).rc == 0);
  REQUIRE(wait_local(c, "cutover") == "Completed");
  Json cut = local_get(c, "migmigration", "cutover");
  INFO(cut.dump(2));
  const std::string target2 = volume_of(cut, "web-02-disk-0")["targetPvcRef"]["name"];
  CHECK(volume_of(cut, "web-02-disk-0")["transport"] == "local");
  CHECK(vm_of(cut, "web-02")["wasRunning"] == true);
  CHECK(manifest_claims(c, "db-01") == std::vector<std::string>{target0, target1});
  CHECK(manifest_claims(c, "web-02") == std::vector<std::string>{target2});
  CHECK(manifest(c, "web-02")["spec"]["runStrategy"] == "Always");
  // It went through the Stopping step (runStrategy Halted) before its copy.
  CHECK(c.coordinator_log().find("\"phase\":\"Stopping\",\"ts\"") != std::string::npos);
  CHECK_FALSE(first_difference(v1 + "web-02-disk-0.img", local2 + "/target/" + target2 + ".img"));
  CHECK(path_exists(v1 + "db-01-disk-0.img"));  // old volumes stay
  CHECK(messages(cut).find("SourceVolumesKept") != std::string::npos);
  auto table = c.ctl({"get", "migmigrations", "-n", "target"});
  CHECK(table.out.find("cutover") != std::string::npos);
  CHECK(table.out.find("Final") != std::string::npos);

  // Rollback: the manifests name the old claims again, and the new volumes go.
  REQUIRE(local_apply(c, "rollback", mig("rollback", "  rollback: true\n")).rc == 0);
  REQUIRE(wait_local(c, "rollback") == "Completed");
  CHECK(manifest_claims(c, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  CHECK(manifest_claims(c, "web-02") == std::vector<std::string>{"web-02-disk-0"});
  CHECK(manifest(c, "web-02")["spec"]["runStrategy"] == "Always");
  CHECK(eventually(
      30s,
      [&] {
        return !path_exists(fast0) && !path_exists(fast + "/target/" + target1 + ".img") &&
               !path_exists(local2 + "/target/" + target2 + ".img");
      },
      250ms));

  // MTC's cancel: a slowed stage copy is canceled midway; its tasks stop
  // (node-1 stops serving) and nothing about the VMs changes.
  c.kill_agent("node-2");
  c.start_agent("node-2", {"--volume-root=fast=" + fast, "--network", "migration=127.0.0.2",
                           "--bandwidth", std::to_string(1 * MiB)});
  REQUIRE(local_apply(c, "stage-c", mig("stage-c", "  stage: true\n")).rc == 0);
  REQUIRE(eventually(
      60s,
      [&] {
        Json v = volume_of(local_get(c, "migmigration", "stage-c"), "db-01-disk-0");
        return v.is_object() && v.value("transferredBytes", 0) > 0;
      },
      200ms));
  auto cancel = local_apply(c, "stage-c", mig("stage-c", "  stage: true\n  canceled: true\n"));
  INFO(cancel.err);
  REQUIRE(cancel.rc == 0);
  CHECK(cancel.out.find("MigMigration target/stage-c configured") != std::string::npos);
  REQUIRE(wait_local(c, "stage-c") == "Canceled");
  Json sc = local_get(c, "migmigration", "stage-c");
  INFO(sc.dump(2));
  CHECK(volume_of(sc, "db-01-disk-0")["phase"] == "Canceled");
  CHECK(vm_of(sc, "db-01")["phase"] == "Canceled");
  CHECK(messages(sc).find("Canceled: The migration has been canceled.") != std::string::npos);
  CHECK(eventually(
      30s,
      [&] {
        std::string log = c.agent("node-1").stderr_text();
        auto count = [&](const std::string& what) {
          size_t n = 0;
          for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1))
            n++;
          return n;
        };
        return count("\"msg\":\"serving volume\"") > 0 &&
               count("\"msg\":\"serving volume\"") == count("stopped serving volume");
      },
      250ms));
  CHECK(manifest_claims(c, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  // A canceled MigMigration stays canceled.
  auto uncancel = local_apply(c, "stage-c", mig("stage-c", "  stage: true\n  canceled: false\n"));
  CHECK(uncancel.rc != 0);
  CHECK(uncancel.err.find("spec.canceled: a canceled MigMigration stays canceled") !=
        std::string::npos);

  // A cutover canceled midway: db-01 (local copies) has switched, web-02
  // (to the slowed node-2) is halted and copying. web-02 gets its
  // runStrategy and claims back; db-01 stays switched, and only its old
  // claims are reported kept; a rollback then undoes db-01.
  c.kill_agent("node-2");
  c.start_agent("node-2", {"--volume-root=fast=" + fast, "--network", "migration=127.0.0.2",
                           "--bandwidth", std::to_string(256 * 1024)});
  const std::string plan_m2 = R"(apiVersion: migration.openshift.io/v1alpha1
kind: MigPlan
metadata: {name: move2, namespace: target}
spec:
  namespaces: [target]
  transferNetwork: migration
  persistentVolumes:
  - pvc: {name: db-01-disk-0}
    selection: {storageClass: local2}
  - pvc: {name: db-01-disk-1}
    selection: {storageClass: local2}
  - pvc: {name: web-02-disk-0}
    selection: {storageClass: fast}
)";
  REQUIRE(local_apply(c, "move2", plan_m2).rc == 0);
  const std::string cut2 = mig("cut-2", "  stage: false\n", "move2");
  REQUIRE(local_apply(c, "cut-2", cut2).rc == 0);
  REQUIRE(eventually(
      120s,
      [&] {
        Json m = local_get(c, "migmigration", "cut-2");
        Json db = vm_of(m, "db-01"), web = volume_of(m, "web-02-disk-0");
        return db.is_object() && db.value("phase", "") == "Completed" && web.is_object() &&
               web.value("transferredBytes", 0) > 0;
      },
      200ms));
  CHECK(manifest(c, "web-02")["spec"]["runStrategy"] == "Halted");  // stopped for its copy
  REQUIRE(local_apply(c, "cut-2", cut2 + "  canceled: true\n").rc == 0);
  REQUIRE(wait_local(c, "cut-2") == "Canceled");
  Json c2 = local_get(c, "migmigration", "cut-2");
  INFO(c2.dump(2));
  CHECK(vm_of(c2, "web-02")["phase"] == "Canceled");
  CHECK(volume_of(c2, "web-02-disk-0")["phase"] == "Canceled");
  CHECK(manifest(c, "web-02")["spec"]["runStrategy"] == "Always");
  CHECK(manifest_claims(c, "web-02") == std::vector<std::string>{"web-02-disk-0"});
  const std::string m2t0 = volume_of(c2, "db-01-disk-0")["targetPvcRef"]["name"];
  const std::string m2t1 = volume_of(c2, "db-01-disk-1")["targetPvcRef"]["name"];
  CHECK(manifest_claims(c, "db-01") == std::vector<std::string>{m2t0, m2t1});
  CHECK(messages(c2).find("SourceVolumesKept: The old claims target/db-01-disk-0, "
                          "target/db-01-disk-1 are kept") != std::string::npos);
  CHECK(messages(c2).find("web-02-disk-0 are kept") == std::string::npos);
  REQUIRE(local_apply(c, "rollback-2", mig("rollback-2", "  rollback: true\n", "move2")).rc == 0);
  REQUIRE(wait_local(c, "rollback-2") == "Completed");
  CHECK(local_get(c, "migmigration", "rollback-2")["status"]["rollbackOf"] == "cut-2");
  CHECK(manifest_claims(c, "db-01") == std::vector<std::string>{"db-01-disk-0", "db-01-disk-1"});
  CHECK(manifest_claims(c, "web-02") == std::vector<std::string>{"web-02-disk-0"});
  CHECK(manifest(c, "web-02")["spec"]["runStrategy"] == "Always");

  // A class no agent has: the plan says so, and a run of it is refused.
  REQUIRE(local_apply(c, "bad",
                      "apiVersion: migration.openshift.io/v1alpha1\nkind: MigPlan\n"
                      "metadata: {name: bad, namespace: target}\nspec:\n  namespaces: "
                      "[target]\n  persistentVolumes:\n  - pvc: {name: db-01-disk-0}\n"
                      "    selection: {storageClass: nope}\n")
              .rc == 0);
  REQUIRE(local_apply(c, "bad-run", mig("bad-run", "  stage: true\n", "bad")).rc == 0);
  REQUIRE(wait_local(c, "bad-run") == "Failed");
  CHECK(messages(local_get(c, "migmigration", "bad-run"))
            .find("MigPlan target/bad: spec.persistentVolumes[0].selection.storageClass: "
                  "StorageClass \"nope\" not found") != std::string::npos);
  CHECK(messages(local_get(c, "migplan", "bad")).find("InvalidPlan") != std::string::npos);
  // Deleting works as kubectl's would.
  CHECK(c.ctl({"delete", "migplan", "bad", "-n", "target"}).rc == 0);
  auto gone = c.ctl({"get", "migplan", "bad", "-n", "target"});
  CHECK(gone.rc != 0);
  CHECK(gone.err.find("MigPlan target/bad not found") != std::string::npos);
  // A name that cannot be a key or a file is refused, naming the field.
  auto badname = local_apply(
      c, "badname",
      "apiVersion: migration.openshift.io/v1alpha1\nkind: MigPlan\nmetadata: {name: x, "
      "namespace: target}\nspec:\n  namespaces: [target]\n  persistentVolumes:\n  - pvc: "
      "{name: \"../etc\"}\n    selection: {storageClass: fast}\n");
  CHECK(badname.rc != 0);
  CHECK(badname.err.find("MigPlan target/x: spec.persistentVolumes[0].pvc: \"../etc\" is not a "
                         "valid name") != std::string::npos);
}
