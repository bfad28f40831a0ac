// The HTTP range source against tests/support's HttpFileServer (RFC 7233
// single ranges), including cookies, 503s and dropped connections.
#include <catch2/catch.hpp>

#include "tests/integration/transfer/transfer_fixtures.h"
#include "tests/support/http_file_server.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;

TEST_CASE("HTTP source: ranged GETs, zero detection, verify", "[http]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  const uint64_t size = 24 * MiB + 4096;  // not a multiple of the block size
  make_sparse_image(src, size, {{1 * MiB, 5 * MiB}, {20 * MiB, 4 * MiB + 4096, Fill::kPattern}});
  HttpFileServer server(src, {.required_header = "Cookie: vmware_soap_session=abc"});
  SourceSpec spec;
  spec.uri = server.url("/folder/vm/disk-flat.vmdk?dcPath=DC0&dsName=ds");
  spec.http_headers = {"Cookie: vmware_soap_session=abc"};
  auto opts = test_options();
  opts.verify = true;
  auto r = copy_disk(spec, dst, opts);
  REQUIRE(r.ok());
  CHECK(r->size == size);
  CHECK(r->bytes_read == size);  // no extent map over HTTP
  CHECK(r->bytes_written == 9 * MiB + 4096);
  CHECK_FALSE(first_difference(src, dst));
  CHECK(allocated_bytes(dst) <= allocated_bytes(src));
  CHECK(server.ranged_gets() >= 24);
}

TEST_CASE("HTTP source retries 503s and dropped connections", "[http][faults]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  make_sparse_image(src, 16 * MiB, {{0, 16 * MiB}});
  HttpFileServer server(src, {.fail_every_n = 4, .reset_every_n = 7});
  SourceSpec spec;
  spec.uri = server.url();
  auto opts = test_options();
  opts.max_retries = 8;
  auto r = copy_disk(spec, dst, opts);
  REQUIRE(r.ok());
  CHECK_FALSE(first_difference(src, dst));
}

TEST_CASE("HTTP source errors: no cookie, no Range support", "[http][faults]") {
  TempDir dir;
  std::string src = dir.file("src.img");
  make_sparse_image(src, 4 * MiB, {{0, 4 * MiB}});
  {
    HttpFileServer server(src, {.required_header = "Cookie: s=1"});
    SourceSpec spec;
    spec.uri = server.url();
    auto r = copy_disk(spec, dir.file("a.img"), test_options());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kPermissionDenied);
  }
  {
    HttpFileServer server(src, {.ignore_range = true});
    SourceSpec spec;
    spec.uri = server.url();
    auto r = copy_disk(spec, dir.file("b.img"), test_options());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == ErrorCode::kFailedPrecondition);
    CHECK_THAT(r.error().message, Catch::Contains("Range"));
  }
}
