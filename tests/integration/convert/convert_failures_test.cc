// A disk with no OS (a blank ext4 filesystem): preflight says so quickly, a conversion fails with
// virt-v2v's own message, and cancel / time limit stop a real virt-v2v with its qemu. After each
// run no process and no temp dir of it is left.
#include <catch2/catch.hpp>
#include <iostream>
#include <thread>

#include "agent/convert/convert.h"
#include "tests/integration/convert/convert_fixtures.h"
#include "tests/support/test_support.h"

using namespace ferry::agent::convert;
using namespace ferry::test::convert;
using namespace std::chrono_literals;

namespace {

struct BlankDisk {
  ferry::test::TempDir dir{"ferry-convert-blank"};
  std::string path = dir.file("blank.img");
  BlankDisk() {
    auto t = run_tool({"truncate", "-s", "256M", path});
    REQUIRE(t.exit_code == 0);
    auto mk = run_tool({"mkfs.ext4", "-q", "-F", path});
    REQUIRE(mk.exit_code == 0);
  }
  ConvertSpec spec() const {
    ConvertSpec s;
    s.name = "blank-vm";
    s.disks = {{path, "raw"}};
    s.env = libguestfs_env();
    s.time_limit = 600s;
    s.work_dir = dir.file("work");
    return s;
  }
};

void require_nothing_left(const BlankDisk& disk, const std::vector<std::string>& tmp_before) {
  // The leader is reaped and the session swept before convert_in_place returns: check at once.
  auto procs = processes_mentioning(disk.dir.path());
  auto v2v = processes_mentioning("/tmp/ferry-v2v-");
  INFO("left: " << (procs.empty() ? "" : procs[0]) << (v2v.empty() ? "" : v2v[0]));
  CHECK(procs.empty());
  CHECK(v2v.empty());
  CHECK(tmp_entries("ferry-v2v-") == tmp_before);
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

TEST_CASE("integration/no-os: inspection of a blank disk finds no OS, with a concern", "[no-os]") {
  ferry::test::require_program("virt-inspector");
  BlankDisk disk;
  auto tmp_before = tmp_entries("ferry-v2v-");
  auto t0 = std::chrono::steady_clock::now();
  auto r = inspect({{disk.path, "raw"}}, libguestfs_env(), 300s, nullptr);
  double s = since(t0);
  REQUIRE(r.ok());
  CHECK_FALSE(r->found_os);
  REQUIRE_FALSE(r->concerns.empty());
  CHECK(r->concerns[0].find("no operating system") != std::string::npos);
  CHECK(s < 120);
  require_nothing_left(disk, tmp_before);
  std::cout << "convert/no-os: inspect " << s << " s" << std::endl;
}

TEST_CASE("integration/no-os: converting a blank disk fails with virt-v2v's message", "[no-os]") {
  ferry::test::require_program("virt-v2v-in-place");
  BlankDisk disk;
  auto tmp_before = tmp_entries("ferry-v2v-");
  std::vector<std::string> status;
  auto spec = disk.spec();
  spec.on_output = [&](const std::string& l) { status.push_back(l); };
  auto t0 = std::chrono::steady_clock::now();
  auto r = convert_in_place(spec);
  double s = since(t0);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ferry::ErrorCode::kFailedPrecondition);
  CHECK(r.error().message.find("blank-vm") != std::string::npos);
  CHECK(r.error().message.find("inspection could not detect the source guest") !=
        std::string::npos);
  CHECK_FALSE(status.empty());
  require_nothing_left(disk, tmp_before);
  std::cout << "convert/no-os: failed conversion " << s << " s: " << r.error().message << std::endl;
}

TEST_CASE("integration/no-os: cancel stops virt-v2v and its qemu", "[no-os]") {
  ferry::test::require_program("virt-v2v-in-place");
  BlankDisk disk;
  auto tmp_before = tmp_entries("ferry-v2v-");
  std::atomic<bool> cancel{false};
  auto spec = disk.spec();
  spec.cancel = &cancel;
  bool opening = false;
  spec.on_output = [&](const std::string& l) {
    if (l.find("Opening the source") != std::string::npos) opening = true;
  };
  // Cancel once libguestfs' qemu runs (its command line names the NBD socket in our TMPDIR):
  // qemu sits in a process group of its own, which a process-group kill would miss.
  bool saw_qemu = false;
  std::thread canceller([&] {
    saw_qemu = ferry::test::eventually(60s, [&] {
      for (const auto& p : processes_mentioning("/tmp/ferry-v2v-"))
        if (p.find("qemu-system") != std::string::npos) return true;
      return false;
    });
    cancel = true;
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = convert_in_place(spec);
  canceller.join();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ferry::ErrorCode::kCanceled);
  CHECK(saw_qemu);
  CHECK(opening);
  CHECK(since(t0) < 90);
  require_nothing_left(disk, tmp_before);
}

TEST_CASE("integration/no-os: the time limit stops virt-v2v with kTimeout", "[no-os]") {
  ferry::test::require_program("virt-v2v-in-place");
  BlankDisk disk;
  auto tmp_before = tmp_entries("ferry-v2v-");
  auto spec = disk.spec();
  spec.time_limit = 4s;
  auto r = convert_in_place(spec);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ferry::ErrorCode::kTimeout);
  CHECK(r.error().message.find("4 s") != std::string::npos);
  require_nothing_left(disk, tmp_before);
}
