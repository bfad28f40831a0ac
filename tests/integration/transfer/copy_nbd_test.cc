// The copy engine against a real nbdkit: dense, sparse, zero-filled data,
// ranges, cancel, checkpoints, SIGKILL + resume.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <thread>

#include "agent/transfer/checkpoint.h"
#include "agent/transfer/plan.h"
#include "agent/transfer/token_bucket.h"
#include "tests/integration/transfer/transfer_fixtures.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;
using namespace std::chrono_literals;

TEST_CASE("copies a dense image over NBD and verifies it", "[nbd]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 32 * MiB, {{0, 32 * MiB}});
  Nbdkit nbd(dir, {"file", src});
  auto opts = test_options();
  opts.verify = true;
  std::vector<Progress> seen;
  opts.on_progress = [&](const Progress& p) { seen.push_back(p); };
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE(r.ok());
  CHECK(r->size == 32 * MiB);
  CHECK(r->bytes_read == 32 * MiB);
  CHECK(r->bytes_written == 32 * MiB);
  CHECK(r->digest.size() == 32);
  CHECK_FALSE(first_difference(src, dst));
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().bytes_done == 32 * MiB);
  CHECK(seen.back().bytes_total == 32 * MiB);
}

TEST_CASE("sparse image: holes are not read and stay holes", "[nbd]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  const uint64_t size = 64 * MiB;
  make_sparse_image(src, size,
                    {{1 * MiB, 3 * MiB},
                     {20 * MiB + 64 * KiB, 512 * KiB, Fill::kPattern},
                     {size - 2 * MiB, 2 * MiB}});
  Nbdkit nbd(dir, {"file", src});
  auto r = copy_disk(nbd_source(nbd), dst, test_options());
  REQUIRE(r.ok());
  CHECK_FALSE(first_difference(src, dst));
  CHECK(r->bytes_read < size);
  CHECK(r->bytes_read == 5 * MiB + 512 * KiB);
  CHECK(r->bytes_zero == size - r->bytes_read);
  CHECK(file_size(dst) == size);
  CHECK(allocated_bytes(dst) <= allocated_bytes(src));
  CHECK(data_extents(dst) == data_extents(src));
}

TEST_CASE("all-zero data blocks become holes in the target", "[nbd][zero]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 16 * MiB, {{0, 16 * MiB}});
  write_zeros(src, 4 * MiB, 4 * MiB);  // allocated, but zero
  write_zeros(src, 10 * MiB + 64 * KiB, 64 * KiB);
  REQUIRE(allocated_bytes(src) == 16 * MiB);
  Nbdkit nbd(dir, {"file", src});
  auto r = copy_disk(nbd_source(nbd), dst, test_options());
  REQUIRE(r.ok());
  CHECK_FALSE(first_difference(src, dst));
  CHECK(r->bytes_read == 16 * MiB);
  CHECK(r->bytes_written == 16 * MiB - 4 * MiB - 64 * KiB);
  CHECK(allocated_bytes(dst) <= 16 * MiB - 4 * MiB);
  CHECK(data_extents(dst) ==
        std::vector<ferry::test::Extent>{{0, 4 * MiB},
                                         {8 * MiB, 2 * MiB + 64 * KiB},
                                         {10 * MiB + 128 * KiB, 6 * MiB - 128 * KiB}});
}

TEST_CASE("ranges mode copies only the given ranges, zeroed parts become holes", "[nbd][ranges]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  const uint64_t size = 32 * MiB;
  make_sparse_image(src, size, {{0, 32 * MiB, Fill::kRandom, 1}});
  make_sparse_image(dst, size, {{0, 32 * MiB, Fill::kRandom, 1}});  // the earlier full copy
  // The source changes: new data in two places, and a range that is now zero.
  write_run(src, {2 * MiB + 4096, 100 * KiB, Fill::kRandom, 7});
  write_run(src, {20 * MiB, 3 * MiB, Fill::kPattern});
  write_zeros(src, 8 * MiB, 2 * MiB);
  const uint64_t decoy = 28 * MiB;  // changed in the source but not listed: must not be copied
  write_run(src, {decoy, 4096, Fill::kRandom, 9});

  Nbdkit nbd(dir, {"file", src});
  auto opts = test_options();
  opts.ranges = {{2 * MiB, 1 * MiB}, {8 * MiB, 2 * MiB}, {20 * MiB, 3 * MiB}};
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE(r.ok());
  CHECK(r->bytes_read <= 6 * MiB);
  CHECK(first_difference(src, dst) == decoy);
  write_run(dst, {decoy, 4096, Fill::kRandom, 9});
  CHECK_FALSE(first_difference(src, dst));
  // The zeroed range was punched, not written.
  auto ex = data_extents(dst);
  for (const auto& e : ex) CHECK((e.offset + e.length <= 8 * MiB || e.offset >= 10 * MiB));
}

