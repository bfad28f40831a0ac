#include "tests/support/test_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace ferry::test {
namespace {

[[noreturn]] void fail_errno(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

std::string tmp_root() {
  const char* t = std::getenv("TMPDIR");
  return (t && *t) ? t : "/tmp";
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// splitmix64: a good, cheap, stateless mixer.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

void fill_buffer(char* buf, uint64_t offset, uint64_t len, Fill fill, uint64_t seed) {
  // Content is a function of the absolute 8-byte word index, so a run written
  // in pieces is identical to one written at once.
  for (uint64_t i = 0; i < len;) {
    uint64_t abs = offset + i;
    uint64_t word_off = abs & ~7ULL;
    uint64_t w = fill == Fill::kPattern ? word_off : (mix(word_off ^ mix(seed)) | 1);
    unsigned char bytes[8];
    for (int b = 0; b < 8; b++) bytes[b] = static_cast<unsigned char>(w >> (56 - 8 * b));
    for (uint64_t k = abs - word_off; k < 8 && i < len; k++, i++) buf[i] = bytes[k];
  }
}

std::atomic<int> g_counter{0};

}  // namespace

TempDir::TempDir(const std::string& prefix) {
  std::string tmpl = tmp_root() + "/" + prefix + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!::mkdtemp(buf.data())) fail_errno("mkdtemp " + tmpl);
  path_ = buf.data();
  if (std::getenv("FERRY_KEEP_TEST_DIRS")) keep_ = true;
}

TempDir::~TempDir() {
  if (keep_) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Subprocess::Subprocess(std::vector<std::string> argv, SubprocessOptions opts) {
  if (argv.empty()) throw std::runtime_error("Subprocess: empty argv");
  std::string dir = opts.log_dir.empty() ? tmp_root() : opts.log_dir;
  std::string name = opts.name;
  if (name.empty()) {
    name = std::filesystem::path(argv[0]).filename().string() + "-" + std::to_string(::getpid()) +
           "-" + std::to_string(g_counter++);
  }
  stdout_path_ = dir + "/" + name + ".stdout";
  stderr_path_ = dir + "/" + name + ".stderr";

  // Everything the child needs is prepared before fork(): after fork() in a
  // multi-threaded process only async-signal-safe calls are allowed.
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    bool overridden = false;
    for (auto& o : opts.env) {
      auto eq = o.find('=');
      if (eq != std::string::npos && kv.compare(0, eq + 1, o, 0, eq + 1) == 0) overridden = true;
    }
    if (!overridden) env_strings.push_back(kv);
  }
  for (auto& o : opts.env) env_strings.push_back(o);
  std::vector<char*> cenv;
  for (auto& e : env_strings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  int out = ::open(stdout_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) fail_errno("open " + stdout_path_);
  int err = ::open(stderr_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (err < 0) {
    ::close(out);
    fail_errno("open " + stderr_path_);
  }
  pid_t parent = ::getpid();
  const char* cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out);
    ::close(err);
    fail_errno("fork");
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // parent died before prctl
    // Restore default signal dispositions and mask (the parent may block some).
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    if (cwd && ::chdir(cwd) != 0) ::_exit(127);
    ::execvpe(cargv[0], cargv.data(), cenv.data());
    const char msg[] = "Subprocess: exec failed\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(out);
  ::close(err);
  pid_ = pid;
}

Subprocess::~Subprocess() { kill(); }

bool Subprocess::reap(bool block) {
  if (pid_ < 0 || exit_code_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  if (r < 0) {
    exit_code_ = -1;  // not our child any more (someone else reaped it)
    return true;
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return true;
}

bool Subprocess::alive() { return !reap(false); }

void Subprocess::signal(int sig) {
  if (pid_ > 0 && !exit_code_) ::kill(pid_, sig);
}

std::optional<int> Subprocess::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!reap(false)) {
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return exit_code_;
}

void Subprocess::kill() {
  if (pid_ < 0 || exit_code_) return;
  ::kill(pid_, SIGKILL);
  reap(true);
}

std::string Subprocess::stdout_text() const { return read_file(stdout_path_); }
std::string Subprocess::stderr_text() const { return read_file(stderr_path_); }

bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& pred,
                std::chrono::milliseconds interval) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string cand = dir + "/" + name;
    struct stat st;
    if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0)
      return cand;
    start = end + 1;
  }
  return "";
}

