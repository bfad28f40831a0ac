// HttpSource: an HTTP(S) server with RFC 7233 range support (vSphere's
// /folder/ datastore URLs, ESXi, any web server). No extent map: everything
// is read, and zero blocks are detected in the data. One worker thread drives
// a curl multi handle with `connections` ranged GETs in flight, each on its
// own keep-alive connection.
//
// The ovirt-imageio HTTP API (SourceSpec::imageio) is the same ranged GETs
// plus what its daemon tells: OPTIONS gives the ticket's features and how
// many readers it takes, and GET .../extents?context=zero the allocation
// map, so holes and zero areas never cross the wire. A 403 means the ticket
// expired or was revoked: said so, and never retried.
#include <curl/curl.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include <nlohmann/json.hpp>

#include "agent/transfer/source.h"

namespace ferry::agent::transfer {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

int thumbprint_index() {
  static int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}

std::string normalize_thumbprint(const std::string& t) {
  std::string out;
  for (char c : t)
    if (c != ':' && c != ' ') out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// Accepts the chain only if the leaf certificate's SHA-1 matches the pinned
// thumbprint (the vSphere way: self-signed certificates, identity by pin).
int verify_thumbprint(int, X509_STORE_CTX* x) noexcept {
  if (X509_STORE_CTX_get_error_depth(x) > 0) return 1;
  X509* cert = X509_STORE_CTX_get_current_cert(x);
  auto* ssl =
      static_cast<SSL*>(X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (!cert || !ssl) return 0;
  auto* want = static_cast<const std::string*>(
      SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), thumbprint_index()));
  if (!want) return 0;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (X509_digest(cert, EVP_sha1(), md, &n) != 1) return 0;
  static const char* hex = "0123456789ABCDEF";
  std::string got;
  for (unsigned i = 0; i < n; i++) {
    got += hex[md[i] >> 4];
    got += hex[md[i] & 15];
  }
  if (got != *want) return 0;
  X509_STORE_CTX_set_error(x, X509_V_OK);
  return 1;
}

CURLcode ssl_ctx_callback(CURL*, void* sslctx, void* userptr) noexcept {
  auto* ctx = static_cast<SSL_CTX*>(sslctx);
  SSL_CTX_set_ex_data(ctx, thumbprint_index(), userptr);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_thumbprint);
  return CURLE_OK;
}

struct SlistFree {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct EasyFree {
  void operator()(CURL* e) const { curl_easy_cleanup(e); }
};

// Settings shared by every request of one source. Owned by HttpSource,
// outlives all readers.
struct HttpConfig {
  SourceSpec spec;
  std::string thumbprint;  // normalized
  std::unique_ptr<curl_slist, SlistFree> headers;
};

void configure(CURL* e, const HttpConfig& cfg) {
  curl_easy_setopt(e, CURLOPT_URL, cfg.spec.uri.c_str());
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, cfg.headers.get());
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(e, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
  // A stalled transfer (< 1 KiB/s for 60 s) is a transient error.
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
  if (!cfg.spec.bind_address.empty())
    curl_easy_setopt(e, CURLOPT_INTERFACE, cfg.spec.bind_address.c_str());
  if (cfg.spec.insecure_skip_verify) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!cfg.thumbprint.empty()) {
    // Identity is the pin, not the CA chain or host name: curl must not check
    // the chain itself; our verify callback fails the handshake on a mismatch.
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &ssl_ctx_callback);
    curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, const_cast<std::string*>(&cfg.thumbprint));
  } else if (!cfg.spec.ca_pem.empty()) {
    curl_blob ca{const_cast<char*>(cfg.spec.ca_pem.data()), cfg.spec.ca_pem.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
  }
}

