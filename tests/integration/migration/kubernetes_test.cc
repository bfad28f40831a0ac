// Cluster mode against a real control plane (tools/dev-cluster: etcd,
// kube-apiserver and kube-controller-manager built from k8s.io/kubernetes):
// resources applied with kubectl, statuses read with kubectl, the rest of
// Ferry (NATS, vsphere-sim, coordinator, agent) as in the other e2e tests.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/integration/migration/cluster.h"
#include "tests/support/tcp_proxy.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// The printer columns of `kubectl get KIND NAME`: header -> value.
std::map<std::string, std::string> columns(ControlPlane& k8s, const std::string& kind,
                                           const std::string& name) {
  auto r = k8s.kubectl({"get", kind, name, "-n", "openshift-mtv"});
  std::map<std::string, std::string> out;
  auto nl = r.out.find('\n');
  if (r.rc != 0 || nl == std::string::npos) return out;
  std::string head = r.out.substr(0, nl), row = r.out.substr(nl + 1);
  // Columns start where the header's words start.
  std::vector<size_t> starts;
  for (size_t i = 0; i < head.size(); i++)
    if (head[i] != ' ' && (i == 0 || head[i - 1] == ' ')) starts.push_back(i);
  for (size_t c = 0; c < starts.size(); c++) {
    size_t b = starts[c], e = c + 1 < starts.size() ? starts[c + 1] : std::string::npos;
    auto trim = [](std::string s) {
      while (!s.empty() && (s.back() == ' ' || s.back() == '\n')) s.pop_back();
      return s;
    };
    out[trim(head.substr(b, e == std::string::npos ? e : e - b))] =
        b < row.size() ? trim(row.substr(b, e == std::string::npos ? e : e - b)) : "";
  }
  return out;
}

std::set<std::string> true_conditions(const Json& obj) {
  std::set<std::string> t;
  if (!obj.is_object() || !obj.contains("status")) return t;
  for (const auto& c : obj["status"].value("conditions", Json::array()))
    if (c.value("status", "") == "True") t.insert(c.value("type", ""));
  return t;
}

}  // namespace

