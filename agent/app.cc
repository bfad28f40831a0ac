#include "agent/app.h"

#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>

#include "agent/agent.h"
#include "agent/transfer/copy.h"
#include "agent/volumes/volume_server.h"
#include "common/base/args.h"
#include "common/base/log.h"
#include "common/protocol/subjects.h"

namespace ferry::agent {
namespace {
Agent* g_agent = nullptr;

void usage() {
  std::cerr
      << "usage: ferry-agent --node NAME --volume-root [CLASS=]DIR ... [--nats URL]\n"
         "                   [--network NAME=ADDRESS ...] [--max-tasks N] [--connections N]\n"
         "                   [--bandwidth BYTES/s] [--node-bandwidth BYTES/s]\n"
         "                   [--max-in-flight BYTES] [--metrics-port N | --metrics-address "
         "ADDR:PORT]\n"
         "                   [--state-dir DIR] [--kubernetes [--kubeconfig FILE]]\n"
         "  --kubernetes registers a local PersistentVolume for each volume written for a claim.\n"
         "  --state-dir keeps results until NATS has them (default: FIRST_ROOT/.ferry-agent).\n"
         "  --bandwidth caps each copy task, --node-bandwidth all tasks of this agent\n"
         "  together; --max-in-flight caps each task's read buffers (default 256 MiB).\n"
         "  /metrics, /healthz and /readyz are served on the metrics port.\n"
         "       ferry-agent copy SOURCE TARGET [options]   (see ferry-agent copy --help)\n"
         "       ferry-agent serve VOLUME --address IP --tls-psk FILE [--work-dir DIR]\n"
         "         serves VOLUME read-only over NBD with TLS as a ServeTask does, prints\n"
         "         its disk and digests URIs, and stops on SIGTERM or SIGINT\n"
         "  NATS: FERRY_NATS_URL, FERRY_NATS_USER / FERRY_NATS_PASSWORD, TLS: FERRY_NATS_CA\n"
         "  (FERRY_NATS_CERT / FERRY_NATS_KEY for a client certificate)\n"
         "  A volume root without CLASS= serves the storage class \"local\".\n";
}

bool valid_node_name(const std::string& n) {
  if (n.empty()) return false;
  for (char c : n)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}
}  // namespace

// `ferry-agent serve`: a ServeTask's server from the command line (benchmarks, debugging).
std::atomic<bool> g_serve_stop{false};
extern "C" void on_serve_signal(int) { g_serve_stop = true; }

int serve_main(int argc, char** argv) {
  volumes::ServeOptions so;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--address")
      ok = value(&so.address);
    else if (a == "--tls-psk")
      ok = value(&so.psk_file);
    else if (a == "--work-dir")
      ok = value(&so.work_dir);
    else if (a.rfind("-", 0) == 0)
      ok = false;
    else
      positional.push_back(a);
    if (!ok) {
      std::fprintf(stderr, "ferry-agent serve: bad option %s\n", a.c_str());
      return 2;
    }
  }
  if (positional.size() != 1 || so.address.empty() || so.psk_file.empty()) {
    std::fprintf(stderr,
                 "usage: ferry-agent serve VOLUME --address IP --tls-psk FILE [--work-dir DIR]\n");
    return 2;
  }
  so.volume = positional[0];
  if (so.work_dir.empty()) so.work_dir = so.volume + ".ferry-serve";
  auto size = volumes::volume_size(so.volume);
  if (!size.ok()) {
    std::fprintf(stderr, "ferry-agent serve: %s\n", size.error().message.c_str());
    return 1;
  }
  so.size = *size;
  struct sigaction sa {};
  sa.sa_handler = on_serve_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto server = volumes::VolumeServer::start(so);
  if (!server.ok()) {
    std::fprintf(stderr, "ferry-agent serve: %s\n", server.error().message.c_str());
    return 1;
  }
  std::printf("%s %s %llu\n", (*server)->disk_uri().c_str(), (*server)->digests_uri().c_str(),
              static_cast<unsigned long long>(so.size));
  std::fflush(stdout);
  while (!g_serve_stop && (*server)->alive())
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return 0;
}

