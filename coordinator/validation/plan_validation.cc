#include "coordinator/validation/plan_validation.h"

#include <unordered_map>

#include <map>

#include "common/model/names.h"
#include "coordinator/hooks/hook.h"

namespace ferry::coordinator::validation {

Json Condition::to_json() const {
  Json j = {{"type", type}, {"status", "True"}, {"category", category}, {"message", message}};
  if (!items.empty()) j["items"] = items;
  return j;
}

bool Result::ready() const {
  for (const auto& c : conditions)
    if (c.category == "Critical" || c.category == "Error") return false;
  return true;
}

Json Result::conditions_json() const {
  Json a = Json::array();
  for (const auto& c : conditions) a.push_back(c.to_json());
  if (ready())
    a.push_back({{"type", "Ready"},
                 {"status", "True"},
                 {"category", "Required"},
                 {"message", "The migration plan is ready."}});
  return a;
}

std::string Result::summary() const {
  std::string s;
  for (const auto& c : conditions)
    if (c.category == "Critical" || c.category == "Error") s += c.type + ": " + c.message + "\n";
  if (!s.empty()) s.pop_back();
  return s;
}

const Json* find_by_id_or_name(const Json& records, const Json& sel) {
  std::string id = sel.value("id", ""), name = sel.value("name", "");
  for (const auto& r : records) {
    if (!id.empty() && r.value("id", "") == id) return &r;
    if (id.empty() && !name.empty() && r.value("name", "") == name) return &r;
  }
  return nullptr;
}

namespace {

std::string describe_sel(const Json& sel) {
  if (sel.contains("id")) return "id \"" + sel.value("id", "") + "\"";
  return "name \"" + sel.value("name", "") + "\"";
}

class Validator {
 public:
  Validator(const Resource& plan, const Context& ctx) : plan_(plan), ctx_(ctx) {
    key_ = plan.key();
    where_ = key_.to_string();
  }

  Result run() {
    const Json& spec = plan_.spec();
    warm_ = spec.value("warm", false) || spec.value("type", "") == "warm";
    // Providers.
    auto src_key =
        model::ref_key(spec["provider"].value("source", Json::object()), "Provider", key_.ns);
    auto dst_key =
        model::ref_key(spec["provider"].value("destination", Json::object()), "Provider", key_.ns);
    const Resource* src = ctx_.find(src_key);
    if (!src)
      add("SourceProviderNotValid", "Critical",
          "spec.provider.source: " + src_key.to_string() + " not found");
    if (!ctx_.find(dst_key))
      add("DestinationProviderNotValid", "Critical",
          "spec.provider.destination: " + dst_key.to_string() + " not found");
    const Json* inv = src ? ctx_.inventory(src_key) : nullptr;
    if (src && !inv)
      add("SourceProviderNotReady", "Critical",
          "spec.provider.source: " + src_key.to_string() + " has no inventory yet");
    Json caps = inv ? inv->value("capabilities", Json::object()) : Json::object();
    warm_supported_ = caps.value("warm", true);
    warm_with_snapshots_ = caps.value("warmWithSnapshots", false);
    if (caps.contains("changeTracking") && caps["changeTracking"].is_object()) {
      tracking_name_ = caps["changeTracking"].value("name", tracking_name_);
      tracking_where_ = caps["changeTracking"].value("where", tracking_where_);
    }
    if (inv && warm_ && !warm_supported_)
      add("WarmMigrationNotSupported", "Critical",
          "spec.warm: warm migration from " + src_key.to_string() + " (type " +
              src->spec().value("type", "") + ") is not supported yet; use a cold plan");
    // Maps.
    const Json& map = spec.value("map", Json::object());
    auto net_key = model::ref_key(map.value("network", Json::object()), "NetworkMap", key_.ns);
    auto sto_key = model::ref_key(map.value("storage", Json::object()), "StorageMap", key_.ns);
    const Resource* netmap = ctx_.find(net_key);
    const Resource* stomap = ctx_.find(sto_key);
    if (!netmap)
      add("NetworkMapRefNotValid", "Critical",
          "spec.map.network: " + net_key.to_string() + " not found");
    if (!stomap)
      add("StorageRefNotValid", "Critical",
          "spec.map.storage: " + sto_key.to_string() + " not found");
    if (inv && netmap) check_map(*netmap, (*inv)["networks"], "NetworkMapNotReady", "network");
    if (netmap && ctx_.network_attachment)
      check_attachments(*netmap, spec.value("targetNamespace", ""));
    if (inv && stomap) check_map(*stomap, (*inv)["datastores"], "StorageMapNotReady", "datastore");
    // Target namespace.
    std::string tns = spec.value("targetNamespace", "");
    if (!model::is_dns1123_label(tns))
      add("NamespaceNotValid", "Critical", "spec.targetNamespace: \"" + tns + "\" is not valid");
    if (spec.contains("transferNetwork")) {
      std::string tn = spec["transferNetwork"].value("name", "");
      if (!ctx_.transfer_networks.count(tn))
        add("TransferNetworkNotValid", "Critical",
            "spec.transferNetwork: no agent offers a network named \"" + tn + "\"");
    }
    if (inv) check_vms(spec, *inv, netmap, stomap);
    // Hooks depend on no inventory.
    const Json& vms = spec.value("vms", Json::array());
    for (size_t i = 0; vms.is_array() && i < vms.size(); i++)
      if (vms[i].is_object()) check_hooks("spec.vms[" + std::to_string(i) + "]", vms[i]);
    return std::move(out_);
  }

