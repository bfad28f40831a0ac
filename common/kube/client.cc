#include "common/kube/client.h"

#include <curl/curl.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/model/resource.h"

namespace ferry::kube {
namespace {

std::string slurp(const std::string& path, bool* ok) {
  std::ifstream f(path, std::ios::binary);
  *ok = static_cast<bool>(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A kubeconfig field that is inline (`...-data`, base64) or a file path
// (relative to the kubeconfig's folder).
Result<std::string> data_or_file(const Json& obj, const std::string& field,
                                 const std::string& where, const std::string& dir) {
  if (obj.contains(field + "-data") && obj[field + "-data"].is_string()) {
    bool ok = false;
    std::string v = model::base64_decode(obj[field + "-data"].get<std::string>(), &ok);
    if (!ok) return Error(ErrorCode::kInvalidArgument, where + "." + field + "-data: not base64");
    return v;
  }
  if (obj.contains(field) && obj[field].is_string()) {
    std::string p = obj[field].get<std::string>();
    if (!p.empty() && p[0] != '/') p = dir + "/" + p;
    bool ok = false;
    std::string v = slurp(p, &ok);
    if (!ok) return Error(ErrorCode::kInvalidArgument, where + "." + field + ": cannot read " + p);
    return v;
  }
  return std::string();
}

// The entry of kubeconfig list `field` (clusters, users, contexts) called `name`.
const Json* named(const Json& k, const char* field, const std::string& name) {
  auto it = k.find(field);
  if (it == k.end() || !it->is_array()) return nullptr;
  for (const auto& e : *it)
    if (e.is_object() && e.value("name", "") == name) return &e;
  return nullptr;
}

Result<Config> in_cluster() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !port)
    return Error(ErrorCode::kInvalidArgument,
                 "no --kubeconfig given and not in a pod (KUBERNETES_SERVICE_HOST is unset)");
  const std::string sa = "/var/run/secrets/kubernetes.io/serviceaccount/";
  Config c;
  std::string h = host;
  c.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  bool ok = false;
  c.token = slurp(sa + "token", &ok);
  if (!ok) return Error(ErrorCode::kInvalidArgument, "cannot read " + sa + "token");
  while (!c.token.empty() && (c.token.back() == '\n' || c.token.back() == ' ')) c.token.pop_back();
  c.ca_pem = slurp(sa + "ca.crt", &ok);
  if (!ok) return Error(ErrorCode::kInvalidArgument, "cannot read " + sa + "ca.crt");
  c.ns = slurp(sa + "namespace", &ok);
  return c;
}

size_t collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct ListDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

void set_blob(CURL* h, CURLoption opt, const std::string& s) {
  curl_blob b{const_cast<char*>(s.data()), s.size(), CURL_BLOB_COPY};
  curl_easy_setopt(h, opt, &b);
}

}  // namespace

Result<Config> load_config(const std::string& path) {
  if (path.empty()) return in_cluster();
  bool ok = false;
  std::string text = slurp(path, &ok);
  if (!ok) return Error(ErrorCode::kInvalidArgument, "kubeconfig " + path + ": cannot read it");
  auto docs = model::yaml_to_json(text);
  if (!docs.ok() || docs->empty() || !(*docs)[0].is_object())
    return Error(ErrorCode::kInvalidArgument, "kubeconfig " + path + ": not a YAML object");
  const Json& k = (*docs)[0];
  const std::string where = "kubeconfig " + path + ": ";
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  std::string current = k.value("current-context", "");
  const Json* ctx = named(k, "contexts", current);
  if (!ctx || !ctx->contains("context") || !(*ctx)["context"].is_object())
    return Error(ErrorCode::kInvalidArgument,
                 where + "current-context: \"" + current + "\" is not in contexts");
  const Json& c = (*ctx)["context"];
  const Json* cl = named(k, "clusters", c.value("cluster", ""));
  if (!cl || !cl->contains("cluster") || !(*cl)["cluster"].is_object())
    return Error(ErrorCode::kInvalidArgument, where + "contexts[" + current +
                                                  "].context.cluster: \"" + c.value("cluster", "") +
                                                  "\" is not in clusters");
  const Json& cluster = (*cl)["cluster"];
  Config out;
  out.ns = c.value("namespace", "");
  out.server = cluster.value("server", "");
  if (out.server.rfind("https://", 0) != 0)
    return Error(ErrorCode::kInvalidArgument, where + "clusters[" + c.value("cluster", "") +
                                                  "].cluster.server: \"" + out.server +
                                                  "\" is not an https:// URL");
  while (!out.server.empty() && out.server.back() == '/') out.server.pop_back();
  auto ca = data_or_file(cluster, "certificate-authority", where + "cluster", dir);
  if (!ca.ok()) return ca.error();
  out.ca_pem = *ca;
  const Json* u = named(k, "users", c.value("user", ""));
  if (u && u->contains("user") && (*u)["user"].is_object()) {
    const Json& user = (*u)["user"];
    auto cert = data_or_file(user, "client-certificate", where + "user", dir);
    if (!cert.ok()) return cert.error();
    auto key = data_or_file(user, "client-key", where + "user", dir);
    if (!key.ok()) return key.error();
    out.cert_pem = *cert;
    out.key_pem = *key;
    out.token = user.value("token", "");
    if (out.token.empty() && user.contains("tokenFile") && user["tokenFile"].is_string()) {
      out.token = slurp(user["tokenFile"].get<std::string>(), &ok);
      if (!ok)
        return Error(ErrorCode::kInvalidArgument,
                     where + "user.tokenFile: cannot read " + user["tokenFile"].get<std::string>());
    }
  }
  return out;
}

std::string Response::message() const {
  std::string m = std::to_string(code);
  if (body.is_object()) {
    if (!body.value("reason", "").empty()) m += " " + body.value("reason", "");
    if (!body.value("message", "").empty()) m += ": " + body.value("message", "");
  }
  return m;
}

Client::Client(Config c) : config_(std::move(c)) {}

namespace {

struct Handle {
  std::unique_ptr<CURL, CurlDeleter> curl;
  std::unique_ptr<curl_slist, ListDeleter> headers;
};

Handle make_handle(const Config& c, const std::string& method, const std::string& url,
                   const std::string& content_type, const std::string* body) {
  Handle h;
  h.curl.reset(curl_easy_init());
  CURL* e = h.curl.get();
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 10L);
  if (!c.ca_pem.empty()) set_blob(e, CURLOPT_CAINFO_BLOB, c.ca_pem);
  if (!c.cert_pem.empty()) {
    set_blob(e, CURLOPT_SSLCERT_BLOB, c.cert_pem);
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
  }
  if (!c.key_pem.empty()) {
    set_blob(e, CURLOPT_SSLKEY_BLOB, c.key_pem);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
  }
  curl_slist* l = curl_slist_append(nullptr, "Accept: application/json");
  if (!c.token.empty()) l = curl_slist_append(l, ("Authorization: Bearer " + c.token).c_str());
  if (body) l = curl_slist_append(l, ("Content-Type: " + content_type).c_str());
  h.headers.reset(l);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, l);
  curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (method == "GET") curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  if (body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  }
  return h;
}

}  // namespace

