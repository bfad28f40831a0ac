// NBD with TLS and a pre-shared key against real nbdkit (--tls=require
// --tls-psk): how one node's agent reads a volume that another node's agent
// serves. Bytes identical, holes kept, on a Unix socket and on TCP bound to
// a chosen local address; a client without the key, or with the wrong one,
// gets an error and no data.
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "tests/integration/transfer/transfer_fixtures.h"

using namespace ferry;
using namespace ferry::agent::transfer;
using namespace ferry::agent::transfer::testing;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool accepting(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TEST_CASE("NBD over TLS with a pre-shared key copies byte for byte and keeps holes", "[nbd][tls]") {
  TempDir dir;
  std::string src = dir.file("src.img"), dst = dir.file("dst.img");
  const uint64_t size = 64 * MiB;
  make_sparse_image(src, size, {{0, 4 * MiB}, {20 * MiB, 6 * MiB}, {60 * MiB, 1 * MiB}});
  std::string psk = psk_file(dir, "keys.psk", "ferry-node-2");
  auto opts = test_options();

  SECTION("on a Unix socket") {
    // One client at a time: the test's refusals drop connections mid-handshake.
    Nbdkit nbd(dir, {"--tls=require", "--tls-psk=" + psk, "--filter=noparallel", "file", src});
    SourceSpec spec = nbd_source(nbd);
    spec.tls_psk_file = psk;
    spec.tls_username = "ferry-node-2";
    auto r = copy_disk(spec, dst, opts);
    INFO((r.ok() ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK(r->size == size);
    CHECK(r->bytes_read == 11 * MiB);  // the data, not the holes
    CHECK_FALSE(first_difference(src, dst));
    CHECK(allocated_bytes(dst) <= 12 * MiB);
  }

  SECTION("on TCP, bound to the chosen local address") {
    int port = free_port();
    auto server = std::make_unique<Subprocess>(
        std::vector<std::string>{require_program("nbdkit"), "-f", "--exit-with-parent", "-i",
                                 "127.0.0.1", "-p", std::to_string(port), "--tls=require",
                                 "--tls-psk=" + psk, "file", src},
        SubprocessOptions{.log_dir = dir.path(), .name = "nbdkit-tcp"});
    REQUIRE(eventually(
        10s, [&] { return accepting(port); }, 50ms));
    SourceSpec spec{.uri = "nbd://127.0.0.1:" + std::to_string(port),
                    .bind_address = "127.0.0.1",
                    .tls_psk_file = psk,
                    .tls_username = "ferry-node-2"};
    auto r = copy_disk(spec, dst, opts);
    INFO((r.ok() ? "" : r.error().message));
    REQUIRE(r.ok());
    CHECK_FALSE(first_difference(src, dst));
    CHECK(r->bytes_read == 11 * MiB);
  }
}

TEST_CASE("NBD over TLS: no key, a wrong key or a missing key file is an error, never clear text",
          "[nbd][tls]") {
  TempDir dir;
  std::string src = dir.file("src.img");
  make_sparse_image(src, 8 * MiB, {{0, 8 * MiB}});
  std::string psk = psk_file(dir, "keys.psk", "ferry-node-2");
  std::string other = psk_file(dir, "other.psk", "ferry-node-2");
  Nbdkit nbd(dir, {"--tls=require", "--tls-psk=" + psk, "--filter=noparallel", "file", src});
  auto opts = test_options();
  opts.max_retries = 0;

  SourceSpec plain = nbd_source(nbd);
  auto r = copy_disk(plain, dir.file("plain.img"), opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kUnavailable);

  SourceSpec wrong = nbd_source(nbd);
  wrong.tls_psk_file = other;
  wrong.tls_username = "ferry-node-2";
  r = copy_disk(wrong, dir.file("wrong.img"), opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().message.find("TLS") != std::string::npos);

  SourceSpec missing = nbd_source(nbd);
  missing.tls_psk_file = dir.file("no-such.psk");
  r = copy_disk(missing, dir.file("missing.img"), opts);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == ErrorCode::kInvalidArgument);
  CHECK(r.error().message.find(dir.file("no-such.psk")) != std::string::npos);

  // The server is still there for a client with the key.
  SourceSpec good = nbd_source(nbd);
  good.tls_psk_file = psk;
  good.tls_username = "ferry-node-2";
  CHECK(copy_disk(good, dir.file("good.img"), opts).ok());
}
