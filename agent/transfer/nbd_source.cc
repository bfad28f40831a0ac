// NbdSource: an NBD server through libnbd. The probe connection asks for
// base:allocation and answers size and extents; every worker thread owns one
// NbdReader (its own connection) with up to `requests` nbd_aio_pread commands
// in flight. Several connections only when the server advertises multi-conn.
#include <libnbd.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "agent/transfer/source.h"

namespace ferry::agent::transfer {
namespace {

struct NbdClose {
  void operator()(nbd_handle* h) const { nbd_close(h); }
};
using NbdPtr = std::unique_ptr<nbd_handle, NbdClose>;

bool transient_errno(int e) {
  return e == EIO || e == EAGAIN || e == EINTR || e == ETIMEDOUT || e == ECONNRESET ||
         e == ENOTCONN || e == ESHUTDOWN || e == EPIPE || e == ECONNREFUSED;
}

std::string nbd_message() {
  const char* m = nbd_get_error();
  return m ? m : "unknown libnbd error";
}

// nbd://host[:port][/export] -> parts (for connecting a pre-bound socket).
struct TcpUri {
  std::string host, port = "10809", export_name;
};

Result<TcpUri> parse_tcp_uri(const std::string& uri) {
  TcpUri t;
  std::string rest = uri.substr(6);  // after nbd://
  rest = rest.substr(0, rest.find_first_of("?#"));
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  if (slash != std::string::npos) {
    std::string e = rest.substr(slash + 1);
    for (size_t i = 0; i < e.size(); i++) {  // percent-decoding
      if (e[i] == '%' && i + 2 < e.size()) {
        t.export_name += static_cast<char>(std::stoi(e.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        t.export_name += e[i];
      }
    }
  }
  if (!hostport.empty() && hostport[0] == '[') {
    auto rb = hostport.find(']');
    if (rb == std::string::npos) return Error(ErrorCode::kInvalidArgument, "bad NBD URI " + uri);
    t.host = hostport.substr(1, rb - 1);
    if (rb + 1 < hostport.size() && hostport[rb + 1] == ':') t.port = hostport.substr(rb + 2);
  } else {
    auto colon = hostport.find(':');
    t.host = hostport.substr(0, colon);
    if (colon != std::string::npos) t.port = hostport.substr(colon + 1);
  }
  if (t.host.empty()) return Error(ErrorCode::kInvalidArgument, "bad NBD URI " + uri);
  return t;
}

// TCP connection bound to spec.bind_address before connect().
Result<int> bound_socket(const SourceSpec& spec, const TcpUri& t) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(t.host.c_str(), t.port.c_str(), &hints, &res);
  if (rc != 0)
    return Error(ErrorCode::kUnavailable, "resolving " + t.host + ": " + gai_strerror(rc));
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    addrinfo bh{};
    bh.ai_family = ai->ai_family;
    bh.ai_socktype = SOCK_STREAM;
    bh.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    addrinfo* local = nullptr;
    if (::getaddrinfo(spec.bind_address.c_str(), nullptr, &bh, &local) != 0) {
      last = "bind address " + spec.bind_address + " is not a numeric address of this family";
      continue;
    }
    int fd = ::socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = fd >= 0 && ::bind(fd, local->ai_addr, local->ai_addrlen) == 0 &&
              ::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
    if (!ok) last = std::strerror(errno);
    ::freeaddrinfo(local);
    if (ok) {
      ::freeaddrinfo(res);
      return fd;
    }
    if (fd >= 0) ::close(fd);
  }
  ::freeaddrinfo(res);
  return Error(ErrorCode::kUnavailable, "connecting to " + t.host + ":" + t.port + " from " +
                                            spec.bind_address + ": " + last);
}

// nbd+unix:///export?socket=PATH -> (export, path).
Result<std::pair<std::string, std::string>> parse_unix_uri(const std::string& uri) {
  const std::string scheme = "nbd+unix://";
  auto q = uri.find('?');
  std::string path_part = uri.substr(scheme.size(), q == std::string::npos ? q : q - scheme.size());
  std::string socket;
  for (size_t at = q; at != std::string::npos && at < uri.size();) {
    size_t end = uri.find('&', at + 1);
    std::string kv = uri.substr(at + 1, end == std::string::npos ? end : end - at - 1);
    if (kv.rfind("socket=", 0) == 0) socket = kv.substr(7);
    at = end;
  }
  if (socket.empty())
    return Error(ErrorCode::kInvalidArgument, "NBD URI " + uri + " names no socket=");
  std::string exp = path_part.empty() ? "" : path_part.substr(1);
  return std::make_pair(exp, socket);
}

// TLS with a pre-shared key, required: set before connecting, so the
// handshake fails rather than fall back to a clear connection.
Status require_psk(nbd_handle* h, const SourceSpec& spec) {
  if (spec.uri.rfind("nbd://", 0) != 0 && spec.uri.rfind("nbd+unix://", 0) != 0)
    return Error(
        ErrorCode::kInvalidArgument,
        "TLS with a pre-shared key is for nbd:// and nbd+unix:// sources, not " + spec.uri);
  if (::access(spec.tls_psk_file.c_str(), R_OK) != 0)
    return Error(ErrorCode::kInvalidArgument,
                 "TLS pre-shared key file " + spec.tls_psk_file + ": " + std::strerror(errno));
  if (nbd_set_tls(h, LIBNBD_TLS_REQUIRE) == -1 ||
      nbd_set_tls_psk_file(h, spec.tls_psk_file.c_str()) == -1 ||
      (!spec.tls_username.empty() && nbd_set_tls_username(h, spec.tls_username.c_str()) == -1))
    return Error(ErrorCode::kInternal, "NBD TLS setup: " + nbd_message());
  return {};
}

Result<NbdPtr> connect_nbd(const SourceSpec& spec, bool want_extents) {
  NbdPtr h(nbd_create());
  if (!h) return Error(ErrorCode::kInternal, "nbd_create: " + nbd_message());
  if (want_extents && nbd_add_meta_context(h.get(), LIBNBD_CONTEXT_BASE_ALLOCATION) == -1)
    return Error(ErrorCode::kInternal, "nbd_add_meta_context: " + nbd_message());
  if (!spec.tls_psk_file.empty()) {
    // The URI's scheme says no TLS; nbd_connect_uri would turn it off again,
    // so connect by the URI's parts.
    if (auto s = require_psk(h.get(), spec); !s.ok()) return s.error();
    if (spec.bind_address.empty()) {
      bool unix_socket = spec.uri.rfind("nbd+unix://", 0) == 0;
      std::string exp, where;
      int rc;
      if (unix_socket) {
        auto u = parse_unix_uri(spec.uri);
        if (!u.ok()) return u.error();
        exp = u->first;
        where = u->second;
        rc = nbd_set_export_name(h.get(), exp.c_str());
        if (rc != -1) rc = nbd_connect_unix(h.get(), where.c_str());
      } else {
        auto t = parse_tcp_uri(spec.uri);
        if (!t.ok()) return t.error();
        rc = nbd_set_export_name(h.get(), t->export_name.c_str());
        if (rc != -1) rc = nbd_connect_tcp(h.get(), t->host.c_str(), t->port.c_str());
      }
      if (rc == -1)
        return Error(ErrorCode::kUnavailable,
                     "connecting with TLS to NBD source " + spec.uri + ": " + nbd_message());
      return h;
    }
  }
  if (!spec.bind_address.empty()) {
    if (spec.uri.rfind("nbd://", 0) != 0)
      return Error(
          ErrorCode::kInvalidArgument,
          "bind_address is supported only for nbd:// (plain TCP) sources, not " + spec.uri);
    auto t = parse_tcp_uri(spec.uri);
    if (!t.ok()) return t.error();
    auto fd = bound_socket(spec, *t);
    if (!fd.ok()) return fd.error();
    if (nbd_set_export_name(h.get(), t->export_name.c_str()) == -1 ||
        nbd_connect_socket(h.get(), *fd) == -1)
      return Error(ErrorCode::kUnavailable,
                   "connecting to NBD source " + spec.uri + ": " + nbd_message());
    return h;
  }
  if (nbd_connect_uri(h.get(), spec.uri.c_str()) == -1)
    return Error(ErrorCode::kUnavailable,
                 "connecting to NBD source " + spec.uri + ": " + nbd_message());
  return h;
}

// One connection, used by one worker thread. Completion callbacks run inside
// nbd_poll() on that same thread, so no locking.
class NbdReader : public SourceReader {
 public:
  NbdReader(const SourceSpec& spec, NbdPtr h) : spec_(spec), h_(std::move(h)) {}
  ~NbdReader() override { h_.reset(); }

