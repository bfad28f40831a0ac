#include "coordinator/providers/vsphere/vsphere_provider.h"

#include "coordinator/providers/login.h"

#include <curl/curl.h>
#include <strings.h>

#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace ferry::coordinator::vsphere {
namespace {

// VMs per RetrievePropertiesEx page: the XML of one page (a few MB) is what
// is held at once while the inventory is read.
constexpr size_t kInventoryPageSize = 250;

std::string text(const std::map<std::string, pugi::xml_node>& props, const char* key) {
  auto it = props.find(key);
  return it == props.end() ? "" : it->second.text().get();
}

std::string url_escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

bool is_nic_type(const std::string& t) {
  static const char* kinds[] = {"VirtualE1000",   "VirtualE1000e",           "VirtualVmxnet",
                                "VirtualVmxnet2", "VirtualVmxnet3",          "VirtualVmxnet3Vrdma",
                                "VirtualPCNet32", "VirtualSriovEthernetCard"};
  for (auto* k : kinds)
    if (t == k) return true;
  return false;
}

// scheme://host[:port] of the SDK URL, with host replaced when given.
std::string base_url(const std::string& sdk_url, const std::string& host_override) {
  static const std::regex re(R"(^(https?)://([^/:]+|\[[^\]]+\])(:\d+)?)");
  std::smatch m;
  if (!std::regex_search(sdk_url, m, re)) return sdk_url;
  std::string host = host_override.empty() ? m[2].str() : host_override;
  if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
  return m[1].str() + "://" + host + m[3].str();
}

}  // namespace

std::pair<std::string, std::string> split_datastore_path(const std::string& file) {
  static const std::regex re(R"(^\[([^\]]+)\]\s*(.*)$)");
  std::smatch m;
  if (!std::regex_match(file, m, re)) return {"", file};
  return {m[1].str(), m[2].str()};
}

// What VMware Tools reports: each NIC's IP addresses (guest.net, matched by
// MAC) and the default gateway (guest.ipStack). preserveStaticIPs uses them.
void add_guest_network(const std::map<std::string, pugi::xml_node>& props, Json& vm) {
  auto net = props.find("guest.net");
  if (net != props.end())
    for (auto g : net->second.children()) {
      std::string mac = child_local(g, "macAddress").text().get();
      Json ips = Json::array();
      for (auto a : child_local(g, "ipConfig").children())
        if (!std::strcmp(local(a.name()), "ipAddress"))
          ips.push_back({{"ip", child_local(a, "ipAddress").text().get()},
                         {"prefix", std::atoi(child_local(a, "prefixLength").text().get())}});
      for (auto& nic : vm["nics"])
        if (!mac.empty() && strcasecmp(nic.value("mac", "").c_str(), mac.c_str()) == 0)
          nic["ips"] = ips;
    }
  auto stack = props.find("guest.ipStack");
  if (stack != props.end())
    for (auto st : stack->second.children())
      for (auto r : child_local(st, "ipRouteConfig").children())
        if (!std::strcmp(local(r.name()), "ipRoute") &&
            std::string(child_local(r, "network").text().get()) == "0.0.0.0" &&
            std::string(child_local(r, "prefixLength").text().get()) == "0")
          vm["gateway"] = child_local(child_local(r, "gateway"), "ipAddress").text().get();
}

Result<std::vector<std::string>> parse_descriptor_extents(const std::string& descriptor) {
  if (descriptor.rfind("KDMV", 0) == 0)
    return Error(ErrorCode::kInvalidArgument,
                 "monolithic sparse VMDK: datastore file access cannot read it (needs VDDK)");
  static const std::regex re(
      R"(^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)\s+\"([^\"]+)\"(\s+\d+)?\s*$)");
  std::vector<std::string> out;
  std::istringstream in(descriptor);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::smatch m;
    if (!std::regex_match(line, m, re)) continue;
    if (m[3].str() != "FLAT" && m[3].str() != "VMFS")
      return Error(ErrorCode::kInvalidArgument,
                   "VMDK extent type " + m[3].str() + " cannot be read as raw data (needs VDDK)");
    out.push_back(m[4].str());
  }
  if (out.empty()) return Error(ErrorCode::kInvalidArgument, "not a VMDK descriptor");
  return out;
}

