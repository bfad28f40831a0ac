#include <catch2/catch.hpp>
#include <pugixml.hpp>

#include "agent/convert/convert.h"

using namespace ferry::agent::convert;

namespace {

ConvertSpec sample_spec() {
  ConvertSpec s;
  s.name = "web-01";
  s.disks = {{"/var/lib/ferry/web-01-disk0.img", "raw"},
             {"/var/lib/ferry/web-01-disk1.img", "qcow2"}};
  s.cpus = 2;
  s.memory_mb = 2048;
  s.macs = {"00:50:56:aa:bb:01", "00:50:56:aa:bb:02"};
  s.work_dir = "/tmp/x";
  return s;
}

pugi::xml_document parse(const std::string& xml) {
  pugi::xml_document doc;
  REQUIRE(doc.load_string(xml.c_str()));
  return doc;
}

}  // namespace

TEST_CASE("domain XML carries name, memory in KiB, vcpus and the source hypervisor") {
  auto doc = parse(libvirt_domain_xml(sample_spec()));
  auto dom = doc.child("domain");
  CHECK(std::string(dom.attribute("type").value()) == "vmware");
  CHECK(std::string(dom.child_value("name")) == "web-01");
  CHECK(std::string(dom.child_value("memory")) == "2097152");
  CHECK(std::string(dom.child_value("vcpu")) == "2");
}

TEST_CASE("domain XML: bios and efi firmware are explicit on <os>") {
  auto spec = sample_spec();
  auto bios = parse(libvirt_domain_xml(spec));
  CHECK(std::string(bios.select_node("/domain/os/@firmware").attribute().value()) == "bios");
  spec.firmware = "efi";
  auto efi = parse(libvirt_domain_xml(spec));
  CHECK(std::string(efi.select_node("/domain/os/@firmware").attribute().value()) == "efi");
}

TEST_CASE("domain XML lists disks in order, first = sda, with their formats") {
  auto doc = parse(libvirt_domain_xml(sample_spec()));
  auto disks = doc.select_nodes("/domain/devices/disk[@device='disk']");
  REQUIRE(disks.size() == 2);
  auto d0 = disks[0].node(), d1 = disks[1].node();
  CHECK(std::string(d0.attribute("type").value()) == "file");
  CHECK(std::string(d0.child("source").attribute("file").value()) ==
        "/var/lib/ferry/web-01-disk0.img");
  CHECK(std::string(d0.child("driver").attribute("type").value()) == "raw");
  CHECK(std::string(d0.child("target").attribute("dev").value()) == "sda");
  CHECK(std::string(d1.child("driver").attribute("type").value()) == "qcow2");
  CHECK(std::string(d1.child("target").attribute("dev").value()) == "sdb");
}

TEST_CASE("domain XML: disk targets past sdz follow libvirt's naming") {
  auto spec = sample_spec();
  spec.disks.clear();
  for (int i = 0; i < 28; ++i) spec.disks.push_back({"/d" + std::to_string(i), "raw"});
  auto doc = parse(libvirt_domain_xml(spec));
  auto disks = doc.select_nodes("/domain/devices/disk/target/@dev");
  REQUIRE(disks.size() == 28);
  CHECK(std::string(disks[25].attribute().value()) == "sdz");
  CHECK(std::string(disks[26].attribute().value()) == "sdaa");
  CHECK(std::string(disks[27].attribute().value()) == "sdab");
}

TEST_CASE("domain XML: one network interface per MAC, in order (virt-v2v needs a source)") {
  auto doc = parse(libvirt_domain_xml(sample_spec()));
  auto nics = doc.select_nodes("/domain/devices/interface");
  REQUIRE(nics.size() == 2);
  CHECK(std::string(nics[0].node().attribute("type").value()) == "network");
  CHECK(std::string(nics[0].node().child("mac").attribute("address").value()) ==
        "00:50:56:aa:bb:01");
  CHECK(std::string(nics[1].node().child("mac").attribute("address").value()) ==
        "00:50:56:aa:bb:02");
  CHECK(std::string(nics[0].node().child("source").attribute("network").value()) != "");
}

TEST_CASE("domain XML escapes names and paths") {
  auto spec = sample_spec();
  spec.name = "a<b>&'c\"";
  spec.disks = {{"/tmp/it's & <here>.img", "raw"}};
  auto doc = parse(libvirt_domain_xml(spec));
  CHECK(std::string(doc.child("domain").child_value("name")) == "a<b>&'c\"");
  CHECK(std::string(doc.select_node("/domain/devices/disk/source/@file").attribute().value()) ==
        "/tmp/it's & <here>.img");
}

TEST_CASE("validate_spec rejects bad specs with the field named") {
  auto ok = sample_spec();
  CHECK(validate_spec(ok).ok());

  auto s = ok;
  s.firmware = "uefi";
  REQUIRE_FALSE(validate_spec(s).ok());
  CHECK(validate_spec(s).error().code == ferry::ErrorCode::kInvalidArgument);
  CHECK(validate_spec(s).error().message.find("firmware") != std::string::npos);

  s = ok;
  s.disks.clear();
  CHECK_FALSE(validate_spec(s).ok());

  s = ok;
  s.macs = {"00:50:56:aa:bb"};
  REQUIRE_FALSE(validate_spec(s).ok());
  CHECK(validate_spec(s).error().message.find("macs[0]") != std::string::npos);

  s = ok;
  s.mac_ips = {{"00:50:56:aa:bb:01", "10.0.0.5,10.0.0.1,24,10.0.0.2"}};
  CHECK(validate_spec(s).ok());
  s.mac_ips = {{"00:50:56:aa:bb:01", "10.0.0.5 x"}};
  CHECK_FALSE(validate_spec(s).ok());
  s.mac_ips = {{"zz:50:56:aa:bb:01", "10.0.0.5"}};
  CHECK_FALSE(validate_spec(s).ok());

  s = ok;
  s.disks[1].path = "nbd+unix:///?socket=/run/x.sock";
  REQUIRE_FALSE(validate_spec(s).ok());
  CHECK(validate_spec(s).error().message.find("disks[1].path") != std::string::npos);

  s = ok;
  s.name = "";
  CHECK_FALSE(validate_spec(s).ok());
}