 private:
  void add(const std::string& type, const std::string& cat, const std::string& msg,
           std::vector<std::string> items = {}) {
    // One condition per type, listing every item, as Forklift does.
    for (auto& c : out_.conditions)
      if (c.type == type) {
        c.message += "; " + msg;
        c.items.insert(c.items.end(), items.begin(), items.end());
        return;
      }
    out_.conditions.push_back({type, cat, where_ + ": " + msg, std::move(items)});
  }

  // Multus destinations name a NetworkAttachmentDefinition (its namespace
  // defaults to the target namespace) that must exist.
  void check_attachments(const Resource& m, const std::string& target_ns) {
    const Json& entries = m.spec().value("map", Json::array());
    for (size_t i = 0; i < entries.size(); i++) {
      const Json& dst = entries[i].value("destination", Json::object());
      if (dst.value("type", "") != "multus") continue;
      std::string ns = dst.value("namespace", "");
      ResourceKey nad{"NetworkAttachmentDefinition", ns.empty() ? target_ns : ns,
                      dst.value("name", "")};
      if (!ctx_.network_attachment(nad))
        add("DestinationNetworkNotValid", "Critical",
            m.key().to_string() + " spec.map[" + std::to_string(i) +
                "].destination: NetworkAttachmentDefinition " + nad.ns + "/" + nad.name +
                " not found");
    }
  }

  void check_map(const Resource& m, const Json& records, const char* type, const char* what) {
    const Json& entries = m.spec().value("map", Json::array());
    for (size_t i = 0; i < entries.size(); i++) {
      const Json& sel = entries[i].value("source", Json::object());
      if (!find_by_id_or_name(records, sel))
        add(type, "Critical",
            m.key().to_string() + " spec.map[" + std::to_string(i) + "].source: " + what + " " +
                describe_sel(sel) + " not found in the source inventory");
    }
  }

  static const Json* map_entry_for(const Resource* m, const Json& rec) {
    if (!m || !m->spec().contains("map")) return nullptr;
    for (const auto& e :
         m->spec()["map"]) {  // by reference: the pointer returned must outlive the call
      const Json& s = e.value("source", Json::object());
      if ((s.contains("id") && s.value("id", "") == rec.value("id", "")) ||
          (!s.contains("id") && s.value("name", "") == rec.value("name", "")))
        return &e;
    }
    return nullptr;
  }

