// Reading virt-v2v 2.2's output. virt-v2v-in-place 2.2 has no -O (results as XML; that came in
// 2.3), so the report comes from what `-v --machine-readable` prints:
//   { "message": "...", "timestamp": "...", "type": "message|info|warning|error" }  (JSON)
//   [  38.6] Converting 12.15 to run on KVM                          (status, one decimal)
//   i_type = linux / i_distro = debian / i_firmware = BIOS ...       (inspection, debug)
//   kernels offered by the bootloader ... \n ... virtio: blk=true net=true ...
//   gcaps_block_bus = virtio-blk / gcaps_net_bus = virtio-net / gcaps_machine = q35
// Samples: tests/unit/convert/fixtures/.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <pugixml.hpp>
#include <regex>

#include "agent/convert/convert.h"

namespace ferry::agent::convert {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A --machine-readable JSON message line: {type, message}, or nullopt.
std::optional<std::pair<std::string, std::string>> json_message(const std::string& line) {
  if (!starts_with(line, "{ \"message\"") && !starts_with(line, "{\"message\"")) return {};
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("message") || !j.contains("type")) return {};
  if (!j["message"].is_string() || !j["type"].is_string()) return {};
  return std::make_pair(j["type"].get<std::string>(), j["message"].get<std::string>());
}

const std::regex& status_re() {
  static const std::regex re(R"(^\[ *[0-9]+\.[0-9]\] .*)");
  return re;
}
const std::regex& progress_re() {
  static const std::regex re(R"(^[0-9]+/[0-9]+$)");
  return re;
}
const std::regex& tool_re() {
  // "virt-v2v-in-place: warning: ...", "virt-v2v-inspector: error: ...", "virt-v2v: ..."
  static const std::regex re(R"(^virt-v2v(-in-place|-inspector)?: .*)");
  return re;
}

// Lines of libguestfs/appliance debug output: never "meaningful" for a user.
bool is_debug_noise(const std::string& line) {
  static const char* kPrefixes[] = {
      "libguestfs: ", "guestfsd: ", "commandrvf: ", "command: ", "chroot: ",
      "nbdkit: ",     "supermin: ", "umount-all: ", "rm -rf ",   "+ ",
      "real\t",       "user\t",     "sys\t"};
  for (const char* p : kPrefixes)
    if (starts_with(line, p)) return true;
  static const std::regex kernel(R"(^\[ *[0-9]+\.[0-9]{6}\] .*)");  // appliance kernel
  return std::regex_match(line, kernel);
}

bool is_true(const std::string& v) { return v == "true"; }

}  // namespace

bool is_status_line(const std::string& line) {
  if (line.empty()) return false;
  return std::regex_match(line, status_re()) || std::regex_match(line, progress_re()) ||
         std::regex_match(line, tool_re());
}

ConversionReport parse_conversion_output(const std::vector<std::string>& lines) {
  ConversionReport r;
  std::string major, minor, type, firmware;
  bool in_offered_kernels = false, default_kernel_seen = false;
  std::map<std::string, bool> virtio;  // of the default kernel
  for (const std::string& raw : lines) {
    if (auto m = json_message(raw)) {
      if (m->first == "warning") r.warnings.push_back(m->second);
      continue;
    }
    std::string line = trim(raw);
    auto value_of = [&](const std::string& key) -> std::optional<std::string> {
      std::string prefix = key + " = ";
      if (starts_with(line, prefix)) return line.substr(prefix.size());
      if (line == key + " =") return std::string();
      return {};
    };
    if (auto v = value_of("i_type")) r.os_name = *v;
    if (auto v = value_of("i_distro")) r.os_distro = *v;
    if (auto v = value_of("i_major_version")) major = *v;
    if (auto v = value_of("i_minor_version")) minor = *v;
    if (auto v = value_of("i_product_name")) r.os_product = *v;
    if (auto v = value_of("i_firmware")) firmware = *v;
    if (auto v = value_of("gcaps_block_bus")) r.virtio_disk = (*v == "virtio-blk");
    if (auto v = value_of("gcaps_net_bus")) r.virtio_net = (*v == "virtio-net");
    if (auto v = value_of("gcaps_machine")) r.machine = *v;

    // The first kernel listed after this header is the one the guest boots.
    if (starts_with(line, "kernels offered by the bootloader")) {
      in_offered_kernels = true;
      continue;
    }
    if (in_offered_kernels && !default_kernel_seen &&
        (starts_with(line, "virtio:") || starts_with(line, "pvpanic="))) {
      // "virtio: blk=true net=true rng=true balloon=true" / "pvpanic=true vsock=true xen=false"
      std::string rest = starts_with(line, "virtio:") ? line.substr(7) : line;
      std::regex kv(R"(([a-z_]+)=(true|false))");
      for (std::sregex_iterator it(rest.begin(), rest.end(), kv), end; it != end; ++it)
        virtio[(*it)[1]] = is_true((*it)[2]);
      if (starts_with(line, "pvpanic=")) default_kernel_seen = true;
    }
  }
  r.os_version = major.empty() ? "" : (minor.empty() ? major : major + "." + minor);
  if (firmware == "BIOS")
    r.firmware = "bios";
  else if (firmware == "UEFI")
    r.firmware = "efi";
  // Linux: virt-v2v adds these modules to the guest's initramfs config and rebuilds it.
  static const std::pair<const char*, const char*> kModules[] = {
      {"blk", "virtio_blk"},  {"net", "virtio_net"},
      {"rng", "virtio_rng"},  {"balloon", "virtio_balloon"},
      {"pvpanic", "pvpanic"}, {"vsock", "vmw_vsock_virtio_transport"}};
  for (const auto& [key, module] : kModules) {
    auto it = virtio.find(key);
    if (it != virtio.end() && it->second) r.drivers_installed.push_back(module);
  }
  return r;
}

