#include "agent/volumes/volume_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "agent/nbdkit_child.h"
#include "agent/transfer/stage.h"

namespace ferry::agent::volumes {

namespace {

// A port on `address` that was free a moment ago (nbdkit 1.32 cannot say
// which port it took with -p 0).
Result<int> free_port(const std::string& address) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1)
    return Error(ErrorCode::kInvalidArgument, "serve: \"" + address + "\" is not an IPv4 address");
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorCode::kIo, std::string("socket: ") + strerror(errno));
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    Error e(ErrorCode::kUnavailable,
            "serve: cannot listen on " + address + ": " + std::string(strerror(errno)));
    ::close(fd);
    return e;
  }
  ::close(fd);
  return static_cast<int>(ntohs(a.sin_port));
}

}  // namespace

Result<uint64_t> volume_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Error(ErrorCode::kNotFound, "volume " + path + ": " + strerror(errno));
  if (S_ISREG(st.st_mode)) return static_cast<uint64_t>(st.st_size);
  if (!S_ISBLK(st.st_mode))
    return Error(ErrorCode::kInvalidArgument, "volume " + path + " is not a file or block device");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error(ErrorCode::kIo, "volume " + path + ": " + strerror(errno));
  uint64_t size = 0;
  int rc = ::ioctl(fd, BLKGETSIZE64, &size);
  ::close(fd);
  if (rc != 0) return Error(ErrorCode::kIo, "volume " + path + ": " + strerror(errno));
  return size;
}

Result<std::unique_ptr<VolumeServer>> VolumeServer::start(const ServeOptions& o) {
  std::unique_ptr<VolumeServer> s(new VolumeServer());
  s->address_ = o.address;
  s->work_dir_ = o.work_dir;
  std::error_code ec;
  std::filesystem::remove_all(o.work_dir, ec);
  // Only the exports in the served directory; nbdkit's log and pid file beside it.
  const std::string exports = o.work_dir + "/export";
  std::filesystem::create_directories(exports, ec);
  if (ec) return Error(ErrorCode::kIo, "serve: making " + exports + ": " + ec.message());
  ::chmod(o.work_dir.c_str(), 0700);

  auto hashes = transfer::hash_file_blocks(o.volume, o.size, nullptr, o.cancel);
  if (!hashes.ok()) return hashes.error().wrap("serve: hashing the volume");
  s->digest_ = transfer::digest_of(*hashes);
  {
    std::string path = exports + "/digests";
    std::string data = transfer::encode_block_hashes(*hashes);
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
    if (!out.flush()) return Error(ErrorCode::kIo, "serve: writing " + path);
  }
  std::filesystem::create_symlink(o.volume, exports + "/disk", ec);
  if (ec) return Error(ErrorCode::kIo, "serve: linking " + o.volume + ": " + ec.message());

  std::string log = o.work_dir + "/nbdkit.log";
  std::string pidfile = o.work_dir + "/nbdkit.pid";
  // A port taken between our probe and nbdkit's bind makes nbdkit exit: try again.
  for (int attempt = 0; attempt < 5; attempt++) {
    auto port = free_port(o.address);
    if (!port.ok()) return port.error();
    ::unlink(pidfile.c_str());
    std::vector<std::string> argv = {"nbdkit",
                                     "-f",
                                     "-r",
                                     "--exit-with-parent",
                                     "--tls=require",
                                     "--tls-psk=" + o.psk_file,
                                     "-i",
                                     o.address,
                                     "-p",
                                     std::to_string(*port),
                                     "-P",
                                     pidfile,
                                     "--filter=noparallel",
                                     "file",
                                     "dir=" + exports};
    // nbdkit writes its pid file once it listens.
    auto pid = spawn_until_ready(
        argv, log,
        [&] {
          struct stat st;
          return ::stat(pidfile.c_str(), &st) == 0;
        },
        "serve");
    if (!pid.ok()) {
      // A port taken between our probe and nbdkit's bind: try another.
      if (log_tail(log).find("in use") != std::string::npos) continue;
      return pid.error();
    }
    s->pid_ = *pid;
    s->port_ = *port;
    return s;
  }
  return Error(ErrorCode::kUnavailable, "serve: no free port on " + o.address);
}

VolumeServer::~VolumeServer() {
  stop_child(pid_);
  std::error_code ec;
  if (!work_dir_.empty()) std::filesystem::remove_all(work_dir_, ec);
}

bool VolumeServer::alive() {
  if (pid_ <= 0) return false;
  if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
    pid_ = -1;
    return false;
  }
  return true;
}

std::string VolumeServer::disk_uri() const {
  return "nbd://" + address_ + ":" + std::to_string(port_) + "/disk";
}

std::string VolumeServer::digests_uri() const {
  return "nbd://" + address_ + ":" + std::to_string(port_) + "/digests";
}

}  // namespace ferry::agent::volumes
