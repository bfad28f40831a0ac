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
//                        comment every 5 s; at most 4 streams at once (503).
// Access: every request carries `Authorization: Bearer <token>`, the token
// in the coordinator's --console-token-file. No cookie is ever set, so a
// browser never sends the token by itself and there is nothing for another
// site to forge (CSRF); a request with an Origin header must come from the
// same origin as its Host (a page under a rebound DNS name passes that, but
// has no token). In cluster mode a Kubernetes user's own bearer token works too,
// as far as RBAC allows (KubeAuthorizer).
//   GET  /console/...    the web console's built files (console/, Vite's
//                        output) from `app_dir`, without a token: they hold
//                        no data; any path that is not a file is the app's
//                        index.html (its routes).
#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "common/base/result.h"
#include "common/metrics/http_endpoint.h"
#include "common/model/resource.h"

namespace ferry::coordinator::console {

// Who else may call, besides the holder of the console token: cluster mode
// asks the Kubernetes API about the caller's own bearer token
// (KubeAuthorizer: TokenReview, then SubjectAccessReview for what the
// request does). Called on civetweb's threads; must be thread-safe.
class Authorizer {
 public:
  struct Decision {
    int status = 0;       // 0: allowed; else 401 (who are you?) or 403 (not allowed)
    std::string message;  // why not, naming the user and the permission missing
  };
  virtual ~Authorizer() = default;
  // `verb` is the API verb ("events" for the event stream), `body` its JSON body.
  virtual Decision check(const std::string& token, const std::string& verb,
                         const std::string& body) = 0;
};

class ConsoleApi {
 public:
  // Runs `verb` with `body` on the coordinator's loop thread and calls `done`
  // once with the answer (api::error_reply's shape for a refusal).
  using Dispatch = std::function<void(const std::string& verb, const std::string& body,
                                      std::function<void(model::Json)> done)>;
  // `app_dir`: the built console app ("" = the API only).
  ConsoleApi(std::string token, Dispatch dispatch, std::string app_dir = "",
             std::shared_ptr<Authorizer> users = nullptr);
  // Registers /api/v1/ (and /console/) on `ep`, which must stop before this object goes.
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
  int serve_app(mg_connection* conn);
  // Runs a verb and waits for its answer (nullopt: stopping or 60 s passed).
  std::optional<model::Json> call(const std::string& verb, const std::string& body);

  std::string token_;
  Dispatch dispatch_;
  std::string app_dir_;
  std::shared_ptr<Authorizer> users_;
  std::atomic<bool> stopping_{false};
  static constexpr int kMaxStreams = 4;  // open event streams (the port has 8 threads)
  std::atomic<int> streams_{0};
};

}  // namespace ferry::coordinator::console
