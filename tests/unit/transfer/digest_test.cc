#include <catch2/catch.hpp>

#include <string>

#include "agent/transfer/digest.h"

using namespace ferry::agent::transfer;

TEST_CASE("digest of holes equals digest of zeros read", "[digest]") {
  const uint64_t size = 3 * kDigestBlock + 1000;  // last block is short
  std::string zeros(size, '\0');
  BlockDigests read(size), holes(size);
  read.hash_data(zeros.data(), 0, size);
  holes.hash_zero(0, size);
  std::vector<ByteRange> all{{0, size}};
  REQUIRE(read.final_digest(all) == holes.final_digest(all));
  REQUIRE(read.block_length(3) == 1000);
}

TEST_CASE("digest follows the documented scheme", "[digest]") {
  const uint64_t size = 2 * kDigestBlock;
  std::string data(size, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 7);
  BlockDigests d(size);
  d.hash_data(data.data(), 0, size);
  // final = XXH3-128(canonical(XXH3-128(block0)) || canonical(XXH3-128(block1)))
  XXH128_canonical_t c[2];
  XXH128_canonicalFromHash(&c[0], XXH3_128bits(data.data(), kDigestBlock));
  XXH128_canonicalFromHash(&c[1], XXH3_128bits(data.data() + kDigestBlock, kDigestBlock));
  REQUIRE(d.final_digest({{0, size}}) == to_hex(XXH3_128bits(c, sizeof c)));
  // A changed byte changes the digest.
  data[12345] ^= 1;
  BlockDigests e(size);
  e.hash_data(data.data(), 0, size);
  REQUIRE(e.final_digest({{0, size}}) != d.final_digest({{0, size}}));
}
