#include "agent/volumes/volume_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
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

#include "agent/transfer/stage.h"

extern char** environ;

namespace ferry::agent::volumes {

namespace {

std::string tail_of(const std::string& path) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!all.empty() && (all.back() == '\n' || all.back() == ' ')) all.pop_back();
  return all.size() > 400 ? all.substr(all.size() - 400) : all;
}

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

void stop_process(int pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
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
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawnp(&pid, "nbdkit", &fa, nullptr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
      return Error(ErrorCode::kNotFound, std::string("serve: cannot run nbdkit: ") + strerror(rc));
    // nbdkit writes its pid file once it listens.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    struct stat st;
    bool exited = false;
    while (::stat(pidfile.c_str(), &st) != 0) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        stop_process(pid);
        return Error(ErrorCode::kTimeout, "serve: nbdkit did not start: " + tail_of(log));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (exited) {
      if (tail_of(log).find("in use") != std::string::npos) continue;
      return Error(ErrorCode::kUnavailable, "serve: nbdkit exited: " + tail_of(log));
    }
    s->pid_ = pid;
    s->port_ = *port;
    return s;
  }
  return Error(ErrorCode::kUnavailable, "serve: no free port on " + o.address);
}

VolumeServer::~VolumeServer() {
  stop_process(pid_);
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
