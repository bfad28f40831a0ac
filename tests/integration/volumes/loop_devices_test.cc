// Block-mode volumes (agent/volumes/loop_devices.h) on the real kernel: a loop
// device over a sparse file, its node in the volume's directory. Needs root
// and /dev/loop-control (CI runs as root); without them the test fails.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/volumes/loop_devices.h"
#include "tests/support/test_support.h"

using namespace ferry;
using namespace ferry::agent::volumes;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

dev_t rdev(const std::string& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  REQUIRE(S_ISBLK(st.st_mode));
  return st.st_rdev;
}

uint64_t device_size(const std::string& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  off_t end = ::lseek(fd, 0, SEEK_END);
  ::close(fd);
  return static_cast<uint64_t>(end);
}

void write_at(const std::string& p, uint64_t off, const std::string& data) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(off)) ==
          static_cast<ssize_t>(data.size()));
  REQUIRE(::fsync(fd) == 0);
  ::close(fd);
}

std::string read_at(const std::string& p, uint64_t off, size_t n) {
  std::string s(n, '\0');
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(fd >= 0);
  REQUIRE(::pread(fd, s.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n));
  ::close(fd);
  return s;
}

// Runs losetup with `args`; its exit code, and its standard output in `out`.
int losetup(std::vector<std::string> args, const TempDir& dir, std::string* out = nullptr) {
  args.insert(args.begin(), require_program("losetup"));
  Subprocess p(args, {.log_dir = dir.path(), .name = "losetup"});
  auto rc = p.wait(30s);
  if (out) *out = p.stdout_text();
  return rc.value_or(-1);
}

}  // namespace

TEST_CASE("a Block volume is a loop device over a sparse file, its node in its directory",
          "[volumes]") {
  TempDir dir("ferry-loop");
  std::string node = dir.file("block");
  REQUIRE(attach_loop(node, 8 << 20).ok());
  dev_t first = rdev(node);
  CHECK(device_size(node) == (8u << 20));
  CHECK(loop_backing_file(node) == dir.file("block.img"));
  struct stat st {};
  REQUIRE(::stat(dir.file("block.img").c_str(), &st) == 0);
  CHECK(st.st_blocks == 0);  // sparse until written

  // What goes to the device lands in the file.
  write_at(node, 1 << 20, "ferry block volume");
  CHECK(read_at(dir.file("block.img"), 1 << 20, 18) == "ferry block volume");

  // Again (a retried or warm task): the same device, the data kept.
  REQUIRE(attach_loop(node, 8 << 20).ok());
  CHECK(rdev(node) == first);
  CHECK(read_at(node, 1 << 20, 18) == "ferry block volume");

  // Larger: the device grows with its file.
  REQUIRE(attach_loop(node, 16 << 20).ok());
  CHECK(device_size(node) == (16u << 20));

  SECTION("after a reboot (the loop device gone) it is attached again, data and all") {
    REQUIRE(losetup({"-d", node}, dir) == 0);
    REQUIRE(eventually(10s, [&] { return loop_backing_file(node).empty(); }));
    REQUIRE(attach_loop(node, 16 << 20).ok());
    CHECK(loop_backing_file(node) == dir.file("block.img"));
    CHECK(read_at(node, 1 << 20, 18) == "ferry block volume");
  }
  SECTION("detached, nothing is left: no loop device, no node, no file") {
    REQUIRE(detach_loop(node).ok());
    CHECK_FALSE(path_exists(node));
    CHECK_FALSE(path_exists(dir.file("block.img")));
    std::string out;
    CHECK(losetup({"-j", dir.file("block.img")}, dir, &out) == 0);
    CHECK(out.empty());
    CHECK(detach_loop(node).ok());  // absent is fine
  }
  (void)detach_loop(node);
}

TEST_CASE("a Block volume that cannot be made is an error naming it, and leaves no device",
          "[volumes]") {
  TempDir dir("ferry-loop");
  std::string node = dir.file("missing-dir/block");  // its directory does not exist
  Status s = attach_loop(node, 1 << 20);
  REQUIRE_FALSE(s.ok());
  CHECK(s.error().message.find(node) != std::string::npos);
}
