#include "coordinator/app.h"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "common/base/args.h"
#include "common/base/log.h"
#include "common/model/validate.h"
#include "coordinator/coordinator.h"

namespace ferry::coordinator {
namespace {
std::atomic<Coordinator*> g_coordinator{nullptr};
std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop = true;
  if (Coordinator* c = g_coordinator.load()) c->request_stop();
}

void usage() {
  std::cerr
      << "usage: ferry-coordinator [--nats URL] [--manifest-dir DIR] [--per-host-transfers N]\n"
         "                         [--max-vms-in-flight N] [--inventory-refresh SECONDS]\n"
         "                         [--metrics-port N | --metrics-address ADDR:PORT] [--js-replicas "
         "N]\n"
         "                         [--console-token-file FILE]  the console's HTTP API on the\n"
         "                         metrics port, its Bearer token in FILE (made if missing)\n"
         "                         [--console-dir DIR]  the built web console, served at\n"
         "                         /console/ (default /usr/share/ferry/console if there)\n"
         "                         [--agent-timeout SECONDS (default 180)]\n"
         "                         [--session-idle-timeout SECONDS (default 600)]  a source\n"
         "                         session unused this long is logged out\n"
         "                         [--kubernetes [--kubeconfig FILE]]  cluster mode: resources\n"
         "                         in the Kubernetes API (in a pod: its service account)\n"
         "                         [--lease-namespace NS]  where its Lease is (default: the\n"
         "                         kubeconfig's namespace, else openshift-mtv)\n"
         "                         [--secret-key-file FILE]  local mode: the key Secrets are\n"
         "                         sealed with in NATS (made if missing; default\n"
         "                         $XDG_DATA_HOME/ferry/secret.key, ~/.local/share/...);\n"
         "                         every coordinator sharing a NATS needs the same file\n"
         "                         [--hook-dir DIR]  where Hook playbooks run, a directory\n"
         "                         per run with its inputs and output (default\n"
         "                         $XDG_DATA_HOME/ferry/hooks, ~/.local/share/...)\n"
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
      if (a == "--nats")
        o.nats.url = args.value();
      else if (a == "--manifest-dir")
        o.manifest_dir = args.value();
      else if (a == "--secret-key-file")
        o.secret_key_file = args.value();
      else if (a == "--hook-dir")
        o.hook_dir = args.value();
      else if (a == "--per-host-transfers")
        o.per_host_transfers = args.number<int>();
      else if (a == "--max-vms-in-flight")
        o.max_vms_in_flight = args.number<int>();
      else if (a == "--inventory-refresh")
        o.inventory_refresh_seconds = args.number<int>();
      else if (a == "--agent-timeout") {
        o.agent_timeout_seconds = args.number<unsigned>();
        if (o.agent_timeout_seconds < 5) {  // a heartbeat comes every 2 s
          std::cerr << "--agent-timeout: at least 5 seconds\n";
          return 2;
        }
      } else if (a == "--session-idle-timeout") {
        o.session_idle_seconds = args.number<unsigned>();
        if (o.session_idle_seconds < 1) {
          std::cerr << "--session-idle-timeout: at least 1 second\n";
          return 2;
        }
      } else if (a == "--js-replicas")
        o.js_replicas = args.number<int>();
      else if (a == "--kubernetes")
        o.kubernetes = true;
      else if (a == "--kubeconfig") {
        o.kubernetes = true;
        o.kubeconfig = args.value();
      } else if (a == "--lease-namespace")
        o.lease_namespace = args.value();
      else if (a == "--metrics-address")
        o.metrics_address = args.value();
      else if (a == "--metrics-port")
        o.metrics_address = ":" + args.value();
      else if (a == "--metrics-port-file")
        o.metrics_port_file = args.value();
      else if (a == "--console-token-file")
        o.console_token_file = args.value();
      else if (a == "--console-dir")
        o.console_dir = args.value();
      else if (a == "--precopy-interval") {
        std::string v = args.value();
        if (!model::parse_duration(v, &o.precopy_interval_seconds)) {
          std::cerr << "--precopy-interval: \"" << v << "\" is not a duration (e.g. 60m, 90s)\n";
          return 2;
        }
      } else {
        usage();
        return 2;
      }
    }
  } catch (const ArgError& e) {  // a missing value, or not a number
    std::cerr << "ferry-coordinator: " << e.what() << "\n";
    usage();
    return 2;
  }
  {
    const char* xdg = std::getenv("XDG_DATA_HOME");
    const char* home = std::getenv("HOME");
    std::string data = xdg && *xdg     ? std::string(xdg) + "/ferry"
                       : home && *home ? std::string(home) + "/.local/share/ferry"
                                       : "/var/lib/ferry";
    if (o.secret_key_file.empty()) o.secret_key_file = data + "/secret.key";
    if (o.hook_dir.empty()) o.hook_dir = data + "/hooks";
  }
  setenv("UV_THREADPOOL_SIZE", "16", 0);  // provider calls run on libuv's pool
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  // A coordinator that loses the lease (another took it, or it could not
  // renew it in time) has stopped writing; it starts again from the stored
  // state as a standby, under the same identity, as a restarted pod would.
  while (true) {
    Coordinator c(o);
    g_coordinator = &c;
    if (g_stop) c.request_stop();
    Status s = c.run();
    g_coordinator = nullptr;
    if (c.lease_lost() && !g_stop) {
      Logger("coordinator")
          .warn("stepped down; standing by for the lease again",
                {{"why", s.ok() ? std::string() : s.error().message}});
      o.identity = c.identity();
      continue;
    }
    if (!s.ok()) {
      Logger("coordinator").error("coordinator failed", {{"error", s.error().message}});
      return 1;
    }
    return 0;
  }
}

}  // namespace ferry::coordinator
