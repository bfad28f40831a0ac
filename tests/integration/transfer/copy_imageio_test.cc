// The imageio source against the real ovirt-imageio daemon (PyPI), serving a
// disk through its nbd backend over qemu-nbd, so its zero extents are real:
// what the daemon counts as served is what the copy read.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <thread>

#include "tests/integration/transfer/transfer_fixtures.h"
#include "tests/support/imageio_daemon.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;

namespace {

// A qcow2 disk with unallocated holes, a zero cluster (allocated, reads as
// zeros) and data, served by qemu-nbd and imageio; `raw` holds its content.
struct ImageioDisk {
  TempDir& dir;
  std::string raw, image;
  uint64_t size;
  QemuNbd nbd;
  ImageioDaemon daemon;
  ImageioDisk(TempDir& d, uint64_t sz, const std::vector<DataRun>& runs,
              const std::string& zero_cluster = "")
      : dir(d),
        raw(d.file("disk.raw")),
        image(make(d, sz, runs, zero_cluster)),
        size(sz),
        nbd(d, image, "qcow2", {"-A"}),  // allocation depth: imageio tells holes
        daemon(d) {}
  static std::string make(TempDir& d, uint64_t sz, const std::vector<DataRun>& runs,
                          const std::string& zero_cluster) {
    std::string raw = d.file("disk.raw"), q = d.file("disk.qcow2");
    make_sparse_image(raw, sz, runs);
    run_ok(d, {require_program("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", raw, q},
           "convert");
    if (!zero_cluster.empty())  // "OFFSET LENGTH" of a hole in `raw`: the content stays zeros
      run_ok(d, {require_program("qemu-io"), "-f", "qcow2", "-c", "write -z " + zero_cluster, q},
             "qemu-io");
    return q;
  }
  std::string backend() const { return "nbd:unix:" + dir.file("qemu-nbd.sock"); }
  SourceSpec source(const std::string& ticket) const {
    SourceSpec s;
    s.uri = daemon.image_url(ticket);
    s.tls_sha1_thumbprint = daemon.thumbprint();
    s.imageio = true;
    return s;
  }
};

}  // namespace

TEST_CASE("imageio source: only allocated data crosses the wire and the copy is identical",
          "[imageio]") {
  TempDir dir;
  const uint64_t size = 64 * MiB + 4096;  // not a multiple of anything
  ImageioDisk disk(
      dir, size,
      {{2 * MiB, 3 * MiB}, {30 * MiB, 1 * MiB, Fill::kPattern}, {60 * MiB, 4 * MiB + 4096}},
      "40M 4M");
  disk.daemon.add_ticket("ticket-1", size, disk.backend());
  // What the daemon says is data, with real holes and a real zero cluster.
  auto ext = nlohmann::json::parse(disk.daemon.extents("ticket-1"));
  uint64_t data = 0;
  bool hole = false, zero_cluster = false;
  for (const auto& x : ext) {
    if (!x["zero"].get<bool>()) data += x["length"].get<uint64_t>();
    hole = hole || x["hole"].get<bool>();
    zero_cluster = zero_cluster || (x["zero"].get<bool>() && !x["hole"].get<bool>() &&
                                    x["start"].get<uint64_t>() == 40 * MiB);
  }
  CHECK(hole);
  CHECK(zero_cluster);
  CHECK(data <= 8 * MiB + 64 * KiB);  // the runs, rounded up to qcow2 clusters

  std::string dst = dir.file("dst.img");
  auto opts = test_options();
  opts.verify = true;
  auto r = copy_disk(disk.source("ticket-1"), dst, opts);
  REQUIRE(r.ok());
  CHECK(r->size == size);
  CHECK(r->bytes_read == data);                        // no hole, no zero cluster read
  CHECK(disk.daemon.transferred("ticket-1") == data);  // counted by the daemon itself
  CHECK_FALSE(first_difference(disk.raw, dst));
  CHECK(allocated_bytes(dst) <= data + 64 * KiB);
}

TEST_CASE("imageio source: a ticket revoked mid-copy fails with a clear error",
          "[imageio][faults]") {
  TempDir dir;
  const uint64_t size = 32 * MiB;
  ImageioDisk disk(dir, size, {{0, 32 * MiB}});
  disk.daemon.add_ticket("revoked", size, disk.backend());
  auto opts = test_options();
  opts.bandwidth = 4 * MiB;  // 8 s of reading: the ticket goes long before
  Result<CopyStats> r = Error(ErrorCode::kInternal, "not run");
  std::thread copy([&] { r = copy_disk(disk.source("revoked"), dir.file("dst.img"), opts); });
  bool started = eventually(
      std::chrono::seconds(20), [&] { return disk.daemon.transferred("revoked") >= 4 * MiB; },
      std::chrono::milliseconds(100));
  disk.daemon.remove_ticket("revoked");  // the engine's cancel, or its expiry
  copy.join();
  REQUIRE(started);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kPermissionDenied);
  CHECK_THAT(r.error().message,
             Catch::Contains("403") && Catch::Contains("ticket expired or was revoked"));

