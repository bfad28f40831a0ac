#include "coordinator/scheduler/scheduler.h"

namespace ferry::coordinator::scheduler {

bool Slots::can_start(const std::string& source_host, const std::string& node) const {
  if (get(host_, source_host) >= per_host_) return false;
  auto it = node_limit_.find(node);
  int limit = it == node_limit_.end() ? 4 : it->second;
  return get(node_, node) < limit;
}

void Slots::start(const std::string& source_host, const std::string& node) {
  host_[source_host]++;
  node_[node]++;
}

void Slots::finish(const std::string& source_host, const std::string& node) {
  if (host_[source_host] > 0) host_[source_host]--;
  if (node_[node] > 0) node_[node]--;
}

}  // namespace ferry::coordinator::scheduler