std::string require_program(const std::string& name) {
  std::string p = find_program(name);
  if (p.empty()) {
    throw std::runtime_error("required program '" + name +
                             "' not found in PATH; run tools/install-deps (tests never skip a "
                             "missing prerequisite)");
  }
  return p;
}

std::string read_file(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) fail_errno("open " + path);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("read " + path);
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void write_file(const std::string& path, const std::string& data) {
  Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (f.fd < 0) fail_errno("open " + path);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(f.fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_errno("write " + path);
    done += static_cast<size_t>(n);
  }
}

bool path_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

uint64_t file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail_errno("stat " + path);
  return static_cast<uint64_t>(st.st_size);
}

uint64_t allocated_bytes(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) fail_errno("stat " + path);
  return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::vector<Extent> data_extents(const std::string& path) {
  Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0) fail_errno("open " + path);
  struct stat st;
  if (::fstat(f.fd, &st) != 0) fail_errno("fstat " + path);
  std::vector<Extent> out;
  off_t pos = 0;
  while (pos < st.st_size) {
    off_t data = ::lseek(f.fd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break;
      fail_errno("SEEK_DATA " + path);
    }
    off_t hole = ::lseek(f.fd, data, SEEK_HOLE);
    if (hole < 0) fail_errno("SEEK_HOLE " + path);
    out.push_back({static_cast<uint64_t>(data), static_cast<uint64_t>(hole - data)});
    pos = hole;
  }
  return out;
}

std::optional<uint64_t> first_difference(const std::string& a, const std::string& b) {
  Fd fa(::open(a.c_str(), O_RDONLY | O_CLOEXEC));
  if (fa.fd < 0) fail_errno("open " + a);
  Fd fb(::open(b.c_str(), O_RDONLY | O_CLOEXEC));
  if (fb.fd < 0) fail_errno("open " + b);
  std::vector<char> ba(1 << 20), bb(1 << 20);
  uint64_t off = 0;
  for (;;) {
    ssize_t na = ::pread(fa.fd, ba.data(), ba.size(), static_cast<off_t>(off));
    ssize_t nb = ::pread(fb.fd, bb.data(), bb.size(), static_cast<off_t>(off));
    if (na < 0 || nb < 0) fail_errno("pread");
    size_t n = static_cast<size_t>(std::min(na, nb));
    if (std::memcmp(ba.data(), bb.data(), n) != 0) {
      for (size_t i = 0; i < n; i++)
        if (ba[i] != bb[i]) return off + i;
    }
    if (na != nb) return off + n;
    if (na == 0) return std::nullopt;
    off += n;
  }
}

void write_run(const std::string& path, const DataRun& run) {
  Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (f.fd < 0) fail_errno("open " + path);
  std::vector<char> buf(1 << 20);
  for (uint64_t done = 0; done < run.length;) {
    uint64_t n = std::min<uint64_t>(buf.size(), run.length - done);
    fill_buffer(buf.data(), run.offset + done, n, run.fill, run.seed);
    ssize_t w = ::pwrite(f.fd, buf.data(), n, static_cast<off_t>(run.offset + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) fail_errno("pwrite " + path);
    done += static_cast<uint64_t>(w);
  }
}

void make_sparse_image(const std::string& path, uint64_t size, const std::vector<DataRun>& runs) {
  {
    Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (f.fd < 0) fail_errno("open " + path);
    if (::ftruncate(f.fd, static_cast<off_t>(size)) != 0) fail_errno("ftruncate " + path);
  }
  for (const auto& r : runs) {
    if (r.offset + r.length > size) throw std::runtime_error("make_sparse_image: run past end");
    write_run(path, r);
  }
}

int listen_loopback(int* port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 64) != 0) {
    int err = errno;
    ::close(fd);
    throw std::runtime_error("bind/listen: " + std::string(std::strerror(err)));
  }
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

std::string run_ok(const TempDir& dir, std::vector<std::string> argv, const std::string& name,
                   std::chrono::milliseconds timeout) {
  SubprocessOptions o;
  o.log_dir = dir.path();
  o.name = name;
  Subprocess p(std::move(argv), o);
  auto rc = p.wait(timeout);
  if (!rc || *rc != 0)
    throw std::runtime_error(name + " failed (" + (rc ? std::to_string(*rc) : "timeout") +
                             "): " + p.stderr_text());
  return p.stdout_text();
}

}  // namespace ferry::test
