#include "coordinator/agents/agent_registry.h"

#include <algorithm>

namespace ferry::coordinator::agents {

bool AgentRegistry::heartbeat(const ferry::v1::AgentHeartbeat& hb, double now) {
  auto [it, is_new] = agents_.try_emplace(hb.node());
  it->second.hb = hb;
  it->second.last_seen = now;
  return is_new;
}

void AgentRegistry::expect(const std::string& node, double now) {
  auto [it, is_new] = agents_.try_emplace(node);
  if (is_new) it->second.last_seen = now;
}

std::vector<std::string> AgentRegistry::expire(double now) {
  std::vector<std::string> gone;
  for (auto it = agents_.begin(); it != agents_.end();) {
    if (now - it->second.last_seen > opts_.expiry_seconds) {
      gone.push_back(it->first);
      it = agents_.erase(it);
    } else {
      ++it;
    }
  }
  return gone;
}

bool AgentRegistry::live(const std::string& node, double now) const {
  auto it = agents_.find(node);
  return it != agents_.end() && it->second.hb.node() == node &&
         now - it->second.last_seen <= opts_.live_seconds;
}

std::optional<std::string> AgentRegistry::least_busy(double now) const {
  std::optional<std::string> best;
  uint32_t least = UINT32_MAX;
  for (const auto& [n, a] : agents_)
    if (live(n, now) && a.hb.tasks_running() < least) {
      best = n;
      least = a.hb.tasks_running();
    }
  return best;
}

std::optional<std::string> AgentRegistry::place(const std::map<std::string, uint64_t>& bytes,
                                                double now) const {
  std::optional<std::string> best;
  int64_t best_free = 0;
  for (const auto& [node, a] : agents_) {
    if (!live(node, now)) continue;
    int64_t free = INT64_MAX;
    bool ok = true;
    for (const auto& [sc, want] : bytes) {
      bool has = false;
      for (const auto& r : a.hb.volume_roots())
        if (r.storage_class() == sc) {
          has = true;
          free = std::min(free, static_cast<int64_t>(r.free_bytes()) -
                                    static_cast<int64_t>(reserved(node, sc)));
        }
      ok = ok && has;
    }
    if (ok && (!best || free > best_free)) {
      best = node;
      best_free = free;
    }
  }
  return best;
}

void AgentRegistry::reserve(const std::string& owner, const std::string& node,
                            const std::map<std::string, uint64_t>& bytes) {
  release(owner);
  reservations_[owner] = {node, bytes};
  for (const auto& [sc, b] : bytes) reserved_[{node, sc}] += b;
}

void AgentRegistry::release(const std::string& owner) {
  auto it = reservations_.find(owner);
  if (it == reservations_.end()) return;
  for (const auto& [sc, b] : it->second.bytes) {
    auto r = reserved_.find({it->second.node, sc});
    if (r == reserved_.end()) continue;
    r->second -= std::min(r->second, b);
    if (r->second == 0) reserved_.erase(r);
  }
  reservations_.erase(it);
}

uint64_t AgentRegistry::reserved(const std::string& node, const std::string& sc) const {
  auto it = reserved_.find({node, sc});
  return it == reserved_.end() ? 0 : it->second;
}

std::set<std::string> AgentRegistry::networks() const {
  std::set<std::string> out;
  for (const auto& [n, a] : agents_)
    for (const auto& net : a.hb.networks()) out.insert(net.name());
  return out;
}

}  // namespace ferry::coordinator::agents
