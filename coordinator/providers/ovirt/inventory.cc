#include "coordinator/providers/ovirt/inventory.h"

#include <cstdlib>
#include <map>
#include <set>

namespace ferry::coordinator::ovirt {
namespace {

const Json kEmptyArray = Json::array();
const Json kNull;

// j[a][b]... with every step optional.
const Json& at(const Json& j, std::initializer_list<const char*> path) {
  const Json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return kNull;
    p = &(*p)[k];
  }
  return *p;
}

std::string ref_id(const Json& j, const char* field) { return as_str(at(j, {field, "id"})); }

// id -> name of a collection's items.
std::map<std::string, std::string> names_by_id(const Json& list) {
  std::map<std::string, std::string> out;
  for (const auto& x : list) out[as_str(at(x, {"id"}))] = as_str(at(x, {"name"}));
  return out;
}

std::string lookup(const std::map<std::string, std::string>& m, const std::string& k) {
  auto it = m.find(k);
  return it == m.end() ? "" : it->second;
}

void concern(Json& out, const char* category, const std::string& label,
             const std::string& assessment) {
  out.push_back({{"category", category}, {"label", label}, {"assessment", assessment}});
}

}  // namespace

// A disk's key, stable whatever order the engine lists the attachments in:
// 31 bits of the FNV-1a hash of its id (not 0), so a task, its checkpoint and
// its status always name the same disk.
int disk_key(const std::string& id) {
  uint32_t h = 2166136261u;
  for (unsigned char ch : id) h = (h ^ ch) * 16777619u;
  int k = static_cast<int>(h & 0x7fffffff);
  return k ? k : 1;
}

const Json& field(const Json& j, const char* key) { return at(j, {key}); }

const Json& items(const Json& j, const char* key) {
  const Json& v = at(j, {key});
  return v.is_array() ? v : kEmptyArray;
}

const Json& items(const Json& j, const char* outer, const char* inner) {
  return items(at(j, {outer}), inner);
}

uint64_t as_u64(const Json& j) {
  if (j.is_number_unsigned()) return j.get<uint64_t>();
  if (j.is_number_integer()) return j.get<int64_t>() < 0 ? 0 : j.get<int64_t>();
  if (j.is_string()) return std::strtoull(j.get_ref<const std::string&>().c_str(), nullptr, 10);
  return 0;
}

bool as_bool(const Json& j) {
  if (j.is_boolean()) return j.get<bool>();
  return j.is_string() && j.get_ref<const std::string&>() == "true";
}

std::string as_str(const Json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number() || j.is_boolean()) return j.dump();
  return "";
}