  void check_vms(const Json& spec, const Json& inv, const Resource* netmap,
                 const Resource* stomap) {
    const Json& vms = spec.value("vms", Json::array());
    std::map<std::string, int> seen;
    std::map<std::string, std::string> macs;  // mac -> vm path
    std::set<std::string> target_names;
    std::string tns = spec.value("targetNamespace", "");
    // Looked up once per listed VM: an index, not a scan of the inventory each
    // time (a 10,000-VM plan against a 10,000-VM source is 10^8 comparisons).
    // The first record of a name wins, as find_by_id_or_name does.
    std::unordered_map<std::string, const Json*> by_id, by_name;
    for (const auto& r : inv["vms"]) {
      by_id.try_emplace(r.value("id", ""), &r);
      by_name.try_emplace(r.value("name", ""), &r);
    }
    auto lookup = [&](const Json& sel) -> const Json* {
      std::string id = sel.value("id", ""), name = sel.value("name", "");
      const auto& m = id.empty() ? by_name : by_id;
      auto it = m.find(id.empty() ? name : id);
      return (it == m.end() || (id.empty() && name.empty())) ? nullptr : it->second;
    };
    for (size_t i = 0; i < vms.size(); i++) {
      std::string p = "spec.vms[" + std::to_string(i) + "]";
      const Json& sel = vms[i];
      if (!sel.contains("id") && !sel.contains("name")) {
        add("VMRefNotValid", "Critical", p + ": needs an id or a name", {p});
        continue;
      }
      const Json* vm = lookup(sel);
      if (!vm) {
        add("VMNotFound", "Critical",
            p + (sel.contains("id") ? ".id" : ".name") + ": VM " + describe_sel(sel) +
                " not found in the source provider inventory",
            {p});
        continue;
      }
      std::string id = vm->value("id", "");
      if (seen.count(id)) {
        add("DuplicateVM", "Critical",
            p + ": VM " + describe_sel(sel) + " is listed twice (also spec.vms[" +
                std::to_string(seen[id]) + "])",
            {p});
        continue;
      }
      seen[id] = static_cast<int>(i);
      if (ctx_.completed_vm_ids.count(id)) continue;  // already migrated: skipped, not checked
      std::string tname = sel.value("targetName", "");
      if (tname.empty()) {
        tname = vm->value("name", "");
        if (!model::is_dns1123_label(tname)) {
          std::string fixed = model::to_dns1123_label(tname);
          add("TargetNameNotValid", "Warn",
              p + ": VM name \"" + tname +
                  "\" is not a valid DNS-1123 label; it will be renamed \"" + fixed + "\"",
              {p});
          tname = fixed;
        }
      }
      if (!target_names.insert(tname).second || ctx_.existing_target_vms.count(tns + "/" + tname))
        add("VMAlreadyExists", "Critical",
            p + ": a VM named \"" + tname + "\" already exists in namespace " + tns, {p});
      // Networks.
      int pod_maps = 0;
      for (const auto& nic : vm->value("nics", Json::array())) {
        const Json& net = nic.value("network", Json::object());
        const Json* e = map_entry_for(netmap, net);
        if (netmap && !e)
          add("VMNetworksNotMapped", "Critical",
              p + ": network \"" + net.value("name", net.value("id", "")) + "\" of VM \"" +
                  vm->value("name", "") + "\" is not mapped by " + netmap->key().to_string(),
              {p});
        if (e && (*e)["destination"].value("type", "") == "pod") pod_maps++;
        std::string mac = nic.value("mac", "");
        for (auto& ch : mac) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (mac.empty()) continue;
        if (macs.count(mac) || ctx_.target_macs.count(mac))
          add("MacConflicts", "Critical",
              p + ": MAC " + mac + " of VM \"" + vm->value("name", "") + "\" is already used" +
                  (macs.count(mac) ? " by " + macs[mac] : " on the destination"),
              {p});
        macs[mac] = p;
      }
      if (pod_maps > 1)
        add("VMMultiplePodNetworkMappings", "Critical",
            p + ": VM \"" + vm->value("name", "") +
                "\" has more than one NIC mapped to the pod network",
            {p});
      // Storage and disks.
      for (const auto& d : vm->value("disks", Json::array())) {
        const Json& ds = d.value("datastore", Json::object());
        if (stomap && !map_entry_for(stomap, ds))
          add("VMStorageNotMapped", "Critical",
              p + ": datastore \"" + ds.value("name", ds.value("id", "")) + "\" of VM \"" +
                  vm->value("name", "") + "\" is not mapped by " + stomap->key().to_string(),
              {p});
        if (d.value("shared", false))
          add("SharedDisks", "Critical",
              p + ": VM \"" + vm->value("name", "") + "\" has shared disk " + d.value("file", "") +
                  "; shared disks are not migrated",
              {p});
        if (d.value("capacity", uint64_t{0}) == 0)
          add("VMCriticalConcerns", "Critical",
              p + ": disk " + d.value("file", "") + " has no size", {p});
        if (d.value("rdm", false))
          add("VMCriticalConcerns", "Critical",
              p + ": disk " + d.value("file", "") + " is a raw device mapping", {p});
        if (ds.value("name", "").empty())
          add("VMCriticalConcerns", "Critical",
              p + ": disk " + d.value("file", "") + " is not on a datastore", {p});
      }
      check_concerns(p, *vm);
      if (warm_ && warm_supported_) check_warm_vm(p, *vm);
      for (const auto& cd : vm->value("cdroms", Json::array()))
        if (cd.value("connected", false))
          add("VMCriticalConcerns", "Critical",
              p + ": VM \"" + vm->value("name", "") + "\" has ISO " + cd.value("iso", "") +
                  " mounted on a CD-ROM; unmount it before migrating",
              {p});
      out_.vms.push_back({static_cast<int>(i), *vm, tname});
    }
  }

