#pragma once
// VmStatus: one VM of a Migration as the runner keeps it: its phase, MTV's
// pipeline steps, each disk's transfer, the agent's conversion and
// inspection, its hooks and (warm) its precopy state. Typed, so a misspelt
// field is a compile error; the JSON they read and write is the shape
// ferryctl, the tests and stored statuses know (members are named as
// their JSON fields). A field that is not set is left out of the JSON, as it
// always was; a stored VM whose fields have the wrong types does not load
// (StatusBook reports and drops it).
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "coordinator/status/reports.h"
#include "coordinator/status/task_state.h"

namespace ferry::coordinator::status {

using Json = nlohmann::json;

// A DiskTransfer step's progress, in MiB.
struct StepProgress {
  uint64_t completed = 0, total = 0;
};

struct StepError {
  std::string phase;  // the VM's phase when it failed
  std::vector<std::string> reasons;
};

// A step of MTV's pipeline (Initialize, PreHook, DiskAllocation, ...).
struct PipelineStep {
  std::string name;
  std::string phase = "Pending";   // Pending, Running, Completed, Failed, Canceled, Skipped
  std::string started, completed;  // RFC 3339; "" = not yet
  std::string reason;              // why it was skipped
  std::string message;             // the latest status line (ImageConversion)
  std::optional<StepProgress> progress;
  std::optional<StepError> error;
  std::optional<std::vector<std::string>> output;  // a hook's last lines
};

struct VmError {
  std::string phase, step;
  std::vector<std::string> reasons;
};

// Warm: what one disk's copy of a precopy was asked to move.
struct WarmCopy {
  std::string base;  // the change ID it started from ("*": everything allocated)
  uint64_t changedBytes = 0;
  bool full = false;
  std::string warning;  // why a full copy was forced
  // The agent's reader found the changed areas itself (oVirt: dirty extents);
  // changedBytes is then what the agent reported copying.
  bool sourceReported = false;
};

// One disk's transfer to its volume.
struct DiskStatus {
  int key = 0;  // the source's disk key
  std::string file;
  uint64_t capacity = 0;
  std::string storageClass, volume;
  uint64_t requestedSize = 0;
  std::string volumeMode;    // Filesystem or Block
  std::string relativePath;  // under the node's volume root
  std::string node, sourceHost, taskId;
  TaskState state = TaskState::kPending;
  uint64_t bytesDone = 0;
  std::optional<uint64_t> bytesTotal;  // as the agent reports it
  std::optional<double> rate;          // bytes per second
  std::optional<DiskResult> result;
  std::string path;  // the volume as the agent wrote it
  std::optional<WarmCopy> copy;
  // A source the provider opened for the task's claim (oVirt: an image
  // transfer), stored so that it is closed once, whoever ends the task.
  std::string sourceHandle;
};

// The guest's conversion on the node holding the volumes.
struct ConversionStatus {
  std::string taskId;
  TaskState state = TaskState::kUnknown;
  std::string node;
  int attempt = 0;
  std::map<std::string, std::string> macIPs;  // preserveStaticIPs: MAC -> virt-v2v's IP form
  std::optional<ConversionReport> report;
};

// The preflight inspection of the source disks.
struct InspectionStatus {
  std::string taskId;
  TaskState state = TaskState::kUnknown;
  std::string node;
  std::string warning;  // why it could not run
  std::optional<InspectionReport> report;
};

struct HookRef {
  std::string ns, name;  // JSON: namespace, name
};

// A VM's hook for one step (PreHook, PostHook).
struct HookStatus {
  HookRef hook;
  TaskState state = TaskState::kPending;
  int runs = 0;  // fresh starts (cluster mode: one Job each)
  std::string started, message;
  // Set by a run's end (attempts made, seconds, its log file: "" when it ran as a Job).
  std::optional<int> attempts;
  std::optional<double> seconds;
  std::optional<std::string> log;
};

struct Snapshot {
  std::string id, name, created;
};

// A precopy cycle: the one under way (warm.current), then kept in warm.precopies.
struct PrecopyCycle {
  std::optional<int> snapshot;                      // its snapshot's sequence number
  std::string stage;                                // initial, precopy, final
  std::optional<double> snapshotAt, createSeconds;  // when it was taken (epoch s), how long
  std::optional<double> removeSeconds, snapshotSeconds, copySeconds;
  std::optional<uint64_t> changedBytes, bytesRead;
  std::optional<bool> full;
  std::string completed;
};

struct PredictedDowntime {
  bool available = false;
  std::string reason;  // when not available
  double seconds = 0, changeRateBytesPerSecond = 0, copyRateBytesPerSecond = 0, fixedSeconds = 0,
         snapshotSeconds = 0;
  uint64_t expectedBytes = 0;
  std::string asOf, excludes;
  std::optional<double> maxDowntimeSeconds;
};

struct Downtime {
  double copySeconds = 0;
  std::string note;
};

struct WarmStatus {
  std::string stage = "initial";  // migration::stage_name
  std::vector<PrecopyCycle> precopies;
  int failures = 0;                              // consecutive failed precopies
  int snapshotSeq = 0;                           // the last snapshot's sequence number
  std::map<std::string, std::string> changeIds;  // disk key -> the copied base
  std::optional<std::map<std::string, std::string>> pendingChangeIds;
  std::optional<Snapshot> snapshot;  // the one snapshot of ours that exists
  std::optional<PrecopyCycle> current;
  std::string cutover;  // this VM's cutover time (ferryctl cutover --vm)
  std::string cutoverReason;
  std::optional<double> cutoverStartedAt, nextPrecopyAt, notBefore, copyStartedAt;
  std::optional<PredictedDowntime> predictedDowntime, predictedAtCutover;
  bool retrying = false;
  std::string lastError;
  std::vector<std::string> warnings;
  std::string snapshotCleanup;  // Pending, Completed, Failed: ...
  std::optional<Downtime> downtime;
  // Change IDs no longer a base, to release at the source (oVirt: old
  // checkpoints); kept until the source says they are gone.
  std::vector<std::string> releaseChangeIds;
};

struct VmStatus {
  std::string id, name, targetName;
  std::string phase = "Pending";  // "Pending", then a migration::Phase name
  std::string started, completed;
  std::vector<PipelineStep> pipeline;
  std::vector<DiskStatus> disks;
  std::map<std::string, HookStatus> hooks;  // by step
  std::optional<WarmStatus> warm;
  std::optional<ConversionStatus> conversion;
  std::optional<InspectionStatus> inspection;
  std::optional<VmError> error;
  std::string node;              // where its volumes are
  std::string sourcePowerState;  // On, Off: as found before the copy
  bool poweredOff = false;       // Ferry powered the source off
  Json vmManifest;               // the VirtualMachine created (null until then)
  std::string vmManifestPath, vmRef;

