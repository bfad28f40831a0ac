#pragma once
// TaskDispatcher: the coordinator's side of the task protocol. It owns which
// task ids are live and what each is for (TaskRef), the disk transfers waiting
// for a slot (per source host and per node, scheduler::Slots), and the hand-off
// of every task and cancel to JetStream.
//
// Publishing is asynchronous: `publish` (injected; the coordinator's goes
// through bus::JsPublisher and posts the answer back to its loop) returns at
// once and calls `done` on the loop thread once the stream has stored the
// message or refused it. Between the two the task is "publishing": an agent may
// already have it and claim it, and the claim is answered as if the stream's
// ack had come.
//
// A transfer's slots belong to its task id from the moment it is handed over
// until release(id), which is idempotent, so a cancel racing the stream's answer
// cannot free them twice. If the stream refuses it, the slots are released and
// it waits again at the front of the queue; `on_refused` lets the owner try
// again later.
//
// Owned by the coordinator, loop thread only. Knows nothing of statuses: the
// owner says which tasks are still wanted. Unit tested in
// tests/unit/coordinator/task_dispatcher_test.cc.
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/base/result.h"
#include "common/model/resource.h"
#include "coordinator/scheduler/scheduler.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator::tasks {

inline constexpr int kConversionTask = -1;
inline constexpr int kInspectionTask = -2;

// What a task id is for: one disk of one VM of a Migration, or the VM's
// conversion or inspection.
struct TaskRef {
  model::ResourceKey migration;
  std::string vm_id;
  int disk_key = 0;  // or kConversionTask, kInspectionTask
};

// Stores `data` on `subject` (msg_id dedupes); `done` runs on the loop thread.
using PublishFn = std::function<void(const std::string& subject, std::string data,
                                     std::string msg_id, std::function<void(Status)> done)>;

class TaskDispatcher {
 public:
  TaskDispatcher(int per_source_host, PublishFn publish, std::function<void()> on_refused);

  void track(const std::string& id, TaskRef ref);
  const TaskRef* find(const std::string& id) const;
  size_t size() const { return refs_.size(); }

  struct Transfer {
    std::string id, source_host, node;
    std::string wire;    // the serialized AgentTask
    std::string msg_id;  // the stream's dedupe id for this attempt
    // Runs on the loop once the stream has it.
    std::function<void()> stored;
  };
  // Queues a disk transfer until its slots are free.
  void enqueue(Transfer t);
  // Drops the queued transfers of one VM (they were never handed over).
  void drop_vm(const model::ResourceKey& migration, const std::string& vm_id);
  // Hands over queued transfers while slots allow, in order. A transfer whose
  // `wanted(id)` is false is dropped.
  void dispatch(const std::function<bool(const std::string& id)>& wanted);
  size_t waiting() const { return queue_.size(); }

  // A conversion or inspection task: no slot, handed over at once.
  void publish(const std::string& node, const std::string& id, std::string wire,
               std::function<void(Status)> done);
  // True while a task is handed over and the stream has not answered yet.
  bool publishing(const std::string& id) const { return publishing_.count(id) > 0; }

  // Stores a cancel in the node's durable cancel queue; a failure is logged
  // (the agent's claim check still stops a task that was never claimed).
  void cancel(const std::string& node, const ferry::v1::CancelTask& c);

  // Slots held by a task whose transfer is under way (after a restart, from
  // the stored state); release() frees them once, whatever calls it first.
  void hold(const std::string& id, const std::string& source_host, const std::string& node);
  void release(const std::string& id);
  size_t holding() const { return held_.size(); }

  // A task's source credential (HTTP headers, or a URL that is one): memory
  // only, handed over with its claim, never stored in the stream. Dropped
  // with the task's result.
  struct Credential {
    std::vector<std::string> headers;
    std::string url;  // "" keeps the task's own
  };
  void set_credentials(const std::string& id, Credential c) { credentials_[id] = std::move(c); }
  const Credential* credentials(const std::string& id) const {
    auto it = credentials_.find(id);
    return it == credentials_.end() ? nullptr : &it->second;
  }
  void drop_credentials(const std::string& id) { credentials_.erase(id); }
  // Every credential handed over (or to be) with a claim, for tasks not yet done.
  std::set<std::string> credentials_held() const {
    std::set<std::string> all;
    for (const auto& [id, c] : credentials_) all.insert(c.headers.begin(), c.headers.end());
    return all;
  }
  void set_node_limit(const std::string& node, int limit) { slots_.set_node_limit(node, limit); }
  const scheduler::Slots& slots() const { return slots_; }

 private:
  PublishFn publish_;
  std::function<void()> on_refused_;
  std::map<std::string, TaskRef> refs_;
  std::deque<Transfer> queue_;
  std::set<std::string> publishing_;
  std::map<std::string, std::pair<std::string, std::string>> held_;  // id -> source host, node
  std::map<std::string, Credential> credentials_;
  scheduler::Slots slots_;
};

}  // namespace ferry::coordinator::tasks
