#pragma once
// An nbdkit run as a child of the agent for as long as a task needs it (an
// NBD view for inspection, a volume served to another node): started with
// its output in a log file, its readiness waited for, stopped with SIGTERM
// and, after 2 s, SIGKILL. Blocking: worker threads.
#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "common/base/result.h"

namespace ferry::agent {

// The last 400 characters of a log file, for error messages.
std::string log_tail(const std::string& path);

// Spawns `argv` (argv[0] found on PATH) with stdin /dev/null, stdout and
// stderr into `log`, no other descriptor inherited, then waits up to 20 s for
// `ready()`. On nbdkit exiting first or the time running out the child is
// gone and the error quotes the log's tail, after `what`.
Result<pid_t> spawn_until_ready(const std::vector<std::string>& argv, const std::string& log,
                                const std::function<bool()>& ready, const std::string& what);

// SIGTERM, then SIGKILL after 2 s; reaps it. pid <= 0: nothing.
void stop_child(pid_t pid);

}  // namespace ferry::agent