  Status submit(uint64_t id, uint64_t offset, uint64_t length, char* buf) override {
    if (broken_) {
      done_.push_back({id, false, true, ErrorCode::kUnavailable, "NBD connection lost"});
      return {};
    }
    auto* op = new Op{this, id};
    inflight_.emplace(id, offset);
    int64_t cookie = nbd_aio_pread(h_.get(), buf, length, offset,
                                   nbd_completion_callback{&on_complete, op, &free_op}, 0);
    if (cookie == -1) {  // libnbd has already called free_op
      inflight_.erase(id);
      int e = nbd_get_errno();
      std::string msg = nbd_message();
      if (nbd_aio_is_dead(h_.get()) || nbd_aio_is_closed(h_.get())) mark_broken(msg);
      done_.push_back({id, false, transient_errno(e) || broken_, ErrorCode::kIo, msg});
    }
    return {};
  }

  void poll(int timeout_ms, std::vector<ReadCompletion>& out) override {
    if (done_.empty() && !inflight_.empty() && !broken_) {
      int r = nbd_poll(h_.get(), timeout_ms);
      if (r == -1 && nbd_get_errno() != EINTR) mark_broken(nbd_message());
      if (!broken_ && (conn_error_ || nbd_aio_is_dead(h_.get()) || nbd_aio_is_closed(h_.get())))
        mark_broken(conn_error_ ? "connection closed by the server" : nbd_message());
    }
    for (auto& c : done_) out.push_back(std::move(c));
    done_.clear();
  }

