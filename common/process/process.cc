#include "common/process/process.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>

extern char** environ;

namespace ferry::process {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kMaxLine = 64 * 1024;  // a longer line is cut: the debug log has huge ones

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

std::string find_in_path(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    std::string dir = dirs.substr(start, end - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + name;
    struct stat st;
    if (stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return "";
}

// The agent's environment with spec.env laid over it (same key: spec wins).
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (const auto& x : extra)
      if (key_of(x) == key_of(kv)) replaced = true;
    if (!replaced) out.push_back(std::move(kv));
  }
  for (const auto& x : extra) out.push_back(x);
  return out;
}

std::vector<char*> c_array(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// The leader has ended (zombie or gone); does not reap it, so its pid (= the session id) cannot
// be reused while the session is swept.
bool leader_ended(pid_t pid) {
  siginfo_t info{};
  if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == ECHILD;
  return info.si_pid == pid;
}

class LineSplitter {
 public:
  template <typename F>
  void feed(const char* data, size_t n, F&& emit) {
    for (size_t i = 0; i < n; ++i) {
      char c = data[i];
      if (c == '\n' || c == '\r') {
        // "\r\n" must not yield an empty line after each real one.
        if (!(c == '\n' && last_was_cr_ && partial_.empty())) emit(partial_);
        partial_.clear();
        last_was_cr_ = (c == '\r');
        continue;
      }
      last_was_cr_ = false;
      if (partial_.size() < kMaxLine) partial_.push_back(c);
    }
  }
  template <typename F>
  void flush(F&& emit) {
    if (!partial_.empty()) emit(partial_);
    partial_.clear();
  }

 private:
  std::string partial_;
  bool last_was_cr_ = false;
};

}  // namespace

std::vector<pid_t> session_members(pid_t sid) {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || pid <= 0) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/stat");
    std::string stat;
    if (!std::getline(in, stat)) continue;
    // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
    size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0;
    if (sscanf(stat.c_str() + close + 1, " %c %ld %ld %ld", &state, &ppid, &pgrp, &session) != 4)
      continue;
    if (session == sid && state != 'Z' && state != 'X') out.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return out;
}

