#pragma once
// The coordinator's Prometheus metrics. MTV's names where MTV has one, so
// existing dashboards and alerts keep working; ferry_coordinator_* otherwise.
// Updated on the loop thread; scraped from civetweb threads (prometheus-cpp is thread-safe).
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

namespace ferry::coordinator {

struct CoordinatorMetrics {
  CoordinatorMetrics();
  std::shared_ptr<prometheus::Registry> registry;
  prometheus::Family<prometheus::Counter>&
      migrations_status;                                // mtv_migrations_status_total{status}
  prometheus::Family<prometheus::Gauge>& plans_status;  // mtv_plans_status{status}
  prometheus::Histogram& migration_duration;            // mtv_migration_duration_seconds
  prometheus::Family<prometheus::Counter>&
      data_transferred;  // mtv_migration_data_transferred_bytes{plan}
  prometheus::Family<prometheus::Counter>& migrated_vms;  // mtv_migrated_vms_total{status}
  prometheus::Family<prometheus::Gauge>&
      heartbeat_age;  // ferry_coordinator_agent_heartbeat_age_seconds{node}
  prometheus::Family<prometheus::Gauge>& disk_tasks;  // ferry_coordinator_disk_tasks{state}
  // Input refused and logged: source = api, heartbeat, progress, claim, result, stored.
  prometheus::Family<prometheus::Counter>& bad_input;  // ferry_coordinator_bad_input_total{source}
};

// Logs input that is refused and counts it under `source`.
void count_bad_input(CoordinatorMetrics& m, const char* source, const std::string& why);

}  // namespace ferry::coordinator