TEST_CASE("cancel returns kCanceled quickly and the checkpoint claims only written data",
          "[nbd][cancel]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img"), cp = dir.file("cp");
  make_sparse_image(src, 32 * MiB, {{0, 32 * MiB}});
  // Slow server; noparallel because the client leaves with requests in flight
  // (nbdkit 1.32.5 aborts otherwise).
  Nbdkit nbd(dir, {"--filter=noparallel", "--filter=delay", "file", src, "rdelay=50ms"});
  std::atomic<bool> cancel{false};
  auto opts = test_options();
  opts.block_size = 256 * KiB;
  opts.checkpoint_path = cp;
  opts.cancel = &cancel;
  std::chrono::steady_clock::time_point canceled_at;
  opts.on_progress = [&](const Progress& p) {
    if (!cancel && p.bytes_done >= 2 * MiB && path_exists(cp)) {
      canceled_at = std::chrono::steady_clock::now();
      cancel = true;
    }
  };
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  auto returned = std::chrono::steady_clock::now();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kCanceled);
  CHECK(returned - canceled_at < 5s);  // generous: the contract is ~1 s
  auto loaded = load_checkpoint(cp);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->found);
  REQUIRE_FALSE(loaded->cp.done.empty());
  CHECK(total_length(loaded->cp.done) < 32 * MiB);
  // Every claimed byte is really in the target.
  std::string s = read_file(src), d = read_file(dst);
  for (const auto& range : loaded->cp.done)
    CHECK(s.compare(range.offset, range.length, d, range.offset, range.length) == 0);

  // Resuming finishes the job and reads less than everything.
  auto opts2 = test_options();
  opts2.checkpoint_path = cp;
  auto r2 = copy_disk(nbd_source(nbd), dst, opts2);
  REQUIRE(r2.ok());
  CHECK(r2->bytes_skipped_resumed == total_length(loaded->cp.done));
  CHECK(r2->bytes_read < 32 * MiB);
  CHECK_FALSE(first_difference(src, dst));
  CHECK_FALSE(path_exists(cp));
}

TEST_CASE("a checkpoint of another source is rejected", "[checkpoint]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img"), cp = dir.file("cp");
  make_sparse_image(src, 4 * MiB, {{0, 1 * MiB}});
  make_sparse_image(dst, 4 * MiB, {});
  REQUIRE(save_checkpoint(cp, {"nbd://elsewhere/disk", 4 * MiB, {{0, 1 * MiB}}}).ok());
  Nbdkit nbd(dir, {"file", src});
  auto opts = test_options();
  opts.checkpoint_path = cp;
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kFailedPrecondition);
  CHECK_THAT(r.error().message, Catch::Contains("nbd://elsewhere/disk"));
}

TEST_CASE("SIGKILL midway, then resume from the checkpoint", "[nbd][resume]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img"), cp = dir.file("cp");
  const uint64_t size = 32 * MiB;
  make_sparse_image(src, size, {{0, 24 * MiB}, {28 * MiB, 4 * MiB, Fill::kPattern}});
  Nbdkit nbd(dir, {"--filter=noparallel", "file", src});
  // Wait until a checkpoint claims something, then kill -9.
  copy_until_checkpoint_then_kill(
      dir, {nbd.uri(), dst, "--checkpoint", cp, "--bandwidth", "8M", "--block-size", "256K"}, cp,
      4 * MiB);
  auto claimed = load_checkpoint(cp);
  REQUIRE(claimed.ok());
  CHECK(total_length(claimed->cp.done) < size);

  Subprocess again({FERRY_COPY_BIN, nbd.uri(), dst, "--checkpoint", cp, "--verify"},
                   {.log_dir = dir.path(), .name = "copy2"});
  REQUIRE(again.wait(60s) == 0);
  std::string json = again.stdout_text();
  INFO(json << again.stderr_text());
  CHECK(json_u64(json, "bytes_skipped_resumed") > 0);
  // With --verify the resumed ranges are read again only to hash them; the
  // bytes read for copying are still fewer than the disk.
  CHECK(json_u64(json, "bytes_written") < 28 * MiB);
  CHECK_FALSE(first_difference(src, dst));
  CHECK_FALSE(path_exists(cp));
}