TEST_CASE("cluster mode: a cold migration applied with kubectl, its status in kubectl get",
          "[e2e][k8s]") {
  Cluster c({{.name = "web-01", .disk_mib = 64, .data_mib = 8}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1", {"--kubeconfig", k8s.agent_kubeconfig()});
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("plan-a", {"web-01"})}).rc == 0);
  // The Provider's connection test and inventory show in its status.
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("provider", "vsphere") == "Ready"; }, 250ms));
  REQUIRE(eventually(
      30s, [&] { return k8s.phase("plan", "plan-a") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("mig-a", "plan-a")}).rc == 0);
  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "mig-a") == "Succeeded"; }, 500ms));

  // Forklift's printer columns.
  auto mc = columns(k8s, "migration", "mig-a");
  CHECK(mc["READY"] == "True");
  CHECK(mc["SUCCEEDED"] == "True");
  CHECK(mc["FAILED"] == "");
  auto pc = columns(k8s, "plan", "plan-a");
  CHECK(pc["READY"] == "True");
  CHECK(pc["SUCCEEDED"] == "True");
  // Per-VM status in Forklift's shape, without the coordinator's working fields.
  Json m = k8s.get("migration", "mig-a");
  REQUIRE(m["status"]["vms"].size() == 1);
  Json vm = m["status"]["vms"][0];
  CHECK(vm["name"] == "web-01");
  CHECK(vm["phase"] == "Completed");
  CHECK_FALSE(vm.contains("disks"));
  bool transfer_done = false;
  for (const auto& s : vm["pipeline"])
    if (s["name"] == "DiskTransfer")
      transfer_done = s["phase"] == "Completed" && s["progress"]["completed"] == 64 &&
                      s["progress"]["total"] == 64;
  CHECK(transfer_done);
  // Ferry's finalizer is on the Migration.
  CHECK(m["metadata"]["finalizers"].dump().find("forklift.konveyor.io/ferry") != std::string::npos);
  // The VirtualMachine, accepted by KubeVirt's own schema, and its PVC with
  // Forklift's labels, owned by it.
  auto vm_out = k8s.kubectl({"get", "vm", "web-01", "-n", "target", "-o", "json"});
  REQUIRE(vm_out.rc == 0);
  Json kvm = Json::parse(vm_out.out);
  CHECK(kvm["spec"]["runStrategy"] == "Always");  // the source was powered on
  CHECK(kvm["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] ==
        "web-01-disk-0");
  auto pvc_out = k8s.kubectl({"get", "pvc", "web-01-disk-0", "-n", "target", "-o", "json"});
  REQUIRE(pvc_out.rc == 0);
  Json pvc = Json::parse(pvc_out.out);
  CHECK(pvc["metadata"]["labels"]["vmID"] == c.vm_id("web-01"));
  CHECK(pvc["metadata"]["labels"]["migration"] == m["metadata"]["uid"]);
  CHECK(pvc["metadata"]["labels"]["plan"] == k8s.get("plan", "plan-a")["metadata"]["uid"]);
  CHECK(kvm["metadata"]["labels"]["migration"] == m["metadata"]["uid"]);
  CHECK(kvm["metadata"]["labels"]["vmID"] == c.vm_id("web-01"));
  CHECK(pvc["metadata"]["ownerReferences"][0]["uid"] == kvm["metadata"]["uid"]);
  CHECK(pvc["spec"]["storageClassName"] == "local");
  CHECK(vm_status(c, "mig-a")["vmRef"] == "VirtualMachine target/web-01");
  // The agent registered the volume's directory as a local PV on its node,
  // and kube-controller-manager's binder bound the coordinator's PVC to it.
  std::string dir = c.volume_root("node-1") + "/target/web-01-disk-0";
  auto pv_out = k8s.kubectl({"get", "pv", "target.web-01-disk-0.node-1", "-o", "json"});
  REQUIRE(pv_out.rc == 0);
  Json pv = Json::parse(pv_out.out);
  CHECK(pv["spec"]["local"]["path"] == dir);
  CHECK(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
          ["values"][0] == "node-1");
  CHECK(pv["spec"]["storageClassName"] == "local");
  CHECK(k8s.pvc_bound("target", "web-01-disk-0", "target.web-01-disk-0.node-1"));
  // The schema is KubeVirt's: what it forbids is refused.
  std::string badvm = c.dir().file("bad-vm.yaml");
  write_file(badvm, R"(apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: bad, namespace: target}
spec:
  runStrategy: Always
  template:
    spec:
      domain:
        devices: {disks: [{name: d, disk: {bus: virtio}, bootOrder: "first"}]}
)");
  auto refused = k8s.kubectl({"apply", "-f", badvm});
  CHECK(refused.rc != 0);
  CHECK(refused.err.find("bootOrder") != std::string::npos);
  // kubectl describe tells the story through Events.
  CHECK(eventually(10s, [&] {
    auto d = k8s.kubectl({"describe", "migration", "mig-a", "-n", "openshift-mtv"});
    return d.out.find("Started") != std::string::npos &&
           d.out.find("VM web-01 migrated") != std::string::npos &&
           d.out.find("The migration has Succeeded.") != std::string::npos;
  }));
  // Cluster mode keeps Secrets in the API: the password never reaches NATS.
  CHECK(files_containing(c.dir().file("nats"), "ferry-sim-pass").empty());
  // The data, byte for byte, on the node's volume.
  Json full = vm_status(c, "mig-a");                     // ferryctl: the coordinator's full status
  CHECK(full["disks"][0]["path"] == dir + "/disk.img");  // KubeVirt's name on a Filesystem PVC
  CHECK_FALSE(first_difference(c.flat_path("web-01"), full["disks"][0]["path"]).has_value());

  SECTION("migrated again after its VirtualMachine was deleted, it binds its Released PV") {
    // Another Plan of the same VM while the first one's VirtualMachine is
    // there: that VM is not this migration's, so it is left alone.
    REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("plan-b", {"web-01"})}).rc == 0);
    REQUIRE(eventually(
        30s, [&] { return k8s.phase("plan", "plan-b") == "Ready"; }, 250ms));
    REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("mig-x", "plan-b")}).rc == 0);
    REQUIRE(eventually(
        120s, [&] { return k8s.phase("migration", "mig-x") == "Failed"; }, 500ms));
    CHECK(vm_status(c, "mig-x")["error"].dump().find(
              "already exists and was not made by this migration") != std::string::npos);
    CHECK(Json::parse(k8s.kubectl({"get", "vm", "web-01", "-n", "target", "-o", "json"})
                          .out)["metadata"]["labels"]["migration"] == m["metadata"]["uid"]);
    // The garbage collector removes the PVC with its VM; the Retain policy
    // keeps the PV, Released, bound to the old claim's uid.
    REQUIRE(k8s.kubectl({"delete", "vm", "web-01", "-n", "target", "--wait=true"}).rc == 0);
    auto pv_phase = [&] {
      auto p = k8s.kubectl({"get", "pv", "target.web-01-disk-0.node-1", "-o", "json"});
      return p.rc == 0 ? Json::parse(p.out)["status"].value("phase", "") : "";
    };
    REQUIRE(eventually(
        60s, [&] { return pv_phase() == "Released"; }, 250ms));
    REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("mig-b", "plan-b")}).rc == 0);
    REQUIRE(eventually(
        120s, [&] { return k8s.phase("migration", "mig-b") == "Succeeded"; }, 500ms));
    CHECK(k8s.pvc_bound("target", "web-01-disk-0", "target.web-01-disk-0.node-1"));
    CHECK(pv_phase() == "Bound");
    CHECK_FALSE(first_difference(c.flat_path("web-01"), vm_status(c, "mig-b")["disks"][0]["path"])
                    .has_value());
  }

  SECTION("problems a kubectl apply cannot refuse become Critical conditions") {
    std::string bad = c.dir().file("bad.yaml");
    write_file(bad, R"(apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: plan-missing-vm, namespace: openshift-mtv}
spec:
  provider: {source: {name: vsphere}, destination: {name: host}}
  map: {network: {name: net}, storage: {name: storage}}
  targetNamespace: target
  vms:
    - name: no-such-vm
---
apiVersion: forklift.konveyor.io/v1beta1
kind: NetworkMap
metadata: {name: net-no-nad, namespace: openshift-mtv}
spec:
  provider: {source: {name: vsphere}, destination: {name: host}}
  map:
    - source: {name: VM Network}
      destination: {type: multus, name: no-such-nad}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: plan-missing-nad, namespace: openshift-mtv}
spec:
  provider: {source: {name: vsphere}, destination: {name: host}}
  map: {network: {name: net-no-nad}, storage: {name: storage}}
  targetNamespace: target
  vms:
    - name: web-01
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Migration
metadata: {name: mig-of-missing-plan, namespace: openshift-mtv}
spec:
  plan: {name: no-such-plan}
)");
    REQUIRE(k8s.kubectl({"apply", "-f", bad}).rc == 0);
    REQUIRE(eventually(
        30s, [&] { return k8s.phase("plan", "plan-missing-vm") == "Not ready"; }, 250ms));
    Json p = k8s.get("plan", "plan-missing-vm");
    CHECK(true_conditions(p).count("VMNotFound"));
    CHECK_FALSE(true_conditions(p).count("Ready"));
    REQUIRE(eventually(
        30s, [&] { return k8s.phase("plan", "plan-missing-nad") == "Not ready"; }, 250ms));
    Json pn = k8s.get("plan", "plan-missing-nad");
    CHECK(true_conditions(pn).count("DestinationNetworkNotValid"));
    CHECK(pn["status"].dump().find("NetworkAttachmentDefinition target/no-such-nad not found") !=
          std::string::npos);
    REQUIRE(eventually(
        30s, [&] { return k8s.phase("migration", "mig-of-missing-plan") != ""; }, 250ms));
    Json mig = k8s.get("migration", "mig-of-missing-plan");
    CHECK(mig["status"]["phase"] == "Not ready");
    CHECK(mig["status"].dump().find("Plan openshift-mtv/no-such-plan not found") !=
          std::string::npos);
    // A Migration that never ran is deleted at once (its finalizer let go).
    REQUIRE(k8s.kubectl({"delete", "migration", "mig-of-missing-plan", "-n", "openshift-mtv",
                         "--timeout=30s"})
                .rc == 0);
  }
}

