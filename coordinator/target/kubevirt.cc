#include "coordinator/target/kubevirt.h"

#include "common/model/names.h"

namespace ferry::coordinator::target {
namespace {
void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
}
}  // namespace

std::string volume_name(const std::string& tmpl, const std::string& vm_name,
                        const std::string& plan_name, int disk_index) {
  std::string s = tmpl.empty() ? "{{.VmName}}-disk-{{.DiskIndex}}" : tmpl;
  replace_all(s, "{{.VmName}}", vm_name);
  replace_all(s, "{{.PlanName}}", plan_name);
  replace_all(s, "{{.DiskIndex}}", std::to_string(disk_index));
  replace_all(s, "{{.RootDiskIndex}}", "0");
  return model::to_dns1123_label(s);
}

uint64_t requested_size(uint64_t capacity, bool filesystem_mode) {
  uint64_t size = filesystem_mode ? capacity + (capacity + 9) / 10 : capacity;
  const uint64_t mib = 1 << 20;
  return (size + mib - 1) / mib * mib;
}

Json virtual_machine(const VmManifestInput& in) {
  const Json& vm = in.source_vm;
  std::string disk_bus = in.compatibility_devices ? "sata" : "virtio";
  std::string nic_model = in.compatibility_devices ? "e1000e" : "virtio";
  Json disks = Json::array(), volumes = Json::array(), interfaces = Json::array(),
       networks = Json::array();
  int i = 0;
  for (const auto& v : in.volumes) {
    std::string dname = "disk" + std::to_string(i);
    Json d = {{"name", dname}, {"disk", {{"bus", disk_bus}}}};
    if (i == 0) d["bootOrder"] = 1;
    disks.push_back(d);
    volumes.push_back(
        {{"name", dname}, {"persistentVolumeClaim", {{"claimName", v.value("name", "")}}}});
    i++;
  }
  i = 0;
  for (const auto& n : in.networks) {
    std::string type = n.value("type", "pod");
    if (type == "ignored") continue;
    std::string nname = "net-" + std::to_string(i++);
    Json iface = {{"name", nname}, {"model", nic_model}, {"macAddress", n.value("mac", "")}};
    if (type == "pod") {
      iface["masquerade"] = Json::object();
      networks.push_back({{"name", nname}, {"pod", Json::object()}});
    } else {
      iface["bridge"] = Json::object();
      std::string ns = n.value("namespace", "");
      networks.push_back(
          {{"name", nname},
           {"multus", {{"networkName", (ns.empty() ? "" : ns + "/") + n.value("name", "")}}}});
    }
    interfaces.push_back(iface);
  }
  Json domain = {
      {"cpu", {{"sockets", vm.value("cpus", 1)}, {"cores", 1}, {"threads", 1}}},
      {"memory", {{"guest", std::to_string(vm.value("memoryMB", 1024)) + "Mi"}}},
      {"devices", {{"disks", disks}, {"interfaces", interfaces}}},
  };
  if (vm.value("firmware", "bios") == "efi")
    domain["firmware"] = {{"bootloader", {{"efi", {{"secureBoot", false}}}}}};
  else
    domain["firmware"] = {{"bootloader", {{"bios", Json::object()}}}};
  domain["firmware"]["serial"] = vm.value("uuid", "");
  Json labels = {{"app", in.name}, {"vmID", vm.value("id", "")}};
  return {
      {"apiVersion", "kubevirt.io/v1"},
      {"kind", "VirtualMachine"},
      {"metadata",
       {{"name", in.name},
        {"namespace", in.ns},
        {"labels", labels},
        {"annotations",
         {{"ferry.io/source-vm", vm.value("name", "")},
          {"ferry.io/source-guest", vm.value("guestName", "")},
          {"ferry.io/guest-os", in.guest_os}}}}},
      {"spec",
       {{"runStrategy", in.running ? "Always" : "Halted"},
        {"template",
         {{"metadata", {{"labels", labels}}},
          {"spec", {{"domain", domain}, {"networks", networks}, {"volumes", volumes}}}}}}},
  };
}

}  // namespace ferry::coordinator::target
