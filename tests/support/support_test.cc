// Self-test of ferry_test_support (quick; label unit).
#include <catch2/catch.hpp>

#include <signal.h>

#include "tests/support/http_file_server.h"
#include "tests/support/test_support.h"

using namespace ferry::test;
using namespace std::chrono_literals;

TEST_CASE("TempDir is created and removed", "[support]") {
  std::string path;
  {
    TempDir d;
    path = d.path();
    write_file(d.file("x"), "hello");
    REQUIRE(read_file(d.file("x")) == "hello");
  }
  REQUIRE_FALSE(path_exists(path));
}

TEST_CASE("Subprocess: exit code, logs, env, signal, kill on destruction", "[support]") {
  TempDir d;
  std::string sh = require_program("sh");
  Subprocess ok({sh, "-c", "echo out; echo err >&2; echo $FERRY_X; exit 3"},
                {.env = {"FERRY_X=42"}, .log_dir = d.path(), .name = "ok"});
  REQUIRE(ok.wait(10s) == 3);
  REQUIRE(ok.stdout_text() == "out\n42\n");
  REQUIRE(ok.stderr_text() == "err\n");

  pid_t pid;
  {
    Subprocess sleeper({"sleep", "30"}, {.log_dir = d.path()});
    pid = sleeper.pid();
    REQUIRE(sleeper.alive());
    REQUIRE_FALSE(sleeper.wait(50ms));
  }
  REQUIRE(::kill(pid, 0) != 0);  // gone and reaped

  Subprocess term({"sleep", "30"}, {.log_dir = d.path()});
  term.signal(SIGTERM);
  REQUIRE(term.wait(10s) == 128 + SIGTERM);
}

TEST_CASE("require_program fails loudly", "[support]") {
  REQUIRE(find_program("definitely-not-a-program-xyz").empty());
  REQUIRE_THROWS_WITH(require_program("definitely-not-a-program-xyz"),
                      Catch::Contains("install-deps"));
}

TEST_CASE("eventually polls until true or timeout", "[support]") {
  int n = 0;
  REQUIRE(eventually(
      5s, [&] { return ++n == 3; }, 1ms));
  REQUIRE_FALSE(eventually(30ms, [] { return false; }));
}

TEST_CASE("sparse images have data exactly where asked", "[support]") {
  TempDir d;
  std::string img = d.file("img");
  make_sparse_image(img, 8 << 20, {{1 << 20, 1 << 20}, {4 << 20, 64 << 10, Fill::kPattern}});
  REQUIRE(file_size(img) == 8 << 20);
  REQUIRE(data_extents(img) == std::vector<Extent>{{1 << 20, 1 << 20}, {4 << 20, 64 << 10}});
  std::string s = read_file(img);
  // Pattern: each 8-byte word holds its own offset, big-endian.
  REQUIRE(static_cast<unsigned char>(s[(4 << 20) + 8 + 5]) == (((4 << 20) + 8) >> 16 & 0xff));
  std::string copy = d.file("copy");
  write_file(copy, s);
  REQUIRE_FALSE(first_difference(img, copy));
  write_run(copy, {100, 1, Fill::kRandom, 5});
  REQUIRE(first_difference(img, copy) == 100);
}

TEST_CASE("HttpFileServer answers single ranges per RFC 7233", "[support]") {
  TempDir d;
  std::string img = d.file("img");
  make_sparse_image(img, 1000, {{0, 1000, Fill::kPattern}});
  HttpFileServer server(img);
  std::string curl = require_program("curl");
  Subprocess c(
      {curl, "-s", "-D", d.file("headers"), "-r", "10-19", "-o", d.file("body"), server.url()},
      {.log_dir = d.path()});
  REQUIRE(c.wait(10s) == 0);
  std::string h = read_file(d.file("headers"));
  REQUIRE_THAT(h, Catch::Contains("206 Partial Content"));
  REQUIRE_THAT(h, Catch::Contains("Content-Range: bytes 10-19/1000"));
  REQUIRE(read_file(d.file("body")) == read_file(img).substr(10, 10));
  Subprocess bad(
      {curl, "-s", "-o", "/dev/null", "-w", "%{http_code}", "-r", "2000-3000", server.url()},
      {.log_dir = d.path(), .name = "bad"});
  REQUIRE(bad.wait(10s) == 0);
  REQUIRE(bad.stdout_text() == "416");
}
