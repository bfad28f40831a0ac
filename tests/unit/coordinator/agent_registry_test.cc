#include <catch2/catch.hpp>

#include "coordinator/agents/agent_registry.h"

using ferry::coordinator::agents::AgentRegistry;

namespace {
ferry::v1::AgentHeartbeat hb(const std::string& node, uint64_t free_local, uint32_t running = 0,
                             uint64_t free_fast = 0) {
  ferry::v1::AgentHeartbeat h;
  h.set_node(node);
  h.set_tasks_running(running);
  auto* r = h.add_volume_roots();
  r->set_storage_class("local");
  r->set_free_bytes(free_local);
  if (free_fast) {
    auto* f = h.add_volume_roots();
    f->set_storage_class("fast");
    f->set_free_bytes(free_fast);
  }
  return h;
}
constexpr uint64_t kGiB = 1ull << 30;
}  // namespace

TEST_CASE("placement picks the live node with every class and the most unreserved space") {
  AgentRegistry r({.live_seconds = 10, .expiry_seconds = 60});
  CHECK(r.heartbeat(hb("a", 100 * kGiB), 0));
  CHECK(r.heartbeat(hb("b", 80 * kGiB, 0, 50 * kGiB), 0));
  CHECK_FALSE(r.heartbeat(hb("a", 100 * kGiB), 1));  // known already
  CHECK(r.place({{"local", kGiB}}, 1) == "a");
  CHECK(r.place({{"local", kGiB}, {"fast", kGiB}}, 1) == "b");  // only b has "fast"
  CHECK_FALSE(r.place({{"gold", kGiB}}, 1).has_value());
  // Two VMs placed before either writes a byte do not both land on "a".
  r.reserve("m/vm1", "a", {{"local", 30 * kGiB}});
  CHECK(r.reserved("a", "local") == 30 * kGiB);
  CHECK(r.place({{"local", kGiB}}, 1) == "b");
  r.reserve("m/vm2", "b", {{"local", 30 * kGiB}});
  CHECK(r.place({{"local", kGiB}}, 1) == "a");
  // Re-reserving replaces; releasing twice is harmless.
  r.reserve("m/vm1", "a", {{"local", 10 * kGiB}});
  CHECK(r.reserved("a", "local") == 10 * kGiB);
  r.release("m/vm1");
  r.release("m/vm1");
  CHECK(r.reserved("a", "local") == 0);
  // A node not heard from for longer than live_seconds gets no new work.
  CHECK(r.place({{"local", kGiB}}, 10.5) == "a");
  r.heartbeat(hb("b", 80 * kGiB), 5);
  CHECK(r.place({{"local", kGiB}}, 12) == "b");
}

TEST_CASE("least_busy picks the live node running the fewest tasks") {
  AgentRegistry r;
  CHECK_FALSE(r.least_busy(0).has_value());
  r.heartbeat(hb("a", kGiB, 3), 0);
  r.heartbeat(hb("b", kGiB, 1), 0);
  CHECK(r.least_busy(1) == "b");
  r.expect("c", 1);  // not heard from: not live, whatever its load
  CHECK(r.least_busy(1) == "b");
  CHECK_FALSE(r.live("c", 1));
}

TEST_CASE("nodes silent past the expiry deadline are removed once and returned") {
  AgentRegistry r({.live_seconds = 10, .expiry_seconds = 60});
  r.heartbeat(hb("a", kGiB), 0);
  r.heartbeat(hb("b", kGiB), 50);
  r.expect("c", 30);  // holds work since before a coordinator restart
  r.expect("b", 55);  // known already: expect changes nothing
  CHECK(r.expire(60).empty());
  auto gone = r.expire(61);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0] == "a");
  CHECK(r.expire(61).empty());
  gone = r.expire(91);
  REQUIRE(gone.size() == 1);
  CHECK(gone[0] == "c");
  CHECK(r.agents().size() == 1);
  // A node that comes back after expiring is new again.
  CHECK(r.heartbeat(hb("a", kGiB), 100));
}
