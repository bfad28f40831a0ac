#include "tests/support/tcp_proxy.h"

#include "tests/support/test_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace ferry::test {
namespace {

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Moves what `from` has to `to`; false when either side is done.
bool pump(int from, int to) {
  char buf[65536];
  ssize_t n = ::recv(from, buf, sizeof buf, 0);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  for (char* p = buf; n > 0;) {
    ssize_t w = ::send(to, p, static_cast<size_t>(n), MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= w;
  }
  return true;
}

}  // namespace

TcpProxy::TcpProxy(int to_port) : to_port_(to_port) {
  listen_fd_ = listen_loopback(&port_);
  thread_ = std::thread([this] { loop(); });
}

TcpProxy::~TcpProxy() {
  stop_ = true;
  thread_.join();
  std::lock_guard<std::mutex> l(mu_);
  close_all();
  ::close(listen_fd_);
}

void TcpProxy::cut() {
  std::lock_guard<std::mutex> l(mu_);
  cut_ = true;
  close_all();
}

void TcpProxy::restore() {
  std::lock_guard<std::mutex> l(mu_);
  cut_ = false;
}

void TcpProxy::close_all() {
  for (const Pair& p : pairs_) {
    ::close(p.client);
    ::close(p.server);
  }
  pairs_.clear();
}

void TcpProxy::loop() {
  while (!stop_) {
    std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
    std::vector<Pair> pairs;
    {
      std::lock_guard<std::mutex> l(mu_);
      pairs = pairs_;
    }
    for (const Pair& p : pairs) {
      fds.push_back({p.client, POLLIN, 0});
      fds.push_back({p.server, POLLIN, 0});
    }
    if (::poll(fds.data(), fds.size(), 100) <= 0) continue;
    std::lock_guard<std::mutex> l(mu_);
    if (fds[0].revents & POLLIN) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0 && cut_) {
        ::close(c);
      } else if (c >= 0) {
        int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a = loopback(to_port_);
        if (s >= 0 && ::connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
          pairs_.push_back({c, s});
        } else {
          if (s >= 0) ::close(s);
          ::close(c);
        }
      }
    }
    // Pairs cut() closed meanwhile are no longer in pairs_; their fds may
    // have been reused, so only pairs still listed are served.
    for (size_t i = 0; i < pairs.size(); ++i) {
      const Pair& p = pairs[i];
      auto it = pairs_.begin();
      while (it != pairs_.end() && (it->client != p.client || it->server != p.server)) ++it;
      if (it == pairs_.end()) continue;
      short rc = fds[1 + 2 * i].revents, rs = fds[2 + 2 * i].revents;
      bool ok = true;
      if (rc & (POLLIN | POLLHUP | POLLERR)) ok = pump(p.client, p.server);
      if (ok && (rs & (POLLIN | POLLHUP | POLLERR))) ok = pump(p.server, p.client);
      if (!ok) {
        ::close(p.client);
        ::close(p.server);
        pairs_.erase(it);
      }
    }
  }
}

}  // namespace ferry::test
