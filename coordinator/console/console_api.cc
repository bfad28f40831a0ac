#include "coordinator/console/console_api.h"

#include <civetweb.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <thread>

namespace ferry::coordinator::console {

using model::Json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxBody = 16 << 20;  // an apply of many documents, not more

const char* status_text(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Internal Server Error";
  }
}

int send_json(mg_connection* conn, int status, const Json& body, const char* extra_headers = "") {
  std::string data = body.dump();
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
            "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n%s"
            "Connection: close\r\n\r\n",
            status, status_text(status), data.size(), extra_headers);
  mg_write(conn, data.data(), data.size());
  return status;
}

int refuse(mg_connection* conn, int status, const std::string& code, const std::string& message,
           const char* extra_headers = "") {
  return send_json(conn, status, {{"ok", false}, {"code", code}, {"error", message}},
                   extra_headers);
}

std::string header(mg_connection* conn, const char* name) {
  const char* v = mg_get_header(conn, name);
  return v ? v : "";
}

bool same_token(const std::string& a, const std::string& b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

ConsoleApi::ConsoleApi(std::string token, Dispatch dispatch, std::string app_dir,
                       std::shared_ptr<Authorizer> users)
    : token_(std::move(token)),
      dispatch_(std::move(dispatch)),
      app_dir_(std::move(app_dir)),
      users_(std::move(users)) {}

void ConsoleApi::attach(metrics::HttpEndpoint& ep) {
  ep.route("/api/", [this](mg_connection* conn) { return serve(conn); });
  if (!app_dir_.empty())
    ep.route("/console", [this](mg_connection* conn) { return serve_app(conn); });
}

int ConsoleApi::serve_app(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  std::string method = ri->request_method ? ri->request_method : "";
  std::string path = ri->local_uri ? ri->local_uri : "";
  if (method != "GET" && method != "HEAD")
    return refuse(conn, 405, "invalid_argument", path + ": GET only", "Allow: GET\r\n");
  if (path == "/console") {
    mg_printf(conn,
              "HTTP/1.1 301 Moved Permanently\r\nLocation: /console/\r\n"
              "Content-Length: 0\r\nConnection: close\r\n\r\n");
    return 301;
  }
  // Only plain names under the app's folder: no "..", no hidden files.
  std::string rel = path.rfind("/console/", 0) == 0 ? path.substr(9) : "";
  bool plain = true;
  for (char ch : rel)
    plain = plain && (std::isalnum(static_cast<unsigned char>(ch)) || std::strchr("._-/", ch));
  plain = plain && rel.find("..") == std::string::npos && rel.find("/.") == std::string::npos &&
          (rel.empty() || rel[0] != '.');
  std::string file = app_dir_ + "/" + rel;
  struct stat st {};
  bool asset = plain && !rel.empty() && ::stat(file.c_str(), &st) == 0 && S_ISREG(st.st_mode);
  if (!asset) file = app_dir_ + "/index.html";  // the app's own routes
  std::ifstream in(file, std::ios::binary);
  if (!in) return refuse(conn, 404, "not_found", path + ": the console app is not installed");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto ends = [&](const char* ext) {
    size_t n = std::strlen(ext);
    return file.size() >= n && file.compare(file.size() - n, n, ext) == 0;
  };
  const char* type = ends(".html")    ? "text/html; charset=utf-8"
                     : ends(".js")    ? "text/javascript; charset=utf-8"
                     : ends(".css")   ? "text/css; charset=utf-8"
                     : ends(".svg")   ? "image/svg+xml"
                     : ends(".png")   ? "image/png"
                     : ends(".woff2") ? "font/woff2"
                     : ends(".woff")  ? "font/woff"
                     : ends(".ttf")   ? "font/ttf"
                     : ends(".json")  ? "application/json"
                                      : "application/octet-stream";
  // Vite names assets by their content: they never change under one name.
  bool hashed = asset && rel.rfind("assets/", 0) == 0;
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
            "Cache-Control: %s\r\nX-Content-Type-Options: nosniff\r\n"
            "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
            "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'\r\n"
            "Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
            type, data.size(), hashed ? "public, max-age=31536000, immutable" : "no-cache");
  if (method == "GET") mg_write(conn, data.data(), data.size());
  return 200;
}

Result<std::string> ConsoleApi::load_or_create_token(const std::string& path) {
  std::ifstream in(path);
  if (in) {
    std::string t;
    std::getline(in, t);
    if (t.size() < 32)
      return Error(ErrorCode::kInvalidArgument,
                   "--console-token-file " + path + ": holds no token of at least 32 characters");
    return t;
  }
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1)
    return Error(ErrorCode::kUnavailable, "no random bytes for the console token");
  static const char* hex = "0123456789abcdef";
  std::string t;
  for (unsigned char c : raw) {
    t += hex[c >> 4];
    t += hex[c & 15];
  }
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return Error(ErrorCode::kIo, "--console-token-file " + path + ": " + std::strerror(errno));
  std::string line = t + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ok = ::close(fd) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    return Error(ErrorCode::kIo, "--console-token-file " + path + ": cannot write it");
  }
  return t;
}

int ConsoleApi::http_status(const Json& answer) {
  if (!answer.is_object() || answer.value("ok", true)) return 200;
  std::string code = answer.value("code", "");
  if (code == "invalid_argument") return 400;
  if (code == "not_found") return 404;
  if (code == "already_exists" || code == "failed_precondition") return 409;
  if (code == "permission_denied") return 403;
  if (code == "unavailable") return 503;
  if (code == "timeout") return 504;
  return 500;
}

