#pragma once
// The per-VM pipelines: one enum of Forklift's phase names, the cold
// itinerary (a straight line) and the warm one (a precopy loop, then the
// cutover), and the user-facing steps (MTV's pipeline) each phase belongs to.
#include <optional>
#include <string>
#include <vector>

namespace ferry::coordinator::migration {

enum class Phase {
  kStarted,
  kPreHook,
  kPreflightInspection,  // Ferry: inspect the source disks before touching the VM
  kStorePowerState,
  kPowerOffSource,
  kWaitForPowerOff,
  kCreateDataVolumes,
  kCopyDisks,
  kConvertGuest,
  kCreateVM,
  kPostHook,
  kCompleted,
  kFailed,
  kCanceled,
  // Warm only.
  kCreateInitialSnapshot,
  kStoreInitialSnapshotDeltas,
  kRemovePreviousSnapshot,  // removes the snapshot whose delta was just copied
  kAddCheckpoint,           // commits that snapshot's change IDs as the next base
  kCopyingPaused,           // waits for the next precopy or the cutover
  kCreateSnapshot,
  kStoreSnapshotDeltas,
  kCreateFinalSnapshot,
  kRemoveFinalSnapshot,
  kAddFinalCheckpoint,
};

// Which part of a warm migration a VM is in; decides where the shared phases
// (StoreSnapshotDeltas, CopyDisks) lead and which step they are shown under.
enum class WarmStage { kInitial, kPrecopy, kFinal };

const char* phase_name(Phase p);
std::optional<Phase> phase_from_name(const std::string& s);
const char* stage_name(WarmStage s);
std::optional<WarmStage> stage_from_name(const std::string& s);
bool is_terminal(Phase p);
// For a VM status's "phase" (which also takes "Pending", before Started).
bool is_terminal_name(const std::string& phase);

// Cold: the next phase of the happy path (terminal phases stay).
Phase next_phase(Phase p);
// The transition table every phase change goes through (the coordinator
// fails a VM whose code asks for any other: that is a bug, shown loudly).
// Cold: the happy path's next phase, or kFailed/kCanceled from any
// non-terminal phase. Warm adds every edge of next_warm_phase (any stage,
// either cutover answer) and the recovery edges of a failed precopy cycle:
// from a phase of the snapshot cycle (the warm-only phases, and the
// inspection, volume creation and copy they share) to a snapshot removal
// (again, if removing failed) or to where the next try starts: CopyingPaused,
// CreateInitialSnapshot (no volumes yet) or CreateFinalSnapshot (source off).
bool can_transition(Phase from, Phase to, bool warm = false);

// Warm: the next phase. `cutover` only matters in CopyingPaused (precopy
// again, or start the cutover).
Phase next_warm_phase(Phase p, WarmStage stage, bool cutover);
bool is_warm_phase(Phase p);

// Steps shown to users (MTV's pipeline): Initialize, PreHook, DiskAllocation,
// DiskTransfer, Cutover (warm only), ImageConversion, VirtualMachineCreation, PostHook.
std::vector<std::string> step_names(bool warm);
// The step a (non-terminal) phase runs in.
std::string step_of(Phase p);
std::string warm_step_of(Phase p, WarmStage stage);

}  // namespace ferry::coordinator::migration