Json vm_concerns(const Json& vm, const std::vector<const Json*>& attached_disks) {
  Json out = Json::array();
  // Critical: what cannot be copied at all.
  if (as_bool(at(vm, {"has_illegal_images"})))
    concern(out, "Critical", "Illegal disk images",
            "The VM has disk images in an illegal state; they cannot be transferred.");
  for (const Json* d : attached_disks) {
    std::string name = as_str(at(*d, {"alias"}));
    if (name.empty()) name = as_str(at(*d, {"name"}));
    if (name.empty()) name = as_str(at(*d, {"id"}));
    std::string type = as_str(at(*d, {"storage_type"}));
    std::string status = as_str(at(*d, {"status"}));
    if (type == "lun")
      concern(out, "Critical", "Direct LUN disk",
              "Disk " + name +
                  " is a direct LUN: Ferry does not copy or re-attach LUNs; detach it or "
                  "migrate it separately.");
    else if (type != "image")
      concern(out, "Critical", "Unsupported disk storage type",
              "Disk " + name + " has storage type \"" + type + "\" (only image disks are copied).");
    else if (as_u64(at(*d, {"provisioned_size"})) == 0)
      concern(out, "Critical", "Invalid disk capacity", "Disk " + name + " has no size.");
    if (status == "illegal" || status == "locked")
      concern(out, "Critical", "Illegal or locked disk status",
              "Disk " + name + " is " + status + ".");
  }
  // Warning: migrated, but something is lost or changes.
  const Json& atts = items(vm, "disk_attachments", "disk_attachment");
  if (atts.size() > 165)
    concern(out, "Warning", "Too many disks",
            "The VM has " + std::to_string(atts.size()) + " disks; KubeVirt takes at most 165.");
  static const std::set<std::string> kDiskIfaces = {"sata", "virtio_scsi", "virtio"};
  for (const auto& a : atts) {
    std::string iface = as_str(at(a, {"interface"}));
    if (!iface.empty() && !kDiskIfaces.count(iface))
      concern(out, "Warning", "Unsupported disk interface",
              "Disk attachment " + ref_id(a, "disk") + " uses interface " + iface +
                  "; it becomes virtio.");
    if (as_bool(at(a, {"uses_scsi_reservation"})))
      concern(out, "Warning", "SCSI reservation",
              "Disk attachment " + ref_id(a, "disk") + " uses SCSI reservation, which is lost.");
  }
  static const std::set<std::string> kNicIfaces = {"e1000", "rtl8139", "virtio"};
  for (const auto& n : items(vm, "nics", "nic")) {
    std::string nname = as_str(at(n, {"name"}));
    std::string iface = as_str(at(n, {"interface"}));
    if (!iface.empty() && !kNicIfaces.count(iface))
      concern(out, "Warning", "Unsupported NIC interface",
              "NIC " + nname + " uses interface " + iface + "; it becomes virtio.");
    if (at(n, {"plugged"}).is_string() && !as_bool(at(n, {"plugged"})))
      concern(out, "Warning", "Unplugged NIC",
              "NIC " + nname + " is unplugged; it is migrated plugged.");
  }
  auto warn_if = [&](bool cond, const char* label, const std::string& text) {
    if (cond) concern(out, "Warning", label, text);
  };
  warn_if(!as_str(at(vm, {"custom_cpu_model"})).empty(), "Custom CPU model",
          "The VM uses CPU model " + as_str(at(vm, {"custom_cpu_model"})) + ", which is not kept.");
  warn_if(!items(at(vm, {"cpu", "cpu_tune"}), "vcpu_pins", "vcpu_pin").empty() ||
              (!as_str(at(vm, {"cpu_pinning_policy"})).empty() &&
               as_str(at(vm, {"cpu_pinning_policy"})) != "none"),
          "CPU pinning", "The VM's CPU pinning is not kept.");
  warn_if(as_u64(at(vm, {"cpu_shares"})) > 0, "CPU shares", "The VM's CPU shares are not kept.");
  warn_if(as_bool(at(vm, {"high_availability", "enabled"})), "High availability",
          "The VM is highly available in oVirt; KubeVirt's equivalent is a run strategy.");
  warn_if(as_bool(at(vm, {"usb", "enabled"})), "USB", "The VM's USB support is not kept.");
  warn_if(!items(vm, "host_devices", "host_device").empty(), "Host devices",
          "The VM uses host devices, which are not migrated.");
  warn_if(!items(vm, "watchdogs", "watchdog").empty(), "Watchdog",
          "The VM's watchdog is not migrated.");
  warn_if(as_bool(at(vm, {"tpm_enabled"})), "TPM", "The VM's TPM state is not migrated.");
  warn_if(as_str(at(vm, {"bios", "type"})) == "q35_secure_boot", "UEFI secure boot",
          "The VM boots with secure boot; its keys are not migrated.");
  warn_if(as_bool(at(vm, {"bios", "boot_menu", "enabled"})), "BIOS boot menu",
          "The VM's boot menu setting is not kept.");
  for (const auto& s : items(vm, "snapshots", "snapshot"))
    warn_if(as_bool(at(s, {"persist_memorystate"})), "Online snapshot",
            "Snapshot \"" + as_str(at(s, {"description"})) +
                "\" holds memory state, which is not migrated.");
  std::string status = as_str(at(vm, {"status"}));
  warn_if(status != "up" && status != "down", "VM status",
          "The VM is " + status + ", neither up nor down.");
  // Information.
  if (as_bool(at(vm, {"memory_policy", "ballooning"})))
    concern(out, "Information", "Memory ballooning", "The VM's memory ballooning is not kept.");
  if (as_str(at(vm, {"display", "type"})) == "spice")
    concern(out, "Information", "SPICE display", "The VM's SPICE display becomes VNC.");
  return out;
}

