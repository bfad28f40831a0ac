#pragma once
// TaskState: the state of one piece of agent work as a VM's status shows it:
// each disk's transfer (`disks[].state`) and the VM's conversion and
// inspection (`conversion.state`, `inspection.state`). One enum instead of
// free strings, so a misspelt state is a compile error and a stored one that
// is not a state is seen (kUnknown) rather than silently never matching.
//
// A disk moves Pending -> Resolving (its source is being asked for) ->
// Waiting (for a slot, and then for the stream's ack) -> Queued (stored in
// its node's task queue) -> Running (claimed) -> Completed | Failed, or to
// Canceled from any of these; a failed warm precopy's other disks go Aborting
// (their task may still read the snapshot) -> Aborted.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace ferry::coordinator::status {

enum class TaskState {
  kUnknown,  // absent, or not one of the names below
  kPending,
  kResolving,
  kWaiting,
  kQueued,
  kRunning,
  kCompleted,
  kFailed,
  kCanceled,
  kAborting,
  kAborted,
};

NLOHMANN_JSON_SERIALIZE_ENUM(TaskState, {{TaskState::kUnknown, nullptr},
                                         {TaskState::kPending, "Pending"},
                                         {TaskState::kResolving, "Resolving"},
                                         {TaskState::kWaiting, "Waiting"},
                                         {TaskState::kQueued, "Queued"},
                                         {TaskState::kRunning, "Running"},
                                         {TaskState::kCompleted, "Completed"},
                                         {TaskState::kFailed, "Failed"},
                                         {TaskState::kCanceled, "Canceled"},
                                         {TaskState::kAborting, "Aborting"},
                                         {TaskState::kAborted, "Aborted"}})

const char* task_state_name(TaskState s);
// The "state" of a disk, conversion or inspection status object (kUnknown if
// it has none, or is not an object).
TaskState task_state(const nlohmann::json& task);
void set_task_state(nlohmann::json& task, TaskState s);
// Handed to an agent's queue or claimed by it: its result will come.
inline bool in_agent(TaskState s) { return s == TaskState::kQueued || s == TaskState::kRunning; }

}  // namespace ferry::coordinator::status