  // A VM's hooks: at most one per step (PreHook, PostHook), each an existing
  // Hook that Ferry can run.
  void check_hooks(const std::string& p, const Json& sel) {
    if (!sel.contains("hooks")) return;
    const Json& hs = sel["hooks"];
    if (!hs.is_array())
      return add("HookStepNotValid", "Critical", p + ".hooks: must be a list", {p});
    std::map<std::string, size_t> steps;
    for (size_t j = 0; j < hs.size(); j++) {
      std::string hp = p + ".hooks[" + std::to_string(j) + "]";
      const Json& h = hs[j];
      std::string step = h.is_object() ? h.value("step", "") : "";
      if (step != "PreHook" && step != "PostHook")
        add("HookStepNotValid", "Critical",
            hp + ".step: \"" + step + "\" is not a hook step (PreHook or PostHook)", {p});
      else if (auto [it, fresh] = steps.emplace(step, j); !fresh)
        add("HookStepNotValid", "Critical",
            hp + ".step: a second " + step + " hook (also " + p + ".hooks[" +
                std::to_string(it->second) + "]); each step runs one hook",
            {p});
      if (!h.is_object() || !h.contains("hook") || !h["hook"].is_object() ||
          h["hook"].value("name", "").empty()) {
        add("HookNotValid", "Critical", hp + ".hook: needs the Hook's name", {p});
        continue;
      }
      ResourceKey hk = model::ref_key(h["hook"], "Hook", plan_.key().ns);
      const Resource* r = ctx_.find(hk);
      if (!r) {
        add("HookNotValid", "Critical", hp + ".hook: " + hk.to_string() + " not found", {p});
        continue;
      }
      auto parsed = hooks::parse_hook(*r);
      if (!parsed.ok()) {
        add("HookNotValid", "Critical", hp + ".hook: " + parsed.error().message, {p});
      } else if (parsed->playbook.empty() && !ctx_.image_hooks) {
        add("HookNotValid", "Critical",
            hp + ".hook: " + hk.to_string() + ": spec.image \"" + parsed->image +
                "\" without a playbook needs a container runtime: image hooks run as Kubernetes "
                "Jobs in cluster mode (ferry-coordinator --kubernetes); local mode runs playbooks "
                "only",
            {p});
      }
    }
  }

  // The concerns the provider found in the VM's configuration (Forklift's
  // oVirt list): Critical ones block the plan, the others are reported.
  void check_concerns(const std::string& p, const Json& vm) {
    for (const auto& c : vm.value("concerns", Json::array())) {
      if (!c.is_object()) continue;
      std::string cat = c.value("category", "");
      std::string text = p + ": VM \"" + vm.value("name", "") + "\": " + c.value("label", "") +
                         ": " + c.value("assessment", "");
      if (cat == "Critical")
        add("VMCriticalConcerns", "Critical", text, {p});
      else if (cat == "Warning")
        add("VMWarningConcerns", "Warn", text, {p});
      else
        add("VMInformationConcerns", "Advisory", text, {p});
    }
  }

  // Warm migration reads each precopy's changes through changed block
  // tracking, and the disk through the datastore's HTTPS access, which serves
  // the base disk: both need CBT on and no snapshot of the user's in the chain.
  void check_warm_vm(const std::string& p, const Json& vm) {
    std::string name = vm.value("name", "");
    if (!vm.value("changeTrackingEnabled", false))
      add("VMMissingChangedBlockTracking", "Critical",
          p + ": VM \"" + name + "\" does not have " + tracking_name_ + " enabled (" +
              tracking_where_ + "); enable it or use a cold plan",
          {p});
    for (const auto& d : vm.value("disks", Json::array()))
      if (d.contains("cbt") && !d.value("cbt", true))
        add("VMMissingChangedBlockTracking", "Critical",
            p + ": disk " + d.value("file", "") + " of VM \"" + name + "\" does not have " +
                tracking_name_ + " enabled",
            {p});
    if (vm.value("hasSnapshots", false) && !warm_with_snapshots_)
      add("VMHasSnapshots", "Critical",
          p + ": VM \"" + name +
              "\" has snapshots; Ferry reads the base disk over the datastore's HTTPS access, "
              "which is the VM's current state only without snapshots: delete or consolidate them",
          {p});
    if (vm.value("powerState", "") != "On")
      add("VMPoweredOff", "Warn",
          p + ": VM \"" + name + "\" is powered off; it is migrated cold (one copy, no precopies)",
          {p});
  }

  const Resource& plan_;
  const Context& ctx_;
  ResourceKey key_;
  std::string where_;
  Result out_;
  bool warm_ = false;
  bool warm_supported_ = true;  // the source's inventory says it can do warm
  // What the source calls its changed-block tracking, and where it is set.
  std::string tracking_name_ = "changed block tracking";
  std::string tracking_where_ = "config.changeTrackingEnabled";
  bool warm_with_snapshots_ = false;  // its warm copies are right for a VM with snapshots
};

}  // namespace

Result validate_plan(const Resource& plan, const Context& ctx) {
  return Validator(plan, ctx).run();
}

}  // namespace ferry::coordinator::validation