std::string meaningful_tail(const std::vector<std::string>& lines, size_t max_lines) {
  // 1. The tool's own error, as its JSON message (complete, unwrapped).
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (auto m = json_message(*it); m && m->first == "error") return trim(m->second);
  // 2. Its human "prog: error: ..." line and the lines that continue it.
  static const std::regex error_re(R"(^[A-Za-z0-9_.-]+: error: .*)");
  for (size_t i = lines.size(); i-- > 0;) {
    if (!std::regex_match(lines[i], error_re)) continue;
    std::string out = trim(lines[i]);
    for (size_t j = i + 1; j < lines.size() && j < i + max_lines; ++j) {
      std::string t = trim(lines[j]);
      if (t.empty() || is_debug_noise(lines[j]) || json_message(lines[j])) break;
      out += "\n" + t;
    }
    return out;
  }
  // 3. The last lines that say something.
  std::vector<std::string> picked;
  for (auto it = lines.rbegin(); it != lines.rend() && picked.size() < max_lines; ++it) {
    std::string t = trim(*it);
    if (t.empty() || is_debug_noise(*it) || json_message(*it) || std::regex_match(t, progress_re()))
      continue;
    picked.push_back(t);
  }
  std::string out;
  for (auto it = picked.rbegin(); it != picked.rend(); ++it) out += (out.empty() ? "" : "\n") + *it;
  return out;
}

Result<Inspection> parse_inspector_xml(const std::string& xml) {
  pugi::xml_document doc;
  auto parsed = doc.load_string(xml.c_str());
  if (!parsed)
    return make_error(ErrorCode::kInternal,
                      std::string("inspector output is not XML: ") + parsed.description());
  // virt-inspector: <operatingsystems><operatingsystem>...; virt-v2v-inspector:
  // <v2v-inspection><operatingsystem>... (and <firmware type=...> in some versions).
  pugi::xml_node root = doc.child("operatingsystems");
  if (!root) root = doc.child("v2v-inspection");
  if (!root)
    return make_error(ErrorCode::kInternal,
                      "inspector output has neither <operatingsystems> nor <v2v-inspection>");
  Inspection out;
  size_t count = 0;
  for (pugi::xml_node n : root.children("operatingsystem")) {
    (void)n;
    ++count;
  }
  pugi::xml_node os = root.child("operatingsystem");
  if (!os) {
    out.found_os = false;
    out.concerns.push_back("no operating system was found on the disks");
    return out;
  }
  out.found_os = true;
  out.os_name = os.child_value("name");
  out.distro = os.child_value("distro");
  out.osinfo = os.child_value("osinfo");
  out.arch = os.child_value("arch");
  out.product = os.child_value("product_name");
  std::string major = os.child_value("major_version");
  std::string minor = os.child_value("minor_version");
  out.version = major.empty() ? "" : (minor.empty() ? major : major + "." + minor);
  if (pugi::xml_node fw = root.child("firmware")) out.firmware = fw.attribute("type").value();
  if (count > 1)
    out.concerns.push_back(std::to_string(count) +
                           " operating systems found (multi-boot); only the first (root " +
                           std::string(os.child_value("root")) + ") would be converted");
  if (out.os_name.empty() || out.os_name == "unknown")
    out.concerns.push_back("the operating system type could not be determined");
  else if (out.os_name != "linux" && out.os_name != "windows")
    out.concerns.push_back("virt-v2v converts only Linux and Windows guests, not " + out.os_name);
  if (!out.arch.empty() && out.arch != "x86_64" && out.arch != "i386" && out.arch != "i686")
    out.concerns.push_back("architecture " + out.arch + " cannot run on an x86_64 KubeVirt node");
  return out;
}

}  // namespace ferry::agent::convert
