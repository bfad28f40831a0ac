// SessionPool: sessions are made on demand up to the pool's size, reused, and
// ended (their destructor: a provider's logout) once idle past the limit.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "coordinator/providers/provider_pool.h"

using namespace ferry;
using namespace ferry::coordinator;
using namespace std::chrono_literals;

namespace {
struct FakeSession {
  static inline std::atomic<int> made{0}, ended{0};
  int id;
  FakeSession() : id(++made) {}
  ~FakeSession() { ++ended; }
};

SessionPool<FakeSession>::Factory factory() {
  return []() -> Result<std::unique_ptr<FakeSession>> { return std::make_unique<FakeSession>(); };
}
// Fresh counters, and two sessions opened at once (then idle).
void open_two(SessionPool<FakeSession>& pool) {
  FakeSession::made = 0;
  FakeSession::ended = 0;
  auto slow = [&] {
    (void)pool.with<Result<int>>([](FakeSession&) {
      std::this_thread::sleep_for(30ms);
      return 0;
    });
  };
  std::thread a(slow), b(slow);
  a.join();
  b.join();
}
}  // namespace

TEST_CASE("a session pool reuses its sessions and never opens more than its size",
          "[session_pool]") {
  FakeSession::made = 0;
  FakeSession::ended = 0;
  {
    SessionPool<FakeSession> pool(factory(), 2);
    int first = *pool.with<Result<int>>([](FakeSession& s) { return s.id; });
    int again = *pool.with<Result<int>>([](FakeSession& s) { return s.id; });
    CHECK(first == again);
    CHECK(pool.open() == 1);
    // Three callers at once: a third waits for one of two sessions.
    std::atomic<int> inside{0}, most{0};
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; i++)
      ts.emplace_back([&] {
        (void)pool.with<Result<int>>([&](FakeSession&) {
          int now = ++inside;
          for (int m = most; now > m && !most.compare_exchange_weak(m, now);) {
          }
          std::this_thread::sleep_for(50ms);
          --inside;
          return 0;
        });
      });
    for (auto& t : ts) t.join();
    CHECK(most == 2);
    CHECK(pool.open() == 2);
    CHECK(FakeSession::made == 2);
    CHECK(FakeSession::ended == 0);
  }
  CHECK(FakeSession::ended == 2);  // the pool's end ends every session
}

TEST_CASE("a session idle past the limit is ended, one used since is kept", "[session_pool]") {
  SessionPool<FakeSession> pool(factory(), 4);
  open_two(pool);
  REQUIRE(pool.open() == 2);
  CHECK(pool.trim(10s) == 0);
  std::this_thread::sleep_for(60ms);
  (void)pool.with<Result<int>>([](FakeSession&) { return 0; });  // one of them is fresh again
  CHECK(pool.trim(40ms) == 1);
  CHECK(FakeSession::ended == 1);
  CHECK(pool.open() == 1);
  std::this_thread::sleep_for(60ms);
  CHECK(pool.trim(40ms) == 1);
  CHECK(pool.open() == 0);
  CHECK(FakeSession::ended == 2);
  // Emptied, it opens a new one when asked.
  (void)pool.with<Result<int>>([](FakeSession&) { return 0; });
  CHECK(FakeSession::made == 3);
  CHECK(pool.open() == 1);
}

TEST_CASE("a session someone still holds a credential of is not ended while idle",
          "[session_pool]") {
  SessionPool<FakeSession> pool(factory(), 4);
  open_two(pool);
  std::this_thread::sleep_for(50ms);
  // Session 1's cookie is with an agent's running copy.
  auto held = [](const FakeSession& s) { return s.id == 1; };
  CHECK(pool.trim(10ms, held) == 1);
  CHECK(pool.open() == 1);
  CHECK(pool.with<Result<int>>([](FakeSession& s) { return s.id; }).value() == 1);
}

TEST_CASE("a session that cannot be made is the call's error and takes no slot", "[session_pool]") {
  int calls = 0;
  SessionPool<FakeSession> pool(
      [&]() -> Result<std::unique_ptr<FakeSession>> {
        if (++calls == 1)
          return Error(ErrorCode::kPermissionDenied, "vcenter-secret: bad password");
        return std::make_unique<FakeSession>();
      },
      1);
  Result<int> r = pool.with<Result<int>>([](FakeSession&) -> Result<int> { return 1; });
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message == "vcenter-secret: bad password");
  CHECK(pool.open() == 0);
  r = pool.with<Result<int>>([](FakeSession&) -> Result<int> { return 1; });
  CHECK(r.ok());
}
