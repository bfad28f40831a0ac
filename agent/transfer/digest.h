#pragma once
// The verification digest (scheme documented in README.md): XXH3-128 of every
// kDigestBlock-sized block (aligned to absolute offsets; the last block of the
// disk may be shorter), holes hashed as zeros without reading; the final
// digest is XXH3-128 over the concatenation of the blocks' canonical
// (big-endian) 16-byte hashes, in block order, over the blocks that were copied.
#include <xxhash.h>

#include <cstdint>
#include <string>
#include <vector>

#include "agent/transfer/copy.h"

namespace ferry::agent::transfer {

constexpr uint64_t kDigestBlock = 1 << 20;

XXH128_hash_t hash_block(const char* data, size_t len);
// Hash of `len` zero bytes (cached for full blocks).
XXH128_hash_t zero_block_hash(size_t len);

// Per-block hashes of one copy. Writers on different blocks may run concurrently.
class BlockDigests {
 public:
  BlockDigests(uint64_t size) : size_(size), hashes_((size + kDigestBlock - 1) / kDigestBlock) {}
  uint64_t block_length(uint64_t index) const;
  void set(uint64_t index, XXH128_hash_t h) { hashes_[index] = h; }
  const XXH128_hash_t& get(uint64_t index) const { return hashes_[index]; }
  // Hashes [offset, offset+len) of `data`; offset and len cover whole blocks.
  void hash_data(const char* data, uint64_t offset, uint64_t len);
  // Records whole blocks in [offset, offset+len) as zeros.
  void hash_zero(uint64_t offset, uint64_t len);
  // Final digest (hex) over the blocks intersecting `ranges` (block aligned, normalized).
  std::string final_digest(const std::vector<ByteRange>& ranges) const;

 private:
  uint64_t size_;
  std::vector<XXH128_hash_t> hashes_;
};

std::string to_hex(const XXH128_hash_t& h);

}  // namespace ferry::agent::transfer
