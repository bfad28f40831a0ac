#include "coordinator/metrics.h"

#include "common/base/log.h"

namespace ferry::coordinator {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

CoordinatorMetrics::CoordinatorMetrics()
    : registry(std::make_shared<prometheus::Registry>()),
      migrations_status(BuildCounter()
                            .Name("mtv_migrations_status_total")
                            .Help("Finished migrations by status (succeeded, failed, canceled)")
                            .Register(*registry)),
      plans_status(
          BuildGauge().Name("mtv_plans_status").Help("Plans by status").Register(*registry)),
      migration_duration(
          BuildHistogram()
              .Name("mtv_migration_duration_seconds")
              .Help("Duration of finished migrations")
              .Register(*registry)
              .Add({}, prometheus::Histogram::BucketBoundaries{60, 300, 900, 1800, 3600, 7200,
                                                               14400, 28800, 86400})),
      data_transferred(BuildCounter()
                           .Name("mtv_migration_data_transferred_bytes")
                           .Help("Disk bytes transferred by migrations, per plan")
                           .Register(*registry)),
      migrated_vms(BuildCounter()
                       .Name("mtv_migrated_vms_total")
                       .Help("VMs that finished migrating, by status")
                       .Register(*registry)),
      heartbeat_age(BuildGauge()
                        .Name("ferry_coordinator_agent_heartbeat_age_seconds")
                        .Help("Seconds since each agent's last heartbeat")
                        .Register(*registry)),
      disk_tasks(BuildGauge()
                     .Name("ferry_coordinator_disk_tasks")
                     .Help("Disk tasks of running migrations by state")
                     .Register(*registry)),
      bad_input(BuildCounter()
                    .Name("ferry_coordinator_bad_input_total")
                    .Help("Malformed requests, messages and stored entries refused, by source")
                    .Register(*registry)) {}

void count_bad_input(CoordinatorMetrics& m, const char* source, const std::string& why) {
  static const Logger log("coordinator");
  m.bad_input.Add({{"source", source}}).Increment();
  log.warn("input refused", {{"source", source}, {"error", why}});
}

}  // namespace ferry::coordinator
