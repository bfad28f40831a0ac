#pragma once
// SessionPool: up to `size` sessions to one source (each, for a provider, a
// SourceProvider with its own login), so provider calls for many VMs run side
// by side instead of queueing behind one connection. Sessions are created on
// demand and reused; one idle past a limit is ended (trim), so a source is not
// held to sessions nobody uses. Ending a session is the session's destructor
// (a provider logs out there), which may block: trim() and the pool's
// destructor belong on a worker thread, never the coordinator's loop.
// Thread-safe: used from the coordinator's worker pool.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/base/result.h"
#include "coordinator/providers/provider.h"

namespace ferry::coordinator {

template <typename Session>
class SessionPool {
 public:
  using Clock = std::chrono::steady_clock;
  using Factory = std::function<Result<std::unique_ptr<Session>>()>;
  SessionPool(Factory factory, int size) : factory_(std::move(factory)), size_(size) {}

  // Runs fn on a free session (blocking until one is free). A session whose
  // creation fails yields that error as fn's result type.
  template <typename R>
  R with(const std::function<R(Session&)>& fn) {
    std::unique_ptr<Session> p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !idle_.empty() || created_ < size_; });
      if (!idle_.empty()) {
        p = std::move(idle_.back().session);  // the most recently used: the others age out
        idle_.pop_back();
      } else {
        created_++;
      }
    }
    if (!p) {
      auto made = factory_();
      if (!made.ok()) {
        std::lock_guard<std::mutex> lock(mu_);
        created_--;
        cv_.notify_one();
        return made.error();
      }
      p = std::move(*made);
    }
    R r = fn(*p);
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back({std::move(p), Clock::now()});
    cv_.notify_one();
    return r;
  }

  // Ends every session idle for at least `max_idle` that `in_use` (if given)
  // does not claim; returns how many.
  int trim(std::chrono::milliseconds max_idle,
           const std::function<bool(const Session&)>& in_use = nullptr) {
    std::vector<std::unique_ptr<Session>> ending;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto now = Clock::now();
      for (auto it = idle_.begin(); it != idle_.end();)
        if (now - it->since >= max_idle && !(in_use && in_use(*it->session))) {
          ending.push_back(std::move(it->session));
          it = idle_.erase(it);
          created_--;
        } else {
          ++it;
        }
      cv_.notify_all();
    }
    return static_cast<int>(ending.size());  // ended here, outside the lock
  }

  // Sessions open now (idle or in use).
  int open() const {
    std::lock_guard<std::mutex> lock(mu_);
    return created_;
  }

 private:
  struct Idle {
    std::unique_ptr<Session> session;
    Clock::time_point since;
  };
  Factory factory_;
  int size_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Idle> idle_;  // oldest first
  int created_ = 0;
};

using ProviderPool = SessionPool<SourceProvider>;

}  // namespace ferry::coordinator
