#pragma once
// Plan validation: Forklift's plan conditions for a cold vSphere plan, computed
// from the stored resources and the coordinator's cached inventory (never one
// source round trip per VM). Pure function; unit-tested without NATS.
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/model/resource.h"

namespace ferry::coordinator::validation {

using model::Json;
using model::Resource;
using model::ResourceKey;

struct Condition {
  std::string type;      // Forklift's name, e.g. VMNotFound
  std::string category;  // Critical, Error, Warn, Advisory, Required
  std::string message;   // names the resource and field
  std::vector<std::string> items;
  Json to_json() const;
};

struct Context {
  std::function<const Resource*(const ResourceKey&)> find;
  std::function<const Json*(const ResourceKey& provider)> inventory;  // null: none loaded
  std::set<std::string> transfer_networks;                            // networks some agent offers
  std::set<std::string> existing_target_vms;  // "ns/name" created by other plans
  std::set<std::string> target_macs;          // MACs of VMs already on the target
  std::set<std::string> completed_vm_ids;     // this plan's VMs already migrated
  // Whether a NetworkAttachmentDefinition exists (cluster mode); null: not checked.
  std::function<bool(const ResourceKey&)> network_attachment;
  // Hooks without a playbook (a custom image) can run: cluster mode, as Jobs.
  bool image_hooks = false;
};

struct ResolvedVm {
  int index = 0;   // in spec.vms
  Json inventory;  // the source VM record
  std::string target_name;
};

struct Result {
  std::vector<Condition> conditions;
  std::vector<ResolvedVm> vms;
  bool ready() const;
  Json conditions_json() const;
  std::string summary() const;  // every blocking condition's message, one per line
};

Result validate_plan(const Resource& plan, const Context& ctx);

// A source {id|name} selector resolved against inventory records; null if none.
const Json* find_by_id_or_name(const Json& records, const Json& selector);

}  // namespace ferry::coordinator::validation
