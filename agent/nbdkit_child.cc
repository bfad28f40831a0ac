#include "agent/nbdkit_child.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>

extern char** environ;

namespace ferry::agent {

std::string log_tail(const std::string& path) {
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!all.empty() && (all.back() == '\n' || all.back() == ' ')) all.pop_back();
  return all.size() > 400 ? all.substr(all.size() - 400) : all;
}

Result<pid_t> spawn_until_ready(const std::vector<std::string>& argv, const std::string& log,
                                const std::function<bool()>& ready, const std::string& what) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // no other task's sockets or files
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (auto& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, cargv[0], &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0)
    return Error(ErrorCode::kNotFound, what + ": cannot run " + argv[0] + ": " + strerror(rc));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!ready()) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return Error(ErrorCode::kUnavailable, what + ": " + argv[0] + " exited: " + log_tail(log));
    if (std::chrono::steady_clock::now() > deadline) {
      stop_child(pid);
      return Error(ErrorCode::kTimeout, what + ": " + argv[0] + " did not start: " + log_tail(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pid;
}

void stop_child(pid_t pid) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < 100; i++) {
    if (::waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

}  // namespace ferry::agent
