#include "coordinator/status/task_state.h"

namespace ferry::coordinator::status {

const char* task_state_name(TaskState s) {
  switch (s) {
    case TaskState::kUnknown:
      return "Unknown";
    case TaskState::kPending:
      return "Pending";
    case TaskState::kResolving:
      return "Resolving";
    case TaskState::kWaiting:
      return "Waiting";
    case TaskState::kQueued:
      return "Queued";
    case TaskState::kRunning:
      return "Running";
    case TaskState::kCompleted:
      return "Completed";
    case TaskState::kFailed:
      return "Failed";
    case TaskState::kCanceled:
      return "Canceled";
    case TaskState::kAborting:
      return "Aborting";
    case TaskState::kAborted:
      return "Aborted";
  }
  return "Unknown";
}

TaskState task_state(const nlohmann::json& task) {
  if (!task.is_object()) return TaskState::kUnknown;
  auto it = task.find("state");
  if (it == task.end() || !it->is_string()) return TaskState::kUnknown;
  return it->get<TaskState>();
}

void set_task_state(nlohmann::json& task, TaskState s) { task["state"] = task_state_name(s); }

}  // namespace ferry::coordinator::status