TEST_CASE("cluster mode: spec.cancel and deleting a running Migration cancel it", "[e2e][k8s]") {
  Cluster c({{.name = "a-01", .disk_mib = 128, .data_mib = 16},
             {.name = "b-01", .base = "DC0_H0_VM1", .disk_mib = 128, .data_mib = 16}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  // 4 MiB/s: each copy takes ~30 s, long enough to cancel in the middle.
  c.start_agent("node-1", {"--bandwidth", std::to_string(4 << 20)});
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("p", {"a-01", "b-01"})}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  std::string va = c.volume_root("node-1") + "/target/a-01-disk-0/disk.img";
  std::string vb = c.volume_root("node-1") + "/target/b-01-disk-0/disk.img";
  REQUIRE(eventually(
      60s, [&] { return path_exists(va) && path_exists(vb); }, 200ms));

  // spec.cancel names one VM: it stops, the other goes on.
  REQUIRE(k8s.kubectl({"patch", "migration", "m", "-n", "openshift-mtv", "--type=merge", "-p",
                       R"({"spec":{"cancel":[{"name":"a-01"}]}})"})
              .rc == 0);
  auto phase_of = [&](const std::string& name) {
    Json m = k8s.get("migration", "m");
    if (!m.is_object() || !m.contains("status")) return std::string();
    for (const auto& vm : m["status"].value("vms", Json::array()))
      if (vm.value("name", "") == name) return vm.value("phase", "");
    return std::string();
  };
  REQUIRE(eventually(
      30s, [&] { return phase_of("a-01") == "Canceled"; }, 250ms));
  CHECK(eventually(10s, [&] { return !path_exists(va); }));
  CHECK(k8s.phase("migration", "m") == "Running");
  CHECK(phase_of("b-01") != "Canceled");

  // Deleting the running Migration cancels the rest and cleans up before it goes.
  REQUIRE(k8s.kubectl({"delete", "migration", "m", "-n", "openshift-mtv", "--timeout=60s"}).rc ==
          0);
  CHECK(k8s.get("migration", "m").is_null());
  CHECK(eventually(10s, [&] { return !path_exists(vb); }));
  // The coordinator forgot it, and a new Migration of the Plan may run.
  CHECK(c.ctl({"get", "migration", "m"}).rc != 0);
}

// The loop device backing `file` as `losetup -j` lists it ("" if none).
std::string loop_of(const Cluster& c, const std::string& file) {
  Subprocess p({require_program("losetup"), "-j", file},
               {.log_dir = c.dir().path(), .name = "losetup"});
  p.wait(30s);
  return p.stdout_text();
}

TEST_CASE("cluster mode: Block-mode volumes are loop devices, their PVs Block and Bound",
          "[e2e][k8s]") {
  Cluster c({{.name = "blk-a", .disk_mib = 128, .data_mib = 16},
             {.name = "blk-b", .base = "DC0_H0_VM1", .disk_mib = 128, .data_mib = 16}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1",
                {"--kubeconfig", k8s.agent_kubeconfig(), "--bandwidth", std::to_string(4 << 20)});
  std::string manifests = c.write_manifests("p", {"blk-a", "blk-b"});
  std::string text = read_file(manifests);
  const std::string plain = "destination: {storageClass: local}";
  REQUIRE(text.find(plain) != std::string::npos);
  text.replace(text.find(plain), plain.size(),
               "destination: {storageClass: local, volumeMode: Block}");
  write_file(manifests, text);
  REQUIRE(k8s.kubectl({"apply", "-f", manifests}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  std::string da = c.volume_root("node-1") + "/target/blk-a-disk-0";
  std::string db = c.volume_root("node-1") + "/target/blk-b-disk-0";
  auto is_block = [](const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
  };
  REQUIRE(eventually(
      60s, [&] { return is_block(da + "/block") && is_block(db + "/block"); }, 200ms));
  CHECK(loop_of(c, da + "/block.img").find(da + "/block.img") != std::string::npos);

  // Canceled, its loop device is detached and its node and file removed.
  REQUIRE(k8s.kubectl({"patch", "migration", "m", "-n", "openshift-mtv", "--type=merge", "-p",
                       R"({"spec":{"cancel":[{"name":"blk-a"}]}})"})
              .rc == 0);
  CHECK(eventually(30s, [&] { return !path_exists(da + "/block.img"); }));
  CHECK_FALSE(path_exists(da + "/block"));
  CHECK(loop_of(c, da + "/block.img").empty());

  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "m") == "Succeeded"; }, 500ms));
  // The PV is the device, volumeMode Block, bound to the Block PVC of the VM.
  auto pv_out = k8s.kubectl({"get", "pv", "target.blk-b-disk-0.node-1", "-o", "json"});
  REQUIRE(pv_out.rc == 0);
  Json pv = Json::parse(pv_out.out);
  CHECK(pv["spec"]["volumeMode"] == "Block");
  CHECK(pv["spec"]["local"]["path"] == db + "/block");
  CHECK(k8s.pvc_bound("target", "blk-b-disk-0", "target.blk-b-disk-0.node-1"));
  CHECK(k8s.get_in("target", "pvc", "blk-b-disk-0")["spec"]["volumeMode"] == "Block");
  // Byte for byte: read through the device, stored in its file.
  CHECK(c.get_json("migration", "m")["status"]["vms"].dump().find(db + "/block\"") !=
        std::string::npos);
  CHECK_FALSE(first_difference(c.flat_path("blk-b"), db + "/block.img").has_value());
  CHECK(loop_of(c, db + "/block.img").find(db + "/block.img") != std::string::npos);
  // The test leaves no loop device behind.
  Subprocess detach({require_program("losetup"), "-d", db + "/block"},
                    {.log_dir = c.dir().path(), .name = "losetup"});
  CHECK(detach.wait(30s) == 0);
}