  size_t in_flight() const override { return inflight_.size() + done_.size(); }
  bool broken() const override { return broken_; }

  Status reconnect() override {
    h_.reset();
    auto h = connect_nbd(spec_, false);
    if (!h.ok()) return h.error();
    h_ = std::move(h.value());
    broken_ = false;
    conn_error_ = false;
    return {};
  }

 private:
  struct Op {
    NbdReader* self;
    uint64_t id;
  };
  static int on_complete(void* ud, int* error) noexcept {
    auto* op = static_cast<Op*>(ud);
    op->self->complete(op->id, *error);
    return 1;  // retire the command
  }
  static void free_op(void* ud) noexcept { delete static_cast<Op*>(ud); }

  void complete(uint64_t id, int err) noexcept {
    if (inflight_.erase(id) == 0) return;
    if (err == ENOTCONN || err == ESHUTDOWN || err == ECONNRESET || err == EPIPE)
      conn_error_ = true;
    try {
      if (err == 0)
        done_.push_back({id, true, false, ErrorCode::kOk, ""});
      else
        done_.push_back({id, false, transient_errno(err), ErrorCode::kIo, std::strerror(err)});
    } catch (...) {
    }
  }

  void mark_broken(const std::string& why) {
    broken_ = true;
    for (auto& [id, off] : inflight_)
      done_.push_back({id, false, true, ErrorCode::kUnavailable, "NBD connection lost: " + why});
    inflight_.clear();
  }

  const SourceSpec& spec_;
  NbdPtr h_;
  std::unordered_map<uint64_t, uint64_t> inflight_;  // id -> offset
  std::vector<ReadCompletion> done_;
  bool broken_ = false;
  bool conn_error_ = false;  // a command failed because the connection went away
};

class NbdSource : public Source {
 public:
  explicit NbdSource(SourceSpec spec) : spec_(std::move(spec)) {}

  Result<SourceInfo> open(const CopyOptions& opts) override {
    auto h = connect_nbd(spec_, true);
    if (!h.ok()) return h.error();
    probe_ = std::move(h.value());
    SourceInfo info;
    int64_t size = nbd_get_size(probe_.get());
    if (size < 0)
      return Error(ErrorCode::kIo, "NBD source " + spec_.uri + ": size: " + nbd_message());
    info.size = static_cast<uint64_t>(size);
    info.has_extents = nbd_can_meta_context(probe_.get(), LIBNBD_CONTEXT_BASE_ALLOCATION) == 1;
    bool multi = nbd_can_multi_conn(probe_.get()) == 1;
    info.workers = multi ? std::max(1, opts.connections) : 1;
    info.parallel = std::max(1, opts.requests);
    int64_t max = nbd_get_block_size(probe_.get(), LIBNBD_SIZE_MAXIMUM);
    info.max_request = max > 0 ? static_cast<uint64_t>(max) : 0;
    info.identity = spec_.identity.empty() ? spec_.uri : spec_.identity;
    return info;
  }

  Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override {
    std::vector<Extent> out;
    // Ask for at most 1 GiB at a time: the count is 32-bit in the protocol.
    uint64_t count = std::min<uint64_t>(length, 1ULL << 30);
    struct Ctx {
      std::vector<Extent>* out;
      uint64_t end;
    } ctx{&out, offset + count};
    auto cb = [](void* ud, const char* meta, uint64_t off, uint32_t* entries, size_t n,
                 int* error) noexcept -> int {
      auto* c = static_cast<Ctx*>(ud);
      if (std::strcmp(meta, LIBNBD_CONTEXT_BASE_ALLOCATION) != 0) return 0;
      try {
        for (size_t i = 0; i + 1 < n && off < c->end; i += 2) {
          uint64_t len = std::min<uint64_t>(entries[i], c->end - off);
          c->out->push_back({off, len, (entries[i + 1] & LIBNBD_STATE_ZERO) != 0});
          off += len;
        }
      } catch (...) {
        return -1;
      }
      return 0;
    };
    if (nbd_block_status(probe_.get(), count, offset, nbd_extent_callback{cb, &ctx, nullptr}, 0) ==
        -1)
      return Error(ErrorCode::kIo, "NBD source " + spec_.uri + ": block status at offset " +
                                       std::to_string(offset) + ": " + nbd_message());
    if (out.empty())
      return Error(ErrorCode::kIo, "NBD source " + spec_.uri +
                                       ": server returned no extents at offset " +
                                       std::to_string(offset));
    return merge_extents(out);
  }

  Result<std::unique_ptr<SourceReader>> new_reader() override {
    auto h = connect_nbd(spec_, false);
    if (!h.ok()) return h.error();
    return std::unique_ptr<SourceReader>(new NbdReader(spec_, std::move(h.value())));
  }

  void close_probe() override { probe_.reset(); }

 private:
  SourceSpec spec_;
  NbdPtr probe_;
};

}  // namespace

Result<std::unique_ptr<Source>> make_nbd_source(const SourceSpec& spec) {
  return std::unique_ptr<Source>(new NbdSource(spec));
}

}  // namespace ferry::agent::transfer
