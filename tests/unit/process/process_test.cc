// The process runner against /bin/sh: lines, exit codes, time limit and cancel, and that a
// descendant in a process group of its own (as libguestfs puts qemu) does not survive.
#include <signal.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "common/process/process.h"

using namespace ferry::process;
using namespace std::chrono_literals;

namespace {

// kill(pid, 0) also succeeds on a zombie; a reaped or never-reaped-by-us process is gone when
// /proc says it is not running.
bool alive(pid_t pid) {
  FILE* f = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return false;
  char buf[512] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  std::string stat(buf, n);
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

}  // namespace

TEST_CASE("run_process streams stdout and stderr lines in order and reports the exit code") {
  std::vector<std::string> lines;
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo one; echo two >&2; printf 'a\\rb\\r\\nc'; exit 3"};
  ps.on_line = [&](const std::string& l) { lines.push_back(l); };
  auto r = run_process(ps);
  REQUIRE(r.ok());
  CHECK(r->exited);
  CHECK(r->exit_code == 3);
  CHECK(lines == std::vector<std::string>{"one", "two", "a", "b", "c"});
  CHECK(r->tail.back() == "c");
}

TEST_CASE("run_process passes extra environment, replacing the agent's value") {
  setenv("FERRY_PROCESS_TEST", "old", 1);
  std::vector<std::string> lines;
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo $FERRY_PROCESS_TEST $LIBGUESTFS_BACKEND"};
  ps.env = {"FERRY_PROCESS_TEST=new", "LIBGUESTFS_BACKEND=direct"};
  ps.on_line = [&](const std::string& l) { lines.push_back(l); };
  auto r = run_process(ps);
  REQUIRE(r.ok());
  CHECK(lines == std::vector<std::string>{"new direct"});
}

TEST_CASE("run_process: a missing program is kNotFound") {
  ProcessSpec ps;
  ps.argv = {"ferry-no-such-program-xyz"};
  auto r = run_process(ps);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ferry::ErrorCode::kNotFound);
}

TEST_CASE("run_process: time limit kills the whole session, other process groups included") {
  // The background sleep gets a process group of its own, like qemu under libguestfs.
  std::vector<std::string> lines;
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "perl -e 'setpgrp(0,0); exec qw(sleep 300)' & echo $!; sleep 300"};
  ps.time_limit = 1500ms;
  ps.on_line = [&](const std::string& l) { lines.push_back(l); };
  auto started = std::chrono::steady_clock::now();
  auto r = run_process(ps);
  REQUIRE(r.ok());
  CHECK(r->timed_out);
  CHECK_FALSE(r->exited);
  CHECK(r->term_signal == SIGKILL);
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  REQUIRE(lines.size() == 1);
  pid_t grandchild = std::stoi(lines[0]);
  CHECK_FALSE(alive(grandchild));
}

TEST_CASE("run_process: cancel stops the run promptly") {
  std::atomic<bool> cancel{false};
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "sleep 300"};
  ps.cancel = &cancel;
  std::thread t([&] {
    std::this_thread::sleep_for(300ms);
    cancel = true;
  });
  auto r = run_process(ps);
  t.join();
  REQUIRE(r.ok());
  CHECK(r->canceled);
  CHECK(r->seconds < 5);
}

TEST_CASE("run_process: strays left after a normal exit are killed and counted") {
  std::vector<std::string> lines;
  ProcessSpec ps;
  // The stray closes the pipe so the leader's exit is seen at once.
  ps.argv = {"sh", "-c",
             "perl -e 'setpgrp(0,0); exec qw(sleep 300)' >/dev/null 2>&1 & echo $!; exit 0"};
  ps.on_line = [&](const std::string& l) { lines.push_back(l); };
  auto r = run_process(ps);
  REQUIRE(r.ok());
  CHECK(r->exited);
  CHECK(r->exit_code == 0);
  CHECK(r->strays_killed >= 1);
  REQUIRE(lines.size() == 1);
  CHECK_FALSE(alive(std::stoi(lines[0])));
}

TEST_CASE("run_process: a descendant holding the pipe open does not hang the call") {
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "perl -e 'setpgrp(0,0); exec qw(sleep 300)' & exit 0"};
  ps.time_limit = 60s;
  auto started = std::chrono::steady_clock::now();
  auto r = run_process(ps);
  REQUIRE(r.ok());
  CHECK(r->exited);
  CHECK(r->strays_killed >= 1);
  CHECK(std::chrono::steady_clock::now() - started < 10s);
}

TEST_CASE("run_process appends every line to the log file") {
  char tmpl[] = "/tmp/ferry-process-test-XXXXXX";
  int fd = mkstemp(tmpl);
  REQUIRE(fd >= 0);
  close(fd);
  ProcessSpec ps;
  ps.argv = {"sh", "-c", "echo x; echo y >&2"};
  ps.log_path = tmpl;
  auto r = run_process(ps);
  REQUIRE(r.ok());
  FILE* f = fopen(tmpl, "r");
  char buf[64] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  unlink(tmpl);
  CHECK(std::string(buf, n) == "x\ny\n");
}
