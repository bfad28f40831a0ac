// The copy engine writing to a real block device: a loop device (losetup) over
// a file that is full of old data, as a reused volume in Block mode would be.
// Holes and all-zero blocks of the source must be zeroed on the device
// (BLKZEROOUT), not skipped. Needs root for losetup; without it the tests say
// so and pass nothing (CI runs as root).
#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include "agent/transfer/checkpoint.h"
#include "agent/transfer/plan.h"
#include "tests/integration/transfer/transfer_fixtures.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// `losetup --find --show FILE`, detached (`losetup -d`) on destruction.
class LoopDevice {
 public:
  LoopDevice(const TempDir& dir, const std::string& backing) {
    losetup_ = require_program("losetup");
    Subprocess p({losetup_, "--find", "--show", backing},
                 {.log_dir = dir.path(), .name = "losetup"});
    auto rc = p.wait(30s);
    if (rc != 0) throw std::runtime_error("losetup " + backing + " failed: " + p.stderr_text());
    dev_ = p.stdout_text();
    while (!dev_.empty() && (dev_.back() == '\n' || dev_.back() == ' ')) dev_.pop_back();
    if (dev_.rfind("/dev/loop", 0) != 0) throw std::runtime_error("losetup printed " + dev_);
    dir_ = dir.path();
  }
  ~LoopDevice() { detach(); }
  const std::string& path() const { return dev_; }
  void detach() {
    if (dev_.empty()) return;
    Subprocess p({losetup_, "-d", dev_}, {.log_dir = dir_, .name = "losetup-d"});
    p.wait(30s);
    dev_.clear();
  }

 private:
  std::string losetup_, dev_, dir_;
};

bool can_use_loop_devices() {
  if (::geteuid() == 0 && !find_program("losetup").empty()) return true;
  WARN("not root (or no losetup): block-device target tests not run");
  return false;
}

}  // namespace

TEST_CASE("block-device target: data written, holes and zero blocks zeroed over old contents",
          "[blockdev]") {
  if (!can_use_loop_devices()) return;
  TempDir dir;
  const uint64_t size = 32 * MiB;
  std::string src = dir.file("src.img"), backing = dir.file("volume.img");
  make_sparse_image(src, size,
                    {{1 * MiB, 3 * MiB},
                     {10 * MiB, 6 * MiB, Fill::kPattern},
                     {size - 2 * MiB, 2 * MiB, Fill::kRandom, 3}});
  write_zeros(src, 12 * MiB, 1 * MiB);  // allocated in the source, but zero
  // The volume held something else before: every byte is non-zero.
  make_sparse_image(backing, size, {{0, size, Fill::kRandom, 42}});
  REQUIRE(first_difference(src, backing) == 0);

  LoopDevice dev(dir, backing);
  Nbdkit nbd(dir, {"file", src});
  auto opts = test_options();
  opts.verify = true;
  auto r = copy_disk(nbd_source(nbd), dev.path(), opts);
  REQUIRE(r.ok());
  CHECK(r->size == size);
  CHECK(r->bytes_read == 11 * MiB);                // holes are not read
  CHECK(r->bytes_written == 10 * MiB);             // the zero block is not written as data
  CHECK(r->bytes_zero == size - 10 * MiB);         // holes + zero block: zeroed on the device
  CHECK_FALSE(first_difference(src, dev.path()));  // as the device reads now
  dev.detach();
  CHECK_FALSE(first_difference(src, backing));  // and as it was made durable underneath
}

TEST_CASE("block-device target: ferry-copy killed with SIGKILL resumes on the device",
          "[blockdev][resume]") {
  if (!can_use_loop_devices()) return;
  TempDir dir;
  const uint64_t size = 32 * MiB;
  std::string src = dir.file("src.img"), backing = dir.file("volume.img"), cp = dir.file("cp");
  make_sparse_image(src, size, {{0, 20 * MiB}, {24 * MiB, 8 * MiB, Fill::kPattern}});
  make_sparse_image(backing, size, {{0, size, Fill::kRandom, 42}});
  LoopDevice dev(dir, backing);
  Nbdkit nbd(dir, {"--filter=noparallel", "file", src});
  copy_until_checkpoint_then_kill(
      dir, {nbd.uri(), dev.path(), "--checkpoint", cp, "--bandwidth", "8M", "--block-size", "256K"},
      cp, 4 * MiB);
  auto claimed = load_checkpoint(cp);
  REQUIRE(claimed.ok());
  REQUIRE(claimed->found);
  CHECK(total_length(claimed->cp.done) < size);

  Subprocess again({FERRY_COPY_BIN, nbd.uri(), dev.path(), "--checkpoint", cp},
                   {.log_dir = dir.path(), .name = "copy2"});
  REQUIRE(again.wait(60s) == 0);
  std::string json = again.stdout_text();
  INFO(json << again.stderr_text());
  CHECK(json_u64(json, "bytes_skipped_resumed") == total_length(claimed->cp.done));
  CHECK(json_u64(json, "bytes_read") < 28 * MiB);
  CHECK_FALSE(first_difference(src, dev.path()));
  CHECK_FALSE(path_exists(cp));
  dev.detach();
  CHECK_FALSE(first_difference(src, backing));
}

TEST_CASE("block device smaller than the source: kNoSpace naming the device, nothing written",
          "[blockdev][faults]") {
  if (!can_use_loop_devices()) return;
  TempDir dir;
  std::string src = dir.file("src.img"), backing = dir.file("volume.img");
  make_sparse_image(src, 16 * MiB, {{0, 16 * MiB}});
  make_sparse_image(backing, 8 * MiB, {{0, 8 * MiB, Fill::kRandom, 42}});
  const std::string before = read_file(backing);
  LoopDevice dev(dir, backing);
  Nbdkit nbd(dir, {"file", src});
  auto r = copy_disk(nbd_source(nbd), dev.path(), test_options());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kNoSpace);
  CHECK_THAT(r.error().message, Catch::Contains(dev.path()) && Catch::Contains("16777216"));
  dev.detach();
  CHECK(read_file(backing) == before);
}
