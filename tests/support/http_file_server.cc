#include "tests/support/http_file_server.h"

#include "tests/support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ferry::test {
namespace {

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t");
  size_t e = s.find_last_not_of(" \t\r");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

HttpFileServer::HttpFileServer(std::string file, HttpFileServerOptions opts)
    : file_(std::move(file)), opts_(std::move(opts)) {
  listen_fd_ = listen_loopback(&port_);
  acceptor_ = std::thread([this] { accept_loop(); });
}

HttpFileServer::~HttpFileServer() {
  stop_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  acceptor_.join();
  ::close(listen_fd_);
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (int fd : conns_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : workers_) t.join();
}

std::string HttpFileServer::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void HttpFileServer::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::lock_guard<std::mutex> lk(mu_);
    conns_.push_back(fd);
    workers_.emplace_back([this, fd] { serve(fd); });
  }
}

void HttpFileServer::serve(int fd) {
  std::string buf;
  std::vector<char> body(1 << 20);
  int file = ::open(file_.c_str(), O_RDONLY | O_CLOEXEC);
  bool keep = file >= 0;
  while (keep && !stop_) {
    // Read one request head.
    size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      char tmp[4096];
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        keep = false;
        break;
      }
      buf.append(tmp, static_cast<size_t>(n));
    }
    if (!keep) break;
    std::string head = buf.substr(0, end);
    buf.erase(0, end + 4);

    std::string method, range, conn_hdr;
    bool authorized = opts_.required_header.empty();
    size_t pos = 0;
    bool first = true;
    while (pos <= head.size()) {
      size_t nl = head.find("\r\n", pos);
      if (nl == std::string::npos) nl = head.size();
      std::string line = head.substr(pos, nl - pos);
      pos = nl + 2;
      if (first) {
        method = line.substr(0, line.find(' '));
        first = false;
        continue;
      }
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string name = lower(trim(line.substr(0, colon)));
      std::string value = trim(line.substr(colon + 1));
      if (name == "range") range = value;
      if (name == "connection") conn_hdr = lower(value);
      if (!opts_.required_header.empty() && lower(trim(line)) == lower(opts_.required_header))
        authorized = true;
    }
    if (conn_hdr == "close") keep = false;

    struct stat st;
    ::fstat(file, &st);
    uint64_t size = static_cast<uint64_t>(st.st_size);
    auto respond = [&](const std::string& status, const std::string& extra, uint64_t len) {
      std::string h = "HTTP/1.1 " + status + "\r\nContent-Length: " + std::to_string(len) +
                      "\r\nAccept-Ranges: bytes\r\n" + extra +
                      (keep ? "" : "Connection: close\r\n") + "\r\n";
      return send_all(fd, h.data(), h.size());
    };
    if (method != "GET" && method != "HEAD") {
      keep = respond("405 Method Not Allowed", "", 0) && keep;
      continue;
    }
    if (!authorized) {
      keep = respond("401 Unauthorized", "", 0) && keep;
      continue;
    }
    uint64_t first_byte = 0, last_byte = size ? size - 1 : 0;
    bool partial = false;
    if (!range.empty() && !opts_.ignore_range && range.rfind("bytes=", 0) == 0 &&
        range.find(',') == std::string::npos) {
      std::string spec = range.substr(6);
      auto dash = spec.find('-');
      bool ok = dash != std::string::npos;
      try {
        if (ok && dash == 0) {  // suffix: bytes=-N
          uint64_t n = std::stoull(spec.substr(1));
          first_byte = n >= size ? 0 : size - n;
        } else if (ok) {
          first_byte = std::stoull(spec.substr(0, dash));
          if (dash + 1 < spec.size())
            last_byte = std::min<uint64_t>(std::stoull(spec.substr(dash + 1)), size - 1);
        }
      } catch (...) {
        ok = false;
      }
      if (ok && (first_byte >= size || last_byte < first_byte)) {
        keep = respond("416 Range Not Satisfiable",
                       "Content-Range: bytes */" + std::to_string(size) + "\r\n", 0) &&
               keep;
        continue;
      }
      partial = ok;
    }
    if (partial && method == "GET") {
      uint64_t n = ++ranged_gets_;
      if (opts_.fail_every_n > 0 && n % static_cast<uint64_t>(opts_.fail_every_n) == 0) {
        keep = respond("503 Service Unavailable", "", 0) && keep;
        continue;
      }
    }
    bool reset = partial && method == "GET" && opts_.reset_every_n > 0 &&
                 ranged_gets_.load() % static_cast<uint64_t>(opts_.reset_every_n) == 0;
    uint64_t len = size == 0 ? 0 : last_byte - first_byte + 1;
    std::string extra = "Content-Type: application/octet-stream\r\n";
    if (partial) {
      extra += "Content-Range: bytes " + std::to_string(first_byte) + "-" +
               std::to_string(last_byte) + "/" + std::to_string(size) + "\r\n";
    }
    if (!respond(partial ? "206 Partial Content" : "200 OK", extra, len)) break;
    if (method == "HEAD") continue;
    uint64_t sent = 0;
    uint64_t limit = reset ? len / 2 : len;
    while (sent < limit) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(body.size(), limit - sent));
      ssize_t r = ::pread(file, body.data(), want, static_cast<off_t>(first_byte + sent));
      if (r <= 0 || !send_all(fd, body.data(), static_cast<size_t>(r))) {
        keep = false;
        break;
      }
      sent += static_cast<uint64_t>(r);
      body_bytes_ += static_cast<uint64_t>(r);
    }
    if (reset) keep = false;
  }
  if (file >= 0) ::close(file);
  std::lock_guard<std::mutex> lk(mu_);
  conns_.erase(std::remove(conns_.begin(), conns_.end(), fd), conns_.end());
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

}  // namespace ferry::test
