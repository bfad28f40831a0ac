#pragma once
// A Kubernetes API client, just large enough for Ferry: JSON requests
// (GET, POST, PUT, PATCH, DELETE) and watches, over libcurl with the
// credentials of a kubeconfig (client certificate or bearer token) or of a
// pod's service account.
//
// Thread-safe: every call uses its own curl handle. A watch blocks its calling
// thread until the server ends the stream, an error, or `stop` is set (checked
// at least every second).
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "common/base/result.h"

namespace ferry::kube {

using Json = nlohmann::json;

struct Config {
  std::string server;  // https://host:port
  std::string ca_pem;  // empty: the system's CAs
  std::string cert_pem, key_pem;
  std::string token;
  std::string ns;  // the context's namespace (or the pod's), "" if none
};

// A kubeconfig file (its current context), or, with path "", the pod's
// service account (KUBERNETES_SERVICE_HOST/PORT and
// /var/run/secrets/kubernetes.io/serviceaccount). Errors name the file and field.
Result<Config> load_config(const std::string& path);

struct Response {
  long code = 0;  // HTTP status
  Json body;      // parsed JSON (null if the body was not JSON)
  // "<code> <reason>: <message>" from a Status body, for errors.
  std::string message() const;
  bool ok() const { return code >= 200 && code < 300; }
};

class Client {
 public:
  explicit Client(Config c);
  const Config& config() const { return config_; }
  // A transport error (no connection, TLS, timeout) is an Error; any HTTP
  // answer, 4xx and 5xx included, is a Response.
  Result<Response> request(const std::string& method, const std::string& path,
                           const Json* body = nullptr,
                           const std::string& content_type = "application/json",
                           std::chrono::seconds timeout = std::chrono::seconds(30)) const;
  Result<Response> get(const std::string& path) const { return request("GET", path); }
  // Streams GET `path` (which has watch=1): on_event gets each event object
  // ({"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}); false
  // from it ends the watch. Returns when the stream ends; the Response holds
  // the HTTP status (a watch refused at once, e.g. 410, has its body).
  Result<Response> watch(const std::string& path, const std::function<bool(const Json&)>& on_event,
                         const std::atomic<bool>& stop) const;

 private:
  Config config_;
};

// Paths: "/api/v1/namespaces/NS/secrets/NAME", "/apis/GROUP/VERSION/namespaces/NS/PLURAL".
std::string path_of(const std::string& group_version, const std::string& plural,
                    const std::string& ns = "", const std::string& name = "");
// URL query escaping (for label selectors and field selectors).
std::string escape(const std::string& s);

}  // namespace ferry::kube
