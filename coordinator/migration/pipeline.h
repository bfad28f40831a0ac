#pragma once
// The per-VM cold pipeline: one enum of Forklift's phase names, one transition
// table, and the user-facing steps (pipeline) each phase belongs to.
#include <optional>
#include <string>
#include <vector>

namespace ferry::coordinator::migration {

enum class Phase {
  kStarted,
  kPreHook,
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
};

const char* phase_name(Phase p);
std::optional<Phase> phase_from_name(const std::string& s);
bool is_terminal(Phase p);
// The next phase of the happy path (kCompleted stays).
Phase next_phase(Phase p);
// Whether a transition is allowed: the happy path's next phase, or to
// kFailed/kCanceled from any non-terminal phase.
bool can_transition(Phase from, Phase to);

// Steps shown to users (MTV's pipeline): Initialize, PreHook, DiskAllocation,
// DiskTransfer, ImageConversion, VirtualMachineCreation, PostHook.
const std::vector<std::string>& step_names();
// The step a (non-terminal) phase runs in.
std::string step_of(Phase p);

}  // namespace ferry::coordinator::migration
