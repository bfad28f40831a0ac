#pragma once
// Lease: which coordinator is active. KvLease (local mode: a NATS KV entry
// that expires) and KubeLease (cluster mode: a coordination.k8s.io Lease).
//
// acquire() runs before the coordinator loads any state; keep() renews on the
// lease's own thread, which calls on_lost if another process holds it.
#include <atomic>
#include <functional>
#include <string>

#include "common/base/result.h"

namespace ferry::coordinator::lease {

class Lease {
 public:
  virtual ~Lease() = default;  // stops renewing and gives the lease up if it still holds it
  // Waits until this process holds the lease, or `stop` is set (an error).
  // `waiting` is called once, with the holder's identity, if someone else holds it.
  virtual Status acquire(const std::atomic<bool>& stop,
                         const std::function<void(const std::string& holder)>& waiting) = 0;
  virtual void keep(std::function<void(const std::string& why)> on_lost) = 0;
  virtual const std::string& identity() const = 0;
};

}  // namespace ferry::coordinator::lease
