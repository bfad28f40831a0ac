#pragma once
// HookRunner: runs Hook playbooks with ansible-playbook, as MTV's hook-runner
// image does, beside the coordinator. Each run gets a thread of its own (never
// the loop, and not the worker pool that provider calls need), a working
// directory, and the hook-runner inputs at the paths hook-runner gives them:
// /tmp/hook/playbook.yml, /tmp/hook/plan.yml and /tmp/hook/workload.yml. Runs
// side by side would share /tmp/hook, so each runs in a mount namespace of its
// own (unshare: a user namespace mapping the caller to root, and a private
// mount namespace) where its directory is bind-mounted on /tmp/hook; the
// playbook sees its own inputs and nothing else changes on the host.
//
// The process runs in its own session under the Hook's deadline (all
// attempts together); cancel, the deadline or the coordinator's end kill
// every process of the session (common/process). A failed attempt is tried
// again, up to kHookAttempts, as Forklift retries the hook's Job.
//
// In cluster mode every hook is a Kubernetes Job instead, as MTV runs them:
// the inputs in a ConfigMap mounted at /tmp/hook (owned by the Job, so they go
// with it), the Hook's image and service account, backoffLimit for the
// retries and activeDeadlineSeconds for the deadline. The Job's conditions
// (Complete, Failed) say how it ended; the pods' logs stay in the cluster.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/kube/client.h"

namespace ferry::coordinator::hooks {

// Cluster mode: the hook runs as a Kubernetes Job (MTV's way), any image.
struct KubeHookJob {
  std::string ns;     // where the Job and its ConfigMap go
  std::string name;   // the Job's (and ConfigMap's) name
  std::string image;  // hook-runner for a playbook, else the Hook's image
  std::string service_account;
  std::map<std::string, std::string> labels;
};

struct HookJob {
  std::string id;  // one run per id at a time: "<migration>/<vm id>/<step>"
  std::string playbook;
  std::string plan_yaml;
  std::string workload_yaml;
  int64_t deadline_seconds = 0;  // 0: none
  int attempts = 3;
  // Set: a Job in the cluster runs it (Options::kube), else ansible-playbook here.
  std::optional<KubeHookJob> kube;
};

struct HookResult {
  bool succeeded = false;
  bool canceled = false;
  bool timed_out = false;
  int attempts = 0;
  std::string message;            // why it failed: exit status, deadline, cancel, no ansible
  std::vector<std::string> tail;  // the last lines of the last attempt's output
  std::string log_path;           // every attempt's output (capped)
  double seconds = 0;
};

class HookRunner {
 public:
  struct Options {
    std::string work_root;  // one directory per run below it
    std::string ansible_playbook = "ansible-playbook";
    size_t tail_lines = 15;
    uint64_t log_limit_bytes = 4 << 20;        // per run: a hook writing gigabytes keeps 4 MiB
    std::shared_ptr<const kube::Client> kube;  // cluster mode: for Job hooks
    std::chrono::milliseconds job_poll{1000};
  };
  explicit HookRunner(Options o);
  ~HookRunner();  // cancels every run and waits for it
  HookRunner(const HookRunner&) = delete;
  HookRunner& operator=(const HookRunner&) = delete;

  // Starts the job; `done` runs on the job's thread when it has ended (every
  // process gone). False if a job of that id is running.
  bool start(HookJob job, std::function<void(HookResult)> done);
  // Any thread: the job's processes are killed; done() reports canceled.
  void cancel(const std::string& id);
  bool running(const std::string& id) const;
  // The directory a job id runs in.
  std::string dir_of(const std::string& id) const;

 private:
  struct Run {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> cancel;
    std::shared_ptr<std::atomic<bool>> finished;
  };
  HookResult execute(const HookJob& job, const std::atomic<bool>& cancel);
  // Creates (or, after a restart, finds) the Job and its ConfigMap, follows
  // the Job's conditions until it ends; cancel deletes it with its pods.
  HookResult execute_job(const HookJob& job, const std::atomic<bool>& cancel);
  void reap_locked();  // joins finished threads

  Options opts_;
  mutable std::mutex mu_;
  std::map<std::string, Run> runs_;
};

}  // namespace ferry::coordinator::hooks
