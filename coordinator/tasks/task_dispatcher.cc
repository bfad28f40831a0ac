#include "coordinator/tasks/task_dispatcher.h"

#include <algorithm>

#include "common/base/log.h"
#include "common/protocol/subjects.h"

namespace ferry::coordinator::tasks {
namespace {
const Logger kLog("tasks");
}

TaskDispatcher::TaskDispatcher(int per_source_host, PublishFn publish,
                               std::function<void()> on_refused)
    : publish_(std::move(publish)), on_refused_(std::move(on_refused)), slots_(per_source_host) {}

void TaskDispatcher::track(const std::string& id, TaskRef ref) { refs_[id] = std::move(ref); }

const TaskRef* TaskDispatcher::find(const std::string& id) const {
  auto it = refs_.find(id);
  return it == refs_.end() ? nullptr : &it->second;
}

void TaskDispatcher::enqueue(Transfer t) { queue_.push_back(std::move(t)); }

void TaskDispatcher::drop_vm(const model::ResourceKey& migration, const std::string& vm_id) {
  queue_.erase(std::remove_if(queue_.begin(), queue_.end(),
                              [&](const Transfer& t) {
                                const TaskRef* r = find(t.id);
                                return r && r->vm_id == vm_id && r->migration == migration;
                              }),
               queue_.end());
}

void TaskDispatcher::dispatch(const std::function<bool(const std::string& id)>& wanted) {
  // Refusals answered synchronously go back to queue_; the rest wait in keep.
  std::deque<Transfer> todo = std::move(queue_), keep;
  queue_.clear();
  for (auto& t : todo) {
    if (!refs_.count(t.id) || publishing_.count(t.id) || !wanted(t.id)) continue;
    if (!slots_.can_start(t.source_host, t.node)) {
      keep.push_back(std::move(t));
      continue;
    }
    hold(t.id, t.source_host, t.node);
    publishing_.insert(t.id);
    std::string subject = subjects::task(t.node), wire = t.wire, msg_id = t.msg_id;
    // The transfer is kept in the callback: a refused one waits again.
    auto kept = std::make_shared<Transfer>(std::move(t));
    publish_(subject, std::move(wire), std::move(msg_id), [this, kept](Status s) {
      publishing_.erase(kept->id);
      if (s.ok()) {
        if (kept->stored) kept->stored();
        return;
      }
      kLog.warn("task not stored; it waits for another try",
                {{"task", kept->id}, {"error", s.error().message}});
      release(kept->id);
      queue_.push_front(std::move(*kept));
      if (on_refused_) on_refused_();
    });
  }
  for (auto& t : keep) queue_.push_back(std::move(t));
}

void TaskDispatcher::hold(const std::string& id, const std::string& source_host,
                          const std::string& node) {
  if (held_.count(id)) return;
  held_[id] = {source_host, node};
  slots_.start(source_host, node);
}

void TaskDispatcher::release(const std::string& id) {
  auto it = held_.find(id);
  if (it == held_.end()) return;
  slots_.finish(it->second.first, it->second.second);
  held_.erase(it);
}

void TaskDispatcher::publish(const std::string& node, const std::string& id, std::string wire,
                             std::function<void(Status)> done) {
  publishing_.insert(id);
  publish_(subjects::task(node), std::move(wire), id, [this, id, done = std::move(done)](Status s) {
    publishing_.erase(id);
    if (done) done(s);
  });
}

void TaskDispatcher::cancel(const std::string& node, const ferry::v1::CancelTask& c) {
  if (node.empty()) return;
  std::string task = c.task_id();
  publish_(subjects::cancel(node), c.SerializeAsString(), "", [node, task](Status s) {
    if (!s.ok())
      kLog.warn("cancel not stored; the agent's claim check still stops the task",
                {{"node", node}, {"task", task}, {"error", s.error().message}});
  });
}

}  // namespace ferry::coordinator::tasks
