#pragma once
// Helpers for integration tests that run real processes (nbdkit, nats-server,
// the agent, the coordinator). Nothing here depends on Catch2: a helper that
// cannot do its job throws std::runtime_error, which fails the running test.
//
//   TempDir dir;                                    // $TMPDIR/ferry-test-XXXXXX, removed at scope
//   end std::string nbdkit = require_program("nbdkit");  // throws (test fails) if missing
//   Subprocess srv({nbdkit, "-U", dir.path() + "/sock", "file", img},
//                  {.log_dir = dir.path()});
//   REQUIRE(eventually(5s, [&] { return path_exists(dir.path() + "/sock"); }));
//   auto rc = srv.wait(2s);                         // std::optional<int>
//
// Subprocess: the child gets PR_SET_PDEATHSIG(SIGKILL), so it dies with the
// test process even on a crash; the destructor SIGKILLs and reaps it. The
// death signal fires when the *thread* that started the child exits: start
// children from the test's main thread.
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ferry::test {

// A fresh directory under $TMPDIR (or /tmp), removed recursively on destruction
// unless keep() was called or FERRY_KEEP_TEST_DIRS is set in the environment.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "ferry-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

struct SubprocessOptions {
  std::vector<std::string> env;  // extra "KEY=VALUE" entries on top of the parent's environment
  std::string log_dir;  // stdout/stderr go to <log_dir>/<name>.stdout|.stderr; "" = $TMPDIR
  std::string name;     // log file base name; "" = basename(argv[0]) + "-" + pid-ish counter
  std::string cwd;      // "" = inherit
};

// A child process. Owned by the test; killed (SIGKILL) and reaped on destruction.
class Subprocess {
 public:
  explicit Subprocess(std::vector<std::string> argv, SubprocessOptions opts = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  // True while the child runs; reaps it once it has exited.
  bool alive();
  void signal(int sig);
  // Waits for exit; returns the exit code (128 + signal number if killed by a
  // signal), or nullopt if it still runs after `timeout`.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  // SIGKILL and reap (no-op if already gone).
  void kill();
  std::optional<int> exit_code() const { return exit_code_; }

  const std::string& stdout_path() const { return stdout_path_; }
  const std::string& stderr_path() const { return stderr_path_; }
  std::string stdout_text() const;
  std::string stderr_text() const;

 private:
  bool reap(bool block);
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string stdout_path_, stderr_path_;
};

// Runs a short command to its end (logs in `dir`, named `name`) and returns
// its stdout; throws if it fails or runs longer than `timeout`.
std::string run_ok(const TempDir& dir, std::vector<std::string> argv, const std::string& name,
                   std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Polls `pred` every `interval` until it returns true (-> true) or `timeout` passes (-> false).
bool eventually(std::chrono::milliseconds timeout, const std::function<bool()>& pred,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));

// Absolute path of `name` found in $PATH (or `name` itself if it contains '/'
// and is executable); "" if not found.
std::string find_program(const std::string& name);
// Like find_program, but a missing program throws: a missing prerequisite must
// fail the test run, never skip it. The message names tools/install-deps.
std::string require_program(const std::string& name);

// A TCP socket listening on 127.0.0.1 on an ephemeral port (CLOEXEC,
// SO_REUSEADDR); its port in *port. Throws on failure.
int listen_loopback(int* port);

// File helpers; all throw std::runtime_error on failure.
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& data);
bool path_exists(const std::string& path);
uint64_t file_size(const std::string& path);
uint64_t allocated_bytes(const std::string& path);  // st_blocks * 512

struct Extent {
  uint64_t offset;
  uint64_t length;
  bool operator==(const Extent&) const = default;
};
// Data extents of a file according to SEEK_DATA/SEEK_HOLE.
std::vector<Extent> data_extents(const std::string& path);
// Offset of the first differing byte of two files (or of the shorter length if
// sizes differ); nullopt if identical.
std::optional<uint64_t> first_difference(const std::string& a, const std::string& b);

enum class Fill {
  kRandom,   // deterministic pseudo-random bytes from (seed, offset); never an all-zero 4 KiB
  kPattern,  // every 8-byte word holds its own offset, big-endian (like nbdkit's pattern plugin)
};
struct DataRun {
  uint64_t offset;
  uint64_t length;
  Fill fill = Fill::kRandom;
  uint64_t seed = 1;
};
// Creates (or replaces) a sparse file of `size` bytes with data only in `runs`;
// everything else is a hole.
void make_sparse_image(const std::string& path, uint64_t size, const std::vector<DataRun>& runs);
// Writes `length` bytes of a run's content at `offset` into an existing file.
void write_run(const std::string& path, const DataRun& run);

}  // namespace ferry::test
