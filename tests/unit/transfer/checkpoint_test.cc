#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdlib>

#include "agent/transfer/checkpoint.h"

using namespace ferry;
using namespace ferry::agent::transfer;

TEST_CASE("checkpoint encodes and decodes", "[checkpoint]") {
  Checkpoint cp{"nbd+unix:///?socket=/run/x.sock", 1 << 30, {{0, 4096}, {1 << 20, 1 << 20}}};
  auto text = encode_checkpoint(cp);
  REQUIRE(text.rfind("ferry-checkpoint 1\n", 0) == 0);
  auto back = decode_checkpoint(text);
  REQUIRE(back.ok());
  REQUIRE(back->source == cp.source);
  REQUIRE(back->size == cp.size);
  REQUIRE(back->done == cp.done);
}

TEST_CASE("checkpoint decode rejects damaged files", "[checkpoint]") {
  Checkpoint cp{"file:///a", 100, {{0, 10}}};
  auto text = encode_checkpoint(cp);
  CHECK_FALSE(decode_checkpoint("").ok());
  CHECK_FALSE(decode_checkpoint("ferry-checkpoint 2\n").ok());
  CHECK_FALSE(decode_checkpoint(text.substr(0, text.size() - 4)).ok());  // no "end"
  CHECK_FALSE(decode_checkpoint("ferry-checkpoint 1\nsource a\nsize 100\ndone 90 20\nend\n").ok());
  CHECK_FALSE(decode_checkpoint("ferry-checkpoint 1\nsource a\nsize x\nend\n").ok());
  CHECK_FALSE(decode_checkpoint("ferry-checkpoint 1\nsource a\nsize 1\nbogus\nend\n").ok());
  auto r = decode_checkpoint("ferry-checkpoint 1\nsource a\nsize 1\nend\nextra\n");
  REQUIRE_FALSE(r.ok());
  REQUIRE(r.error().code == ErrorCode::kInvalidArgument);
}

TEST_CASE("checkpoint for another source or size is rejected", "[checkpoint]") {
  Checkpoint cp{"nbd://host/a", 1000, {}};
  CHECK(check_checkpoint_matches(cp, "nbd://host/a", 1000, "cp").ok());
  auto other = check_checkpoint_matches(cp, "nbd://host/b", 1000, "cp");
  REQUIRE_FALSE(other.ok());
  CHECK(other.error().code == ErrorCode::kFailedPrecondition);
  CHECK(other.error().message.find("nbd://host/b") != std::string::npos);
  CHECK_FALSE(check_checkpoint_matches(cp, "nbd://host/a", 1001, "cp").ok());
}

TEST_CASE("checkpoint save is atomic and load round-trips", "[checkpoint]") {
  char dir[] = "/tmp/ferry-cp-XXXXXX";
  REQUIRE(mkdtemp(dir));
  std::string path = std::string(dir) + "/cp";
  auto missing = load_checkpoint(path);
  REQUIRE(missing.ok());
  REQUIRE_FALSE(missing->found);
  Checkpoint cp{"s", 10, {{0, 5}}};
  REQUIRE(save_checkpoint(path, cp).ok());
  REQUIRE(access((path + ".tmp").c_str(), F_OK) != 0);
  auto l = load_checkpoint(path);
  REQUIRE(l.ok());
  REQUIRE(l->found);
  REQUIRE(l->cp.done == cp.done);
  unlink(path.c_str());
  rmdir(dir);
}
