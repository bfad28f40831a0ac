#include "agent/metrics.h"

namespace ferry::agent {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

AgentMetrics::AgentMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      transferred_family_(BuildCounter()
                              .Name("ferry_agent_transferred_bytes_total")
                              .Help("Disk bytes transferred into local volumes (holes included)")
                              .Register(*registry_)),
      in_flight(BuildGauge()
                    .Name("ferry_agent_transfers_in_flight")
                    .Help("Disk transfers running on this node")
                    .Register(*registry_)
                    .Add({})),
      throughput(BuildGauge()
                     .Name("ferry_agent_transfer_throughput_bytes_per_second")
                     .Help("Sum of the current rates of running transfers")
                     .Register(*registry_)
                     .Add({})),
      transfer_seconds(
          BuildHistogram()
              .Name("ferry_agent_transfer_duration_seconds")
              .Help("Duration of finished disk transfers")
              .Register(*registry_)
              .Add({}, prometheus::Histogram::BucketBoundaries{1, 5, 15, 60, 300, 900, 1800, 3600,
                                                               7200, 14400})),
      tasks(BuildCounter()
                .Name("ferry_agent_tasks_total")
                .Help("Finished tasks by result (succeeded, failed, canceled)")
                .Register(*registry_)),
      errors(BuildCounter()
                 .Name("ferry_agent_errors_total")
                 .Help("Failed tasks by error kind")
                 .Register(*registry_)),
      source_read_bytes(BuildCounter()
                            .Name("ferry_agent_source_read_bytes_total")
                            .Help("Bytes read from sources (holes are not read)")
                            .Register(*registry_)
                            .Add({})),
      conversion_seconds(BuildHistogram()
                             .Name("ferry_agent_conversion_duration_seconds")
                             .Help("Duration of successful guest conversions (virt-v2v-in-place)")
                             .Register(*registry_)
                             .Add({}, prometheus::Histogram::BucketBoundaries{30, 60, 120, 300, 600,
                                                                              1200, 1800, 3600})) {}

prometheus::Counter& AgentMetrics::transferred(const std::string& plan, const std::string& vm,
                                               const std::string& disk) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string key = plan + "\n" + vm + "\n" + disk;
  if (series_.count(key) || series_.size() < kMaxSeries) {
    series_.insert(key);
    return transferred_family_.Add({{"plan", plan}, {"vm", vm}, {"disk", disk}});
  }
  return transferred_family_.Add({{"plan", plan}, {"vm", "other"}, {"disk", "other"}});
}

}  // namespace ferry::agent
