#include "coordinator/migration/pipeline.h"

namespace ferry::coordinator::migration {
namespace {
struct Row {
  Phase phase;
  const char* name;
  const char* step;  // cold step; warm phases: their precopy step
};
// Cold rows first, in happy-path order; then the warm-only phases.
constexpr Row kTable[] = {
    {Phase::kStarted, "Started", "Initialize"},
    {Phase::kPreHook, "PreHook", "PreHook"},
    {Phase::kPreflightInspection, "PreflightInspection", "Initialize"},
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
    {Phase::kCreateInitialSnapshot, "CreateInitialSnapshot", "Initialize"},
    {Phase::kStoreInitialSnapshotDeltas, "StoreInitialSnapshotDeltas", "Initialize"},
    {Phase::kRemovePreviousSnapshot, "RemovePreviousSnapshot", "DiskTransfer"},
    {Phase::kAddCheckpoint, "AddCheckpoint", "DiskTransfer"},
    {Phase::kCopyingPaused, "CopyingPaused", "DiskTransfer"},
    {Phase::kCreateSnapshot, "CreateSnapshot", "DiskTransfer"},
    {Phase::kStoreSnapshotDeltas, "StoreSnapshotDeltas", "DiskTransfer"},
    {Phase::kCreateFinalSnapshot, "CreateFinalSnapshot", "Cutover"},
    {Phase::kRemoveFinalSnapshot, "RemoveFinalSnapshot", "Cutover"},
    {Phase::kAddFinalCheckpoint, "AddFinalCheckpoint", "Cutover"},
};
constexpr const char* kStages[] = {"initial", "precopy", "final"};
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

const char* stage_name(WarmStage s) { return kStages[static_cast<int>(s)]; }

std::optional<WarmStage> stage_from_name(const std::string& s) {
  for (int i = 0; i < 3; i++)
    if (s == kStages[i]) return static_cast<WarmStage>(i);
  return std::nullopt;
}

bool is_terminal(Phase p) {
  return p == Phase::kCompleted || p == Phase::kFailed || p == Phase::kCanceled;
}

bool is_terminal_name(const std::string& phase) {
  auto p = phase_from_name(phase);
  return p && is_terminal(*p);
}

bool is_warm_phase(Phase p) {
  return static_cast<int>(p) >= static_cast<int>(Phase::kCreateInitialSnapshot);
}

Phase next_phase(Phase p) {
  if (is_terminal(p) || is_warm_phase(p)) return p;
  return static_cast<Phase>(static_cast<int>(p) + 1);
}

bool can_transition(Phase from, Phase to, bool warm) {
  if (is_terminal(from)) return false;
  if (to == Phase::kFailed || to == Phase::kCanceled) return true;
  if (!warm) return to == next_phase(from) && to != from;
  for (WarmStage st : {WarmStage::kInitial, WarmStage::kPrecopy, WarmStage::kFinal})
    for (bool cutover : {false, true})
      if (next_warm_phase(from, st, cutover) == to && to != from) return true;
  // A failed precopy cycle: remove its snapshot (again if that failed), then
  // wait for the next cycle or try the delta again.
  bool in_cycle = is_warm_phase(from) || from == Phase::kPreflightInspection ||
                  from == Phase::kCreateDataVolumes || from == Phase::kCopyDisks;
  if (in_cycle)
    for (Phase r :
         {Phase::kRemovePreviousSnapshot, Phase::kRemoveFinalSnapshot, Phase::kCopyingPaused,
          Phase::kCreateInitialSnapshot, Phase::kCreateFinalSnapshot})
      if (to == r) return true;
  return false;
}

Phase next_warm_phase(Phase p, WarmStage stage, bool cutover) {
  switch (p) {
    case Phase::kStarted:
      return Phase::kPreHook;
    case Phase::kPreHook:
      return Phase::kCreateInitialSnapshot;
    case Phase::kCreateInitialSnapshot:  // inspect the disk as frozen by the snapshot
      return Phase::kPreflightInspection;
    case Phase::kPreflightInspection:
      return Phase::kStoreInitialSnapshotDeltas;
    case Phase::kStoreInitialSnapshotDeltas:
      return Phase::kCreateDataVolumes;
    case Phase::kCreateDataVolumes:
      return Phase::kCopyDisks;
    case Phase::kCopyDisks:
      return stage == WarmStage::kFinal ? Phase::kRemoveFinalSnapshot
                                        : Phase::kRemovePreviousSnapshot;
    case Phase::kRemovePreviousSnapshot:
      return Phase::kAddCheckpoint;
    case Phase::kAddCheckpoint:
      return Phase::kCopyingPaused;
    case Phase::kCopyingPaused:
      return cutover ? Phase::kStorePowerState : Phase::kCreateSnapshot;
    case Phase::kCreateSnapshot:
      return Phase::kStoreSnapshotDeltas;
    case Phase::kStoreSnapshotDeltas:
      return Phase::kCopyDisks;
    case Phase::kStorePowerState:
      return Phase::kPowerOffSource;
    case Phase::kPowerOffSource:
      return Phase::kWaitForPowerOff;
    case Phase::kWaitForPowerOff:
      return Phase::kCreateFinalSnapshot;
    case Phase::kCreateFinalSnapshot:
      return Phase::kStoreSnapshotDeltas;
    case Phase::kRemoveFinalSnapshot:
      return Phase::kAddFinalCheckpoint;
    case Phase::kAddFinalCheckpoint:
      return Phase::kConvertGuest;
    case Phase::kConvertGuest:
      return Phase::kCreateVM;
    case Phase::kCreateVM:
      return Phase::kPostHook;
    case Phase::kPostHook:
      return Phase::kCompleted;
    case Phase::kCompleted:
    case Phase::kFailed:
    case Phase::kCanceled:
      return p;
  }
  return p;
}

std::vector<std::string> step_names(bool warm) {
  std::vector<std::string> s = {"Initialize", "PreHook", "DiskAllocation", "DiskTransfer"};
  if (warm) s.push_back("Cutover");
  for (const char* x : {"ImageConversion", "VirtualMachineCreation", "PostHook"}) s.push_back(x);
  return s;
}

std::string step_of(Phase p) {
  for (const auto& r : kTable)
    if (r.phase == p) return r.step;
  return "";
}

std::string warm_step_of(Phase p, WarmStage stage) {
  switch (p) {
    case Phase::kStorePowerState:
    case Phase::kPowerOffSource:
    case Phase::kWaitForPowerOff:
      return "Cutover";
    case Phase::kStoreSnapshotDeltas:
    case Phase::kCopyDisks:
      return stage == WarmStage::kFinal ? "Cutover" : "DiskTransfer";
    default:
      return step_of(p);
  }
}

}  // namespace ferry::coordinator::migration