TEST_CASE("cluster mode: a Migration deleted while no coordinator runs is canceled at its start",
          "[e2e][k8s]") {
  Cluster c({{.name = "del-01", .disk_mib = 128, .data_mib = 32}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1", {"--bandwidth", std::to_string(1 << 20)});
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("p", {"del-01"})}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  std::string vol = c.volume_root("node-1") + "/target/del-01-disk-0/disk.img";
  REQUIRE(eventually(
      60s, [&] { return path_exists(vol); }, 200ms));
  c.kill_coordinator();
  REQUIRE(k8s.kubectl({"delete", "migration", "m", "-n", "openshift-mtv", "--wait=false"}).rc == 0);
  // The finalizer holds it until a coordinator has canceled it.
  Json held = k8s.get("migration", "m");
  REQUIRE(held.is_object());
  CHECK(held["metadata"].contains("deletionTimestamp"));
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  CHECK(eventually(
      60s, [&] { return k8s.get("migration", "m").is_null(); }, 250ms));
  // Canceled, not finished: the copy stopped and its volume was removed.
  CHECK(eventually(30s, [&] { return !path_exists(vol); }));
  CHECK(c.ctl({"get", "migration", "m"}).rc != 0);
}

TEST_CASE("cluster mode: a second coordinator takes the Lease over mid-migration", "[e2e][k8s]") {
  Cluster c({{.name = "fo-01", .disk_mib = 96, .data_mib = 16}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  auto standby =
      c.spawn_coordinator("coordinator-b", {"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1", {"--bandwidth", std::to_string(8 << 20)});
  auto holder = [&] {
    Json l = k8s.get("lease", "ferry-coordinator");
    return l.is_object() ? l["spec"].value("holderIdentity", "") : "";
  };
  REQUIRE(eventually(
      20s, [&] { return !holder().empty(); }, 250ms));
  std::string first = holder();
  REQUIRE(eventually(10s, [&] {
    return standby->stderr_text().find("another coordinator is active") != std::string::npos;
  }));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("p", {"fo-01"})}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return path_exists(c.volume_root("node-1") + "/target/fo-01-disk-0/disk.img"); },
      200ms));
  c.kill_coordinator();  // SIGKILL: the Lease is not given up, it expires
  REQUIRE(eventually(
      60s, [&] { return !holder().empty() && holder() != first; }, 500ms));
  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "m") == "Succeeded"; }, 500ms));
  CHECK(k8s.get("lease", "ferry-coordinator")["spec"]["leaseTransitions"] == 1);
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("fo-01"), vm["disks"][0]["path"]).has_value());
}

