#pragma once
// StorageMigrator: moves KubeVirt VMs' disks from one storage class to
// another, driven by MTC's MigPlan and MigMigration
// (migration.openshift.io/v1alpha1, docs/storage-migration.md), on a Cluster
// (cluster.h): the Kubernetes API, or local mode's manifests and volumes.
//
// For each selected claim it makes a claim of the same size in the target
// class and has agents copy the bytes: on the node that holds the volume when
// that node has a root for the target class (a local stage copy), else the
// holding node's agent serves the volume over NBD with TLS and a per-copy
// pre-shared key on its migration network (ServeTask) and the target node's
// agent reads it. Every copy is a stage copy (agent/transfer/stage.h): after
// the first, only the 1 MiB blocks whose digests changed are written.
//   stage:    copies the volumes of stopped VMs now; running VMs are skipped.
//   cutover:  stops each running VM (runStrategy Halted, then waits for its
//             VMI to go), syncs its volumes once more, points the VM's volumes
//             at the new claims, and starts it again if it ran.
//   rollback: points the VMs of the last completed cutover back at the old
//             claims, starts them as they were, and deletes the new claims
//             and their volumes (spec.keepNewVolumes keeps them).
// Old claims are never deleted.
//
// Its state is the MigMigrations' status (written through the status
// subresource, or with the document's KV revision), so a restarted coordinator resumes from it; a
// copy under way then starts again as a new attempt and the stage copy's checkpoint and record make
// it continue where it was.
//
// Threads: one thread of its own polls the API and drives every
// MigMigration (all blocking calls happen there). on_claim, on_progress and
// on_result come from the coordinator's loop and only touch the task table
// under a mutex.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/base/result.h"
#include "coordinator/storage/cluster.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator::storage {

struct MigratorDeps {
  std::shared_ptr<Cluster> cluster;
  // The live agents now (called on the migrator's thread); nullopt when that
  // cannot be known (the coordinator is stopping).
  std::function<std::optional<Nodes>()> nodes;
  // Stores a task on a node's queue (blocking; msg_id dedupes).
  std::function<Status(const std::string& node, const ferry::v1::AgentTask& task,
                       const std::string& msg_id)>
      publish_task;
  // Stores a cancel on a node's cancel queue (blocking).
  std::function<Status(const std::string& node, const ferry::v1::CancelTask& c)> cancel_task;
  std::chrono::milliseconds poll{1000};
  // How long a VM may take to stop at cutover or rollback.
  std::chrono::seconds stop_timeout{600};
};

struct RunDriver;

class StorageMigrator {
 public:
  explicit StorageMigrator(MigratorDeps deps);
  ~StorageMigrator();
  void start();
  void stop();

  static bool owns(const std::string& task_id);
  // Any thread.
  ferry::v1::ClaimReply on_claim(const ferry::v1::ClaimRequest& req);
  void on_progress(const ferry::v1::TaskProgress& p);
  void on_result(const ferry::v1::TaskResult& r);

  struct Run;  // one MigMigration under way (storage_migrator.cc)

 private:
  void main();
  void pass();
  void check_plans();
  std::unique_ptr<Run> load_run(const nlohmann::json& doc, const std::optional<Nodes>& nodes);
  void drive(RunDriver& d, const std::vector<nlohmann::json>& all);

  MigratorDeps deps_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  double started_ = 0;  // when start() ran (epoch seconds)

  // The task table, shared with the loop thread.
  std::mutex mu_;
  std::condition_variable cv_;
  struct LiveTask {
    std::string node;  // the one agent that may claim it
    std::string key;   // hex pre-shared key ("" : none)
  };
  std::map<std::string, LiveTask> live_;
  std::map<std::string, ferry::v1::ServeReady> serving_;  // by serve task id
  std::map<std::string, uint64_t> bytes_done_;            // by copy task id
  std::map<std::string, ferry::v1::TaskResult> results_;  // by task id, until taken

  // Migrator thread only.
  std::map<std::string, std::unique_ptr<Run>> runs_;  // by MigMigration uid
  friend struct RunDriver;
};

}  // namespace ferry::coordinator::storage
