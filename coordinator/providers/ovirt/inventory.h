#pragma once
// The oVirt engine's collections (its JSON form, numbers and booleans as
// strings) turned into Ferry's provider-neutral inventory (provider.h), with
// Forklift's validation concerns for each VM. Pure; unit-tested on the
// engine's shapes.
#include <string>
#include <vector>

#include "coordinator/providers/provider.h"

namespace ferry::coordinator::ovirt {

// As read from the engine: each is a collection answer ({"vm":[...]}) or null.
struct EngineCollections {
  Json datacenters, clusters, hosts, networks, vnicprofiles, storagedomains, vms, disks;
};

// The neutral inventory. oVirt's terms map as Forklift's inventory shows them:
// storage domains are "datastores"; a NIC's network is its vNIC profile's
// network; a disk's "key" is a stable number made from its engine id (the
// engine does not promise an order), "id" the engine's disk id, "file" its
// alias; a VM with bios type cluster_default takes its cluster's. The root carries
// "capabilities": {"guestConversion": false (oVirt guests already run on KVM,
// as in MTV), "warm": true (incremental backup; a VM's changeTrackingEnabled
// when every disk's backup mode is incremental)}, and "refreshSeconds": 10 (the
// coordinator reads it that often: a read that finds no new event is cheap).
Inventory to_inventory(const EngineCollections& c);

// A VM's concerns ({category: Critical|Warning|Information, label,
// assessment}), Forklift's list for oVirt VMs. `disks`: the engine's disk
// records by id.
Json vm_concerns(const Json& vm, const std::vector<const Json*>& attached_disks);

// A disk's key, stable whatever order the engine lists the attachments in:
// 31 bits of the FNV-1a hash of its id (not 0).
int disk_key(const std::string& id);

// The items of a collection answer or nested list: {"vm":[...]} with key
// "vm", or {"nics":{"nic":[...]}} with keys "nics","nic". Empty when absent.
const Json& items(const Json& j, const char* key);
const Json& items(const Json& j, const char* outer, const char* inner);
// j[key] when j is an object that has it, else null: engine answers are
// input, and nlohmann's value() throws on a non-object.
const Json& field(const Json& j, const char* key);
// The engine's string-typed numbers and booleans.
uint64_t as_u64(const Json& j);
bool as_bool(const Json& j);
std::string as_str(const Json& j);

}  // namespace ferry::coordinator::ovirt
