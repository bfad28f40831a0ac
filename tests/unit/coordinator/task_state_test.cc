#include <catch2/catch.hpp>

#include "coordinator/status/outcome.h"
#include "coordinator/status/task_state.h"

using namespace ferry::coordinator::status;
using nlohmann::json;

TEST_CASE("task states read and write the status JSON's names") {
  json d = {{"state", "Queued"}};
  CHECK(task_state(d) == TaskState::kQueued);
  CHECK(in_agent(task_state(d)));
  set_task_state(d, TaskState::kCompleted);
  CHECK(d["state"] == "Completed");
  CHECK_FALSE(in_agent(task_state(d)));
  for (auto s : {TaskState::kPending, TaskState::kResolving, TaskState::kWaiting,
                 TaskState::kQueued, TaskState::kRunning, TaskState::kCompleted, TaskState::kFailed,
                 TaskState::kCanceled, TaskState::kAborting, TaskState::kAborted}) {
    json t;
    set_task_state(t, s);
    CHECK(task_state(t) == s);
    CHECK(json(s) == t["state"]);  // the enum's own JSON form is the same name
  }
}

TEST_CASE("a task status without a state, or with one that is not a state, is Unknown") {
  CHECK(task_state(json::object()) == TaskState::kUnknown);
  CHECK(task_state(json()) == TaskState::kUnknown);
  CHECK(task_state(json::array()) == TaskState::kUnknown);
  CHECK(task_state(json{{"state", 3}}) == TaskState::kUnknown);
  CHECK(task_state(json{{"state", "queued"}}) == TaskState::kUnknown);  // names are exact
  CHECK_FALSE(in_agent(TaskState::kUnknown));
}

TEST_CASE("a Migration's outcome once every VM has ended") {
  auto vms = [](std::initializer_list<const char*> phases) {
    json a = json::array();
    for (const char* p : phases) a.push_back({{"phase", p}});
    return a;
  };
  CHECK(migration_outcome(vms({"Completed", "Completed"})) == "Succeeded");
  CHECK(migration_outcome(vms({"Completed", "Canceled"})) == "Succeeded");
  CHECK(migration_outcome(vms({"Canceled", "Canceled"})) == "Canceled");
  CHECK(migration_outcome(vms({"Completed", "Failed", "Canceled"})) == "Failed");
  CHECK_FALSE(migration_outcome(vms({"Completed", "CopyDisks"})).has_value());
  CHECK_FALSE(migration_outcome(vms({"Pending"})).has_value());
  CHECK_FALSE(migration_outcome(json::array({json::object()})).has_value());
  CHECK(migration_outcome(json::array()) == "Succeeded");  // a Plan whose VMs all ran before
}
