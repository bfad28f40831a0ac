#include "agent/transfer/token_bucket.h"

#include <algorithm>

namespace ferry::agent::transfer {

TokenBucket::TokenBucket(double rate, double burst, Clock::time_point now)
    : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

void TokenBucket::refill(Clock::time_point now) {
  if (now > last_) {
    double dt = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + dt * rate_);
    last_ = now;
  }
}

std::chrono::nanoseconds TokenBucket::take(uint64_t n, Clock::time_point now) {
  std::lock_guard<std::mutex> lk(mu_);
  refill(now);
  tokens_ -= static_cast<double>(n);
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / rate_ * 1e9));
}

double TokenBucket::tokens(Clock::time_point now) {
  std::lock_guard<std::mutex> lk(mu_);
  refill(now);
  return tokens_;
}

}  // namespace ferry::agent::transfer
