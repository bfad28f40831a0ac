#pragma once
// KvLease: which coordinator is active. A key in a KV bucket whose entries
// expire (subjects::kLeaderBucket): the holder writes it with the expected
// revision every ttl/3; a standby creates it only once it is gone, so it takes
// over at most ttl after the holder stops renewing (crash, kill -9, partition).
//
// Owned by the coordinator; acquire() runs before the coordinator loads any
// state, renewals on the lease's own thread (never the loop), which calls
// on_lost if another process holds the key. A paused holder (SIGSTOP longer
// than ttl) may write for up to ttl/3 after a standby took over; see
// docs/architecture.md.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/base/result.h"
#include "common/bus/nats_bus.h"
#include "coordinator/lease/lease.h"

namespace ferry::coordinator::lease {

class KvLease : public Lease {
 public:
  KvLease(std::unique_ptr<bus::KvBucket> kv, std::string key, std::string identity,
          std::chrono::seconds ttl);
  ~KvLease() override;  // stops renewing and gives the lease up if it still holds it

  // Waits until this process holds the lease, or `stop` is set (an error).
  // `waiting` is called once, with the holder's identity, if someone else holds it.
  Status acquire(const std::atomic<bool>& stop,
                 const std::function<void(const std::string& holder)>& waiting) override;
  // Renews every ttl/3 on a thread of its own; on_lost runs there if the
  // lease turns out to be someone else's. While NATS is unreachable it keeps
  // trying; if the key expired meanwhile and nobody took it, it takes it again.
  void keep(std::function<void(const std::string& why)> on_lost) override;
  const std::string& identity() const override { return identity_; }

 private:
  void renew_loop();
  std::unique_ptr<bus::KvBucket> kv_;
  std::string key_, identity_;
  std::chrono::seconds ttl_;
  uint64_t revision_ = 0;
  std::function<void(const std::string&)> on_lost_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace ferry::coordinator::lease
