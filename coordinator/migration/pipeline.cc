#include "coordinator/migration/pipeline.h"

namespace ferry::coordinator::migration {
namespace {
struct Row {
  Phase phase;
  const char* name;
  const char* step;
};
// The transition table: rows in happy-path order.
constexpr Row kTable[] = {
    {Phase::kStarted, "Started", "Initialize"},
    {Phase::kPreHook, "PreHook", "PreHook"},
    {Phase::kStorePowerState, "StorePowerState", "Initialize"},
    {Phase::kPowerOffSource, "PowerOffSource", "Initialize"},
    {Phase::kWaitForPowerOff, "WaitForPowerOff", "Initialize"},
    {Phase::kCreateDataVolumes, "CreateDataVolumes", "DiskAllocation"},
    {Phase::kCopyDisks, "CopyDisks", "DiskTransfer"},
    {Phase::kConvertGuest, "ConvertGuest", "ImageConversion"},
    {Phase::kCreateVM, "CreateVM", "VirtualMachineCreation"},
    {Phase::kPostHook, "PostHook", "PostHook"},
    {Phase::kCompleted, "Completed", ""},
    {Phase::kFailed, "Failed", ""},
    {Phase::kCanceled, "Canceled", ""},
};
}  // namespace

const char* phase_name(Phase p) {
  for (const auto& r : kTable)
    if (r.phase == p) return r.name;
  return "Unknown";
}

std::optional<Phase> phase_from_name(const std::string& s) {
  for (const auto& r : kTable)
    if (s == r.name) return r.phase;
  return std::nullopt;
}

bool is_terminal(Phase p) {
  return p == Phase::kCompleted || p == Phase::kFailed || p == Phase::kCanceled;
}

Phase next_phase(Phase p) {
  if (is_terminal(p)) return p;
  return static_cast<Phase>(static_cast<int>(p) + 1);
}

bool can_transition(Phase from, Phase to) {
  if (is_terminal(from)) return false;
  if (to == Phase::kFailed || to == Phase::kCanceled) return true;
  return to == next_phase(from);
}

const std::vector<std::string>& step_names() {
  static const std::vector<std::string> s = {"Initialize",      "PreHook",
                                             "DiskAllocation",  "DiskTransfer",
                                             "ImageConversion", "VirtualMachineCreation",
                                             "PostHook"};
  return s;
}

std::string step_of(Phase p) {
  for (const auto& r : kTable)
    if (r.phase == p) return r.step;
  return "";
}

}  // namespace ferry::coordinator::migration