Result<Response> Client::request(const std::string& method, const std::string& path,
                                 const Json* body, const std::string& content_type,
                                 std::chrono::seconds timeout) const {
  std::string data = body ? body->dump() : std::string();
  Handle h =
      make_handle(config_, method, config_.server + path, content_type, body ? &data : nullptr);
  std::string out;
  curl_easy_setopt(h.curl.get(), CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h.curl.get(), CURLOPT_WRITEDATA, &out);
  curl_easy_setopt(h.curl.get(), CURLOPT_TIMEOUT, static_cast<long>(timeout.count()));
  CURLcode rc = curl_easy_perform(h.curl.get());
  if (rc != CURLE_OK)
    return Error(rc == CURLE_OPERATION_TIMEDOUT ? ErrorCode::kTimeout : ErrorCode::kUnavailable,
                 method + " " + config_.server + path + ": " + curl_easy_strerror(rc));
  Response r;
  curl_easy_getinfo(h.curl.get(), CURLINFO_RESPONSE_CODE, &r.code);
  r.body = Json::parse(out, nullptr, false);
  if (r.body.is_discarded()) r.body = Json();
  return r;
}

namespace {
struct WatchState {
  std::string buf, first;  // unparsed tail; the body of a non-2xx answer
  const std::function<bool(const Json&)>* on_event;
  const std::atomic<bool>* stop;
  CURL* curl;
  bool ended = false;  // on_event said stop
};

size_t watch_write(char* p, size_t size, size_t n, void* arg) {
  auto* w = static_cast<WatchState*>(arg);
  long code = 0;
  curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, &code);
  if (code < 200 || code >= 300) {
    w->first.append(p, size * n);
    return size * n;
  }
  w->buf.append(p, size * n);
  size_t start = 0;
  for (size_t nl; (nl = w->buf.find('\n', start)) != std::string::npos; start = nl + 1) {
    Json ev = Json::parse(w->buf.begin() + start, w->buf.begin() + nl, nullptr, false);
    if (ev.is_object() && !(*w->on_event)(ev)) {
      w->ended = true;
      return 0;  // aborts the transfer
    }
  }
  w->buf.erase(0, start);
  return size * n;
}

int watch_progress(void* arg, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<WatchState*>(arg)->stop->load() ? 1 : 0;
}
}  // namespace

Result<Response> Client::watch(const std::string& path,
                               const std::function<bool(const Json&)>& on_event,
                               const std::atomic<bool>& stop) const {
  Handle h = make_handle(config_, "GET", config_.server + path, "", nullptr);
  WatchState w{{}, {}, &on_event, &stop, h.curl.get()};
  CURL* e = h.curl.get();
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, watch_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &w);
  curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, watch_progress);
  curl_easy_setopt(e, CURLOPT_XFERINFODATA, &w);
  // A silent stream is cut after 90 s: the server sends bookmarks more often.
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 90L);
  CURLcode rc = curl_easy_perform(e);
  Response r;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.code);
  if (rc != CURLE_OK && !w.ended && !(rc == CURLE_ABORTED_BY_CALLBACK && stop))
    return Error(ErrorCode::kUnavailable,
                 "watch " + config_.server + path + ": " + curl_easy_strerror(rc));
  if (!r.ok()) {
    r.body = Json::parse(w.first, nullptr, false);
    if (r.body.is_discarded()) r.body = Json();
  }
  return r;
}

std::string path_of(const std::string& gv, const std::string& plural, const std::string& ns,
                    const std::string& name) {
  std::string p = (gv == "v1" ? "/api/v1" : "/apis/" + gv);
  if (!ns.empty()) p += "/namespaces/" + ns;
  p += "/" + plural;
  if (!name.empty()) p += "/" + name;
  return p;
}

std::string escape(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

}  // namespace ferry::kube
