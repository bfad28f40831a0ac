#include <catch2/catch.hpp>

#include "agent/transfer/token_bucket.h"

using ferry::agent::transfer::TokenBucket;
using namespace std::chrono;

TEST_CASE("token bucket starts full and charges debt as delay", "[bandwidth]") {
  auto t0 = TokenBucket::Clock::time_point{} + seconds(100);
  TokenBucket b(1000.0, 500.0, t0);  // 1000 B/s, burst 500
  CHECK(b.take(500, t0) == nanoseconds(0));
  // Empty now: 250 more bytes must wait 0.25 s.
  CHECK(b.take(250, t0) == milliseconds(250));
  // Another 250 stacks up behind the first: 0.5 s.
  CHECK(b.take(250, t0) == milliseconds(500));
  // After 0.5 s the debt is paid.
  CHECK(b.tokens(t0 + milliseconds(500)) == Approx(0.0).margin(1e-6));
}

TEST_CASE("token bucket refills at the rate up to the burst", "[bandwidth]") {
  auto t0 = TokenBucket::Clock::time_point{} + seconds(1);
  TokenBucket b(1e6, 2e6, t0);
  CHECK(b.take(2000000, t0) == nanoseconds(0));
  CHECK(b.tokens(t0 + milliseconds(500)) == Approx(500000));
  CHECK(b.tokens(t0 + seconds(10)) == Approx(2e6));  // capped at burst
  // Over a long run the average rate is the configured one.
  auto t = t0 + seconds(10);
  nanoseconds waited{0};
  for (int i = 0; i < 100; i++) waited += b.take(100000, t);
  // 10 MB with 2 MB in the bucket: 8 MB owed at 1 MB/s -> last caller waits 8 s.
  CHECK(duration_cast<milliseconds>(b.take(0, t)).count() == Approx(8000).margin(1));
}
