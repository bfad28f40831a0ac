#include "coordinator/status/vm_status.h"

#include <stdexcept>
#include <type_traits>

#include "coordinator/migration/pipeline.h"

namespace ferry::coordinator::status {
namespace {

// How a field goes to JSON when it holds nothing: left out (strings, lists,
// maps, optionals, null JSON; numbers and booleans with kOmitZero), or
// always written (kAlways; numbers and booleans by default).
enum Presence { kDefault, kAlways, kOmitZero };

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

struct Writer {
  Json& j;
  template <class T>
  void operator()(const char* k, const T& v, Presence p = kDefault) {
    if constexpr (is_optional<T>::value) {
      if (v) j[k] = *v;
    } else if (!left_out(v, p)) {
      j[k] = v;
    }
  }
  template <class T>
  static bool left_out(const T& v, Presence p) {
    if constexpr (std::is_same_v<T, Json>)
      return v.is_null();
    else if constexpr (std::is_same_v<T, TaskState>)
      return v == TaskState::kUnknown;  // never a null state
    else if constexpr (std::is_arithmetic_v<T>)
      return p == kOmitZero && v == T{};
    else if constexpr (requires { v.empty(); })
      return v.empty() && p != kAlways;
    else
      return false;
  }
};

struct Reader {
  const Json& j;
  template <class T>
  void operator()(const char* k, T& v, Presence = kDefault) {
    auto it = j.find(k);
    if (it == j.end() || it->is_null()) {
      // A stored task without a state is not Pending: it is not known.
      if constexpr (std::is_same_v<T, TaskState>) v = TaskState::kUnknown;
      return;
    }
    if constexpr (std::is_same_v<T, Json>)
      v = *it;
    else if constexpr (is_optional<T>::value)
      v = it->get<typename T::value_type>();
    else
      v = it->get<T>();
  }
};

void expect_object(const Json& j, const char* what) {
  if (!j.is_object()) throw std::invalid_argument(std::string(what) + " is not an object");
}

}  // namespace

// Each struct's fields are listed once, for both directions.
#define FERRY_STATUS_JSON(Type, ...)       \
  void to_json(Json& j, const Type& v) {   \
    j = Json::object();                    \
    Writer f{j};                           \
    __VA_ARGS__;                           \
  }                                        \
  void from_json(const Json& j, Type& v) { \
    expect_object(j, #Type);               \
    Reader f{j};                           \
    __VA_ARGS__;                           \
  }

FERRY_STATUS_JSON(StepProgress, f("completed", v.completed); f("total", v.total))
FERRY_STATUS_JSON(StepError, f("phase", v.phase); f("reasons", v.reasons, kAlways))
FERRY_STATUS_JSON(PipelineStep, f("name", v.name, kAlways); f("phase", v.phase, kAlways);
                  f("started", v.started); f("completed", v.completed); f("reason", v.reason);
                  f("message", v.message); f("progress", v.progress); f("error", v.error);
                  f("output", v.output))
FERRY_STATUS_JSON(VmError, f("phase", v.phase); f("step", v.step); f("reasons", v.reasons, kAlways))
FERRY_STATUS_JSON(WarmCopy, f("base", v.base); f("changedBytes", v.changedBytes); f("full", v.full);
                  f("warning", v.warning); f("sourceReported", v.sourceReported, kOmitZero))
FERRY_STATUS_JSON(DiskStatus, f("key", v.key); f("file", v.file, kAlways);
                  f("capacity", v.capacity); f("storageClass", v.storageClass, kAlways);
                  f("volume", v.volume, kAlways); f("requestedSize", v.requestedSize);
                  f("volumeMode", v.volumeMode, kAlways);
                  f("relativePath", v.relativePath, kAlways); f("node", v.node, kAlways);
                  f("sourceHost", v.sourceHost, kAlways); f("taskId", v.taskId, kAlways);
                  f("state", v.state); f("bytesDone", v.bytesDone); f("bytesTotal", v.bytesTotal);
                  f("rate", v.rate); f("result", v.result); f("path", v.path); f("copy", v.copy);
                  f("sourceHandle", v.sourceHandle))
FERRY_STATUS_JSON(ConversionStatus, f("taskId", v.taskId); f("state", v.state); f("node", v.node);
                  f("attempt", v.attempt, kOmitZero); f("macIPs", v.macIPs); f("report", v.report))
FERRY_STATUS_JSON(InspectionStatus, f("taskId", v.taskId); f("state", v.state); f("node", v.node);
                  f("warning", v.warning); f("report", v.report))
FERRY_STATUS_JSON(HookRef, f("namespace", v.ns, kAlways); f("name", v.name, kAlways))
FERRY_STATUS_JSON(HookStatus, f("hook", v.hook); f("state", v.state); f("runs", v.runs, kOmitZero);
                  f("started", v.started); f("message", v.message); f("log", v.log);
                  f("attempts", v.attempts); f("seconds", v.seconds))
FERRY_STATUS_JSON(Snapshot, f("id", v.id, kAlways); f("name", v.name); f("created", v.created))
FERRY_STATUS_JSON(PrecopyCycle, f("snapshot", v.snapshot); f("stage", v.stage);
                  f("snapshotAt", v.snapshotAt); f("createSeconds", v.createSeconds);
                  f("removeSeconds", v.removeSeconds); f("snapshotSeconds", v.snapshotSeconds);
                  f("copySeconds", v.copySeconds); f("changedBytes", v.changedBytes);
                  f("bytesRead", v.bytesRead); f("full", v.full); f("completed", v.completed))
FERRY_STATUS_JSON(
    PredictedDowntime, f("available", v.available); f("reason", v.reason); if (v.available) {
      f("seconds", v.seconds);
      f("changeRateBytesPerSecond", v.changeRateBytesPerSecond);
      f("copyRateBytesPerSecond", v.copyRateBytesPerSecond);
      f("fixedSeconds", v.fixedSeconds);
      f("snapshotSeconds", v.snapshotSeconds);
      f("expectedBytes", v.expectedBytes);
      f("asOf", v.asOf);
      f("excludes", v.excludes);
      f("maxDowntimeSeconds", v.maxDowntimeSeconds);
    })
FERRY_STATUS_JSON(Downtime, f("copySeconds", v.copySeconds); f("note", v.note))
FERRY_STATUS_JSON(WarmStatus, f("stage", v.stage, kAlways); f("precopies", v.precopies, kAlways);
                  f("failures", v.failures); f("snapshotSeq", v.snapshotSeq);
                  f("changeIds", v.changeIds, kAlways); f("pendingChangeIds", v.pendingChangeIds);
                  f("snapshot", v.snapshot); f("current", v.current); f("cutover", v.cutover);
                  f("cutoverReason", v.cutoverReason); f("cutoverStartedAt", v.cutoverStartedAt);
                  f("nextPrecopyAt", v.nextPrecopyAt); f("notBefore", v.notBefore);
                  f("copyStartedAt", v.copyStartedAt); f("predictedDowntime", v.predictedDowntime);
                  f("predictedAtCutover", v.predictedAtCutover);
                  f("retrying", v.retrying, kOmitZero); f("lastError", v.lastError);
                  f("warnings", v.warnings); f("snapshotCleanup", v.snapshotCleanup);
                  f("downtime", v.downtime); f("releaseChangeIds", v.releaseChangeIds))
FERRY_STATUS_JSON(VmStatus, f("id", v.id, kAlways); f("name", v.name, kAlways);
                  f("targetName", v.targetName, kAlways); f("phase", v.phase, kAlways);
                  f("started", v.started); f("completed", v.completed);
                  f("pipeline", v.pipeline, kAlways); f("disks", v.disks, kAlways);
                  f("hooks", v.hooks); f("warm", v.warm); f("conversion", v.conversion);
                  f("inspection", v.inspection); f("error", v.error); f("node", v.node);
                  f("sourcePowerState", v.sourcePowerState);
                  f("poweredOff", v.poweredOff, kOmitZero); f("vmManifest", v.vmManifest);
                  f("vmManifestPath", v.vmManifestPath); f("vmRef", v.vmRef))

#undef FERRY_STATUS_JSON

bool VmStatus::terminal() const { return migration::is_terminal_name(phase); }

PipelineStep* VmStatus::step(const std::string& step_name) {
  for (auto& s : pipeline)
    if (s.name == step_name) return &s;
  return nullptr;
}

void VmStatus::enter_step(const std::string& step_name, const std::string& now) {
  // Were an unlisted step taken as "after every step", each step would be
  // completed at once, started == completed: 0 s for all of them.
  if (!step(step_name)) return;
  for (auto& s : pipeline) {
    if (s.name == step_name) {
      if (s.phase == "Pending") {
        s.phase = "Running";
        s.started = now;
      }
      return;
    }
    if (s.phase != "Completed" && s.phase != "Skipped") {
      if (s.started.empty()) s.started = now;
      s.phase = "Completed";
      s.completed = now;
    }
  }
}

DiskStatus* VmStatus::disk_by_task(const std::string& task_id) {
  for (auto& d : disks)
    if (d.taskId == task_id) return &d;
  return nullptr;
}

}  // namespace ferry::coordinator::status
