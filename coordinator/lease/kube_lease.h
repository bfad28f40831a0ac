#pragma once
// KubeLease: which coordinator is active in cluster mode, as Kubernetes
// controllers decide it: a coordination.k8s.io/v1 Lease whose holder renews
// spec.renewTime every ttl/3. A standby takes it over once the record has not
// changed for spec.leaseDurationSeconds by its own clock (no clock
// comparison between nodes), writing with the resourceVersion it read, so
// of two standbys only one wins (the other gets 409 Conflict).
//
// The holder renews every ttl/3 and, after a failure, every second. If it
// has not renewed for the renew deadline (2/3 of ttl: 10 s of 15) it gives
// up (on_lost), as client-go's leader election does: a standby cannot take
// over before ttl has passed by its own clock, so the old holder has
// stopped by then even when it alone is cut off from the API server. The
// coordinator then stands by again in the same process, and takes the Lease
// back at once if nobody else took it (same identity).
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "common/kube/client.h"
#include "coordinator/lease/lease.h"

namespace ferry::coordinator::lease {

class KubeLease : public Lease {
 public:
  KubeLease(std::shared_ptr<kube::Client> client, std::string ns, std::string name,
            std::string identity, std::chrono::seconds ttl);
  ~KubeLease() override;
  Status acquire(const std::atomic<bool>& stop,
                 const std::function<void(const std::string& holder)>& waiting) override;
  void keep(std::function<void(const std::string& why)> on_lost) override;
  const std::string& identity() const override { return identity_; }

 private:
  // One attempt: true if this process holds the lease afterwards; `holder`
  // says who does. An Error: the API server did not answer as expected.
  Result<bool> try_hold(std::string* holder);
  void renew_loop();

  std::shared_ptr<kube::Client> client_;
  std::string ns_, name_, identity_;
  std::chrono::seconds ttl_;
  std::chrono::milliseconds renew_deadline_;
  // The last record seen (holder + renewTime) and when it last changed.
  std::string seen_record_;
  std::chrono::steady_clock::time_point seen_at_;
  bool held_ = false;
  std::function<void(const std::string&)> on_lost_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace ferry::coordinator::lease
