// Faults from real tools: nbdkit's error filter, a restarted server, a full
// filesystem, a target corrupted behind the engine's back.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <thread>

#include "agent/transfer/copy_internal.h"
#include "tests/integration/transfer/transfer_fixtures.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;
using namespace std::chrono_literals;

TEST_CASE("transient EIO at a 10% rate: retried, copy identical", "[nbd][faults]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 16 * MiB, {{0, 16 * MiB}});
  Nbdkit nbd(dir,
             {"-t", "1", "--filter=error", "file", src, "error-pread=EIO", "error-pread-rate=10%"});
  auto opts = test_options();
  opts.block_size = 256 * KiB;  // 64 requests: several of them fail
  opts.verify = true;
  opts.block_size = 1 * MiB;
  opts.max_retries = 8;
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE(r.ok());
  CHECK_FALSE(first_difference(src, dst));
}

TEST_CASE("persistent EIO fails naming the offset", "[nbd][faults]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 8 * MiB, {{3 * MiB, 1 * MiB}});
  Nbdkit nbd(
      dir, {"-t", "1", "--filter=error", "file", src, "error-pread=EIO", "error-pread-rate=100%"});
  auto opts = test_options();
  opts.max_retries = 2;
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kIo);
  CHECK_THAT(r.error().message, Catch::Contains("offset 3145728"));
  CHECK_THAT(r.error().message, Catch::Contains("Input/output error"));
  CHECK_THAT(r.error().message, Catch::Contains("after 2 retries"));
}

TEST_CASE("reconnects when the NBD server restarts mid-copy", "[nbd][faults]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 16 * MiB, {{0, 16 * MiB}});
  auto nbd =
      std::make_unique<Nbdkit>(dir, std::vector<std::string>{"--filter=noparallel", "file", src});
  std::string uri = nbd->uri();
  auto opts = test_options();
  opts.block_size = 256 * KiB;
  opts.bandwidth = 8 * MiB;
  std::atomic<bool> restarted{false};
  std::thread restarter;
  opts.on_progress = [&](const Progress& p) {
    if (!restarted && p.bytes_done >= 2 * MiB) {
      restarted = true;
      nbd->stop();  // from the engine's progress thread: the copy keeps going
      nbd = std::make_unique<Nbdkit>(dir,
                                     std::vector<std::string>{"--filter=noparallel", "file", src});
    }
  };
  SourceSpec spec;
  spec.uri = uri;
  auto r = copy_disk(spec, dst, opts);
  REQUIRE(restarted);
  REQUIRE(r.ok());
  CHECK_FALSE(first_difference(src, dst));
}

TEST_CASE("ENOSPC on the target fails cleanly with kNoSpace", "[faults][nospace]") {
  TempDir dir;
  std::string src = dir.file("src.img");
  make_sparse_image(src, 32 * MiB, {{0, 32 * MiB}});
  std::string mnt = dir.file("small");
  write_file(dir.file("marker"), "");
  REQUIRE(::mkdir(mnt.c_str(), 0755) == 0);
  // A private mount namespace: the 8 MiB tmpfs vanishes with the process.
  std::string script = "mount -t tmpfs -o size=8M ferry-test-tmpfs '" + mnt + "' && exec '" +
                       std::string(FERRY_COPY_BIN) + "' '" + src + "' '" + mnt + "/dst.img'";
  Subprocess copy(
      {require_program("unshare"), "-m", "--propagation", "private", "sh", "-c", script},
      {.log_dir = dir.path(), .name = "copy"});
  auto rc = copy.wait(30s);
  REQUIRE(rc);
  INFO(copy.stderr_text());
  CHECK(*rc == 1);
  CHECK_THAT(copy.stderr_text(), Catch::Contains("no_space"));
  CHECK_THAT(copy.stderr_text(), Catch::Contains("No space left on device"));
  // Nothing is left mounted here.
  CHECK(read_file("/proc/self/mountinfo").find("ferry-test-tmpfs") == std::string::npos);
}

TEST_CASE("verification detects a target corrupted behind the engine's back", "[verify]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 16 * MiB, {{0, 6 * MiB}, {12 * MiB, 1 * MiB}});
  Nbdkit nbd(dir, {"file", src});
  auto opts = test_options();
  opts.verify = true;
  const uint64_t bad = 5 * MiB + 12345;
  CopyTestHooks hooks;
  hooks.before_verify = [&](const std::string& target) {
    int fd = ::open(target.c_str(), O_WRONLY);
    char c = 0x5a;
    REQUIRE(::pwrite(fd, &c, 1, bad) == 1);
    ::fsync(fd);
    ::close(fd);
  };
  auto r = copy_disk_with_hooks(nbd_source(nbd), dst, opts, hooks);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kDataMismatch);
  CHECK_THAT(r.error().message, Catch::Contains("offset " + std::to_string(5 * MiB)));

  // A byte written into a hole of the target is caught too.
  hooks.before_verify = [&](const std::string& target) {
    int fd = ::open(target.c_str(), O_WRONLY);
    char c = 1;
    REQUIRE(::pwrite(fd, &c, 1, 9 * MiB) == 1);
    ::close(fd);
  };
  auto r2 = copy_disk_with_hooks(nbd_source(nbd), dst, opts, hooks);
  REQUIRE_FALSE(r2.ok());
  CHECK(r2.error().code == ErrorCode::kDataMismatch);
  CHECK_THAT(r2.error().message, Catch::Contains("offset " + std::to_string(9 * MiB)));

  // Untouched: passes, and the digest does not depend on the transport.
  auto ok = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE(ok.ok());
  SourceSpec file;
  file.uri = src;
  auto ok2 = copy_disk(file, dir.file("dst2.img"), opts);
  REQUIRE(ok2.ok());
  CHECK(ok->digest == ok2->digest);
}

TEST_CASE("ferry-copy exits non-zero with a message for a bad source", "[cli]") {
  TempDir dir;
  Subprocess copy({FERRY_COPY_BIN, "nbd+unix:///?socket=" + dir.file("nope.sock"), dir.file("t")},
                  {.log_dir = dir.path(), .name = "copy"});
  auto rc = copy.wait(30s);
  REQUIRE(rc);
  CHECK(*rc == 1);
  CHECK_THAT(copy.stderr_text(), Catch::Contains("nope.sock"));
  Subprocess usage({FERRY_COPY_BIN, "--bogus"}, {.log_dir = dir.path(), .name = "usage"});
  CHECK(usage.wait(10s) == 2);
}
