#pragma once
// What a resource's status looks like in the Kubernetes API (cluster mode):
// Forklift's shape, without the coordinator's working fields (disk paths,
// task ids, sessions), and bounded so that a Migration of thousands of VMs
// stays under etcd's object limit (1.5 MiB) with per-VM progress visible.
//
// A Migration's VMs are shown with id, name, phase, started, completed, error,
// conditions, their warm counters and pipeline (steps with progress in MB).
// If that is over `max_bytes`, only VMs under way keep their pipeline; then
// only its running steps; then no VM does; if still over, the list is cut
// and `vmsOmitted` says how many are missing (`ferryctl get` shows them
// all). Sizes at 5,000 VMs: docs/performance.md. Pure; any thread.
#include <cstddef>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

namespace ferry::coordinator::store {

inline constexpr size_t kApiStatusBytes = 1024 * 1024;

enum class Detail { kPipeline, kRunningSteps, kNone };
// One VM of a Migration, as kubectl shows it, with this much of its pipeline.
nlohmann::json vm_view(const nlohmann::json& vm, Detail detail = Detail::kPipeline);
// A Migration's VMs by index, each its vm_view. Shared and immutable, so a
// writer thread can take a copy of the map under a lock and build from it
// after letting go.
using VmViews = std::map<size_t, std::shared_ptr<const nlohmann::json>>;
// The status to write: `summary` (a Migration's without `vmCount`) with its VMs.
nlohmann::json status_view(const std::string& kind, const nlohmann::json& summary,
                           const VmViews& vms, size_t max_bytes = kApiStatusBytes);

}  // namespace ferry::coordinator::store
