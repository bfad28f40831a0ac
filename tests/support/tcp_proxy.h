#pragma once
// TcpProxy: forwards connections from 127.0.0.1:<port()> to 127.0.0.1:<to>,
// byte for byte (TLS passes through). cut() closes every connection and
// answers new ones by closing them, as if the network between one client
// and its server were gone; restore() forwards again. One thread; the
// destructor stops it and closes everything.
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace ferry::test {

class TcpProxy {
 public:
  explicit TcpProxy(int to_port);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  int port() const { return port_; }
  void cut();
  void restore();

 private:
  struct Pair {
    int client, server;
  };
  void loop();
  void close_all();  // with mu_ held

  int to_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  bool cut_ = false;
  std::vector<Pair> pairs_;
  std::thread thread_;
};

}  // namespace ferry::test