  bool terminal() const;
  // The step by name (null if it is not listed).
  PipelineStep* step(const std::string& name);
  // The VM enters the step `step_name` at `now` (RFC 3339): a Pending step
  // runs from now, and the steps listed before it that have not ended are
  // completed now. A step that is not listed (PreHook, PostHook without a
  // hook) changes nothing: the step running goes on.
  void enter_step(const std::string& step_name, const std::string& now);
  // The disk whose current task is `task_id` (null if none).
  DiskStatus* disk_by_task(const std::string& task_id);
};

void to_json(Json& j, const StepProgress& v);
void from_json(const Json& j, StepProgress& v);
void to_json(Json& j, const StepError& v);
void from_json(const Json& j, StepError& v);
void to_json(Json& j, const PipelineStep& v);
void from_json(const Json& j, PipelineStep& v);
void to_json(Json& j, const VmError& v);
void from_json(const Json& j, VmError& v);
void to_json(Json& j, const WarmCopy& v);
void from_json(const Json& j, WarmCopy& v);
void to_json(Json& j, const DiskStatus& v);
void from_json(const Json& j, DiskStatus& v);
void to_json(Json& j, const ConversionStatus& v);
void from_json(const Json& j, ConversionStatus& v);
void to_json(Json& j, const InspectionStatus& v);
void from_json(const Json& j, InspectionStatus& v);
void to_json(Json& j, const HookRef& v);
void from_json(const Json& j, HookRef& v);
void to_json(Json& j, const HookStatus& v);
void from_json(const Json& j, HookStatus& v);
void to_json(Json& j, const Snapshot& v);
void from_json(const Json& j, Snapshot& v);
void to_json(Json& j, const PrecopyCycle& v);
void from_json(const Json& j, PrecopyCycle& v);
void to_json(Json& j, const PredictedDowntime& v);
void from_json(const Json& j, PredictedDowntime& v);
void to_json(Json& j, const Downtime& v);
void from_json(const Json& j, Downtime& v);
void to_json(Json& j, const WarmStatus& v);
void from_json(const Json& j, WarmStatus& v);
void to_json(Json& j, const VmStatus& v);
void from_json(const Json& j, VmStatus& v);

}  // namespace ferry::coordinator::status
