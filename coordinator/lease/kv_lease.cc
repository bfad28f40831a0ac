#include "coordinator/lease/kv_lease.h"

#include "common/base/log.h"

namespace ferry::coordinator::lease {
namespace {
const Logger kLog("lease");
}  // namespace

KvLease::KvLease(std::unique_ptr<bus::KvBucket> kv, std::string key, std::string identity,
                 std::chrono::seconds ttl)
    : kv_(std::move(kv)), key_(std::move(key)), identity_(std::move(identity)), ttl_(ttl) {}

KvLease::~KvLease() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (revision_ == 0) return;
  // Give it up at once, so a standby need not wait for the entry to expire.
  auto cur = kv_->get(key_);
  if (cur.ok() && *cur && (*cur)->value == identity_) (void)kv_->erase(key_);
}

Status KvLease::acquire(const std::atomic<bool>& stop,
                        const std::function<void(const std::string&)>& waiting) {
  bool told = false;
  while (!stop) {
    auto rev = kv_->update(key_, identity_, 0);  // create: only if nobody holds it
    if (rev.ok()) {
      revision_ = *rev;
      kLog.info("lease acquired", {{"identity", identity_}});
      return {};
    }
    auto cur = kv_->get(key_);
    if (!told && cur.ok() && *cur) {
      waiting((*cur)->value);
      told = true;
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(500));
  }
  return Error(ErrorCode::kCanceled, "stopped while waiting for the lease");
}

void KvLease::keep(std::function<void(const std::string&)> on_lost) {
  on_lost_ = std::move(on_lost);
  thread_ = std::thread([this] { renew_loop(); });
}

void KvLease::renew_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    cv_.wait_for(lock, ttl_ / 3);
    if (done_) break;
    lock.unlock();
    auto rev = kv_->update(key_, identity_, revision_);
    std::string lost;
    if (rev.ok()) {
      revision_ = *rev;
    } else {
      // Someone else's now: stop. Gone (it expired while NATS was away, and
      // nobody took it): take it again, as a standby would. Unreachable: retry.
      auto cur = kv_->get(key_);
      if (cur.ok() && *cur && (*cur)->value != identity_) {
        lost = "the lease is held by " + (*cur)->value;
      } else if (cur.ok() && !*cur) {
        auto again = kv_->update(key_, identity_, 0);
        if (again.ok()) {
          revision_ = *again;
          kLog.warn("lease expired while NATS was unreachable; taken again",
                    {{"identity", identity_}});
        }
      } else if (cur.ok() && *cur) {
        revision_ = (*cur)->revision;  // ours, at another revision (a retried write)
      }
    }
    if (!lost.empty()) {
      revision_ = 0;  // not ours: the destructor must not erase it
      kLog.error("lease lost", {{"identity", identity_}, {"why", lost}});
      on_lost_(lost);
      return;
    }
    lock.lock();
  }
}

}  // namespace ferry::coordinator::lease
