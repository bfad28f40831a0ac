#include "common/metrics/http_endpoint.h"

#include <civetweb.h>
#include <prometheus/text_serializer.h>

#include <cstdio>
#include <cstring>
#include <fstream>

namespace ferry::metrics {
namespace {

int reply(mg_connection* conn, int status, const char* status_text, const std::string& type,
          const std::string& body) {
  mg_printf(
      conn,
      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
      status, status_text, type.c_str(), body.size());
  mg_write(conn, body.data(), body.size());
  return status;
}

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry,
    std::function<bool()> ready, const std::string& port_file) {
  std::unique_ptr<HttpEndpoint> ep(new HttpEndpoint);
  ep->registry_ = std::move(registry);
  ep->ready_ = std::move(ready);
  std::string listen = address.empty() || address[0] == ':' ? "0.0.0.0" + address : address;
  if (address.find(':') == std::string::npos) listen = "127.0.0.1:" + address;
  // A few threads: a console's event stream holds one for as long as it is open.
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "8", nullptr};
  mg_callbacks cb{};
  ep->ctx_ = mg_start(&cb, ep.get(), options);
  if (!ep->ctx_) return Error(ErrorCode::kUnavailable, "cannot listen for metrics on " + listen);
  mg_server_port ports[4];
  int n = mg_get_server_ports(ep->ctx_, 4, ports);
  if (n > 0) ep->port_ = ports[0].port;
  mg_set_request_handler(
      ep->ctx_, "/metrics",
      [](mg_connection* conn, void* cbdata) noexcept -> int {
        auto* self = static_cast<HttpEndpoint*>(cbdata);
        prometheus::TextSerializer ser;
        return reply(conn, 200, "OK", "text/plain; version=0.0.4",
                     ser.Serialize(self->registry_->Collect()));
      },
      ep.get());
  mg_set_request_handler(
      ep->ctx_, "/healthz",
      [](mg_connection* conn, void*) noexcept -> int {
        return reply(conn, 200, "OK", "text/plain", "ok\n");
      },
      nullptr);
  mg_set_request_handler(
      ep->ctx_, "/readyz",
      [](mg_connection* conn, void* cbdata) noexcept -> int {
        auto* self = static_cast<HttpEndpoint*>(cbdata);
        if (self->ready_ && !self->ready_())
          return reply(conn, 503, "Service Unavailable", "text/plain", "not ready\n");
        return reply(conn, 200, "OK", "text/plain", "ready\n");
      },
      ep.get());
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << ep->port_ << "\n";
    if (std::rename(tmp.c_str(), port_file.c_str()) != 0)
      return Error(ErrorCode::kIo, "cannot write " + port_file);
  }
  return ep;
}

void HttpEndpoint::route(const std::string& prefix, Handler handler) {
  routes_.push_back(std::move(handler));
  mg_set_request_handler(
      ctx_, prefix.c_str(),
      [](mg_connection* conn, void* cbdata) noexcept -> int {
        try {
          return (*static_cast<Handler*>(cbdata))(conn);
        } catch (const std::exception& e) {
          return reply(conn, 500, "Internal Server Error", "text/plain", e.what());
        }
      },
      &routes_.back());
}

HttpEndpoint::~HttpEndpoint() {
  if (ctx_) mg_stop(ctx_);
}

}  // namespace ferry::metrics
