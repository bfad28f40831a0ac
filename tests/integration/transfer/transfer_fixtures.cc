#include "tests/integration/transfer/transfer_fixtures.h"

#include "agent/transfer/checkpoint.h"
#include "agent/transfer/plan.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>

namespace ferry::agent::transfer::testing {

using namespace std::chrono_literals;

namespace {
// Starts `argv` and waits until it listens on the unix socket `sock`.
std::unique_ptr<ferry::test::Subprocess> start_socket_server(const ferry::test::TempDir& dir,
                                                             std::vector<std::string> argv,
                                                             const std::string& sock,
                                                             const std::string& name) {
  auto proc = std::make_unique<ferry::test::Subprocess>(
      std::move(argv), ferry::test::SubprocessOptions{.log_dir = dir.path(), .name = name});
  if (!ferry::test::eventually(10s,
                               [&] { return ferry::test::path_exists(sock) || !proc->alive(); }) ||
      !proc->alive())
    throw std::runtime_error(name + " did not start: " + proc->stderr_text());
  return proc;
}
}  // namespace

Nbdkit::Nbdkit(const ferry::test::TempDir& dir, std::vector<std::string> args,
               const std::string& name)
    : sock_(dir.file(name + ".sock")) {
  std::vector<std::string> argv{ferry::test::require_program("nbdkit"), "-f", "--exit-with-parent",
                                "-U", sock_};
  argv.insert(argv.end(), args.begin(), args.end());
  proc_ = start_socket_server(dir, std::move(argv), sock_, name);
}

QemuNbd::QemuNbd(const ferry::test::TempDir& dir, const std::string& image,
                 const std::string& format, const std::vector<std::string>& extra)
    : sock_(dir.file("qemu-nbd.sock")) {
  std::vector<std::string> argv = {ferry::test::require_program("qemu-nbd"),
                                   "-r",
                                   "-t",
                                   "--shared=8",
                                   "-f",
                                   format,
                                   "-k",
                                   sock_};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back(image);
  proc_ = start_socket_server(dir, argv, sock_, "qemu-nbd");
}

SourceSpec QemuNbd::source() const { return SourceSpec{.uri = "nbd+unix:///?socket=" + sock_}; }

void Nbdkit::stop() {
  proc_->signal(SIGTERM);
  if (!proc_->wait(10s)) proc_->kill();
  ::unlink(sock_.c_str());  // so a restarted server can bind the same path
}

SourceSpec nbd_source(const Nbdkit& n) {
  SourceSpec s;
  s.uri = n.uri();
  return s;
}

CopyOptions test_options() {
  CopyOptions o;
  o.block_size = 1 * MiB;
  o.connections = 4;
  o.requests = 8;
  return o;
}

void write_zeros(const std::string& path, uint64_t offset, uint64_t length) {
  int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) throw std::runtime_error("open " + path);
  std::string zeros(length, '\0');
  if (::pwrite(fd, zeros.data(), length, static_cast<off_t>(offset)) !=
      static_cast<ssize_t>(length))
    throw std::runtime_error("pwrite " + path);
  ::close(fd);
}

void copy_until_checkpoint_then_kill(const ferry::test::TempDir& dir,
                                     const std::vector<std::string>& args, const std::string& cp,
                                     uint64_t claimed) {
  std::vector<std::string> argv{FERRY_COPY_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  ferry::test::Subprocess copy(argv, {.log_dir = dir.path(), .name = "copy-killed"});
  bool reached = ferry::test::eventually(20s, [&] {
    if (!ferry::test::path_exists(cp)) return false;
    auto l = load_checkpoint(cp);
    return l.ok() && l->found && total_length(l->cp.done) >= claimed;
  });
  if (!reached)
    throw std::runtime_error("checkpoint " + cp + " never claimed " + std::to_string(claimed) +
                             " bytes: " + copy.stderr_text());
  copy.signal(SIGKILL);
  if (copy.wait(5s) != 128 + SIGKILL) throw std::runtime_error("ferry-copy did not die of SIGKILL");
}

uint64_t json_u64(const std::string& json, const std::string& key) {
  auto pos = json.find("\"" + key + "\":");
  if (pos == std::string::npos) throw std::runtime_error("no " + key + " in " + json);
  return std::stoull(json.substr(pos + key.size() + 3));
}

std::string psk_file(const ferry::test::TempDir& dir, const std::string& name,
                     const std::string& user) {
  unsigned char raw[32];
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  if (!urandom.read(reinterpret_cast<char*>(raw), sizeof raw))
    throw std::runtime_error("cannot read /dev/urandom");
  std::string hex;
  static const char* digits = "0123456789abcdef";
  for (unsigned char c : raw) {
    hex += digits[c >> 4];
    hex += digits[c & 15];
  }
  std::string path = dir.file(name);
  ferry::test::write_file(path, user + ":" + hex + "\n");
  return path;
}

}  // namespace ferry::agent::transfer::testing
