// The one slow test: a real Debian 12 guest (tools/build-guest-image) is inspected, converted in
// place by virt-v2v-in-place under TCG, checked with guestfish, and booted from virtio-blk.
#include <catch2/catch.hpp>
#include <cstdio>
#include <iostream>

#include "agent/convert/convert.h"
#include "common/process/process.h"
#include "tests/integration/convert/convert_fixtures.h"
#include "tests/support/test_support.h"

using namespace ferry::agent::convert;
using namespace ferry::process;
using namespace ferry::test::convert;
using namespace std::chrono_literals;

namespace {

bool has_line(const std::vector<std::string>& lines, const std::string& needle) {
  for (const auto& l : lines)
    if (l.find(needle) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("integration/guest: Debian 12 is inspected, converted in place, and keeps its data",
          "[guest]") {
  ferry::test::require_program("virt-v2v-in-place");
  ferry::test::require_program("virt-inspector");
  ferry::test::require_program("guestfish");
  auto t0 = std::chrono::steady_clock::now();
  GuestImage guest = guest_image();
  auto image_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  ferry::test::TempDir dir("ferry-convert");
  std::string disk = dir.file("web-01-disk0.img");
  // The conversion modifies the disk: work on a sparse copy, the cached image stays pristine.
  auto cp = run_tool({"cp", "--sparse=always", guest.path, disk});
  REQUIRE(cp.exit_code == 0);

  // Preflight, as the coordinator would ask for before copying.
  auto t_inspect = std::chrono::steady_clock::now();
  auto insp = inspect({{disk, "raw"}}, libguestfs_env(), 600s, nullptr);
  auto inspect_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_inspect).count();
  REQUIRE(insp.ok());
  CHECK(insp->found_os);
  CHECK(insp->os_name == "linux");
  CHECK(insp->distro == "debian");
  CHECK(insp->version.rfind("12", 0) == 0);
  CHECK(insp->arch == "x86_64");
  CHECK(insp->concerns.empty());

  ConvertSpec spec;
  spec.name = "web-01";
  spec.disks = {{disk, "raw"}};
  spec.cpus = 1;
  spec.memory_mb = 1024;
  spec.macs = {"00:50:56:01:02:03"};
  spec.mac_ips = {{"00:50:56:01:02:03", "192.168.10.5,192.168.10.1,24,192.168.10.2"}};
  spec.env = libguestfs_env();
  spec.time_limit = 1800s;
  spec.work_dir = dir.file("work");
  std::vector<std::string> status;
  spec.on_output = [&](const std::string& l) { status.push_back(l); };

  auto before_tmp = tmp_entries("ferry-v2v-");
  auto report = convert_in_place(spec);
  if (!report.ok()) FAIL(report.error().to_string());
  CHECK(report->os_name == "linux");
  CHECK(report->os_distro == "debian");
  CHECK(report->os_version.rfind("12", 0) == 0);
  CHECK(report->firmware == "bios");
  CHECK(report->virtio_disk);
  CHECK(report->virtio_net);
  CHECK(std::find(report->drivers_installed.begin(), report->drivers_installed.end(),
                  "virtio_blk") != report->drivers_installed.end());
  CHECK(has_line(status, "Converting"));
  CHECK(has_line(status, "Finishing off"));
  CHECK(ferry::test::path_exists(spec.work_dir + "/web-01.xml"));
  CHECK(ferry::test::path_exists(report->log_path));
  // Nothing of the run outlives it: no process on our disk, no temp dir of ours.
  CHECK(processes_mentioning(disk).empty());
  CHECK(processes_mentioning("/tmp/ferry-v2v-").empty());
  CHECK(tmp_entries("ferry-v2v-") == before_tmp);

  // The converted guest, seen from outside: same OS, marker files intact, virtio in the initrd.
  auto t_check = std::chrono::steady_clock::now();
  auto gf = run_tool({"guestfish", "--ro", "-a", disk, "-i", "inspect-get-distro", "/dev/sda1", ":",
                      "inspect-get-major-version", "/dev/sda1", ":", "cat", "/etc/ferry-marker",
                      ":", "checksum", "sha256", "/srv/ferry/data.bin", ":",
                      // The initrd virt-v2v rebuilt, not its *.pre-v2v backup.
                      "sh",
                      "for f in /boot/initrd.img-*; do case $f in *.pre-v2v) ;; *) lsinitramfs $f;;"
                      " esac; done | grep -E 'virtio_(blk|net|scsi)[.]ko' | sort",
                      ":", "cat", "/etc/initramfs-tools/initramfs.conf"},
                     libguestfs_env(), 600s);
  auto check_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_check).count();
  INFO(gf.text());
  REQUIRE(gf.exit_code == 0);
  CHECK(has_line(gf.lines, "debian"));
  CHECK(has_line(gf.lines, "12"));
  CHECK(has_line(gf.lines, "ferry guest marker v1"));
  CHECK(has_line(gf.lines, guest.data_sha256));
  CHECK(has_line(gf.lines, "kernel/drivers/block/virtio_blk.ko"));
  CHECK(has_line(gf.lines, "kernel/drivers/net/virtio_net.ko"));
  CHECK(has_line(gf.lines, "kernel/drivers/scsi/virtio_scsi.ko"));
  CHECK(has_line(gf.lines, "MODULES=dep"));

  // And it boots from virtio-blk (KubeVirt's default disk bus) to a login prompt.
  auto t_boot = std::chrono::steady_clock::now();
  std::atomic<bool> at_login{false};
  std::vector<std::string> console;
  ProcessSpec boot;
  boot.argv = {"qemu-system-x86_64",
               "-accel",
               "tcg",
               "-m",
               "1024",
               "-nographic",
               "-no-reboot",
               "-nic",
               "none",
               "-drive",
               "file=" + disk + ",format=raw,if=virtio,snapshot=on"};
  boot.time_limit = 600s;
  boot.cancel = &at_login;
  boot.on_line = [&](const std::string& l) {
    console.push_back(l);
    if (l.find("login:") != std::string::npos) at_login = true;
  };
  auto booted = run_process(boot);
  auto boot_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_boot).count();
  REQUIRE(booted.ok());
  INFO([&] {
    std::string tail;
    for (size_t i = console.size() > 30 ? console.size() - 30 : 0; i < console.size(); ++i)
      tail += console[i] + "\n";
    return tail;
  }());
  CHECK(at_login);
  CHECK(has_line(console, "virtio_blk"));

  std::cout << "convert/guest timings: image " << image_s << " s (build or cache hit), inspect "
            << inspect_s << " s, convert_in_place " << report->seconds << " s, guestfish check "
            << check_s << " s, virtio boot to login " << boot_s << " s; warnings:";
  for (const auto& w : report->warnings) std::cout << " [" << w << "]";
  std::cout << std::endl;
}