  // A ticket that never existed is refused before anything is read.
  auto none = copy_disk(disk.source("no-such-ticket"), dir.file("none.img"), test_options());
  REQUIRE_FALSE(none.ok());
  CHECK(none.error().code == ErrorCode::kPermissionDenied);
  CHECK_THAT(none.error().message, Catch::Contains("OPTIONS") && Catch::Contains("ticket"));
}

TEST_CASE("imageio source: the certificate is pinned", "[imageio][faults]") {
  TempDir dir;
  ImageioDisk disk(dir, 4 * MiB, {{0, 1 * MiB}});
  disk.daemon.add_ticket("t", 4 * MiB, disk.backend());
  SourceSpec s = disk.source("t");
  s.tls_sha1_thumbprint = "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33";
  auto r = copy_disk(s, dir.file("dst.img"), test_options());
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kPermissionDenied);
  CHECK(disk.daemon.transferred("t") == 0);
}

TEST_CASE("imageio source: a backup ticket's dirty extents update the earlier copy", "[imageio]") {
  TempDir dir;
  const uint64_t size = 32 * MiB;
  std::string q = dir.file("disk.qcow2"), raw = dir.file("disk.raw");
  make_sparse_image(raw, size, {{0, 8 * MiB}, {20 * MiB, 4 * MiB}});
  std::string qemu_img = require_program("qemu-img"), qemu_io = require_program("qemu-io");
  run_ok(dir, {qemu_img, "convert", "-f", "raw", "-O", "qcow2", raw, q}, "convert");
  // The first copy: the disk as it is when the bitmap starts recording.
  std::string dst = dir.file("dst.img");
  run_ok(dir, {qemu_img, "convert", "-f", "qcow2", "-O", "raw", q, dst}, "first-copy");
  run_ok(dir, {qemu_img, "bitmap", "--add", q, "backup-1"}, "bitmap");
  // The guest writes: over data, into a hole, and zeroes a data area.
  run_ok(dir,
         {qemu_io, "-f", "qcow2", "-c", "write -P 0xab 1M 256k", "-c", "write -P 0xcd 12M 1M", "-c",
          "write -z 21M 512k", q},
         "guest-writes");
  const uint64_t dirty = 256 * KiB + 1 * MiB + 512 * KiB;
  QemuNbd nbd(dir, q, "qcow2", {"-A", "-B", "backup-1"});
  ImageioDaemon daemon(dir);
  daemon.add_ticket("backup", size, "nbd:unix:" + dir.file("qemu-nbd.sock"), 300, /*dirty=*/true);
  SourceSpec s;
  s.uri = daemon.image_url("backup");
  s.tls_sha1_thumbprint = daemon.thumbprint();
  s.imageio = true;
  s.changed_only = true;
  auto r = copy_disk(s, dst, test_options());
  REQUIRE(r.ok());
  CHECK(r->bytes_read == dirty - 512 * KiB);  // the zeroed area is dirty but not read
  CHECK(daemon.transferred("backup") == r->bytes_read);
  std::string now = dir.file("now.raw");
  run_ok(dir, {qemu_img, "convert", "-f", "qcow2", "-O", "raw", q, now}, "now");
  CHECK_FALSE(first_difference(now, dst));

  // Changed-only updates the earlier copy: never an emptied one.
  auto fresh = test_options();
  fresh.fresh_target = true;
  auto f = copy_disk(s, dst, fresh);
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().code == ErrorCode::kInvalidArgument);
  CHECK_FALSE(first_difference(now, dst));  // untouched

  // A ticket that is not a backup's has no dirty extents: said, nothing copied.
  daemon.add_ticket("plain", size, "nbd:unix:" + dir.file("qemu-nbd.sock"));
  s.uri = daemon.image_url("plain");
  auto p = copy_disk(s, dst, test_options());
  REQUIRE_FALSE(p.ok());
  CHECK(p.error().code == ErrorCode::kFailedPrecondition);
  CHECK_THAT(p.error().message, Catch::Contains("no dirty extents"));
}
