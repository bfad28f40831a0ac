// The copy engine against qemu-nbd, the other NBD server a source may be
// (oVirt/RHV's imageio and KubeVirt's CDI use it): a qcow2 image whose holes
// and zero clusters come from qemu's own block status.
#include <catch2/catch.hpp>

#include "tests/integration/transfer/transfer_fixtures.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

void qemu_img_convert(const TempDir& dir, const std::string& raw, const std::string& qcow2) {
  Subprocess p({require_program("qemu-img"), "convert", "-f", "raw", "-O", "qcow2", raw, qcow2},
               {.log_dir = dir.path(), .name = "qemu-img"});
  if (p.wait(60s) != 0) throw std::runtime_error("qemu-img convert failed: " + p.stderr_text());
}

}  // namespace

TEST_CASE("qemu-nbd serving qcow2: only allocated clusters are read, the copy is identical",
          "[nbd][qemu-nbd]") {
  TempDir dir;
  std::string raw = dir.file("src.img"), qcow2 = dir.file("src.qcow2"), dst = dir.file("dst.img");
  const uint64_t size = 48 * MiB;
  make_sparse_image(raw, size,
                    {{1 * MiB, 3 * MiB},
                     {20 * MiB, 2 * MiB, Fill::kPattern},
                     {size - 1 * MiB, 1 * MiB, Fill::kRandom, 5}});
  write_zeros(raw, 2 * MiB, 1 * MiB);  // data that is zero: qemu-img leaves it unallocated
  qemu_img_convert(dir, raw, qcow2);
  QemuNbd server(dir, qcow2, "qcow2");
  auto opts = test_options();
  opts.verify = true;
  auto r = copy_disk(server.source(), dst, opts);
  REQUIRE(r.ok());
  CHECK(r->size == size);
  CHECK(r->bytes_read == 5 * MiB);  // 2 + 2 + 1 MiB of data: no hole, no zero cluster read
  CHECK(r->bytes_zero == size - 5 * MiB);
  CHECK_FALSE(first_difference(raw, dst));
  CHECK(data_extents(dst) == std::vector<ferry::test::Extent>{{1 * MiB, 1 * MiB},
                                                              {3 * MiB, 1 * MiB},
                                                              {20 * MiB, 2 * MiB},
                                                              {size - 1 * MiB, 1 * MiB}});
}