VsphereProvider::VsphereProvider(std::string provider_name, std::string secret_name,
                                 std::string url, std::string user, std::string password,
                                 TlsSettings tls)
    : provider_name_(std::move(provider_name)),
      secret_name_(std::move(secret_name)),
      url_(std::move(url)),
      user_(std::move(user)),
      password_(std::move(password)),
      tls_(tls),
      client_(url_, tls) {}

Result<std::unique_ptr<SourceProvider>> VsphereProvider::create(const model::Resource& provider,
                                                                const Json& secret) {
  auto key = provider.key();
  std::string url = provider.spec().value("url", "");
  auto login = read_login(provider, secret);
  if (!login.ok()) return login.error();
  TlsSettings tls;
  tls.sha1_thumbprint = model::secret_value(secret, "thumbprint");
  tls.insecure_skip_verify = login->insecure_skip_verify;
  // MTV's vSphere URL is https://host/sdk; accept a bare host URL too.
  if (url.find("/sdk") == std::string::npos) url = base_url(url, "") + "/sdk";
  return std::unique_ptr<SourceProvider>(new VsphereProvider(
      key.to_string(), login->secret_name, url, login->user, login->password, tls));
}

Error VsphereProvider::explain(const Error& e) const {
  if (e.code == ErrorCode::kPermissionDenied) {
    bool cert = e.message.find("certificate") != std::string::npos;
    return Error(e.code, secret_name_ + ": " + (cert ? "thumbprint" : "user/password") + ": " +
                             e.message + " (used by " + provider_name_ + ")");
  }
  return Error(e.code, provider_name_ + ": spec.url: " + e.message);
}

VsphereProvider::~VsphereProvider() { client_.logout(); }

Status VsphereProvider::ensure_session() {
  if (logged_in_) return {};
  client_.logout();  // the old session, if it is still open: never two per provider
  Status s = client_.login(user_, password_);
  if (!s.ok()) return explain(s.error());
  logged_in_ = true;
  return {};
}

Status VsphereProvider::test_connection() {
  logged_in_ = false;
  return ensure_session();
}

std::vector<std::string> VsphereProvider::session_credentials() const {
  if (!logged_in_ || client_.session_cookie().empty()) return {};
  return {"Cookie: " + client_.session_cookie()};
}

Result<SourceAccess> VsphereProvider::source_access(const SourceRequest& req) {
  FERRY_TRY(ensure_session());
  std::string mine = "Cookie: " + client_.session_cookie();
  for (const auto& r : req.refused)
    if (r == mine) {  // this session ended on the server: a new one
      logged_in_ = false;
      FERRY_TRY(ensure_session());
      mine = "Cookie: " + client_.session_cookie();
    }
  return SourceAccess{.headers = {mine}, .url = "", .handle = ""};
}

// Datastore reads open nothing on the server: the session serves them all.
Status VsphereProvider::close_source(const std::string&, bool) { return {}; }