int kill_session(pid_t sid, int rounds) {
  int killed = 0;
  for (int i = 0; i < rounds; ++i) {
    auto members = session_members(sid);
    if (members.empty()) break;
    for (pid_t p : members)
      if (p != getpid() && ::kill(p, SIGKILL) == 0) ++killed;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return killed;
}

Result<ProcessOutcome> run_process(const ProcessSpec& spec) {
  if (spec.argv.empty()) return make_error(ErrorCode::kInvalidArgument, "empty command line");
  std::string path = find_in_path(spec.argv[0]);
  if (path.empty())
    return make_error(ErrorCode::kNotFound, "program " + spec.argv[0] + " not found in PATH");

  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::vector<std::string> argv_s = spec.argv;
  std::vector<std::string> env_s = merged_env(spec.env);
  std::vector<char*> argv = c_array(argv_s);
  std::vector<char*> envp = c_array(env_s);

  int out_pipe[2], err_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0)
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + strerror(errno));
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  // Reports an exec failure's errno; closes on a successful exec (CLOEXEC).
  if (pipe2(err_pipe, O_CLOEXEC) != 0)
    return make_error(ErrorCode::kInternal, std::string("pipe: ") + strerror(errno));
  Fd exec_r(err_pipe[0]), exec_w(err_pipe[1]);
  Fd devnull(open("/dev/null", O_RDONLY | O_CLOEXEC));

  std::ofstream log;
  if (!spec.log_path.empty()) {
    log.open(spec.log_path, std::ios::app);
    if (!log) return make_error(ErrorCode::kIo, "cannot write log file " + spec.log_path);
  }

  pid_t parent = getpid();
  auto started = Clock::now();
  pid_t pid = fork();
  if (pid < 0) return make_error(ErrorCode::kInternal, std::string("fork: ") + strerror(errno));
  if (pid == 0) {
    setsid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    dup2(devnull.get(), 0);
    dup2(out_w.get(), 1);
    dup2(out_w.get(), 2);
    int exec_fd = exec_w.get();
    // Keep only 0-2 and the exec-error pipe (CLOEXEC): no agent socket leaks into virt-v2v.
    if (exec_fd > 3) close_range(3, exec_fd - 1, 0);
    close_range(exec_fd + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP}) signal(sig, SIG_DFL);
    execve(path.c_str(), argv.data(), envp.data());
    int e = errno;
    ssize_t ignored = write(exec_fd, &e, sizeof e);
    (void)ignored;
    _exit(127);
  }
  out_w.reset();
  exec_w.reset();

  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(exec_r.get(), &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  if (got == sizeof exec_errno) {
    int status;
    waitpid(pid, &status, 0);
    return make_error(ErrorCode::kInternal,
                      "cannot run " + path + ": " + std::string(strerror(exec_errno)));
  }

  ProcessOutcome outcome;
  uint64_t logged = 0;
  auto emit = [&](const std::string& line) {
    if (log.is_open() && (spec.log_limit_bytes == 0 || logged < spec.log_limit_bytes)) {
      logged += line.size() + 1;
      log << line << '\n';
      if (spec.log_limit_bytes && logged >= spec.log_limit_bytes) {
        log << "[log cut at " << spec.log_limit_bytes << " bytes; the rest was not kept]\n";
        outcome.log_cut = true;
      }
    }
    outcome.tail.push_back(line);
    if (outcome.tail.size() > spec.tail_lines) outcome.tail.pop_front();
    if (spec.on_line) spec.on_line(line);
  };
  LineSplitter splitter;
  const bool limited = spec.time_limit.count() > 0;
  const auto deadline = started + spec.time_limit;
  auto stop_requested = [&] {
    if (spec.cancel && spec.cancel->load()) {
      outcome.canceled = true;
      return true;
    }
    if (limited && Clock::now() >= deadline) {
      outcome.timed_out = true;
      return true;
    }
    return false;
  };

  // Read until EOF. A descendant may keep the pipe open after the leader ended, so once the
  // leader is gone, read only what is already there (a short grace) and move on.
  std::optional<Clock::time_point> leader_gone_at;
  char buf[65536];
  bool eof = false;
  while (!eof) {
    if (stop_requested()) break;
    pollfd p{out_r.get(), POLLIN, 0};
    int n = poll(&p, 1, 200);
    if (n > 0) {
      ssize_t r = read(out_r.get(), buf, sizeof buf);
      if (r > 0) {
        splitter.feed(buf, static_cast<size_t>(r), emit);
        continue;
      }
      if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) eof = true;
    }
    if (!leader_gone_at && leader_ended(pid)) leader_gone_at = Clock::now();
    if (leader_gone_at && Clock::now() - *leader_gone_at > std::chrono::seconds(2)) break;
  }

  // Wait for the leader, still honouring the time limit and cancel.
  if (!outcome.canceled && !outcome.timed_out) {
    while (!leader_ended(pid)) {
      if (stop_requested()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  // Sweep the session before reaping the leader: its pid is the session id and stays reserved
  // while it is a zombie. On time limit/cancel this kills virt-v2v itself; after a normal exit
  // only strays are left to find.
  bool forced = outcome.canceled || outcome.timed_out;
  int killed = kill_session(pid);
  if (!forced) outcome.strays_killed = killed;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Descendants still starting up during the first sweep (fork in flight) are caught here.
  outcome.strays_killed += kill_session(pid);

  // Whatever was buffered in the pipe is still worth logging.
  int flags = fcntl(out_r.get(), F_GETFL);
  fcntl(out_r.get(), F_SETFL, flags | O_NONBLOCK);
  for (;;) {
    ssize_t r = read(out_r.get(), buf, sizeof buf);
    if (r <= 0) break;
    splitter.feed(buf, static_cast<size_t>(r), emit);
  }
  splitter.flush(emit);

  if (WIFEXITED(status)) {
    outcome.exited = true;
    outcome.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    outcome.term_signal = WTERMSIG(status);
  }
  outcome.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  return outcome;
}

}  // namespace ferry::process
