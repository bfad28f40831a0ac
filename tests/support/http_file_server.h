#pragma once
// HttpFileServer: a tiny HTTP/1.1 server for tests that serves one file at
// every path, with RFC 7233 single-range support (206 + Content-Range, 416 when
// unsatisfiable; a multi-range request gets the whole file with 200, which RFC
// 7233 allows). GET and HEAD, keep-alive. Listens on 127.0.0.1 on an ephemeral
// port. One accept thread plus one thread per connection; the destructor stops
// and joins them all. Fault knobs simulate a flaky server.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::test {

struct HttpFileServerOptions {
  std::string required_header;  // e.g. "Cookie: s=1"; requests without it get 401 ("" = none)
  int fail_every_n = 0;         // every n-th ranged GET is answered 503 (0 = never)
  int reset_every_n = 0;        // every n-th ranged GET closes the connection mid-body (0 = never)
  bool ignore_range = false;    // answer 200 with the whole body (a server without Range support)
};

class HttpFileServer {
 public:
  explicit HttpFileServer(std::string file, HttpFileServerOptions opts = {});
  ~HttpFileServer();
  HttpFileServer(const HttpFileServer&) = delete;
  HttpFileServer& operator=(const HttpFileServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path = "/disk.img") const;
  uint64_t ranged_gets() const { return ranged_gets_.load(); }
  uint64_t body_bytes_sent() const { return body_bytes_.load(); }

 private:
  void accept_loop();
  void serve(int fd);

  std::string file_;
  HttpFileServerOptions opts_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> ranged_gets_{0};
  std::atomic<uint64_t> body_bytes_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> conns_;
};

}  // namespace ferry::test