Result<Inventory> VsphereProvider::load_inventory() {
  FERRY_TRY(ensure_session());
  Inventory inv = {{"datacenters", Json::array()}, {"clusters", Json::array()},
                   {"hosts", Json::array()},       {"datastores", Json::array()},
                   {"networks", Json::array()},    {"vms", Json::array()}};
  auto dcs =
      client_.retrieve_view(client_.root_folder(), {"Datacenter"}, {{"Datacenter", {"name"}}});
  if (!dcs.ok()) {
    logged_in_ = false;
    return explain(dcs.error());
  }
  for (const auto& dc : dcs->objects) {
    std::string dc_name = text(dc.props, "name");
    inv["datacenters"].push_back({{"id", dc.obj.value}, {"name", dc_name}});
    // Everything but the VMs first (VMs refer to datastores and networks by
    // id), then the VMs a page at a time: a 10,000-VM inventory is never
    // held as XML at once.
    auto objs =
        client_.retrieve_view(dc.obj,
                              {"HostSystem", "Datastore", "Network", "DistributedVirtualPortgroup",
                               "ClusterComputeResource"},
                              {{"HostSystem", {"name", "parent"}},
                               {"Datastore", {"name", "summary.capacity", "summary.freeSpace"}},
                               {"Network", {"name"}},
                               {"DistributedVirtualPortgroup", {"name"}},
                               {"ClusterComputeResource", {"name"}}});
    if (!objs.ok()) return explain(objs.error());
    std::map<std::string, std::string> ds_by_id, net_by_id, cluster_by_id;
    for (const auto& o : objs->objects) {
      if (o.obj.type == "Datastore") ds_by_id[o.obj.value] = text(o.props, "name");
      if (o.obj.type == "Network" || o.obj.type == "DistributedVirtualPortgroup" ||
          o.obj.type == "OpaqueNetwork")
        net_by_id[o.obj.value] = text(o.props, "name");
      if (o.obj.type == "ClusterComputeResource")
        cluster_by_id[o.obj.value] = text(o.props, "name");
    }
    std::set<std::string> seen_net;
    auto add = [&](const ObjectContent& o) {
      const auto& t = o.obj.type;
      if (t == "ClusterComputeResource") {
        inv["clusters"].push_back(
            {{"id", o.obj.value}, {"name", text(o.props, "name")}, {"datacenter", dc_name}});
      } else if (t == "HostSystem") {
        std::string parent = text(o.props, "parent");
        inv["hosts"].push_back({{"id", o.obj.value},
                                {"name", text(o.props, "name")},
                                {"cluster", cluster_by_id.count(parent) ? parent : ""},
                                {"datacenter", dc_name}});
      } else if (t == "Datastore") {
        inv["datastores"].push_back(
            {{"id", o.obj.value},
             {"name", text(o.props, "name")},
             {"datacenter", dc_name},
             {"capacity", std::strtoull(text(o.props, "summary.capacity").c_str(), nullptr, 10)},
             {"free", std::strtoull(text(o.props, "summary.freeSpace").c_str(), nullptr, 10)}});
      } else if (t == "Network" || t == "DistributedVirtualPortgroup") {
        if (!seen_net.insert(o.obj.value).second) return;
        inv["networks"].push_back(
            {{"id", o.obj.value}, {"name", text(o.props, "name")}, {"type", t}});
      } else if (t == "VirtualMachine") {
        Json vm = {
            {"id", o.obj.value},
            {"name", text(o.props, "name")},
            {"uuid", text(o.props, "config.uuid")},
            {"datacenter", dc_name},
            {"host", text(o.props, "runtime.host")},
            {"powerState", text(o.props, "runtime.powerState") == "poweredOn" ? "On" : "Off"},
            {"firmware", text(o.props, "config.firmware") == "efi" ? "efi" : "bios"},
            {"cpus", std::atoi(text(o.props, "config.hardware.numCPU").c_str())},
            {"memoryMB", std::atoi(text(o.props, "config.hardware.memoryMB").c_str())},
            {"guestId", text(o.props, "config.guestId")},
            {"guestName", text(o.props, "config.guestFullName")},
            {"changeTrackingEnabled", text(o.props, "config.changeTrackingEnabled") == "true"},
            {"template", text(o.props, "config.template") == "true"},
            {"hasSnapshots",
             o.props.count("snapshot") > 0 && !o.props.at("snapshot").first_child().empty()},
            {"disks", Json::array()},
            {"nics", Json::array()},
            {"cdroms", Json::array()}};
        auto dev = o.props.find("config.hardware.device");
        if (dev != o.props.end()) {
          for (auto d : dev->second.children()) {
            std::string dt = xsi_type(d);
            pugi::xml_node backing = child_local(d, "backing");
            if (dt == "VirtualDisk") {
              std::string file = child_local(backing, "fileName").text().get();
              std::string ds_id = child_local(backing, "datastore").text().get();
              std::string ds_name =
                  ds_by_id.count(ds_id) ? ds_by_id[ds_id] : split_datastore_path(file).first;
              uint64_t cap =
                  std::strtoull(child_local(d, "capacityInBytes").text().get(), nullptr, 10);
              if (cap == 0)
                cap =
                    std::strtoull(child_local(d, "capacityInKB").text().get(), nullptr, 10) * 1024;
              std::string sharing = child_local(backing, "sharing").text().get();
              std::string bt = xsi_type(backing);
              vm["disks"].push_back({{"key", std::atoi(child_local(d, "key").text().get())},
                                     {"file", file},
                                     {"datastore", {{"id", ds_id}, {"name", ds_name}}},
                                     {"capacity", cap},
                                     {"shared", !sharing.empty() && sharing != "sharingNone"},
                                     {"mode", child_local(backing, "diskMode").text().get()},
                                     {"rdm", bt.find("RawDiskMapping") != std::string::npos},
                                     {"changeId", child_local(backing, "changeId").text().get()}});
            } else if (is_nic_type(dt)) {
              std::string net_id = child_local(backing, "network").text().get();
              if (net_id.empty())
                net_id = child_local(child_local(backing, "port"), "portgroupKey").text().get();
              vm["nics"].push_back(
                  {{"mac", child_local(d, "macAddress").text().get()},
                   {"network",
                    {{"id", net_id}, {"name", net_by_id.count(net_id) ? net_by_id[net_id] : ""}}},
                   {"model", dt}});
            } else if (dt == "VirtualCdrom") {
              if (xsi_type(backing) != "VirtualCdromIsoBackingInfo") continue;
              pugi::xml_node conn = child_local(d, "connectable");
              bool connected =
                  std::string(child_local(conn, "connected").text().get()) == "true" ||
                  std::string(child_local(conn, "startConnected").text().get()) == "true";
              vm["cdroms"].push_back({{"iso", child_local(backing, "fileName").text().get()},
                                      {"connected", connected}});
            }
          }
        }
        add_guest_network(o.props, vm);
        inv["vms"].push_back(std::move(vm));
      }
    };
    for (const auto& o : objs->objects) add(o);
    *objs = PropertyResult{};  // its XML is no longer needed
    Status vms = client_.retrieve_view_pages(
        dc.obj, {"VirtualMachine"},
        {{"VirtualMachine",
          {"name", "config.uuid", "config.hardware.numCPU", "config.hardware.memoryMB",
           "config.firmware", "config.changeTrackingEnabled", "config.guestId",
           "config.guestFullName", "config.template", "config.hardware.device",
           "runtime.powerState", "runtime.host", "snapshot", "guest.net", "guest.ipStack"}}},
        kInventoryPageSize, [&](const PropertyResult& page) {
          for (const auto& o : page.objects) add(o);
          return Status{};
        });
    if (!vms.ok()) return explain(vms.error());
  }
  return inv;
}

