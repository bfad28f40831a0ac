#pragma once
// Agent: the node daemon. Takes only its node's disk tasks from a durable
// JetStream work queue, asks the coordinator whether each is still wanted,
// copies the disk into the local volume with the copy engine, reports progress
// at least once a second and publishes a durable result. It knows NBD, HTTP
// and file sources; it never learns which provider (vCenter, oVirt) a task came from.
//
// Threads: the fetch thread pulls tasks; each accepted task runs on its own
// worker thread (at most max_tasks); the heartbeat thread publishes the node's
// state; the cancel thread takes cancels from JetStream. Shared state (the
// running-task table) is behind mu_. A finished task's result is written to
// the spool before it is published and removed once JetStream has it.
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "agent/metrics.h"
#include "agent/transfer/stage.h"
#include "agent/transfer/token_bucket.h"
#include "agent/volumes/persistent_volumes.h"
#include "common/bus/nats_bus.h"
#include "common/metrics/http_endpoint.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::agent {

struct AgentOptions {
  bus::ConnectOptions nats;
  std::string node;
  std::map<std::string, std::string> volume_roots;  // storage class -> directory
  std::map<std::string, std::string> networks;      // network name -> local address
  int max_tasks = 4;
  int connections = 4;
  uint64_t bandwidth = 0;         // per task, bytes/s (unless the task sets its own)
  uint64_t node_bandwidth = 0;    // all tasks of this agent together, bytes/s (0 = none)
  uint64_t max_in_flight = 0;     // read buffers per task, bytes (0 = the engine's default)
  std::string metrics_address;    // "" = no HTTP endpoint; ":9464", "127.0.0.1:0"
  std::string metrics_port_file;  // written with the bound port (tests)
  // KEY=VALUE for virt-v2v: the agent's own LIBGUESTFS_* variables plus --conversion-env.
  std::vector<std::string> conversion_env;
  int conversion_time_limit = 3600;  // seconds, unless the task sets one
  // Where results wait until JetStream has them ("": DIR/.ferry-agent of the
  // first volume root, which outlives the agent like the volumes do).
  std::string state_dir;
  // Cluster mode: register a local PersistentVolume for each volume written
  // for a claim (the task says which). kubeconfig "": the pod's ServiceAccount.
  bool kubernetes = false;
  std::string kubeconfig;
};

class Agent {
 public:
  explicit Agent(AgentOptions opts);
  ~Agent();
  Status run();  // until stop()
  void stop();
  void request_stop() { stopping_ = true; }  // async-signal-safe

  // The absolute volume path for a task target, or an error if the class is
  // unknown or the path escapes the volume root.
  Result<std::string> resolve_target(const ferry::v1::TargetVolume& t) const;

 private:
  struct Running {
    std::atomic<bool> cancel{false};
    std::atomic<bool> delete_volume{false};
    bool serve = false;  // a ServeTask: it takes no copy slot
    double rate = 0;     // under mu_
  };
  void fetch_loop();
  void heartbeat_loop();
  void run_task(std::shared_ptr<bus::JsMessage> msg, ferry::v1::TransferTask task, uint64_t worker);
  void run_convert(std::shared_ptr<bus::JsMessage> msg, ferry::v1::ConvertTask task,
                   uint64_t worker);
  void run_inspect(std::shared_ptr<bus::JsMessage> msg, ferry::v1::InspectTask task,
                   uint64_t worker);
  // Serves a volume to another node's agent until canceled (ServeTask).
  void run_serve(std::shared_ptr<bus::JsMessage> msg, ferry::v1::ServeTask task, uint64_t worker);
  // A stage copy (TransferTask.stage): the source's digests, then the changed blocks.
  Result<transfer::StageStats> stage(const ferry::v1::TransferTask& task,
                                     const transfer::SourceSpec& src, const std::string& path,
                                     transfer::CopyOptions co);
  // A task's pre-shared TLS key (from its claim) as nbdkit's PSK file, 0600
  // under the state dir; removed when the task completes.
  std::string key_path(const std::string& task_id) const;
  Status write_key(const std::string& task_id, const std::string& hex_key) const;
  // Volumes a stage copy is writing (under mu_), and the hold of one.
  std::set<std::string> busy_volumes_;
  class VolumeHold {
   public:
    VolumeHold(Agent& a, std::string path) : agent_(a), path_(std::move(path)) {}
    ~VolumeHold();
    bool wait(const std::atomic<bool>& cancel);  // false: canceled first

   private:
    Agent& agent_;
    std::string path_;
    bool held_ = false;
  };
  // `path` lies under one of this node's volume roots.
  bool within_volume_roots(const std::string& path) const;
  // Publishes the result, acks (or naks on shutdown) and frees the task's slot.
  std::shared_ptr<Running> running_entry(const std::string& task_id);
  ferry::v1::TaskResult new_result(const std::string& task_id) const;
  void complete(const std::shared_ptr<bus::JsMessage>& msg, ferry::v1::TaskResult& result,
                uint64_t worker);
  // Publishes until JetStream has the result (true) or the agent stops (false).
  bool publish_result(const ferry::v1::TaskResult& r);
  // Results not yet in JetStream, one file per task, so a result outlives a
  // restart of the agent (and of NATS) until the coordinator can have it.
  std::string spool_path(const std::string& task_id) const;
  Status spool(const ferry::v1::TaskResult& r) const;
  // Publishes every spooled result (at start); each published one is removed.
  void drain_spool();
  void cancel_loop();  // takes this node's CancelTasks from FERRY_CANCELS
  void on_cancel(const std::string& data);
  // Removes a volume, its checkpoints and (cluster mode) its PersistentVolume.
  void remove_volume(const std::string& path, const ferry::v1::TargetVolume& t);

  AgentOptions opts_;
  std::unique_ptr<bus::CnatsBus> bus_;
  std::unique_ptr<bus::PullConsumer> tasks_;
  std::unique_ptr<bus::PullConsumer> cancels_;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Running>> running_;
  size_t serving_ = 0;  // ServeTasks among running_ (under mu_)
  // Drops a task from running_ (mu_ held).
  void forget_running(const std::string& task_id);
  // Tasks whose source refused the credential (HTTP 401/403): their next
  // claim asks for a fresh one (refused_), at most kCredentialRefusals times
  // in a row before the task fails.
  static constexpr int kCredentialRefusals = 3;
  std::set<std::string> refused_;
  std::map<std::string, int> refusals_;
  bool credential_refused(const std::string& task_id);  // true: claim it again
  // Gives a task back to the stream without a result (it is delivered again).
  void release(const std::shared_ptr<bus::JsMessage>& msg, const std::string& task_id,
               uint64_t worker);
  std::map<uint64_t, std::thread> workers_;  // joined by the fetch thread once finished
  std::vector<uint64_t> finished_;
  uint64_t next_worker_ = 0;
  void join_finished();
  int64_t started_at_ = 0;
  AgentMetrics metrics_;
  std::unique_ptr<metrics::HttpEndpoint> http_;
  std::unique_ptr<volumes::PersistentVolumes> pvs_;     // cluster mode only
  std::unique_ptr<transfer::TokenBucket> node_bucket_;  // --node-bandwidth, shared by all copies
  std::atomic<bool> ready_{false};
};

}  // namespace ferry::agent