TEST_CASE("SIGKILL then resume without verify reads less than the disk", "[nbd][resume]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img"), cp = dir.file("cp");
  const uint64_t size = 32 * MiB;
  make_sparse_image(src, size, {{0, size}});
  Nbdkit nbd(dir, {"--filter=noparallel", "file", src});
  copy_until_checkpoint_then_kill(
      dir, {nbd.uri(), dst, "--checkpoint", cp, "--bandwidth", "8M", "--block-size", "256K"}, cp,
      4 * MiB);
  Subprocess again({FERRY_COPY_BIN, nbd.uri(), dst, "--checkpoint", cp},
                   {.log_dir = dir.path(), .name = "copy2"});
  REQUIRE(again.wait(60s) == 0);
  std::string json = again.stdout_text();
  INFO(json);
  CHECK(json_u64(json, "bytes_read") < size);
  CHECK(json_u64(json, "bytes_read") + json_u64(json, "bytes_skipped_resumed") == size);
  CHECK_FALSE(first_difference(src, dst));
}

TEST_CASE("a shared (per-node) bandwidth cap is charged by every copy that uses it",
          "[nbd][bandwidth]") {
  TempDir dir;
  std::string a = dir.file("a.img"), b = dir.file("b.img");
  make_sparse_image(a, 8 * MiB, {{0, 8 * MiB}});
  make_sparse_image(b, 16 * MiB, {{0, 4 * MiB}, {8 * MiB, 4 * MiB, Fill::kPattern}});
  Nbdkit na(dir, {"file", a}, "nbd-a"), nb(dir, {"file", b}, "nbd-b");
  // A nearly frozen rate with a large burst: what is left in the bucket after
  // both copies is exactly the burst minus what they read (no timing involved).
  const double burst = 1024.0 * MiB;
  TokenBucket node_cap(1.0, burst);
  auto opts = test_options();
  opts.shared_bandwidth = &node_cap;
  Result<CopyStats> ra = Error(ErrorCode::kInternal, "not run");
  std::thread other([&] { ra = copy_disk(nbd_source(na), dir.file("a.out"), opts); });
  auto rb = copy_disk(nbd_source(nb), dir.file("b.out"), opts);
  other.join();
  REQUIRE(ra.ok());
  REQUIRE(rb.ok());
  CHECK(ra->bytes_read + rb->bytes_read == 16 * MiB);
  double left = node_cap.tokens(TokenBucket::Clock::now());
  CHECK(left >= burst - 16.0 * MiB);
  CHECK(left < burst - 16.0 * MiB + 1000);  // ~1 byte/s of refill during the test
  CHECK_FALSE(first_difference(a, dir.file("a.out")));
  CHECK_FALSE(first_difference(b, dir.file("b.out")));
}

TEST_CASE("O_DIRECT writes: aligned data bypasses the cache, the unaligned tail does not",
          "[nbd][direct]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  const uint64_t size = 16 * MiB + 1536;  // not a multiple of 4 KiB: the last chunk is buffered
  make_sparse_image(src, size,
                    {{0, 4 * MiB}, {8 * MiB, 1 * MiB, Fill::kPattern}, {size - 2 * MiB, 2 * MiB}});
  write_zeros(src, 1 * MiB, 64 * KiB);
  Nbdkit nbd(dir, {"file", src});
  auto opts = test_options();
  opts.direct = true;
  opts.verify = true;
  auto r = copy_disk(nbd_source(nbd), dst, opts);
  REQUIRE(r.ok());
  CHECK(file_size(dst) == size);
  CHECK_FALSE(first_difference(src, dst));
  // The last run starts 1536 bytes into a 4 KiB block: those zeros share its granule.
  CHECK(r->bytes_written == 7 * MiB - 64 * KiB + 1536);
  CHECK(data_extents(dst).size() == 4);  // the zero granule and the holes stay holes
}
