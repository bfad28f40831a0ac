#pragma once
// Runs one external tool (virt-v2v-in-place, virt-v2v-inspector) to completion on the calling
// (worker) thread, never the event loop: blocking by design.
//
// The child gets its own session (setsid). virt-v2v starts qemu through libguestfs, which moves
// qemu into a process group of its own, so a process-group kill would miss it; the session is
// kept by every descendant that does not call setsid itself, so on time limit or cancel every
// process of the session is SIGKILLed (repeatedly, until none is left) before the leader is
// reaped. The same sweep runs after a normal exit, so nothing outlives the call. The child also
// gets PR_SET_PDEATHSIG(SIGKILL): if the agent dies, virt-v2v dies and libguestfs' recovery
// process kills its qemu. libguestfs mounts guest filesystems inside its appliance VM, never on
// the host, so killing the VM leaves no mounts behind.
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/base/result.h"

namespace ferry::process {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH unless it holds a '/'
  std::vector<std::string> env;   // KEY=VALUE entries added to (or replacing) the agent's own
  std::chrono::milliseconds time_limit{0};  // 0: none
  const std::atomic<bool>* cancel = nullptr;
  // Every line of stdout+stderr (one pipe, so their order is kept), without the line end. A
  // '\r' also ends a line (progress bars). Called on the calling thread.
  std::function<void(const std::string& line)> on_line;
  std::string log_path;          // every line is also appended here; "" = no log file
  uint64_t log_limit_bytes = 0;  // the log file stops growing past this (0: no limit)
  size_t tail_lines = 400;       // how many last lines ProcessOutcome::tail keeps
};

struct ProcessOutcome {
  bool exited = false;  // true: exit_code is valid; false: killed by term_signal
  int exit_code = -1;
  int term_signal = 0;
  bool timed_out = false;
  bool canceled = false;
  bool log_cut = false;   // log_limit_bytes was reached
  int strays_killed = 0;  // processes of the session still alive after the leader ended
  double seconds = 0;
  std::deque<std::string> tail;  // last lines of output
};

// Runs spec.argv and waits for it. Errors only when the program cannot be started (kNotFound,
// kInternal); a non-zero exit, a timeout or a cancel are reported in ProcessOutcome.
Result<ProcessOutcome> run_process(const ProcessSpec& spec);

// Live (non-zombie) processes whose session id is `sid`, read from /proc.
std::vector<pid_t> session_members(pid_t sid);

// SIGKILLs every live process of session `sid` until none is left (or `rounds` sweeps were
// made); returns how many processes were signalled.
int kill_session(pid_t sid, int rounds = 50);

}  // namespace ferry::process
