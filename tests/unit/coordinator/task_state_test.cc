#include <catch2/catch.hpp>

#include "coordinator/status/conditions.h"
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
  using ferry::coordinator::status::VmStatus;
  auto vms = [](std::initializer_list<const char*> phases) {
    std::vector<VmStatus> a;
    for (const char* p : phases) {
      a.emplace_back();
      a.back().phase = p;
    }
    return a;
  };
  CHECK(migration_outcome(vms({"Completed", "Completed"})) == "Succeeded");
  CHECK(migration_outcome(vms({"Completed", "Canceled"})) == "Succeeded");
  CHECK(migration_outcome(vms({"Canceled", "Canceled"})) == "Canceled");
  CHECK(migration_outcome(vms({"Completed", "Failed", "Canceled"})) == "Failed");
  CHECK_FALSE(migration_outcome(vms({"Completed", "CopyDisks"})).has_value());
  CHECK_FALSE(migration_outcome(vms({"Pending"})).has_value());
  CHECK_FALSE(migration_outcome(vms({""})).has_value());
  CHECK(migration_outcome({}) == "Succeeded");  // a Plan whose VMs all ran before
}

TEST_CASE("Plan and Migration execution conditions follow a run, as Forklift's do") {
  json plan = {{"conditions", json::array({{{"type", "Ready"}, {"status", "True"}},
                                           {{"type", "Failed"}, {"status", "True"}}})}};
  plan_started(plan, "t1");
  CHECK(has_condition(plan, "Ready"));  // validation's own condition stays
  CHECK(has_condition(plan, "Executing"));
  CHECK_FALSE(has_condition(plan, "Failed"));  // the earlier run's outcome is gone
  plan_finished(plan, "Succeeded", "t2");
  CHECK_FALSE(has_condition(plan, "Executing"));
  CHECK(has_condition(plan, "Succeeded"));
  for (const auto& c : plan["conditions"])
    if (c["type"] == "Succeeded") CHECK(c["message"] == "The plan execution has SUCCEEDED.");

  json mig = {{"phase", "Running"}};
  migration_started(mig, "t1");
  CHECK(has_condition(mig, "Ready"));
  CHECK(has_condition(mig, "Running"));
  set_condition(mig, "Running", "Advisory", "again", "t3");  // still True: keeps its time
  for (const auto& c : mig["conditions"])
    if (c["type"] == "Running") CHECK(c["lastTransitionTime"] == "t1");
  migration_finished(mig, "Canceled", "t4");
  CHECK_FALSE(has_condition(mig, "Running"));
  CHECK(has_condition(mig, "Canceled"));
  clear_condition(mig, "Canceled");
  CHECK_FALSE(has_condition(mig, "Canceled"));
  // A Plan's conditions as get and apply show them: validation's now, the run's kept.
  json shown =
      with_execution_conditions(json::array({{{"type", "Ready"}, {"status", "True"}}}), plan);
  REQUIRE(shown.size() == 2);
  CHECK(shown[1]["type"] == "Succeeded");
  CHECK(with_execution_conditions(json::array(), json()).empty());
  json null_status;
  clear_condition(null_status, "Ready");  // not an object: nothing to do, no throw
  CHECK(null_status.is_null());
}
