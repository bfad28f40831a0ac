#pragma once
// What the coordinator needs from a source provider, split by capability.
// A provider turns "VM X on source S" into inventory records, power actions and
// concrete disk sources for the wire protocol; nothing else in the coordinator
// knows provider details. A new provider is one folder here plus a line in
// registry.cc. All methods block (network round trips): the coordinator calls
// them on its worker pool, never on the loop thread. One instance per Provider
// resource; calls on one instance are serialised by the caller.
#include <map>
#include <memory>
#include <string>
#include <vector>

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
//          nics:[{mac,network:{id,name},model,ips:[{ip,prefix}]}], gateway,
//          cdroms:[{iso,connected}]}]}
// At the root, optionally: "capabilities": {"guestConversion": bool, "warm":
// bool, "changeTracking": what the source calls changed-block tracking and
// where it is enabled (for validation's messages), "warmWithSnapshots": bool
// (warm copies are right for a VM with snapshots), "releasesChangeIds": bool
// (a change ID holds something on the source until release_change_ids; false
// when absent)} (what the source's VMs need and allow; true when absent), and
// "refreshSeconds": how often the source is worth reading again (less than
// --inventory-refresh for a source that answers cheaply when nothing changed).
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

// What an agent reads one task's sources with besides the stored task. It is
// handed over with the claim only, never written to a stream.
struct SourceAccess {
  std::vector<std::string> headers;  // vSphere: the session cookie
  // Replaces the URL of the task's sources when set: a source whose URL is
  // itself the credential (oVirt: the image transfer's imageio ticket URL).
  std::string url;
  // A source opened for this claim, to close when the task ends (oVirt: the
  // image transfer's id); "" when nothing was opened.
  std::string handle;
};

struct SourceRequest {
  Json vm;                   // the VM's inventory record
  Json disk;                 // the disk's inventory record; null for a task that reads every disk
  std::string host_address;  // as for disk_source
  // By source host id: the address of every host a Host resource gives one
  // (a source that picks the host itself, as oVirt's engine does for a
  // transfer, reads from the one it picked).
  std::map<std::string, std::string> host_addresses;
  // Headers the agent's source refused (401/403) with the last claim.
  std::vector<std::string> refused;
  // The handle opened for an earlier claim of the same task (an expired
  // ticket, a restarted coordinator): closed before a new one is opened.
  std::string previous;
  // Warm: the precopy snapshot the task reads (create_snapshot's id); a
  // source that reads through it (oVirt: the backup's disk) opens it so.
  std::string snapshot;
};

class DiskSources {
 public:
  virtual ~DiskSources() = default;
  // Fills `task`'s source (one of the protocol's source kinds) for a disk.
  // host_address: the Host resource's ipAddress for the VM's host, or "".
  // Opens nothing that must be closed: that is source_access's job.
  virtual Status disk_source(const Json& vm, const Json& disk, const std::string& host_address,
                             ferry::v1::TransferTask& task) = 0;
  // What the agent that claims a task reads its source with (vSphere: the
  // session's cookie, renewed first if it is among `refused`; oVirt: a new
  // image transfer's ticket URL). The coordinator hands it over with the
  // claim only, and closes `handle` when the task ends.
  virtual Result<SourceAccess> source_access(const SourceRequest& req) = 0;
  // Ends a source opened by source_access: `completed` when the agent copied
  // all of it (oVirt: finalize the transfer), otherwise it is abandoned
  // (oVirt: cancel). One already ended or gone is success.
  virtual Status close_source(const std::string& handle, bool completed) = 0;
  // What source_access would hand out from this session now, without
  // I/O (empty: no session open). While an agent holds them, the session is
  // in use even though no call runs on it: it must not be logged out.
  virtual std::vector<std::string> session_credentials() const = 0;
};

// Snapshots and changed-block tracking: what warm migration needs from a
// source. vSphere: a VM snapshot and CBT change IDs. oVirt: an incremental
// backup is the "snapshot" and its checkpoint the change ID of every disk.
struct SnapshotRef {
  std::string id;  // provider's id (vSphere: VirtualMachineSnapshot moref)
  std::string name;
};

struct ChangedAreas {
  std::vector<ferry::v1::ByteRange> areas;  // sorted, non-overlapping
  // The base change ID is no longer valid (CBT was reset, the disk was
  // replaced): the caller must copy the whole disk again.
  bool change_id_invalid = false;
  std::string detail;  // the source's message when change_id_invalid
  // The areas are not listed here: the agent's reader of the snapshot tells
  // them itself (oVirt: the backup ticket's dirty extents). `areas` is empty.
  bool source_reports = false;
};

class ChangeTracking {
 public:
  virtual ~ChangeTracking() = default;
  // Creates a crash-consistent snapshot (no memory, no quiescing), waits for
  // it and returns its id. `base`: each disk's change ID the next delta
  // starts from (empty for the first); a source whose snapshot must know it
  // (oVirt: the backup's from-checkpoint) uses it, vSphere does not.
  virtual Result<std::string> create_snapshot(const std::string& vm_id, const std::string& name,
                                              const std::string& description,
                                              const std::map<int, std::string>& base) = 0;
  // Each disk's change ID as of the snapshot, by disk key.
  virtual Result<std::map<int, std::string>> snapshot_change_ids(
      const std::string& vm_id, const std::string& snapshot_id) = 0;
  virtual Result<std::vector<SnapshotRef>> list_snapshots(const std::string& vm_id) = 0;
  // Removes one snapshot (consolidating it); an already removed one is success.
  virtual Status remove_snapshot(const std::string& vm_id, const std::string& snapshot_id) = 0;
  // Areas of disk `disk_key` changed between `change_id` and the snapshot, for
  // the whole disk (the provider loops over partial answers). change_id "*":
  // every allocated area as of the snapshot.
  virtual Result<ChangedAreas> changed_areas(const std::string& vm_id,
                                             const std::string& snapshot_id, int disk_key,
                                             uint64_t capacity, const std::string& change_id) = 0;
  // Change IDs no delta will start from again (an older base, or every one
  // once the VM's migration has ended). vSphere's cost nothing; oVirt's are
  // checkpoints, removed here. An already removed one is success.
  virtual Status release_change_ids(const std::string& vm_id,
                                    const std::vector<std::string>& change_ids) = 0;
};

class SourceProvider : public Inventories,
                       public PowerControl,
                       public DiskSources,
                       public ChangeTracking {};

// Creates the provider for a Provider resource and its Secret (may be null for
// providers that need none). Errors name the resource and field.
Result<std::unique_ptr<SourceProvider>> make_provider(const model::Resource& provider,
                                                      const Json& secret);

}  // namespace ferry::coordinator