// The "ts" of the first log line whose "msg" is `msg` ("" if none).
std::string logged_at(const std::string& log, const std::string& msg) {
  std::istringstream in(log);
  for (std::string line; std::getline(in, line);) {
    Json j = Json::parse(line, nullptr, false);
    if (j.is_object() && j.value("msg", "") == msg) return j.value("ts", "");
  }
  return "";
}

TEST_CASE(
    "cluster mode: a coordinator cut off from the API server steps down before another "
    "takes over",
    "[e2e][k8s]") {
  Cluster c({{.name = "cut-01", .disk_mib = 96, .data_mib = 32}});
  ControlPlane k8s(c);
  TcpProxy link(k8s.api_port());  // the first coordinator's only way to the API server
  auto first = c.spawn_coordinator(
      "coordinator-a",
      {"--kubeconfig", k8s.kubeconfig_via(k8s.coordinator_kubeconfig(), link.port())});
  auto holder = [&] {
    Json l = k8s.get("lease", "ferry-coordinator");
    return l.is_object() ? l["spec"].value("holderIdentity", "") : "";
  };
  REQUIRE(eventually(
      20s, [&] { return !holder().empty(); }, 250ms));
  std::string a = holder();
  auto second =
      c.spawn_coordinator("coordinator-b", {"--kubeconfig", k8s.coordinator_kubeconfig()});
  REQUIRE(eventually(10s, [&] {
    return second->stderr_text().find("another coordinator is active") != std::string::npos;
  }));
  c.start_agent("node-1", {"--bandwidth", std::to_string(2 << 20)});
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("p", {"cut-01"})}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return path_exists(c.volume_root("node-1") + "/target/cut-01-disk-0/disk.img"); },
      200ms));
  link.cut();  // NATS still reaches it: only the Lease can tell it to stop
  REQUIRE(eventually(
      60s, [&] { return !holder().empty() && holder() != a; }, 500ms));
  // It gave up within the renew deadline, before the other could take the Lease.
  std::string stepped = logged_at(first->stderr_text(), "lease lost");
  std::string took = logged_at(second->stderr_text(), "lease acquired");
  REQUIRE_FALSE(stepped.empty());
  REQUIRE_FALSE(took.empty());
  CHECK(stepped < took);
  CHECK(first->stderr_text().find("was not renewed for") != std::string::npos);
  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "m") == "Succeeded"; }, 500ms));
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("cut-01"), vm["disks"][0]["path"]).has_value());
  // Reconnected, it stands by in the same process under the same name.
  link.restore();
  CHECK(first->alive());
  CHECK(eventually(40s, [&] {
    std::string log = first->stderr_text();
    return log.find("stepped down; standing by for the lease again") != std::string::npos &&
           log.find("another coordinator is active") != std::string::npos;
  }));
  CHECK(holder() != a);
}

TEST_CASE("cluster mode: the API server restarted mid-migration", "[e2e][k8s]") {
  Cluster c({{.name = "rs-01", .disk_mib = 96, .data_mib = 16}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1", {"--bandwidth", std::to_string(8 << 20)});
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("p", {"rs-01"})}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("migration", "m") == "Running"; }, 250ms));
  k8s.restart("kube-apiserver");
  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "m") == "Succeeded"; }, 500ms));
  CHECK(c.coordinator_alive());
  Json vm = vm_status(c, "m");
  CHECK_FALSE(first_difference(c.flat_path("rs-01"), vm["disks"][0]["path"]).has_value());
  // Events from while it was away are recorded once it is back.
  CHECK(eventually(20s, [&] {
    auto d = k8s.kubectl({"describe", "migration", "m", "-n", "openshift-mtv"});
    return d.out.find("The migration has Succeeded.") != std::string::npos;
  }));
  // The watches came back: a Plan applied now is checked.
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_manifests("p2", {"rs-01"})}).rc == 0);
  CHECK(eventually(
      30s, [&] { return k8s.phase("plan", "p2") == "Ready"; }, 250ms));
}
