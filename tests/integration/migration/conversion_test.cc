// Guest conversion in place on the node (virt-v2v-in-place, real libguestfs under TCG).
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>

#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// libguestfs settings for this machine (QEMU aborts with KVM here). The agent
// passes its LIBGUESTFS_* environment to virt-v2v; nothing in Ferry hard-codes them.
void set_guestfs_env() {
  setenv("LIBGUESTFS_BACKEND", "direct", 0);
  setenv("LIBGUESTFS_BACKEND_SETTINGS", "force_tcg", 0);
}

std::string guest_image() {
  if (const char* p = std::getenv("FERRY_GUEST_IMAGE")) return p;
  std::string out;
  Subprocess b({std::string(FERRY_SOURCE_DIR) + "/tools/build-guest-image",
                std::string(FERRY_BUILD_DIR) + "/guest"},
               {.name = "build-guest-image"});
  auto rc = b.wait(std::chrono::minutes(30));
  if (!rc || *rc != 0)
    throw std::runtime_error("tools/build-guest-image failed: " + b.stderr_text());
  out = b.stdout_text();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.substr(out.rfind('\n') + 1);
}

}  // namespace

TEST_CASE(
    "a disk without an OS fails the preflight inspection before the VM is touched or a byte "
    "copied",
    "[e2e]") {
  set_guestfs_env();
  require_program("virt-inspector");
  Cluster c({{.name = "noos-02", .disk_mib = 64, .data_mib = 4, .power_state = "poweredOn"}});
  c.start_coordinator();
  c.start_agent("node-1");
  REQUIRE(
      c.ctl({"apply", "-f", c.write_manifests("p", {"noos-02"}, "  skipGuestConversion: false\n")})
          .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m", 600) == "Failed");
  Json vm = vm_status(c, "m");
  INFO(vm.dump(1));
  CHECK(vm["error"]["phase"] == "PreflightInspection");
  CHECK(vm["error"]["step"] == "Initialize");
  std::string reason = vm["error"]["reasons"][0];
  CHECK(reason.find("preflight inspection: no operating system was found") != std::string::npos);
  CHECK(vm["inspection"]["report"]["foundOS"] == false);
  // The Plan carries the concern, by name.
  Json plan = c.get_json("plan", "p");
  bool concern = false;
  for (const auto& cond : plan["status"]["conditions"])
    if (cond["type"] == "VMGuestInspectionFailed")
      concern = cond["category"] == "Critical" &&
                cond["message"].get<std::string>().find("noos-02") != std::string::npos;
  CHECK(concern);
  // Nothing was copied, no volume made, and the source was never powered off.
  CHECK(vm["disks"].empty());
  CHECK_FALSE(std::filesystem::exists(c.volume_root("node-1") + "/target"));
  CHECK(c.sim_stats()["folder_bytes"].get<uint64_t>() < 16u << 20);  // inspection reads little
  CHECK(c.sim_get("/ferry-sim/vm?name=noos-02")["power_state"] == "poweredOn");
  CHECK(read_file(c.dir().file("agent-node-1.stderr")).find("task started") == std::string::npos);
  // No nbdkit or qemu left behind, nor the inspection's scratch dir (whose
  // sockets and cookie files their command lines name; other tests may run
  // qemu at the same time).
  Subprocess pg({require_program("pgrep"), "-f", "ferry-inspect-"}, {.log_dir = c.dir().path()});
  CHECK(pg.wait(10s) == 1);
}

TEST_CASE(
    "a guest virt-v2v cannot convert fails at ImageConversion, keeps its volumes, and retry "
    "converts again without copying",
    "[e2e]") {
  set_guestfs_env();
  require_program("virt-v2v-in-place");
  Cluster c({{.name = "noos-01",
              .disk_mib = 64,
              .data_mib = 4,
              .macs = {"00:50:56:aa:dd:01"},
              .guest_ips = {"192.168.40.21/24"},
              .gateway = "192.168.40.1"}});
  c.start_coordinator();
  c.start_agent("node-1");
  // Without the preflight inspection, the bad guest is found only at conversion.
  REQUIRE(c.ctl({"apply", "-f",
                 c.write_manifests("p", {"noos-01"},
                                   "  skipGuestConversion: false\n  skipPreflightInspection: "
                                   "true\n  preserveStaticIPs: true\n")})
              .rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m", 600) == "Failed");
  Json vm = vm_status(c, "m");
  CHECK(vm["error"]["step"] == "ImageConversion");
  // preserveStaticIPs: the address the guest reported went to virt-v2v as --mac.
  CHECK(vm["conversion"]["macIPs"]["00:50:56:aa:dd:01"] == "192.168.40.21,192.168.40.1,24");
  std::string reason = vm["error"]["reasons"][0];
  INFO(reason);
  CHECK(reason.find("guest conversion on node node-1 failed") != std::string::npos);
  CHECK(reason.find("virt-v2v") != std::string::npos);  // virt-v2v's own words
  // The copied volume stays, intact.
  std::string volume = vm["disks"][0]["path"];
  CHECK_FALSE(first_difference(c.flat_path("noos-01"), volume).has_value());
  auto read_before =
      metric(c.http_get("node-1", "/metrics"), "ferry_agent_source_read_bytes_total");
  // No virt-v2v or qemu left behind.
  // (Only this test's: its volumes live under its own directory.)
  Subprocess pg(
      {require_program("pgrep"), "-f", "(virt-v2v-in-place|qemu-system).*" + c.dir().path()},
      {.log_dir = c.dir().path()});
  CHECK(pg.wait(10s) == 1);

  auto r = c.ctl({"retry", "migration", "m", "--vm", "noos-01"});
  REQUIRE(r.rc == 0);
  CHECK(r.out.find("conversion restarted") != std::string::npos);
  REQUIRE(wait_migration(c, "m", 600) == "Failed");
  vm = vm_status(c, "m");
  CHECK(vm["conversion"]["attempt"] == 2);
  CHECK(vm["error"]["step"] == "ImageConversion");
  // Only the conversion ran again: nothing more was read from the source.
  CHECK(metric(c.http_get("node-1", "/metrics"), "ferry_agent_source_read_bytes_total") ==
        read_before);
  // A VM that did not fail at conversion cannot be "retried".
  auto bad = c.ctl({"retry", "migration", "m", "--vm", "nope"});
  CHECK(bad.rc != 0);
  CHECK(bad.err.find("--vm: VM \"nope\" is not part of this migration") != std::string::npos);
}

// The suite's one real conversion runs in cluster mode, applied with kubectl:
// the PVC must end Bound to the PV on the node that holds the converted disk.
TEST_CASE(
    "cluster mode: the real Debian guest is migrated and converted in place, the VirtualMachine "
    "follows the inspection",
    "[slow]") {
  set_guestfs_env();
  std::string image = guest_image();
  Cluster c({{.name = "debian-01",
              .disk_mib = 0,
              .power_state = "poweredOn",
              .macs = {"00:50:56:aa:00:01"},
              .image = image}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1", {"--kubeconfig", k8s.agent_kubeconfig()});
  REQUIRE(k8s.kubectl({"apply", "-f",
                       c.write_manifests("p", {"debian-01"}, "  skipGuestConversion: false\n")})
              .rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  // Once the copy is done, remember the volume's inode: in-place conversion keeps it.
  ino_t inode = 0;
  std::string dir = c.volume_root("node-1") + "/target/debian-01-disk-0";
  std::string volume = dir + "/disk.img";
  REQUIRE(eventually(
      600s,
      [&] {
        Json vm = vm_status(c, "m");
        if (vm.value("phase", "") == "ConvertGuest" || vm.value("phase", "") == "Completed") {
          struct stat st {};
          if (::stat(volume.c_str(), &st) == 0) inode = st.st_ino;
          return true;
        }
        return vm.value("phase", "") == "Failed";
      },
      500ms));
  REQUIRE(eventually(
      1800s,
      [&] {
        std::string p = k8s.phase("migration", "m");
        return p == "Succeeded" || p == "Failed";
      },
      2s));
  REQUIRE(k8s.phase("migration", "m") == "Succeeded");
  Json vm = vm_status(c, "m");
  struct stat st {};
  REQUIRE(::stat(volume.c_str(), &st) == 0);
  CHECK(st.st_ino == inode);  // converted in place, no second copy
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  CHECK(files == 1);
  const Json& rep = vm["conversion"]["report"];
  CHECK(rep["distro"] == "debian");
  // The preflight inspection recognised the guest before the copy.
  CHECK(vm["inspection"]["report"]["foundOS"] == true);
  CHECK(vm["inspection"]["report"]["distro"] == "debian");
  CHECK(rep["virtioDisk"] == true);
  // The VirtualMachine in the API (KubeVirt's schema) has virtio devices and the guest's OS.
  auto vm_out = k8s.kubectl({"get", "vm", "debian-01", "-n", "target", "-o", "json"});
  REQUIRE(vm_out.rc == 0);
  std::string kvm = Json::parse(vm_out.out).dump();
  CHECK(kvm.find(R"("bus":"virtio")") != std::string::npos);
  CHECK(kvm.find(R"("model":"virtio")") != std::string::npos);
  CHECK(kvm.find(R"("ferry.io/guest-os":"linux debian 12)") != std::string::npos);
  // Its PVC is Bound to the PV on node-1, whose directory holds the converted disk.
  CHECK(k8s.pvc_bound("target", "debian-01-disk-0", "target.debian-01-disk-0.node-1"));
  auto pv_out = k8s.kubectl({"get", "pv", "target.debian-01-disk-0.node-1", "-o", "json"});
  REQUIRE(pv_out.rc == 0);
  Json pv = Json::parse(pv_out.out);
  CHECK(pv["spec"]["local"]["path"] == dir);
  CHECK(pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]
          ["values"][0] == "node-1");
  // The guest's own files survived, and its initramfs now has virtio drivers.
  Subprocess cat({require_program("virt-cat"), "-a", volume, "/etc/ferry-marker"},
                 {.log_dir = c.dir().path()});
  REQUIRE(cat.wait(300s) == 0);
  CHECK(cat.stdout_text() == "ferry guest marker v1\n");
  Subprocess ls({require_program("guestfish"), "--ro", "-a", volume, "-i", "sh",
                 "lsinitramfs /boot/initrd.img-$(ls /lib/modules | head -1) | grep -c virtio"},
                {.log_dir = c.dir().path()});
  REQUIRE(ls.wait(300s) == 0);
  CHECK(std::stoi(ls.stdout_text()) > 0);
}