int app_main(int argc, char** argv) {
  if (argc > 1 && !std::strcmp(argv[1], "copy")) return transfer::copy_main(argc - 1, argv + 1);
  if (argc > 1 && !std::strcmp(argv[1], "serve")) return serve_main(argc - 1, argv + 1);
  AgentOptions o;
  std::string password_dir;
  bus::options_from_env(o.nats);
  if (const char* n = std::getenv("FERRY_NODE_NAME")) o.node = n;  // downward API in a DaemonSet
  ArgReader args(argc, argv);                                      // --name value and --name=value
  try {
    while (args.next()) {
      const std::string a = args.name();
      auto pair = [&](const std::string& v, const std::string& dflt_key) {
        auto eq = v.find('=');
        if (eq == std::string::npos) return std::pair<std::string, std::string>(dflt_key, v);
        return std::pair<std::string, std::string>(v.substr(0, eq), v.substr(eq + 1));
      };
      if (a == "--node")
        o.node = args.value();
      else if (a == "--nats")
        o.nats.url = args.value();
      else if (a == "--volume-root")
        o.volume_roots.insert(pair(args.value(), "local"));
      else if (a == "--network") {
        auto p = pair(args.value(), "");
        if (p.first.empty()) {
          std::cerr << "ferry-agent: --network wants NAME=ADDRESS\n";
          return 2;
        }
        o.networks.insert(p);
      } else if (a == "--max-tasks")
        o.max_tasks = args.number<int>();
      else if (a == "--connections")
        o.connections = args.number<int>();
      else if (a == "--bandwidth")
        o.bandwidth = args.number<uint64_t>();
      else if (a == "--node-bandwidth")
        o.node_bandwidth = args.number<uint64_t>();
      else if (a == "--max-in-flight")
        o.max_in_flight = args.number<uint64_t>();
      else if (a == "--conversion-env")
        o.conversion_env.push_back(args.value());
      else if (a == "--conversion-time-limit")
        o.conversion_time_limit = args.number<int>();
      else if (a == "--nats-password-dir")
        password_dir = args.value();
      else if (a == "--metrics-address")
        o.metrics_address = args.value();
      else if (a == "--metrics-port")
        o.metrics_address = ":" + args.value();
      else if (a == "--state-dir")
        o.state_dir = args.value();
      else if (a == "--kubernetes")
        o.kubernetes = true;
      else if (a == "--kubeconfig") {
        o.kubernetes = true;
        o.kubeconfig = args.value();
      } else if (a == "--metrics-port-file")
        o.metrics_port_file = args.value();
      else if (a == "--help" || a == "-h") {
        usage();
        return 0;
      } else {
        usage();
        return 2;
      }
    }
  } catch (const ArgError& e) {  // a missing value, or not a number
    std::cerr << "ferry-agent: " << e.what() << "\n";
    usage();
    return 2;
  }
  if (!valid_node_name(o.node)) {
    std::cerr << "ferry-agent: --node must be a name of letters, digits, '-' or '_' (got \""
              << o.node << "\")\n";
    return 2;
  }
  if (o.volume_roots.empty()) {
    std::cerr << "ferry-agent: at least one --volume-root is required\n";
    return 2;
  }
  // libguestfs settings come from the agent's environment (e.g. a DaemonSet's
  // LIBGUESTFS_BACKEND) and --conversion-env; never hard-coded.
  for (char** e = environ; *e; e++)
    if (std::strncmp(*e, "LIBGUESTFS_", 11) == 0)
      o.conversion_env.insert(o.conversion_env.begin(), *e);
  if (!password_dir.empty()) {
    // One NATS user per node (ferryctl nats-config): DIR/<node> holds its password.
    std::ifstream in(password_dir + "/" + o.node);
    if (!in) {
      std::cerr << "ferry-agent: --nats-password-dir: no file " << password_dir << "/" << o.node
                << " (regenerate the credentials with ferryctl nats-config --node " << o.node
                << ")\n";
      return 2;
    }
    std::getline(in, o.nats.password);
    o.nats.user = subjects::agent_user(o.node);
  }
  o.nats.name = subjects::agent_user(o.node);
  o.nats.inbox_prefix = subjects::agent_inbox_prefix(o.node);
  Agent agent(o);
  g_agent = &agent;
  // Only an atomic store in the handler; the agent's loops poll the flag.
  std::signal(SIGTERM, [](int) { g_agent->request_stop(); });
  std::signal(SIGINT, [](int) { g_agent->request_stop(); });
  Status s = agent.run();
  if (!s.ok()) {
    Logger("agent").error("agent failed", {{"error", s.error().message}});
    return 1;
  }
  return 0;
}

}  // namespace ferry::agent
