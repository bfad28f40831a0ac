#pragma once
// ProviderPool: up to `size` sessions to one source (each a SourceProvider
// with its own login), so provider calls for many VMs run side by side instead
// of queueing behind one connection. Sessions are created on demand and reused.
// Thread-safe: used from the coordinator's worker pool.
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "coordinator/providers/provider.h"

namespace ferry::coordinator {

class ProviderPool {
 public:
  using Factory = std::function<Result<std::unique_ptr<SourceProvider>>()>;
  ProviderPool(Factory factory, int size) : factory_(std::move(factory)), size_(size) {}

  // Runs fn on a free session (blocking until one is free). A session whose
  // creation fails yields that error as fn's result type.
  template <typename R>
  R with(const std::function<R(SourceProvider&)>& fn) {
    std::unique_ptr<SourceProvider> p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !idle_.empty() || created_ < size_; });
      if (!idle_.empty()) {
        p = std::move(idle_.back());
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
    idle_.push_back(std::move(p));
    cv_.notify_one();
    return r;
  }

 private:
  Factory factory_;
  int size_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SourceProvider>> idle_;
  int created_ = 0;
};

}  // namespace ferry::coordinator