bool transient_curl(CURLcode c) {
  switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

// One ranged GET. The write callback fills buf; headers are checked against
// the requested range (RFC 7233 §4.2: Content-Range of a 206).
struct Transfer {
  std::unique_ptr<CURL, EasyFree> easy;
  uint64_t id = 0, offset = 0, length = 0, received = 0;
  char* buf = nullptr;
  bool overflow = false;
  bool range_ok = false;
  std::string content_range;
  char errbuf[CURL_ERROR_SIZE];
};

// The first line of an error body, printable ASCII only, at most `max` characters.
std::string first_line(const char* p, uint64_t len, size_t max) {
  std::string out;
  for (uint64_t i = 0; i < len && out.size() < max; i++) {
    char ch = p[i];
    if (ch == '\n' || ch == '\r') {
      if (!out.empty()) break;
      continue;
    }
    out.push_back(ch >= 0x20 && ch < 0x7f ? ch : '?');
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

size_t on_body(char* p, size_t sz, size_t n, void* ud) noexcept {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = sz * n;
  if (t->received + len > t->length) {
    t->overflow = true;
    return 0;  // aborts: the server sent more than asked (e.g. ignored Range)
  }
  std::memcpy(t->buf + t->received, p, len);
  t->received += len;
  return len;
}

size_t on_header(char* p, size_t sz, size_t n, void* ud) noexcept {
  auto* t = static_cast<Transfer*>(ud);
  size_t len = sz * n;
  static const char kName[] = "content-range:";
  if (len > sizeof kName && strncasecmp(p, kName, sizeof kName - 1) == 0) {
    try {
      std::string v(p + sizeof kName - 1, len - (sizeof kName - 1));
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t\r\n") + 1);
      t->content_range = v;
      unsigned long long a = 0, b = 0;
      if (std::sscanf(v.c_str(), "bytes %llu-%llu/", &a, &b) == 2)
        t->range_ok = a == t->offset && b + 1 == t->offset + t->length;
    } catch (...) {
    }
  }
  return len;
}

size_t on_small_body(char* p, size_t sz, size_t n, void* ud) noexcept {
  auto* body = static_cast<std::string*>(ud);
  size_t len = sz * n;
  if (body->size() + len > (256u << 20)) return 0;  // an answer this big is not an imageio one
  body->append(p, len);
  return len;
}

// The source as messages and logs name it: its identity when the task gives
// one (an imageio ticket URL is a credential), else the URL without secrets.
std::string shown(const HttpConfig& cfg) {
  return cfg.spec.identity.empty() ? redact_uri(cfg.spec.uri) : cfg.spec.identity;
}

struct SmallAnswer {
  long status = 0;
  std::string body;
};

// One request whose whole answer is wanted (imageio's OPTIONS and extents).
Result<SmallAnswer> small_request(const HttpConfig& cfg, const std::string& url,
                                  const char* method) {
  std::unique_ptr<CURL, EasyFree> e(curl_easy_init());
  if (!e) return Error(ErrorCode::kInternal, "curl_easy_init failed");
  configure(e.get(), cfg);
  SmallAnswer a;
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(e.get(), CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(e.get(), CURLOPT_WRITEFUNCTION, &on_small_body);
  curl_easy_setopt(e.get(), CURLOPT_WRITEDATA, &a.body);
  curl_easy_setopt(e.get(), CURLOPT_ERRORBUFFER, errbuf);
  CURLcode rc = curl_easy_perform(e.get());
  if (rc != CURLE_OK) {
    ErrorCode code = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR
                         ? ErrorCode::kPermissionDenied
                         : ErrorCode::kUnavailable;
    std::string where = url.rfind(cfg.spec.uri, 0) == 0
                            ? shown(cfg) + url.substr(cfg.spec.uri.size())
                            : redact_uri(url);
    return Error(code, std::string(method) + " " + where + ": " + curl_easy_strerror(rc) +
                           (errbuf[0] ? ": " : "") + errbuf);
  }
  curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &a.status);
  return a;
}

class HttpReader : public SourceReader {
 public:
  HttpReader(const HttpConfig& cfg, std::string identity)
      : cfg_(cfg), identity_(std::move(identity)), multi_(curl_multi_init()) {}
  ~HttpReader() override {
    for (auto& t : active_) curl_multi_remove_handle(multi_, t->easy.get());
    active_.clear();
    pool_.clear();
    curl_multi_cleanup(multi_);
  }

  Status submit(uint64_t id, uint64_t offset, uint64_t length, char* buf) override {
    std::unique_ptr<Transfer> t;
    if (!pool_.empty()) {
      t = std::move(pool_.back());
      pool_.pop_back();
      curl_easy_reset(t->easy.get());
    } else {
      t = std::make_unique<Transfer>();
      t->easy.reset(curl_easy_init());
      if (!t->easy) return Error(ErrorCode::kInternal, "curl_easy_init failed");
    }
    CURL* e = t->easy.get();
    configure(e, cfg_);
    t->id = id;
    t->offset = offset;
    t->length = length;
    t->received = 0;
    t->buf = buf;
    t->overflow = false;
    t->range_ok = false;
    t->content_range.clear();
    t->errbuf[0] = 0;
    std::string range = std::to_string(offset) + "-" + std::to_string(offset + length - 1);
    curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());  // copied by curl
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    if (CURLMcode mc = curl_multi_add_handle(multi_, e); mc != CURLM_OK)
      return Error(ErrorCode::kInternal,
                   std::string("curl_multi_add_handle: ") + curl_multi_strerror(mc));
    active_.push_back(std::move(t));
    return {};
  }

  void poll(int timeout_ms, std::vector<ReadCompletion>& out) override {
    int running = 0;
    curl_multi_perform(multi_, &running);
    if (!collect(out) && !active_.empty()) {
      curl_multi_poll(multi_, nullptr, 0, timeout_ms, nullptr);
      curl_multi_perform(multi_, &running);
      collect(out);
    }
  }

  size_t in_flight() const override { return active_.size(); }

 private:
  bool collect(std::vector<ReadCompletion>& out) {
    bool any = false;
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi_, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      CURL* e = m->easy_handle;
      CURLcode rc = m->data.result;
      Transfer* t = nullptr;
      curl_easy_getinfo(e, CURLINFO_PRIVATE, reinterpret_cast<char**>(&t));
      curl_multi_remove_handle(multi_, e);
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      out.push_back(classify(*t, rc, status));
      any = true;
      auto it = std::find_if(active_.begin(), active_.end(),
                             [t](const std::unique_ptr<Transfer>& p) { return p.get() == t; });
      if (it != active_.end()) {
        pool_.push_back(std::move(*it));
        active_.erase(it);
      }
    }
    return any;
  }

  ReadCompletion classify(const Transfer& t, CURLcode rc, long status) {
    ReadCompletion c{t.id, false, false, ErrorCode::kIo, ""};
    std::string where = identity_;
    if (rc == CURLE_OK || (rc == CURLE_WRITE_ERROR && t.overflow)) {
      if (status == 206 && t.range_ok && t.received == t.length && rc == CURLE_OK) {
        c.ok = true;
        return c;
      }
      if (status == 200) {
        c.code = ErrorCode::kFailedPrecondition;
        c.message = "server ignored the Range header (HTTP 200 instead of 206)";
      } else if (status == 206 && !t.range_ok) {
        c.message = "HTTP 206 with unexpected Content-Range '" + t.content_range + "'";
      } else if (status == 206) {
        c.transient = true;  // short body: connection dropped
        c.message = "short body: " + std::to_string(t.received) + " of " +
                    std::to_string(t.length) + " bytes";
      } else if (status == 401 || status == 403) {
        c.code = ErrorCode::kPermissionDenied;
        c.message = "HTTP " + std::to_string(status) +
                    (cfg_.spec.imageio ? " (the imageio ticket expired or was revoked)"
                                       : " (session cookie rejected?)");
      } else if (status == 404) {
        c.code = ErrorCode::kNotFound;
        c.message = "HTTP 404";
      } else {
        c.transient = status >= 500 || status == 429 || status == 408;
        c.code = c.transient ? ErrorCode::kUnavailable : ErrorCode::kIo;
        c.message = "HTTP " + std::to_string(status);
      }
      if (status >= 400) {
        // The server's own words (first line of the error body), e.g. an ESXi
        // "503 Service Unavailable" reason: the failure should say what it said.
        std::string said = first_line(t.buf, t.received, 200);
        if (!said.empty()) c.message += ": " + said;
      }
      return c;
    }
    c.transient = transient_curl(rc);
    c.code = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE
                 ? ErrorCode::kPermissionDenied
                 : (c.transient ? ErrorCode::kUnavailable : ErrorCode::kIo);
    c.message = std::string(curl_easy_strerror(rc)) + (t.errbuf[0] ? ": " : "") + t.errbuf;
    return c;
  }

  const HttpConfig& cfg_;
  std::string identity_;
  CURLM* multi_;
  std::vector<std::unique_ptr<Transfer>> active_, pool_;
};

class HttpSource : public Source {
 public:
  explicit HttpSource(const SourceSpec& spec) {
    cfg_.spec = spec;
    cfg_.thumbprint = normalize_thumbprint(spec.tls_sha1_thumbprint);
    curl_slist* l = nullptr;
    for (const auto& h : spec.http_headers) l = curl_slist_append(l, h.c_str());
    cfg_.headers.reset(l);
  }

  Result<SourceInfo> open(const CopyOptions& opts) override {
    global_init();
    if (cfg_.spec.imageio) return open_imageio(opts);
    SourceInfo info;
    info.identity = shown(cfg_);
    info.has_extents = false;
    info.workers = 1;
    info.parallel = std::max(1, opts.connections);
    // Probe with a one-byte ranged GET: proves Range support and gives the
    // size in Content-Range ("bytes 0-0/SIZE").
    std::unique_ptr<CURL, EasyFree> e(curl_easy_init());
    configure(e.get(), cfg_);
    Transfer t;
    char one[1];
    t.buf = one;
    t.length = 1;
    t.errbuf[0] = 0;
    curl_easy_setopt(e.get(), CURLOPT_RANGE, "0-0");
    curl_easy_setopt(e.get(), CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(e.get(), CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e.get(), CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(e.get(), CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(e.get(), CURLOPT_ERRORBUFFER, t.errbuf);
    CURLcode rc = curl_easy_perform(e.get());
    long status = 0;
    curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &status);
    std::string who = "HTTP source " + info.identity;
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && t.overflow)) {
      ErrorCode code = rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CONNECT_ERROR
                           ? ErrorCode::kPermissionDenied
                           : ErrorCode::kUnavailable;
      return Error(code,
                   who + ": " + curl_easy_strerror(rc) + (t.errbuf[0] ? ": " : "") + t.errbuf);
    }
    if (status == 401 || status == 403)
      return Error(ErrorCode::kPermissionDenied, who + ": HTTP " + std::to_string(status));
    if (status == 404) return Error(ErrorCode::kNotFound, who + ": HTTP 404");
    if (status == 200)
      return Error(ErrorCode::kFailedPrecondition,
                   who + ": server does not support byte ranges (HTTP 200 for a Range request)");
    if (status == 416 && cfg_.spec.size == 0) {
      info.size = 0;  // empty resource
      return info;
    }
    if (status != 206)
      return Error(ErrorCode::kUnavailable, who + ": HTTP " + std::to_string(status));
    auto slash = t.content_range.rfind('/');
    unsigned long long total = 0;
    if (slash != std::string::npos && t.content_range.substr(slash + 1) != "*")
      total = std::strtoull(t.content_range.c_str() + slash + 1, nullptr, 10);
    info.size = cfg_.spec.size ? cfg_.spec.size : total;
    if (info.size == 0)
      return Error(ErrorCode::kFailedPrecondition,
                   who + ": size unknown (Content-Range '" + t.content_range + "')");
    return info;
  }

  Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override {
    if (!cfg_.spec.imageio) return std::vector<Extent>{{offset, length, false}};
    // The map read at open(), clipped to what is asked.
    std::vector<Extent> out;
    uint64_t end = offset + length;
    for (const auto& x : map_) {
      uint64_t a = std::max(offset, x.offset), b = std::min(end, x.offset + x.length);
      if (a < b) out.push_back({a, b - a, x.zero});
    }
    if (out.empty() || out.front().offset != offset)
      return Error(ErrorCode::kIo, "imageio source " + shown(cfg_) + ": no extent covers offset " +
                                       std::to_string(offset));
    return out;
  }

  Result<std::unique_ptr<SourceReader>> new_reader() override {
    return std::unique_ptr<SourceReader>(new HttpReader(cfg_, shown(cfg_)));
  }

  // imageio: the dirty extents of a backup's ticket (the daemon answers 404
  // for a ticket that has none).
  Result<std::vector<ByteRange>> changed_ranges() override {
    std::string who = "imageio source " + shown(cfg_);
    if (!cfg_.spec.imageio)
      return Error(ErrorCode::kFailedPrecondition, who + ": only an imageio ticket tells changes");
    auto ext = small_request(cfg_, cfg_.spec.uri + "/extents?context=dirty", "GET");
    if (!ext.ok()) return ext.error();
    if (ext->status == 404)
      return Error(ErrorCode::kFailedPrecondition,
                   who + ": the ticket has no dirty extents (not a backup's, or not dirty)");
    if (ext->status != 200)
      return Error(ext->status == 403 ? ErrorCode::kPermissionDenied : ErrorCode::kIo,
                   who + ": GET dirty extents: HTTP " + std::to_string(ext->status));
    auto list = nlohmann::json::parse(ext->body, nullptr, false);
    if (!list.is_array())
      return Error(ErrorCode::kIo, who + ": the dirty extents answer is not a JSON list");
    std::vector<ByteRange> out;
    for (const auto& x : list) {
      if (!x.is_object() || !x.contains("start") || !x.contains("length") ||
          !x["start"].is_number_unsigned() || !x["length"].is_number_unsigned())
        return Error(ErrorCode::kIo,
                     who + ": a dirty extent is malformed: " + x.dump().substr(0, 200));
      if (!x.value("dirty", false)) continue;
      uint64_t start = x["start"].get<uint64_t>(), len = x["length"].get<uint64_t>();
      if (!out.empty() && out.back().offset + out.back().length == start)
        out.back().length += len;
      else
        out.push_back({start, len});
    }
    return out;
  }

 private:
  // OPTIONS for the ticket's features and readers, then the zero extents
  // (they also give the size: they cover the whole image).
  Result<SourceInfo> open_imageio(const CopyOptions& opts) {
    SourceInfo info;
    info.identity = shown(cfg_);
    std::string who = "imageio source " + info.identity;
    auto refused = [&](long status, const std::string& what) -> Error {
      if (status == 401 || status == 403)
        return Error(ErrorCode::kPermissionDenied,
                     who + ": " + what + ": HTTP " + std::to_string(status) +
                         " (the imageio ticket expired, was revoked or never existed)");
      if (status == 404) return Error(ErrorCode::kNotFound, who + ": " + what + ": HTTP 404");
      return Error(status >= 500 ? ErrorCode::kUnavailable : ErrorCode::kIo,
                   who + ": " + what + ": HTTP " + std::to_string(status));
    };
    auto opt = small_request(cfg_, cfg_.spec.uri, "OPTIONS");
    if (!opt.ok()) return opt.error();
    if (opt->status != 200) return refused(opt->status, "OPTIONS");
    auto features = nlohmann::json::parse(opt->body, nullptr, false);
    if (!features.is_object())
      return Error(ErrorCode::kIo, who + ": OPTIONS answered something that is not JSON");
    bool has_extents = false;
    for (const auto& f : features.value("features", nlohmann::json::array()))
      has_extents = has_extents || (f.is_string() && f.get<std::string>() == "extents");
    int readers = 1;
    if (auto r = features.find("max_readers"); r != features.end() && r->is_number_integer())
      readers = std::max(1, r->get<int>());
    info.workers = 1;
    info.parallel = std::max(1, std::min(opts.connections, readers));
    if (!has_extents) {
      // An older daemon (or a file backend without it): read everything.
      SourceSpec plain = cfg_.spec;
      plain.imageio = false;
      HttpSource fallback(plain);
      auto r = fallback.open(opts);
      if (!r.ok()) return r.error();
      info.size = r->size;
      map_ = {{0, info.size, false}};
      info.has_extents = false;
      return info;
    }
    auto ext = small_request(cfg_, cfg_.spec.uri + "/extents?context=zero", "GET");
    if (!ext.ok()) return ext.error();
    if (ext->status != 200) return refused(ext->status, "GET extents");
    auto list = nlohmann::json::parse(ext->body, nullptr, false);
    if (!list.is_array())
      return Error(ErrorCode::kIo, who + ": the extents answer is not a JSON list");
    uint64_t at = 0;
    map_.clear();
    for (const auto& x : list) {
      if (!x.is_object() || !x.contains("start") || !x.contains("length") ||
          !x["start"].is_number_unsigned() || !x["length"].is_number_unsigned() ||
          x["start"].get<uint64_t>() != at)
        return Error(ErrorCode::kIo, who + ": extents are not contiguous from 0 at " +
                                         std::to_string(at) + ": " + x.dump().substr(0, 200));
      uint64_t len = x["length"].get<uint64_t>();
      bool zero = x.value("zero", false);
      if (!map_.empty() && map_.back().zero == zero)
        map_.back().length += len;
      else
        map_.push_back({at, len, zero});
      at += len;
    }
    info.size = cfg_.spec.size ? cfg_.spec.size : at;
    if (info.size != at)
      return Error(ErrorCode::kFailedPrecondition,
                   who + ": the extents cover " + std::to_string(at) + " bytes, the disk has " +
                       std::to_string(info.size));
    info.has_extents = true;
    return info;
  }

  HttpConfig cfg_;
  std::vector<Extent> map_;  // imageio: the zero extents, merged
};

}  // namespace

Result<std::unique_ptr<Source>> make_http_source(const SourceSpec& spec) {
  return std::unique_ptr<Source>(new HttpSource(spec));
}

}  // namespace ferry::agent::transfer
