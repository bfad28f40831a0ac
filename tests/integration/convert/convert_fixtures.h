#pragma once
// Shared pieces of the conversion integration tests: running a tool and collecting its output,
// the libguestfs settings this machine needs, the test guest image, and leak checks.
#include <chrono>
#include <string>
#include <vector>

namespace ferry::test::convert {

struct ToolRun {
  int exit_code = -1;  // -1: did not exit normally
  std::vector<std::string> lines;
  std::string text() const;
};
// Runs argv to completion (stdout+stderr merged); throws if it cannot start or times out.
ToolRun run_tool(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
                 std::chrono::seconds limit = std::chrono::seconds(600));

// What the agent's config would hold on this machine: QEMU+KVM aborts here, so TCG. Taken from
// FERRY_TEST_LIBGUESTFS_BACKEND / _SETTINGS when set.
std::vector<std::string> libguestfs_env();

struct GuestImage {
  std::string path;
  std::string data_sha256;  // of /srv/ferry/data.bin inside the guest
};
// $FERRY_GUEST_IMAGE, else tools/build-guest-image into $FERRY_GUEST_CACHE or the build tree's
// guest/ dir (built once, then reused by every run and every test).
GuestImage guest_image();

// Processes (other than this one) whose command line mentions `needle`.
std::vector<std::string> processes_mentioning(const std::string& needle);
// Entries of /tmp whose name starts with `prefix`.
std::vector<std::string> tmp_entries(const std::string& prefix);

}  // namespace ferry::test::convert
