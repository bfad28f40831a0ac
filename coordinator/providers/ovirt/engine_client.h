#pragma once
// EngineClient: the oVirt Engine REST API (/ovirt-engine/api) in JSON, over
// libcurl. Logs in through the engine's SSO (POST /ovirt-engine/sso/oauth/token,
// grant_type=password, scope ovirt-app-api) and sends the bearer token, `Version: 4`
// and `Accept: application/json` with every call. TLS is verified against the
// engine's CA from the Secret (`cacert`), or not at all (`insecureSkipVerify`),
// or against the system's CAs. Owns one curl handle and the token; not
// thread-safe (one caller at a time, as the provider's session pool gives).
#include <curl/curl.h>

#include <string>

#include <nlohmann/json.hpp>

#include "common/base/result.h"

namespace ferry::coordinator::ovirt {

using Json = nlohmann::json;

// Deadlines of one request: every provider call is a bounded number of these.
inline constexpr long kConnectTimeoutSeconds = 10;
inline constexpr long kRequestTimeoutSeconds = 60;

struct EngineTls {
  std::string ca_pem;  // the engine's CA certificate (PEM); "" for the system's CAs
  bool insecure_skip_verify = false;
};

struct EngineReply {
  long code = 0;
  Json body;  // null when the body was not JSON
  bool ok() const { return code >= 200 && code < 300; }
  // The engine's fault text ("reason: detail", or the SSO error), for messages.
  std::string fault() const;
};

class EngineClient {
 public:
  // api_url: https://ENGINE/ovirt-engine/api
  EngineClient(std::string api_url, EngineTls tls);
  ~EngineClient();
  EngineClient(const EngineClient&) = delete;
  EngineClient& operator=(const EngineClient&) = delete;

  // SSO login. Errors: kUnavailable (cannot connect), kPermissionDenied (TLS,
  // or credentials: the engine answers 400 access_denied).
  Status login(const std::string& user, const std::string& password);
  // Revokes the token (the engine holds sessions per token); best effort.
  void logout();
  bool logged_in() const { return !token_.empty(); }

  // `path` is under the API URL ("/vms?follow=nics"). Transport errors are
  // Errors; every HTTP answer is a reply. A 401 forgets the token.
  Result<EngineReply> get(const std::string& path);
  Result<EngineReply> post(const std::string& path, const Json& body);
  Result<EngineReply> del(const std::string& path);

  const std::string& api_url() const { return api_url_; }

 private:
  Result<EngineReply> call(const std::string& method, const std::string& url,
                           const std::string& body, const std::string& content_type, bool auth);
  std::string api_url_, engine_url_;  // engine_url_: https://ENGINE
  EngineTls tls_;
  CURL* curl_ = nullptr;
  std::string token_;
};

// Query escaping for search= and form values.
std::string url_escape(const std::string& s);

}  // namespace ferry::coordinator::ovirt
