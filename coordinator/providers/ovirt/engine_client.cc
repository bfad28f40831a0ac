#include "coordinator/providers/ovirt/engine_client.h"

#include <regex>

namespace ferry::coordinator::ovirt {
namespace {

size_t append_body(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

}  // namespace

std::string url_escape(const std::string& s) {
  char* e = curl_easy_escape(nullptr, s.c_str(), static_cast<int>(s.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

std::string EngineReply::fault() const {
  std::string out;
  if (body.is_object()) {
    // A fault: {"reason":"Operation Failed","detail":"[Cannot ...]"}; SSO: error_description.
    auto str = [&](const char* k) {
      return body.contains(k) && body[k].is_string() ? body[k].get<std::string>() : "";
    };
    std::string reason = str("reason"), detail = str("detail");
    if (reason.empty() && detail.empty()) {  // SSO: {"error_code","error"} (or OAuth's names)
      reason = str("error_code");
      detail = str("error");
      if (!str("error_description").empty()) {
        reason = str("error");
        detail = str("error_description");
      }
    }
    out = reason.empty() ? detail : detail.empty() ? reason : reason + ": " + detail;
  }
  return "HTTP " + std::to_string(code) + (out.empty() ? "" : " " + out);
}

EngineClient::EngineClient(std::string api_url, EngineTls tls)
    : api_url_(std::move(api_url)), tls_(std::move(tls)), curl_(curl_easy_init()) {
  while (!api_url_.empty() && api_url_.back() == '/') api_url_.pop_back();
  static const std::regex re(R"(^(https?://[^/]+))");
  std::smatch m;
  engine_url_ = std::regex_search(api_url_, m, re) ? m[1].str() : api_url_;
}

EngineClient::~EngineClient() {
  logout();
  if (curl_) curl_easy_cleanup(curl_);
}

Result<EngineReply> EngineClient::call(const std::string& method, const std::string& url,
                                       const std::string& body, const std::string& content_type,
                                       bool auth) {
  if (!curl_) return Error(ErrorCode::kInternal, "curl_easy_init failed");
  CURL* c = curl_;
  curl_easy_reset(c);
  std::string resp;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, kRequestTimeoutSeconds);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
  if (tls_.insecure_skip_verify) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!tls_.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(tls_.ca_pem.data()), tls_.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
  }
  curl_slist* h = nullptr;
  h = curl_slist_append(h, "Accept: application/json");
  h = curl_slist_append(h, "Version: 4");
  if (auth) h = curl_slist_append(h, ("Authorization: Bearer " + token_).c_str());
  if (method == "POST") {
    h = curl_slist_append(h, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method == "DELETE") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
  } else {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_slist_free_all(h);
  if (rc != CURLE_OK) {
    bool tls = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR ||
               rc == CURLE_SSL_CACERT_BADFILE || rc == CURLE_SSL_CERTPROBLEM;
    return Error(
        tls ? ErrorCode::kPermissionDenied : ErrorCode::kUnavailable,
        url + ": " + curl_easy_strerror(rc) +
            (tls ? " (the engine's certificate is not signed by the Secret's cacert)" : ""));
  }
  EngineReply r;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.code);
  r.body = Json::parse(resp, nullptr, false);
  if (r.body.is_discarded()) r.body = nullptr;
  if (auth && r.code == 401) token_.clear();  // expired or revoked: log in again
  return r;
}

Status EngineClient::login(const std::string& user, const std::string& password) {
  std::string form = "grant_type=password&scope=ovirt-app-api&username=" + url_escape(user) +
                     "&password=" + url_escape(password);
  auto r = call("POST", engine_url_ + "/ovirt-engine/sso/oauth/token", form,
                "application/x-www-form-urlencoded", false);
  if (!r.ok()) return r.error();
  if (r->code == 400 || r->code == 401)  // the engine's SSO answers bad credentials with 400
    return Error(ErrorCode::kPermissionDenied, "login refused: " + r->fault());
  if (!r->ok() || !r->body.is_object() || !r->body.contains("access_token") ||
      !r->body["access_token"].is_string())
    return Error(ErrorCode::kUnavailable,
                 engine_url_ + "/ovirt-engine/sso/oauth/token: not an oVirt engine SSO answer (" +
                     r->fault() + ")");
  token_ = r->body["access_token"].get<std::string>();
  return {};
}

void EngineClient::logout() {
  if (token_.empty()) return;
  // As the SDK's Connection.close() does it.
  (void)call("POST", engine_url_ + "/ovirt-engine/services/sso-logout",
             "scope=&token=" + url_escape(token_), "application/x-www-form-urlencoded", false);
  token_.clear();
}

Result<EngineReply> EngineClient::get(const std::string& path) {
  return call("GET", api_url_ + path, "", "", true);
}

Result<EngineReply> EngineClient::post(const std::string& path, const Json& body) {
  return call("POST", api_url_ + path, body.dump(), "application/json", true);
}

Result<EngineReply> EngineClient::del(const std::string& path) {
  return call("DELETE", api_url_ + path, "", "", true);
}

}  // namespace ferry::coordinator::ovirt
