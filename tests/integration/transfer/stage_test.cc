// Repeated stage copies (agent/transfer/stage.h) and a volume served to
// another node (agent/volumes/volume_server.h) through real nbdkit with TLS
// and a pre-shared key: the second stage copies only the changed 1 MiB
// blocks, blocks a cut-short copy may have written are written again,
// verify compares every block's digest, and holes stay holes.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <atomic>
#include <filesystem>

#include "agent/transfer/digest.h"
#include "agent/transfer/stage.h"
#include "agent/volumes/volume_server.h"
#include "tests/integration/transfer/transfer_fixtures.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;

namespace {

Result<StageStats> stage_local(const std::string& src, uint64_t size, const std::string& dst,
                               const std::string& record, bool verify = true,
                               const std::atomic<bool>* cancel = nullptr) {
  auto now = hash_file_blocks(src, size);
  if (!now.ok()) return now.error();
  auto opts = test_options();
  opts.cancel = cancel;
  return stage_copy(SourceSpec{.uri = src, .size = size}, *now, dst, record, opts, verify);
}

}  // namespace

TEST_CASE("stage copies: a repeated stage writes only the blocks that changed", "[stage]") {
  TempDir dir;
  const uint64_t size = 40 * MiB + 300 * KiB;  // a short last block
  std::string src = dir.file("src.img"), dst = dir.file("dst.img"), rec = dir.file("record");
  make_sparse_image(src, size, {{0, 6 * MiB}, {16 * MiB, 3 * MiB}, {40 * MiB, 300 * KiB}});

  auto first = stage_local(src, size, dst, rec);
  INFO((first.ok() ? "" : first.error().message));
  REQUIRE(first.ok());
  CHECK(first->full);
  CHECK(first->blocks == 41);
  CHECK(first->blocks_changed == 41);
  CHECK(first->verified);
  CHECK(first->copy.bytes_read == 9 * MiB + 300 * KiB);  // data only; holes are not read
  CHECK_FALSE(first_difference(src, dst));
  CHECK(allocated_bytes(dst) <= 10 * MiB);

  // Three blocks change: part of block 2, all of 30, the short last one.
  write_run(src, {2 * MiB + 4096, 8192, Fill::kRandom, 7});
  write_run(src, {30 * MiB, 1 * MiB, Fill::kRandom, 8});
  write_run(src, {40 * MiB, 100 * KiB, Fill::kRandom, 9});
  auto second = stage_local(src, size, dst, rec);
  INFO((second.ok() ? "" : second.error().message));
  REQUIRE(second.ok());
  CHECK_FALSE(second->full);
  CHECK(second->blocks_changed == 3);
  CHECK(second->copy.bytes_read == 2 * MiB + 300 * KiB);
  CHECK(second->verified);
  CHECK_FALSE(first_difference(src, dst));
  CHECK(second->digest != first->digest);

  // Nothing changed: nothing read.
  auto third = stage_local(src, size, dst, rec);
  REQUIRE(third.ok());
  CHECK(third->blocks_changed == 0);
  CHECK(third->copy.bytes_read == 0);
  CHECK(third->digest == second->digest);

  SECTION("a copy cut short: its blocks are written again even if the source changed back") {
    std::string before = read_file(src).substr(10 * MiB, 1 * MiB);
    write_run(src, {10 * MiB, 1 * MiB, Fill::kRandom, 11});
    std::atomic<bool> cancel{true};
    auto cut = stage_local(src, size, dst, rec, true, &cancel);
    REQUIRE_FALSE(cut.ok());
    CHECK(cut.error().code == ErrorCode::kCanceled);
    REQUIRE(path_exists(rec + ".pending"));
    // The interrupted copy may have written block 10 (here: it is made half-written),
    // and the source goes back to what the record says.
    write_run(dst, {10 * MiB, 4096, Fill::kRandom, 12});
    {
      std::string all = read_file(src);
      all.replace(10 * MiB, 1 * MiB, before);
      write_file(src, all);
    }
    auto again = stage_local(src, size, dst, rec);
    INFO((again.ok() ? "" : again.error().message));
    REQUIRE(again.ok());
    CHECK(again->blocks_changed == 1);
    CHECK_FALSE(path_exists(rec + ".pending"));
    CHECK_FALSE(first_difference(src, dst));
  }

  SECTION("a checkpoint claiming a block the source has since changed: read back, copied again") {
    // An earlier attempt of a whole copy wrote block 3 and its checkpoint
    // says so; then block 3 of the source changed before this attempt.
    std::filesystem::remove(rec + ".digests");
    write_run(dst, {3 * MiB, 1 * MiB, Fill::kRandom, 31});
    std::string cp = dir.file("stage.checkpoint");
    write_file(cp, "ferry-checkpoint 1\nsource file://" + src + "\nsize " + std::to_string(size) +
                       "\ndone " + std::to_string(3 * MiB) + " " + std::to_string(1 * MiB) +
                       "\nend\n");
    auto now = hash_file_blocks(src, size);
    REQUIRE(now.ok());
    auto opts = test_options();
    opts.checkpoint_path = cp;
    auto r = stage_copy(SourceSpec{.uri = src, .size = size}, *now, dst, rec, opts, false);
    INFO((r.ok() ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK(r->full);
    CHECK(r->copy.bytes_skipped_resumed == 1 * MiB);
    CHECK_FALSE(first_difference(src, dst));  // block 3 was read back and copied again
    // And the record says what the target holds: nothing to copy next time.
    auto next = stage_local(src, size, dst, rec);
    REQUIRE(next.ok());
    CHECK(next->blocks_changed == 0);
  }

  SECTION("verify finds a target block that differs from the source's digest") {
    write_run(dst, {25 * MiB, 512, Fill::kRandom, 13});
    auto bad = stage_local(src, size, dst, rec);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == ErrorCode::kDataMismatch);
    CHECK(bad.error().message.find("block 25 ") != std::string::npos);
  }

  SECTION("a lost target makes the next stage copy everything") {
    std::filesystem::remove(dst);
    auto full = stage_local(src, size, dst, rec);
    REQUIRE(full.ok());
    CHECK(full->full);
    CHECK_FALSE(first_difference(src, dst));
  }
}

TEST_CASE("a volume served to another node over NBD with TLS: digests first, then changed blocks",
          "[stage][tls]") {
  TempDir dir;
  const uint64_t size = 24 * MiB;
  std::string vol = dir.file("volume.img"), dst = dir.file("dst.img"), rec = dir.file("record");
  make_sparse_image(vol, size, {{0, 2 * MiB}, {12 * MiB, 4 * MiB}});
  std::string psk = psk_file(dir, "serve.psk", "ferry-stage");
  agent::volumes::ServeOptions so{.volume = vol,
                                  .size = size,
                                  .address = "127.0.0.1",
                                  .psk_file = psk,
                                  .work_dir = dir.file("serve")};
  auto reader = [&](const std::string& uri) {
    return SourceSpec{.uri = uri,
                      .bind_address = "127.0.0.1",
                      .tls_psk_file = psk,
                      .tls_username = "ferry-stage",
                      .size = size};
  };
  auto one_stage = [&]() -> Result<StageStats> {
    auto server = agent::volumes::VolumeServer::start(so);
    if (!server.ok()) return server.error();
    auto digests = fetch_block_hashes(reader((*server)->digests_uri()), size, dir.file("scratch"));
    if (!digests.ok()) return digests.error();
    if (digest_of(*digests) != (*server)->digest())
      return Error(ErrorCode::kDataMismatch, "served digests differ from the server's own");
    return stage_copy(reader((*server)->disk_uri()), *digests, dst, rec, test_options(), true);
  };

  auto first = one_stage();
  INFO((first.ok() ? "" : first.error().message));
  REQUIRE(first.ok());
  CHECK(first->full);
  CHECK(first->copy.bytes_read == 6 * MiB);
  CHECK_FALSE(first_difference(vol, dst));
  CHECK(allocated_bytes(dst) <= 7 * MiB);
  CHECK_FALSE(path_exists(dir.file("serve")));  // the server's directory went with it

  write_run(vol, {13 * MiB, 64 * KiB, Fill::kRandom, 5});
  write_run(vol, {20 * MiB, 1 * MiB, Fill::kRandom, 6});
  auto second = one_stage();
  INFO((second.ok() ? "" : second.error().message));
  REQUIRE(second.ok());
  CHECK(second->blocks_changed == 2);
  CHECK(second->copy.bytes_read == 2 * MiB);
  CHECK(second->verified);
  CHECK_FALSE(first_difference(vol, dst));

  SECTION("a reader without the key gets nothing") {
    auto server = agent::volumes::VolumeServer::start(so);
    REQUIRE(server.ok());
    SourceSpec plain{.uri = (*server)->disk_uri(), .size = size};
    auto opts = test_options();
    opts.max_retries = 0;
    auto r = copy_disk(plain, dir.file("plain.img"), opts);
    REQUIRE_FALSE(r.ok());
    std::string other = psk_file(dir, "other.psk", "ferry-stage");
    SourceSpec wrong = reader((*server)->disk_uri());
    wrong.tls_psk_file = other;
    r = copy_disk(wrong, dir.file("wrong.img"), opts);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("TLS") != std::string::npos);
    CHECK((*server)->alive());  // it still serves those with the key
  }

  SECTION("a bad address or a missing volume is refused") {
    auto bad = so;
    bad.address = "not-an-address";
    auto r = agent::volumes::VolumeServer::start(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not-an-address") != std::string::npos);
    bad = so;
    bad.volume = dir.file("missing.img");
    r = agent::volumes::VolumeServer::start(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("missing.img") != std::string::npos);
  }
}
