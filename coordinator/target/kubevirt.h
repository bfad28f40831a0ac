#pragma once
// The destination side: volume names (PVC-style) and the KubeVirt
// VirtualMachine manifest for a migrated VM.
#include <string>

#include "common/model/resource.h"

namespace ferry::coordinator::target {

using model::Json;

// Forklift's pvcNameTemplate variables: {{.VmName}}, {{.PlanName}}, {{.DiskIndex}},
// {{.RootDiskIndex}}. Default "{{.VmName}}-disk-{{.DiskIndex}}". Result is a DNS-1123 label.
std::string volume_name(const std::string& tmpl, const std::string& vm_name,
                        const std::string& plan_name, int disk_index);

// PVC request for a disk in Filesystem mode: capacity + 10% overhead, rounded up to MiB.
uint64_t requested_size(uint64_t capacity, bool filesystem_mode);

struct VmManifestInput {
  std::string name, ns;
  Json source_vm;  // inventory record
  Json volumes;    // [{name, disk_key}] in disk order
  Json networks;   // [{mac, type: pod|multus, name, namespace}] per source NIC, in order
  bool running = false;
  bool compatibility_devices = false;  // SATA disks, e1000e NICs
  std::string guest_os;                // from conversion, e.g. "Debian GNU/Linux 12 (bookworm)"
};

Json virtual_machine(const VmManifestInput& in);

}  // namespace ferry::coordinator::target
