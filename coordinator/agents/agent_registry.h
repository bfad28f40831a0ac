#pragma once
// AgentRegistry: what the coordinator knows of each node's agent (its last
// heartbeat and when it came) and the space it has promised on each node.
// Answers "which node" for placement and "which nodes are gone" for expiry.
//
// Owned by the coordinator, used on its loop thread only; pure bookkeeping
// (time is passed in), unit tested in tests/unit/coordinator/agent_registry_test.cc.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator::agents {

struct RegistryOptions {
  // A node heard from within this many seconds gets new work.
  double live_seconds = 10;
  // A node silent this long is gone: its tasks fail and its slots are released.
  double expiry_seconds = 180;
};

class AgentRegistry {
 public:
  explicit AgentRegistry(RegistryOptions o = {}) : opts_(o) {}

  // Records a heartbeat (already checked to come from its node). True if the
  // node was not registered: it joined, or came back after it expired.
  bool heartbeat(const ferry::v1::AgentHeartbeat& hb, double now);
  // A node that holds running work but has not been heard from by this
  // coordinator (after a restart): it is registered as last seen `now`, so it
  // gets the whole expiry deadline before its work is failed.
  void expect(const std::string& node, double now);
  // Removes and returns every node silent for longer than the expiry deadline.
  std::vector<std::string> expire(double now);

  bool live(const std::string& node, double now) const;
  // The live node running the fewest tasks (inspection), or nullopt.
  std::optional<std::string> least_busy(double now) const;
  // The live node with a volume root for every storage class in `bytes`
  // whose smallest free space, less what is reserved there, is largest.
  std::optional<std::string> place(const std::map<std::string, uint64_t>& bytes, double now) const;
  // Promises `bytes` per storage class on `node` to `owner` (a VM) until released,
  // so VMs placed before their data lands do not all pick the same node.
  void reserve(const std::string& owner, const std::string& node,
               const std::map<std::string, uint64_t>& bytes);
  void release(const std::string& owner);  // no-op if nothing is reserved
  uint64_t reserved(const std::string& node, const std::string& storage_class) const;

  std::set<std::string> networks() const;  // every network some agent reaches
  struct Agent {
    ferry::v1::AgentHeartbeat hb;  // empty for an expected node not heard from yet
    double last_seen = 0;
  };
  const std::map<std::string, Agent>& agents() const { return agents_; }
  double expiry_seconds() const { return opts_.expiry_seconds; }

 private:
  struct Reservation {
    std::string node;
    std::map<std::string, uint64_t> bytes;
  };
  RegistryOptions opts_;
  std::map<std::string, Agent> agents_;
  std::map<std::string, Reservation> reservations_;                   // by owner
  std::map<std::pair<std::string, std::string>, uint64_t> reserved_;  // (node, class) -> sum
};

}  // namespace ferry::coordinator::agents
