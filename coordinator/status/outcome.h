#pragma once
// How a Migration ends, from its VMs' phases. Pure.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ferry::coordinator::status {

// A Migration's phase once every VM in `vms` (its status' list) has ended:
// Failed if any failed, Canceled if none completed and some were canceled,
// else Succeeded. nullopt while any VM is live (or has no phase).
std::optional<std::string> migration_outcome(const nlohmann::json& vms);

}  // namespace ferry::coordinator::status
