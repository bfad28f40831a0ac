#pragma once
// HttpEndpoint: the node-local HTTP port of a daemon: /metrics (Prometheus text
// format of a prometheus-cpp Registry), /healthz (alive) and /readyz (ready()
// decides: 200 or 503). Served by civetweb on its own threads; ready() must be
// thread-safe. prometheus-cpp's Exposer has no hook for health endpoints, so
// we serve its registry ourselves.
#include <functional>
#include <list>
#include <memory>
#include <string>

#include <prometheus/registry.h>

#include "common/base/result.h"

struct mg_context;
struct mg_connection;

namespace ferry::metrics {

class HttpEndpoint {
 public:
  // address: "127.0.0.1:9464", ":9464" or port "0" for an ephemeral port.
  // port_file: if set, the bound port is written there (atomically) for tests.
  static Result<std::unique_ptr<HttpEndpoint>> start(const std::string& address,
                                                     std::shared_ptr<prometheus::Registry> registry,
                                                     std::function<bool()> ready,
                                                     const std::string& port_file = "");
  ~HttpEndpoint();
  int port() const { return port_; }
  // Serves every path under `prefix` with `handler` (on civetweb's threads;
  // it returns the HTTP status it sent). The endpoint stops its threads
  // before it goes: whatever the handler uses must outlive it.
  using Handler = std::function<int(mg_connection*)>;
  void route(const std::string& prefix, Handler handler);

 private:
  HttpEndpoint() = default;
  mg_context* ctx_ = nullptr;
  std::list<Handler> routes_;  // stable addresses: civetweb holds pointers to them
  std::shared_ptr<prometheus::Registry> registry_;
  std::function<bool()> ready_;
  int port_ = 0;
};

}  // namespace ferry::metrics
