#pragma once
// The console's HTTP API, on the coordinator's HTTP port (the one that serves
// /metrics), for the web console and any HTTP client:
//   POST /api/v1/<verb>  the JSON request ferryctl sends on ferry.api.<verb>
//                        (apply, get, delete, cancel, retry, cutover,
//                        inventory, gather, status); the same JSON answer,
//                        with an HTTP status from its error code.
//   GET  /api/v1/events  server-sent events: a `migrations` event (the get
//                        verb's answer for kind migration: every Migration
//                        with its status, VMs and pipelines) at once and
//                        whenever it changes (checked every second), and a
//                        comment every 15 s.
// Access: every request carries `Authorization: Bearer <token>`, the token
// in the coordinator's --console-token-file. No cookie is ever set, so a
// browser never sends the token by itself and there is nothing for another
// site to forge (CSRF); a request with an Origin header must come from the
// same origin as its Host, which also refuses a page served under a rebound
// DNS name. Cluster mode's TokenReview is not built (docs/console.md).
#include <atomic>
#include <functional>
#include <string>

#include "common/base/result.h"
#include "common/metrics/http_endpoint.h"
#include "common/model/resource.h"

namespace ferry::coordinator::console {

class ConsoleApi {
 public:
  // Runs `verb` with `body` on the coordinator's loop thread and calls `done`
  // once with the answer (api::error_reply's shape for a refusal).
  using Dispatch = std::function<void(const std::string& verb, const std::string& body,
                                      std::function<void(model::Json)> done)>;
  ConsoleApi(std::string token, Dispatch dispatch);
  // Registers /api/v1/ on `ep`, which must stop before this object goes.
  void attach(metrics::HttpEndpoint& ep);
  // Ends waits and event streams at once (the loop no longer answers).
  void stop() { stopping_ = true; }

  // The token in `path`, or a new one (32 random bytes as hex) written there
  // with mode 0600. Errors name the file.
  static Result<std::string> load_or_create_token(const std::string& path);
  // The HTTP status for an API answer: 200 when ok, else from its "code".
  static int http_status(const model::Json& answer);

 private:
  int serve(mg_connection* conn);
  int serve_events(mg_connection* conn);
  // Runs a verb and waits for its answer (nullopt: stopping or 60 s passed).
  std::optional<model::Json> call(const std::string& verb, const std::string& body);

  std::string token_;
  Dispatch dispatch_;
  std::atomic<bool> stopping_{false};
};

}  // namespace ferry::coordinator::console