Result<bool> VsphereProvider::is_powered_on(const std::string& vm_id) {
  FERRY_TRY(ensure_session());
  auto r = client_.retrieve_object(Mor{"VirtualMachine", vm_id}, {"runtime.powerState"});
  if (!r.ok()) return explain(r.error());
  if (r->objects.empty()) return Error(ErrorCode::kNotFound, "VM " + vm_id + " not found");
  return text(r->objects[0].props, "runtime.powerState") == "poweredOn";
}

Status VsphereProvider::power(const std::string& vm_id, const char* method, bool want_on) {
  auto on = is_powered_on(vm_id);
  if (!on.ok()) return on.error();
  if (*on == want_on) return {};
  auto r = client_.invoke(method, Mor{"VirtualMachine", vm_id}, "");
  if (!r.ok()) return explain(r.error());
  pugi::xml_node rv = r->get()->find_node(
      [](const pugi::xml_node& x) { return !std::strcmp(local(x.name()), "returnval"); });
  return client_.wait_task(mor_of(rv));
}

Status VsphereProvider::power_off(const std::string& vm_id) {
  return power(vm_id, "PowerOffVM_Task", false);
}
Status VsphereProvider::power_on(const std::string& vm_id) {
  return power(vm_id, "PowerOnVM_Task", true);
}

