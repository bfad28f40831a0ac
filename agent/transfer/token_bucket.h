#pragma once
// TokenBucket: the bandwidth cap. Shared by all worker threads of one copy
// (internally locked). A caller takes tokens for a read before submitting it;
// the bucket may go into debt, and take() returns how long the caller has to
// wait before the bytes may be requested. Pure maths on an explicit clock so
// the unit tests need no sleeping.
#include <chrono>
#include <cstdint>
#include <mutex>

namespace ferry::agent::transfer {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  // rate: bytes per second (> 0); burst: bucket capacity in bytes. Starts full.
  TokenBucket(double rate, double burst, Clock::time_point now = Clock::now());
  // Takes n tokens; returns the delay before they may be used (0 if available now).
  std::chrono::nanoseconds take(uint64_t n, Clock::time_point now = Clock::now());
  double tokens(Clock::time_point now);  // for tests

 private:
  void refill(Clock::time_point now);
  std::mutex mu_;
  double rate_, burst_, tokens_;
  Clock::time_point last_;
};

}  // namespace ferry::agent::transfer