std::optional<Json> ConsoleApi::call(const std::string& verb, const std::string& body) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<Json> answer;
  };
  auto w = std::make_shared<Wait>();
  dispatch_(verb, body, [w](Json answer) {
    std::lock_guard<std::mutex> lock(w->mu);
    w->answer = std::move(answer);
    w->cv.notify_all();
  });
  auto until = Clock::now() + std::chrono::seconds(60);
  std::unique_lock<std::mutex> lock(w->mu);
  while (!w->answer && !stopping_ && Clock::now() < until)
    w->cv.wait_for(lock, std::chrono::milliseconds(200));
  return w->answer;
}

int ConsoleApi::serve(mg_connection* conn) {
  const mg_request_info* ri = mg_get_request_info(conn);
  std::string method = ri->request_method ? ri->request_method : "";
  std::string path = ri->local_uri ? ri->local_uri : "";
  // Same origin only: a browser names the page's origin on every cross-site
  // (and every POST) request.
  std::string origin = header(conn, "Origin"), host = header(conn, "Host");
  if (!origin.empty() && origin != "http://" + host && origin != "https://" + host)
    return refuse(conn, 403, "permission_denied",
                  "Origin " + origin + " is not this console's (" + host + ")");
  std::string auth = header(conn, "Authorization");
  const char* challenge = "WWW-Authenticate: Bearer realm=\"ferry\"\r\n";
  if (auth.rfind("Bearer ", 0) != 0 || auth.size() == 7)
    return refuse(conn, 401, "unauthenticated",
                  users_ ? "Authorization: a Bearer token is required (the coordinator's "
                           "--console-token-file, or your Kubernetes token)"
                         : "Authorization: a Bearer token is required (the coordinator's "
                           "--console-token-file)",
                  challenge);
  std::string token = auth.substr(7);
  // The console token may do everything; any other token is a Kubernetes
  // user's, asked about below once the request is known (cluster mode).
  bool console_token = same_token(token, token_);
  if (!console_token && !users_)
    return refuse(conn, 401, "unauthenticated",
                  "Authorization: the token is not this coordinator's", challenge);
  auto allowed = [&](const std::string& verb, const std::string& body) -> int {
    if (console_token) return 0;
    // On a thread of its own: civetweb's workers have 100 KiB stacks, too
    // small for the TLS and YAML work of a Kubernetes review.
    Authorizer::Decision d =
        std::async(std::launch::async, [&] { return users_->check(token, verb, body); }).get();
    if (d.status == 0) return 0;
    return refuse(conn, d.status, d.status == 401 ? "unauthenticated" : "permission_denied",
                  d.message, d.status == 401 ? challenge : "");
  };
  const std::string prefix = "/api/v1/";
  if (path.rfind(prefix, 0) != 0 || path.size() == prefix.size())
    return refuse(conn, 404, "not_found", "path " + path + ": the API is under " + prefix);
  std::string verb = path.substr(prefix.size());
  if (verb == "events") {
    if (method != "GET")
      return refuse(conn, 405, "invalid_argument", "events: GET only", "Allow: GET\r\n");
    if (int refused = allowed("events", "")) return refused;
    return serve_events(conn);
  }
  if (method != "POST")
    return refuse(conn, 405, "invalid_argument", verb + ": POST only", "Allow: POST\r\n");
  if (verb == "part")
    return refuse(conn, 404, "not_found",
                  "part: over HTTP every answer comes whole; part is for NATS replies");
  long long length = ri->content_length;
  if (length > static_cast<long long>(kMaxBody))
    return refuse(conn, 413, "invalid_argument",
                  verb + ": body of " + std::to_string(length) + " bytes is over " +
                      std::to_string(kMaxBody));
  std::string body;
  char buf[65536];
  int n;
  while ((n = mg_read(conn, buf, sizeof buf)) > 0) {
    body.append(buf, static_cast<size_t>(n));
    if (body.size() > kMaxBody)
      return refuse(conn, 413, "invalid_argument",
                    verb + ": body over " + std::to_string(kMaxBody) + " bytes");
  }
  if (int refused = allowed(verb, body)) return refused;
  auto answer = call(verb, body);
  if (!answer) return refuse(conn, 503, "unavailable", verb + ": the coordinator did not answer");
  return send_json(conn, http_status(*answer), *answer);
}

int ConsoleApi::serve_events(mg_connection* conn) {
  // Each open stream holds one of the HTTP port's 8 threads: at most half of
  // them, so /metrics, /healthz and the API always have threads left.
  if (streams_.fetch_add(1) >= kMaxStreams) {
    streams_--;
    return refuse(conn, 503, "unavailable",
                  "events: " + std::to_string(kMaxStreams) +
                      " event streams are open already; close a console tab",
                  "Retry-After: 5\r\n");
  }
  struct Open {
    std::atomic<int>& n;
    ~Open() { n--; }
  } open{streams_};
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\n"
            "X-Accel-Buffering: no\r\nConnection: close\r\n\r\n");
  std::string last;
  auto quiet_since = Clock::now();
  while (!stopping_) {
    auto answer = call("get", R"({"kind":"migration"})");
    if (!answer) break;
    std::string data = answer->dump();
    std::string out;
    if (data != last) {
      out = "event: migrations\ndata: " + data + "\n\n";
      last = std::move(data);
      quiet_since = Clock::now();
    } else if (Clock::now() - quiet_since >= std::chrono::seconds(5)) {
      // Also how a closed stream is noticed: a write fails.
      out = ": still here\n\n";  // keeps proxies from closing an idle stream
      quiet_since = Clock::now();
    }
    if (!out.empty() && mg_write(conn, out.data(), out.size()) <= 0) break;  // the client left
    for (int i = 0; i < 10 && !stopping_; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 200;
}

}  // namespace ferry::coordinator::console