Status VsphereProvider::disk_source(const Json& vm, const Json& disk,
                                    const std::string& host_address,
                                    ferry::v1::TransferTask& task) {
  FERRY_TRY(ensure_session());
  auto [ds, path] = split_datastore_path(disk.value("file", ""));
  if (ds.empty())
    return Error(ErrorCode::kInvalidArgument, "disk " + disk.value("file", "") + " of VM " +
                                                  vm.value("name", "") + " is not on a datastore");
  std::string query =
      "?dcPath=" + url_escape(vm.value("datacenter", "")) + "&dsName=" + url_escape(ds);
  std::string base = base_url(url_, host_address) + "/folder/";
  auto folder_url = [&](const std::string& p) {
    std::string out;
    size_t start = 0;
    while (true) {
      size_t slash = p.find('/', start);
      out += url_escape(
          p.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      out += "/";
      start = slash + 1;
    }
    return base + out + query;
  };
  auto descriptor = client_.http_get(folder_url(path), 64 * 1024);
  if (!descriptor.ok()) {
    if (descriptor.error().code == ErrorCode::kPermissionDenied) logged_in_ = false;
    return descriptor.error().wrap("reading the descriptor of disk " + disk.value("file", ""));
  }
  auto extents = parse_descriptor_extents(*descriptor);
  if (!extents.ok()) return extents.error().wrap("disk " + disk.value("file", ""));
  if (extents->size() != 1)
    return Error(ErrorCode::kInvalidArgument, "disk " + disk.value("file", "") + " has " +
                                                  std::to_string(extents->size()) +
                                                  " extents; split VMDKs need VDDK");
  std::string dir = path.find('/') == std::string::npos ? "" : path.substr(0, path.rfind('/') + 1);
  auto* http = task.mutable_http();
  http->set_url(folder_url(dir + (*extents)[0]));
  http->add_headers("Cookie: " + client_.session_cookie());
  http->set_tls_sha1_thumbprint(tls_.sha1_thumbprint);
  http->set_insecure_skip_verify(tls_.insecure_skip_verify);
  return {};
}

// ---- snapshots and changed block tracking (warm migration)

namespace {
std::string returnval_text(const pugi::xml_document& doc) {
  pugi::xml_node rv = doc.find_node(
      [](const pugi::xml_node& x) { return !std::strcmp(local(x.name()), "returnval"); });
  return rv.text().get();
}

void collect_snapshots(const pugi::xml_node& list_parent, const char* child,
                       std::vector<SnapshotRef>& out) {
  for (auto n : list_parent.children()) {
    if (std::strcmp(local(n.name()), child) != 0) continue;
    out.push_back({child_local(n, "snapshot").text().get(), child_local(n, "name").text().get()});
    collect_snapshots(n, "childSnapshotList", out);
  }
}
}  // namespace

Result<std::string> VsphereProvider::create_snapshot(const std::string& vm_id,
                                                     const std::string& name,
                                                     const std::string& description,
                                                     const std::map<int, std::string>&) {
  FERRY_TRY(ensure_session());
  auto r = client_.invoke("CreateSnapshot_Task", Mor{"VirtualMachine", vm_id},
                          "<name>" + xml_escape(name) + "</name><description>" +
                              xml_escape(description) +
                              "</description><memory>false</memory><quiesce>false</quiesce>");
  if (!r.ok()) return explain(r.error()).wrap("creating snapshot " + name + " of VM " + vm_id);
  auto snap = client_.wait_task_result(Mor{"Task", returnval_text(**r)});
  if (!snap.ok()) return snap.error().wrap("creating snapshot " + name + " of VM " + vm_id);
  if (snap->empty())
    return Error(ErrorCode::kUnavailable, "creating snapshot " + name + " of VM " + vm_id +
                                              ": the task returned no snapshot");
  return *snap;
}

Result<std::map<int, std::string>> VsphereProvider::snapshot_change_ids(
    const std::string& vm_id, const std::string& snapshot_id) {
  FERRY_TRY(ensure_session());
  // The snapshot's own copy of the hardware: its disks' backings carry the
  // change ID as of the snapshot (the VM's current devices may have moved on).
  auto r = client_.retrieve_object(Mor{"VirtualMachineSnapshot", snapshot_id},
                                   {"config.hardware.device"});
  if (!r.ok()) return r.error().wrap("reading snapshot " + snapshot_id + " of VM " + vm_id);
  if (r->objects.empty())
    return Error(ErrorCode::kNotFound,
                 "snapshot " + snapshot_id + " of VM " + vm_id + " not found");
  std::map<int, std::string> ids;
  auto dev = r->objects[0].props.find("config.hardware.device");
  if (dev == r->objects[0].props.end()) return ids;
  for (auto d : dev->second.children()) {
    if (xsi_type(d) != "VirtualDisk") continue;
    ids[std::atoi(child_local(d, "key").text().get())] =
        child_local(child_local(d, "backing"), "changeId").text().get();
  }
  return ids;
}

Result<std::vector<SnapshotRef>> VsphereProvider::list_snapshots(const std::string& vm_id) {
  FERRY_TRY(ensure_session());
  auto r = client_.retrieve_object(Mor{"VirtualMachine", vm_id}, {"snapshot"});
  if (!r.ok()) return explain(r.error());
  std::vector<SnapshotRef> out;
  if (r->objects.empty()) return Error(ErrorCode::kNotFound, "VM " + vm_id + " not found");
  auto it = r->objects[0].props.find("snapshot");
  if (it != r->objects[0].props.end()) collect_snapshots(it->second, "rootSnapshotList", out);
  return out;
}

Status VsphereProvider::remove_snapshot(const std::string& vm_id, const std::string& snapshot_id) {
  FERRY_TRY(ensure_session());
  auto r = client_.invoke("RemoveSnapshot_Task", Mor{"VirtualMachineSnapshot", snapshot_id},
                          "<removeChildren>false</removeChildren><consolidate>true</consolidate>");
  if (!r.ok()) {
    if (r.error().code == ErrorCode::kNotFound) return {};  // already gone
    return r.error().wrap("removing snapshot " + snapshot_id + " of VM " + vm_id);
  }
  Status s = client_.wait_task(Mor{"Task", returnval_text(**r)});
  if (!s.ok()) return s.error().wrap("removing snapshot " + snapshot_id + " of VM " + vm_id);
  return {};
}

Result<ChangedAreas> VsphereProvider::changed_areas(const std::string& vm_id,
                                                    const std::string& snapshot_id, int disk_key,
                                                    uint64_t capacity,
                                                    const std::string& change_id) {
  FERRY_TRY(ensure_session());
  ChangedAreas out;
  uint64_t offset = 0;
  // The answer may cover only part of the disk: ask again from where it ended.
  while (offset < capacity) {
    auto r = client_.invoke("QueryChangedDiskAreas", Mor{"VirtualMachine", vm_id},
                            "<snapshot type=\"VirtualMachineSnapshot\">" + xml_escape(snapshot_id) +
                                "</snapshot><deviceKey>" + std::to_string(disk_key) +
                                "</deviceKey><startOffset>" + std::to_string(offset) +
                                "</startOffset><changeId>" + xml_escape(change_id) + "</changeId>");
    if (!r.ok()) {
      const Error& e = r.error();
      // vSphere answers InvalidArgument (changeId) or a FileFault on the
      // tracking file when the change ID no longer matches the disk.
      if (change_id != "*" &&
          (e.code == ErrorCode::kIo || (e.code == ErrorCode::kInvalidArgument &&
                                        e.message.find("changeId") != std::string::npos))) {
        out.areas.clear();
        out.change_id_invalid = true;
        out.detail = e.message;
        return out;
      }
      return e.wrap("disk " + std::to_string(disk_key) + " of VM " + vm_id);
    }
    pugi::xml_node rv = (*r)->find_node(
        [](const pugi::xml_node& x) { return !std::strcmp(local(x.name()), "returnval"); });
    uint64_t start = std::strtoull(child_local(rv, "startOffset").text().get(), nullptr, 10);
    uint64_t length = std::strtoull(child_local(rv, "length").text().get(), nullptr, 10);
    if (start != offset || length == 0)
      return Error(ErrorCode::kUnavailable, "QueryChangedDiskAreas for disk " +
                                                std::to_string(disk_key) + " of VM " + vm_id +
                                                " at offset " + std::to_string(offset) +
                                                " answered an empty or misplaced window");
    for (auto a : rv.children()) {
      if (std::strcmp(local(a.name()), "changedArea") != 0) continue;
      uint64_t s = std::strtoull(child_local(a, "start").text().get(), nullptr, 10);
      uint64_t l = std::strtoull(child_local(a, "length").text().get(), nullptr, 10);
      if (l == 0 || s >= capacity) continue;
      l = std::min(l, capacity - s);
      if (!out.areas.empty() &&
          out.areas.back().offset() + out.areas.back().length() >= s) {  // touching: merge
        uint64_t end = std::max(out.areas.back().offset() + out.areas.back().length(), s + l);
        out.areas.back().set_length(end - out.areas.back().offset());
        continue;
      }
      ferry::v1::ByteRange br;
      br.set_offset(s);
      br.set_length(l);
      out.areas.push_back(br);
    }
    offset = start + length;
  }
  return out;
}

}  // namespace ferry::coordinator::vsphere
