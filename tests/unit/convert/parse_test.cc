// Parsing of virt-v2v 2.2 output captured on this project's test guest (tools/build-guest-image,
// Debian 12) and on a blank ext4 disk; see fixtures/.
#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "agent/convert/convert.h"

using namespace ferry::agent::convert;

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(FERRY_CONVERT_FIXTURES) + "/" + name);
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> fixture_lines(const std::string& name) {
  std::istringstream in(fixture(name));
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("conversion report from a successful in-place conversion of Debian 12") {
  auto r = parse_conversion_output(fixture_lines("in-place-debian12-ok.log"));
  CHECK(r.os_name == "linux");
  CHECK(r.os_distro == "debian");
  CHECK(r.os_version == "12.15");
  CHECK(r.os_product == "12.15");
  CHECK(r.firmware == "bios");
  CHECK(r.virtio_disk);
  CHECK(r.virtio_net);
  CHECK(r.machine == "q35");
  CHECK(r.drivers_installed == std::vector<std::string>{"virtio_blk", "virtio_net", "virtio_rng",
                                                        "virtio_balloon", "pvpanic",
                                                        "vmw_vsock_virtio_transport"});
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0] == "could not determine a way to update the configuration of Grub2");
}

TEST_CASE("an empty or unrelated output gives an empty report") {
  auto r = parse_conversion_output({"hello", "", "i_type =", "gcaps_block_bus = ide"});
  CHECK(r.os_name.empty());
  CHECK_FALSE(r.virtio_disk);
  CHECK(r.drivers_installed.empty());
}

TEST_CASE("the failure message is virt-v2v's own error, from its JSON message") {
  auto tail = meaningful_tail(fixture_lines("in-place-blank-disk-fails.log"));
  CHECK(tail.rfind("inspection could not detect the source guest", 0) == 0);
  CHECK(tail.find("No root device found in this operating system image.") != std::string::npos);
  CHECK(tail.find("nbdkit") == std::string::npos);
}

TEST_CASE("without JSON messages the human error line and its continuation are used") {
  std::vector<std::string> lines = {
      "libguestfs: trace: launch",
      "virt-v2v-in-place: error: libguestfs error: could not create appliance through libvirt.",
      "Try running qemu directly without libvirt using this environment variable:",
      "export LIBGUESTFS_BACKEND=direct",
      "",
      "If reporting bugs, run virt-v2v with debugging enabled",
      "libguestfs: closing guestfs handle"};
  auto tail = meaningful_tail(lines);
  CHECK(tail ==
        "virt-v2v-in-place: error: libguestfs error: could not create appliance through "
        "libvirt.\nTry running qemu directly without libvirt using this environment "
        "variable:\nexport LIBGUESTFS_BACKEND=direct");
}

TEST_CASE("with no error line the last non-noise lines are used") {
  std::vector<std::string> lines = {"something went wrong",
                                    "   ",
                                    "12/100",
                                    "guestfsd: => umount_all (0x2f) took 0.49 secs",
                                    "[   12.123456] EXT4-fs (sda1): unmounting filesystem.",
                                    "and then it died"};
  CHECK(meaningful_tail(lines) == "something went wrong\nand then it died");
}

TEST_CASE("status lines are virt-v2v's own, not the appliance's debug output") {
  CHECK(is_status_line("[  38.6] Converting 12.15 to run on KVM"));
  CHECK(is_status_line("[ 211.9] Finishing off"));
  CHECK(is_status_line("virt-v2v-in-place: warning: could not determine a way to update"));
  CHECK(is_status_line("virt-v2v-in-place: This guest has virtio drivers installed."));
  CHECK(is_status_line("12/100"));
  CHECK_FALSE(is_status_line("[    0.000000] Command line: panic=1 console=ttyS0"));
  CHECK_FALSE(is_status_line("guestfsd: <= is_file (0x25) request length 72 bytes"));
  CHECK_FALSE(is_status_line("{ \"message\": \"Finishing off\", \"type\": \"message\" }"));
  CHECK_FALSE(is_status_line(""));

  size_t status = 0;
  for (const auto& l : fixture_lines("in-place-debian12-ok.log")) status += is_status_line(l);
  CHECK(status >= 10);
  CHECK(status < 40);
}

TEST_CASE("virt-inspector XML of the Debian 12 guest") {
  auto r = parse_inspector_xml(fixture("virt-inspector-debian12.xml"));
  REQUIRE(r.ok());
  CHECK(r->found_os);
  CHECK(r->os_name == "linux");
  CHECK(r->distro == "debian");
  CHECK(r->version == "12.15");
  CHECK(r->arch == "x86_64");
  CHECK(r->osinfo == "debian12");
  CHECK(r->product == "12.15");
  CHECK(r->concerns.empty());
}

TEST_CASE("virt-v2v-inspector XML of the same guest parses the same way") {
  auto r = parse_inspector_xml(fixture("v2v-inspector-debian12.xml"));
  REQUIRE(r.ok());
  CHECK(r->found_os);
  CHECK(r->distro == "debian");
  CHECK(r->version == "12.15");
  CHECK(r->osinfo == "debian12");
}

TEST_CASE("inspector XML of a blank disk: no OS, with a concern") {
  auto r = parse_inspector_xml(fixture("virt-inspector-blank-disk.xml"));
  REQUIRE(r.ok());
  CHECK_FALSE(r->found_os);
  REQUIRE(r->concerns.size() == 1);
  CHECK(r->concerns[0].find("no operating system") != std::string::npos);
}

TEST_CASE("inspector XML: multi-boot, foreign OS and foreign arch raise concerns") {
  auto r = parse_inspector_xml(
      "<operatingsystems>"
      "<operatingsystem><root>/dev/sda2</root><name>freebsd</name><arch>aarch64</arch>"
      "</operatingsystem>"
      "<operatingsystem><root>/dev/sdb1</root><name>linux</name></operatingsystem>"
      "</operatingsystems>");
  REQUIRE(r.ok());
  CHECK(r->found_os);
  CHECK(r->concerns.size() == 3);
}

TEST_CASE("inspector output that is not XML is an error") {
  CHECK_FALSE(parse_inspector_xml("virt-inspector: error: boom").ok());
  CHECK_FALSE(parse_inspector_xml("<other/>").ok());
}
