#pragma once
// How a Migration ends, from its VMs' phases. Pure.
#include <optional>
#include <string>
#include <vector>

#include "coordinator/status/vm_status.h"

namespace ferry::coordinator::status {

// A Migration's phase once every one of its VMs has ended: Failed if any
// failed, Canceled if none completed and some were canceled, else
// Succeeded. nullopt while any VM is live.
std::optional<std::string> migration_outcome(const std::vector<VmStatus>& vms);

}  // namespace ferry::coordinator::status
