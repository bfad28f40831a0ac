// HookRunner with the real ansible-playbook: runs side by side each see only
// their own /tmp/hook, and a hook that floods its output keeps a bounded log.
#include <catch2/catch.hpp>

#include <condition_variable>
#include <filesystem>
#include <mutex>

#include "coordinator/hooks/hook_runner.h"
#include "tests/support/test_support.h"

using namespace ferry;
using namespace ferry::coordinator::hooks;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// Collects results from the runner's threads.
struct Results {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, HookResult> by_id;
  std::function<void(HookResult)> into(const std::string& id) {
    return [this, id](HookResult r) {
      std::lock_guard<std::mutex> lock(mu);
      by_id[id] = std::move(r);
      cv.notify_all();
    };
  }
  bool wait(size_t n, std::chrono::seconds limit) {
    std::unique_lock<std::mutex> lock(mu);
    return cv.wait_for(lock, limit, [&] { return by_id.size() >= n; });
  }
};

}  // namespace

TEST_CASE("hooks run side by side each see their own /tmp/hook inputs", "[hook_runner]") {
  require_program("ansible-playbook");
  TempDir dir;
  HookRunner runner({.work_root = dir.file("hooks")});
  Results results;
  const std::string playbook = R"(- hosts: localhost
  gather_facts: false
  tasks:
  - include_vars: {file: /tmp/hook/workload.yml, name: workload}
  - pause: {seconds: 1}
  - copy: {dest: /tmp/hook/seen.txt, content: "{{ workload.vm.name }}"}
)";
  for (const char* vm : {"alpha", "beta", "gamma"}) {
    HookJob job{.id = std::string("m/") + vm + "/PreHook",
                .playbook = playbook,
                .plan_yaml = "metadata: {name: p}\n",
                .workload_yaml = std::string("vm: {name: ") + vm + "}\n",
                .attempts = 1};
    REQUIRE(runner.start(job, results.into(vm)));
    CHECK_FALSE(runner.start(job, results.into("dup")));  // one run per id
  }
  REQUIRE(results.wait(3, 120s));
  for (const char* vm : {"alpha", "beta", "gamma"}) {
    const HookResult& r = results.by_id[vm];
    INFO(vm << ": " << r.message);
    CHECK(r.succeeded);
    CHECK(r.attempts == 1);
    // Written to its own /tmp/hook, which is its own directory on the host.
    CHECK(read_file(runner.dir_of(std::string("m/") + vm + "/PreHook") + "/hook/seen.txt") == vm);
  }
  CHECK_FALSE(std::filesystem::exists("/tmp/hook/seen.txt"));
}

TEST_CASE("a hook flooding its output keeps a bounded log and its last lines", "[hook_runner]") {
  require_program("ansible-playbook");
  TempDir dir;
  HookRunner runner({.work_root = dir.file("hooks"), .log_limit_bytes = 1 << 20});
  Results results;
  // 10 MB in one line (a failing task's result: cut at 64 KiB), then about
  // 4 MB in 200,000 lines (a debug of a list: one line per item).
  HookJob job{.id = "m/vm/PostHook",
              .playbook = R"(- hosts: localhost
  gather_facts: false
  tasks:
  - shell: "yes ferry-flood | head -c 10000000; exit 3"
    ignore_errors: true
  - shell: "seq 1 200000"
    register: lines
  - debug: {var: lines.stdout_lines}
  - command: "false"
)",
              .attempts = 2};
  REQUIRE(runner.start(job, results.into("flood")));
  REQUIRE(results.wait(1, 300s));
  const HookResult& r = results.by_id["flood"];
  INFO(r.message);
  CHECK_FALSE(r.succeeded);
  CHECK(r.attempts == 2);
  CHECK(r.message.find("ansible-playbook exited with status 2") != std::string::npos);
  CHECK(r.message.find("the log limit") != std::string::npos);
  CHECK(std::filesystem::file_size(r.log_path) < (1 << 20) + (128 << 10));
  CHECK(read_file(r.log_path).find("[log cut at") != std::string::npos);
  CHECK_FALSE(r.tail.empty());
  size_t kept = 0;
  for (const auto& line : r.tail) kept += line.size();
  CHECK(kept < (2u << 20));  // lines are cut at 64 KiB each
}
