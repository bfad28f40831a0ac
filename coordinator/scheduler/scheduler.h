#pragma once
// Slots: caps parallel disk transfers per source host (ESXi's NFC limit,
// default 10) and per node (the agent's advertised max_tasks). Pure
// bookkeeping, owned by the coordinator's loop thread.
#include <map>
#include <string>

namespace ferry::coordinator::scheduler {

class Slots {
 public:
  explicit Slots(int per_source_host = 10) : per_host_(per_source_host) {}
  void set_node_limit(const std::string& node, int limit) { node_limit_[node] = limit; }
  bool can_start(const std::string& source_host, const std::string& node) const;
  void start(const std::string& source_host, const std::string& node);
  void finish(const std::string& source_host, const std::string& node);
  int running_on_host(const std::string& h) const { return get(host_, h); }
  int running_on_node(const std::string& n) const { return get(node_, n); }

 private:
  static int get(const std::map<std::string, int>& m, const std::string& k) {
    auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  }
  int per_host_;
  std::map<std::string, int> host_, node_, node_limit_;
};

}  // namespace ferry::coordinator::scheduler
