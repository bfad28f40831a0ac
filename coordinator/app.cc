#include "coordinator/app.h"

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/base/args.h"
#include "common/base/log.h"
#include "common/model/validate.h"
#include "coordinator/coordinator.h"

namespace ferry::coordinator {
namespace {
Coordinator* g_coordinator = nullptr;

void usage() {
  std::cerr
      << "usage: ferry-coordinator [--nats URL] [--manifest-dir DIR] [--per-host-transfers N]\n"
         "                         [--max-vms-in-flight N] [--inventory-refresh SECONDS]\n"
         "                         [--metrics-port N | --metrics-address ADDR:PORT] [--js-replicas "
         "N]\n"
         "  NATS: FERRY_NATS_URL, FERRY_NATS_USER / FERRY_NATS_PASSWORD, TLS: FERRY_NATS_CA\n"
         "  (FERRY_NATS_CERT / FERRY_NATS_KEY for a client certificate)\n";
}
}  // namespace

int app_main(int argc, char** argv) {
  CoordinatorOptions o;
  o.nats.name = "ferry-coordinator";
  bus::options_from_env(o.nats);
  ArgReader args(argc, argv);  // --name value and --name=value
  try {
    while (args.next()) {
      const std::string a = args.name();
      auto next = [&]() -> std::string {
        auto v = args.value();
        if (!v) {
          usage();
          std::exit(2);
        }
        return *v;
      };
      if (a == "--nats")
        o.nats.url = next();
      else if (a == "--manifest-dir")
        o.manifest_dir = next();
      else if (a == "--per-host-transfers")
        o.per_host_transfers = std::stoi(next());
      else if (a == "--max-vms-in-flight")
        o.max_vms_in_flight = std::stoi(next());
      else if (a == "--inventory-refresh")
        o.inventory_refresh_seconds = std::stoi(next());
      else if (a == "--js-replicas")
        o.js_replicas = std::stoi(next());
      else if (a == "--metrics-address")
        o.metrics_address = next();
      else if (a == "--metrics-port")
        o.metrics_address = ":" + next();
      else if (a == "--metrics-port-file")
        o.metrics_port_file = next();
      else if (a == "--precopy-interval") {
        std::string v = next();
        if (!model::parse_duration(v, &o.precopy_interval_seconds)) {
          std::cerr << "--precopy-interval: \"" << v << "\" is not a duration (e.g. 60m, 90s)\n";
          return 2;
        }
      } else {
        usage();
        return 2;
      }
    }
  } catch (const std::logic_error&) {  // std::stoi/stoull: not a number, or out of range
    std::cerr << "ferry-coordinator: " << args.name() << ": not a valid number\n";
    return 2;
  }
  setenv("UV_THREADPOOL_SIZE", "16", 0);  // provider calls run on libuv's pool
  Coordinator c(o);
  g_coordinator = &c;
  std::signal(SIGTERM, [](int) { g_coordinator->request_stop(); });
  std::signal(SIGINT, [](int) { g_coordinator->request_stop(); });
  Status s = c.run();
  if (!s.ok()) {
    Logger("coordinator").error("coordinator failed", {{"error", s.error().message}});
    return 1;
  }
  return 0;
}

}  // namespace ferry::coordinator