Inventory to_inventory(const EngineCollections& c) {
  Inventory inv = {
      {"datacenters", Json::array()},
      {"clusters", Json::array()},
      {"hosts", Json::array()},
      {"datastores", Json::array()},
      {"networks", Json::array()},
      {"vms", Json::array()},
      // Warm: incremental backup, which reads the VM's current
      // state whatever snapshots it has.
      {"capabilities",
       {{"guestConversion", false},
        {"warm", true},
        {"warmWithSnapshots", true},
        {"releasesChangeIds", true},  // checkpoints
        {"changeTracking",
         {{"name", "incremental backup"}, {"where", "each disk's backup mode: incremental"}}}}},
      // Polled as Forklift does: a read with no new event is one request.
      {"refreshSeconds", 10}};
  auto dc_names = names_by_id(items(c.datacenters, "data_center"));
  for (const auto& [id, name] : dc_names)
    inv["datacenters"].push_back({{"id", id}, {"name", name}});
  std::map<std::string, std::string> cluster_dc;    // cluster id -> datacenter name
  std::map<std::string, std::string> cluster_bios;  // cluster id -> its bios_type
  for (const auto& x : items(c.clusters, "cluster")) {
    std::string dc = lookup(dc_names, ref_id(x, "data_center"));
    cluster_dc[as_str(at(x, {"id"}))] = dc;
    cluster_bios[as_str(at(x, {"id"}))] = as_str(at(x, {"bios_type"}));
    inv["clusters"].push_back(
        {{"id", as_str(at(x, {"id"}))}, {"name", as_str(at(x, {"name"}))}, {"datacenter", dc}});
  }
  for (const auto& x : items(c.hosts, "host")) {
    std::string cl = ref_id(x, "cluster");
    inv["hosts"].push_back({{"id", as_str(at(x, {"id"}))},
                            {"name", as_str(at(x, {"name"}))},
                            {"cluster", cl},
                            {"datacenter", lookup(cluster_dc, cl)},
                            {"address", as_str(at(x, {"address"}))}});
  }
  std::map<std::string, std::string> sd_names;
  for (const auto& x : items(c.storagedomains, "storage_domain")) {
    std::string id = as_str(at(x, {"id"}));
    sd_names[id] = as_str(at(x, {"name"}));
    const Json& dcs = items(x, "data_centers", "data_center");
    uint64_t avail = as_u64(at(x, {"available"})), used = as_u64(at(x, {"used"}));
    inv["datastores"].push_back(
        {{"id", id},
         {"name", sd_names[id]},
         {"datacenter", dcs.empty() ? "" : lookup(dc_names, as_str(at(dcs[0], {"id"})))},
         {"capacity", avail + used},
         {"free", avail}});
  }
  auto net_names = names_by_id(items(c.networks, "network"));
  for (const auto& [id, name] : net_names)
    inv["networks"].push_back({{"id", id}, {"name", name}, {"type", "Network"}});
  std::map<std::string, std::string> profile_net;  // vNIC profile id -> network id
  for (const auto& x : items(c.vnicprofiles, "vnic_profile"))
    profile_net[as_str(at(x, {"id"}))] = ref_id(x, "network");
  std::map<std::string, const Json*> disks;
  for (const auto& x : items(c.disks, "disk")) disks[as_str(at(x, {"id"}))] = &x;

  for (const auto& v : items(c.vms, "vm")) {
    std::string id = as_str(at(v, {"id"}));
    const Json& topo = at(v, {"cpu", "topology"});
    uint64_t cpus = std::max<uint64_t>(1, as_u64(at(topo, {"sockets"}))) *
                    std::max<uint64_t>(1, as_u64(at(topo, {"cores"}))) *
                    std::max<uint64_t>(1, as_u64(at(topo, {"threads"})));
    std::string bios = as_str(at(v, {"bios", "type"}));
    if (bios.empty() || bios == "cluster_default")
      bios = lookup(cluster_bios, ref_id(v, "cluster"));
    bool has_snapshots = false;
    for (const auto& s : items(v, "snapshots", "snapshot"))
      if (as_str(at(s, {"snapshot_type"})) != "active") has_snapshots = true;
    Json vm = {
        {"id", id},
        {"name", as_str(at(v, {"name"}))},
        {"uuid", id},
        {"datacenter", lookup(cluster_dc, ref_id(v, "cluster"))},
        {"cluster", ref_id(v, "cluster")},
        {"host", ref_id(v, "host")},
        {"status", as_str(at(v, {"status"}))},
        {"powerState", as_str(at(v, {"status"})) == "down" ? "Off" : "On"},
        {"firmware",
         bios.find("ovmf") != std::string::npos || bios == "q35_secure_boot" ? "efi" : "bios"},
        {"cpus", cpus},
        {"memoryMB", as_u64(at(v, {"memory"})) / (1024 * 1024)},
        {"guestId", as_str(at(v, {"os", "type"}))},
        {"guestName", as_str(at(v, {"os", "type"}))},
        {"template", false},
        {"hasSnapshots", has_snapshots},
        {"disks", Json::array()},
        {"nics", Json::array()},
        {"cdroms", Json::array()}};
    std::vector<const Json*> attached;
    for (const auto& a : items(v, "disk_attachments", "disk_attachment")) {
      std::string did = ref_id(a, "disk");
      auto it = disks.find(did);
      static const Json kNoDisk = Json::object();
      const Json& d = it == disks.end() ? kNoDisk : *it->second;
      if (it != disks.end()) attached.push_back(it->second);
      const Json& sds = items(d, "storage_domains", "storage_domain");
      std::string sd = sds.empty() ? "" : as_str(at(sds[0], {"id"}));
      std::string alias = as_str(at(d, {"alias"}));
      if (alias.empty()) alias = as_str(at(d, {"name"}));
      vm["disks"].push_back(
          {{"key", disk_key(did)},
           {"id", did},
           {"file", alias.empty() ? did : alias},
           {"datastore", {{"id", sd}, {"name", lookup(sd_names, sd)}}},
           {"capacity", as_u64(at(d, {"provisioned_size"}))},
           // The API model's name; some clients spell it "sharable".
           {"shared", as_bool(at(d, {"shareable"})) || as_bool(at(d, {"sharable"}))},
           {"bootable", as_bool(at(a, {"bootable"}))},
           {"interface", as_str(at(a, {"interface"}))},
           {"rdm", false},  // direct LUNs are a Critical concern instead
           {"cbt", as_str(at(d, {"backup"})) == "incremental"}});
    }
    // Incremental backup covers a disk whose backup mode is incremental.
    bool tracked = !vm["disks"].empty();
    for (const auto& d : vm["disks"]) tracked = tracked && d.value("cbt", false);
    vm["changeTrackingEnabled"] = tracked;
    for (const auto& n : items(v, "nics", "nic")) {
      std::string net = lookup(profile_net, ref_id(n, "vnic_profile"));
      Json ips = Json::array();
      for (const auto& rd : items(n, "reported_devices", "reported_device"))
        for (const auto& ip : items(rd, "ips", "ip"))
          ips.push_back({{"ip", as_str(at(ip, {"address"}))}, {"prefix", 0}});
      vm["nics"].push_back({{"mac", as_str(at(n, {"mac", "address"}))},
                            {"network", {{"id", net}, {"name", lookup(net_names, net)}}},
                            {"model", as_str(at(n, {"interface"}))},
                            {"ips", ips}});
    }
    for (const auto& cd : items(v, "cdroms", "cdrom")) {
      std::string iso = ref_id(cd, "file");
      vm["cdroms"].push_back({{"iso", iso}, {"connected", !iso.empty()}});
    }
    vm["concerns"] = vm_concerns(v, attached);
    inv["vms"].push_back(std::move(vm));
  }
  return inv;
}

}  // namespace ferry::coordinator::ovirt
