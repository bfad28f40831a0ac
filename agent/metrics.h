#pragma once
// The agent's Prometheus metrics (node-local; scraped from each agent's port).
// prometheus-cpp metrics are thread-safe: worker threads update them directly.
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace ferry::agent {

class AgentMetrics {
 public:
  AgentMetrics();
  std::shared_ptr<prometheus::Registry> registry() const { return registry_; }

  // ferry_agent_transferred_bytes_total{plan,vm,disk}: disk bytes done. At most
  // kMaxSeries label sets; later ones are counted under vm="other", disk="other".
  prometheus::Counter& transferred(const std::string& plan, const std::string& vm,
                                   const std::string& disk);
  static constexpr size_t kMaxSeries = 1000;

 private:
  std::shared_ptr<prometheus::Registry> registry_;  // first: the references below live in it
  prometheus::Family<prometheus::Counter>& transferred_family_;
  std::mutex mu_;
  std::set<std::string> series_;

 public:
  prometheus::Gauge& in_flight;             // ferry_agent_transfers_in_flight
  prometheus::Gauge& throughput;            // ferry_agent_transfer_throughput_bytes_per_second
  prometheus::Histogram& transfer_seconds;  // ferry_agent_transfer_duration_seconds
  prometheus::Family<prometheus::Counter>& tasks;   // ferry_agent_tasks_total{result}
  prometheus::Family<prometheus::Counter>& errors;  // ferry_agent_errors_total{kind}
  prometheus::Counter& source_read_bytes;           // ferry_agent_source_read_bytes_total
  prometheus::Histogram& conversion_seconds;        // ferry_agent_conversion_duration_seconds
};

}  // namespace ferry::agent
