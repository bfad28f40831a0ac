#pragma once
// What the coordinator needs from a source provider, split by capability.
// A provider turns "VM X on source S" into inventory records, power actions and
// concrete disk sources for the wire protocol; nothing else in the coordinator
// knows provider details. A new provider is one folder here plus a line in
// registry.cc. All methods block (network round trips): the coordinator calls
// them on its worker pool, never on the loop thread. One instance per Provider
// resource; calls on one instance are serialised by the caller.
#include <memory>
#include <string>

#include "common/base/result.h"
#include "common/model/resource.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator {

using model::Json;

// Provider-neutral inventory, as Forklift's inventory API shows it. Shape:
// {"datacenters":[{id,name}], "clusters":[{id,name,datacenter}],
//  "hosts":[{id,name,cluster,datacenter}],
//  "datastores":[{id,name,datacenter,capacity,free}], "networks":[{id,name,type}],
//  "vms":[{id,name,uuid,datacenter,host,powerState:"On"|"Off",firmware:"bios"|"efi",
//          cpus,memoryMB,guestId,guestName,changeTrackingEnabled,template,
//          hasSnapshots,
//          disks:[{key,file,datastore:{id,name},capacity,shared,mode,rdm,cbt}],
//          nics:[{mac,network:{id,name},model}],
//          cdroms:[{iso,connected}]}]}
using Inventory = Json;

struct DiskRef {
  std::string vm_id;
  int disk_key = 0;
};

class Inventories {
 public:
  virtual ~Inventories() = default;
  // Connects and authenticates; the error names the resource and field at fault
  // (Provider spec.url, Secret user/password/thumbprint).
  virtual Status test_connection() = 0;
  virtual Result<Inventory> load_inventory() = 0;
};

class PowerControl {
 public:
  virtual ~PowerControl() = default;
  virtual Result<bool> is_powered_on(const std::string& vm_id) = 0;
  virtual Status power_off(const std::string& vm_id) = 0;  // waits until off
  virtual Status power_on(const std::string& vm_id) = 0;
};

class DiskSources {
 public:
  virtual ~DiskSources() = default;
  // Fills `task`'s source (one of the protocol's source kinds) for a disk.
  // host_address: the Host resource's ipAddress for the VM's host, or "".
  virtual Status disk_source(const Json& vm, const Json& disk, const std::string& host_address,
                             ferry::v1::TransferTask& task) = 0;
};

class SourceProvider : public Inventories, public PowerControl, public DiskSources {};

// Creates the provider for a Provider resource and its Secret (may be null for
// providers that need none). Errors name the resource and field.
Result<std::unique_ptr<SourceProvider>> make_provider(const model::Resource& provider,
                                                      const Json& secret);

}  // namespace ferry::coordinator
