// libvirt domain XML for virt-v2v's -i libvirtxml input, and validation of a ConvertSpec.
// virt-v2v reads (input/parse_libvirt_xml.ml): /domain/@type, name, memory (KiB, the unit
// attribute is ignored), vcpu, os/@firmware (bios|efi), devices/disk[@device='disk'] with
// type file|block, and interfaces of type network|bridge. Nothing else matters to it.
#include <sys/stat.h>

#include <cctype>
#include <sstream>

#include "agent/convert/convert.h"

namespace ferry::agent::convert {
namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// sda, sdb, ..., sdz, sdaa, ... (libvirt's naming, which virt-v2v parses back into slots).
std::string disk_target(size_t index) {
  std::string suffix;
  size_t n = index;
  do {
    suffix.insert(suffix.begin(), static_cast<char>('a' + n % 26));
    n = n / 26;
  } while (n-- > 0);
  return "sd" + suffix;
}

bool valid_mac(const std::string& mac) {
  if (mac.size() != 17) return false;
  for (size_t i = 0; i < mac.size(); ++i) {
    if (i % 3 == 2) {
      if (mac[i] != ':') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(mac[i]))) {
      return false;
    }
  }
  return true;
}

bool is_uri(const std::string& path) { return path.find("://") != std::string::npos; }

}  // namespace

std::string libvirt_domain_xml(const ConvertSpec& spec) {
  std::ostringstream x;
  x << "<domain type='" << xml_escape(spec.source_hypervisor) << "'>\n";
  x << "  <name>" << xml_escape(spec.name) << "</name>\n";
  x << "  <memory>" << static_cast<long long>(spec.memory_mb) * 1024 << "</memory>\n";
  x << "  <vcpu>" << spec.cpus << "</vcpu>\n";
  x << "  <os firmware='" << (spec.firmware == "efi" ? "efi" : "bios") << "'>\n";
  x << "    <type arch='x86_64'>hvm</type>\n";
  x << "  </os>\n";
  x << "  <features>\n    <acpi/>\n    <apic/>\n  </features>\n";
  x << "  <devices>\n";
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const GuestDisk& d = spec.disks[i];
    struct stat st;
    bool block = stat(d.path.c_str(), &st) == 0 && S_ISBLK(st.st_mode);
    x << "    <disk type='" << (block ? "block" : "file") << "' device='disk'>\n";
    x << "      <driver name='qemu' type='" << xml_escape(d.format) << "'/>\n";
    x << "      <source " << (block ? "dev" : "file") << "='" << xml_escape(d.path) << "'/>\n";
    x << "      <target dev='" << disk_target(i) << "' bus='scsi'/>\n";
    x << "    </disk>\n";
  }
  for (size_t i = 0; i < spec.macs.size(); ++i) {
    // virt-v2v keeps a NIC only with a network or bridge source; the name is not used in place.
    x << "    <interface type='network'>\n";
    x << "      <mac address='" << xml_escape(spec.macs[i]) << "'/>\n";
    x << "      <source network='net" << i << "'/>\n";
    x << "      <model type='vmxnet3'/>\n";
    x << "    </interface>\n";
  }
  x << "  </devices>\n";
  x << "</domain>\n";
  return x.str();
}

Status validate_spec(const ConvertSpec& spec) {
  auto bad = [&](const std::string& what) {
    return make_error(
        ErrorCode::kInvalidArgument,
        "conversion of VM " + (spec.name.empty() ? "<unnamed>" : spec.name) + ": " + what);
  };
  if (spec.name.empty()) return bad("name is empty");
  for (char c : spec.name)
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == '/')
      return bad("name contains '/' or a control character");
  if (spec.disks.empty()) return bad("no disks");
  for (size_t i = 0; i < spec.disks.size(); ++i) {
    const GuestDisk& d = spec.disks[i];
    std::string field = "disks[" + std::to_string(i) + "]";
    if (d.path.empty()) return bad(field + ".path is empty");
    if (is_uri(d.path))
      return bad(field + ".path \"" + d.path + "\": only local files and block devices so far");
    if (d.format != "raw" && d.format != "qcow2")
      return bad(field + ".format \"" + d.format + "\" is not raw or qcow2");
  }
  if (spec.firmware != "bios" && spec.firmware != "efi")
    return bad("firmware \"" + spec.firmware + "\" is not bios or efi");
  if (spec.cpus < 1) return bad("cpus must be >= 1");
  if (spec.memory_mb < 64) return bad("memory_mb must be >= 64");
  for (size_t i = 0; i < spec.macs.size(); ++i)
    if (!valid_mac(spec.macs[i]))
      return bad("macs[" + std::to_string(i) + "] \"" + spec.macs[i] + "\" is not a MAC address");
  for (size_t i = 0; i < spec.mac_ips.size(); ++i) {
    const auto& [mac, ip] = spec.mac_ips[i];
    std::string field = "mac_ips[" + std::to_string(i) + "]";
    if (!valid_mac(mac)) return bad(field + " MAC \"" + mac + "\" is not a MAC address");
    if (ip.empty() || ip.find_first_of(" \t\n:") != std::string::npos)
      return bad(field + " IP \"" + ip + "\" must be IP[,GW[,LEN[,NS...]]] (IPv4, no spaces)");
  }
  if (spec.time_limit.count() <= 0) return bad("time_limit must be positive");
  return {};
}

}  // namespace ferry::agent::convert
