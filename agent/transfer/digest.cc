#include "agent/transfer/digest.h"

#include <algorithm>
#include <mutex>

namespace ferry::agent::transfer {

XXH128_hash_t hash_block(const char* data, size_t len) { return XXH3_128bits(data, len); }

XXH128_hash_t zero_block_hash(size_t len) {
  static const std::vector<char> zeros(kDigestBlock, 0);
  static const XXH128_hash_t full = XXH3_128bits(zeros.data(), kDigestBlock);
  if (len == kDigestBlock) return full;
  return XXH3_128bits(zeros.data(), std::min<size_t>(len, kDigestBlock));
}

uint64_t BlockDigests::block_length(uint64_t index) const {
  uint64_t start = index * kDigestBlock;
  return std::min(kDigestBlock, size_ - start);
}

void BlockDigests::hash_data(const char* data, uint64_t offset, uint64_t len) {
  for (uint64_t pos = offset; pos < offset + len;) {
    uint64_t idx = pos / kDigestBlock;
    uint64_t n = block_length(idx);
    hashes_[idx] = hash_block(data + (pos - offset), n);
    pos += n;
  }
}

void BlockDigests::hash_zero(uint64_t offset, uint64_t len) {
  for (uint64_t pos = offset; pos < offset + len;) {
    uint64_t idx = pos / kDigestBlock;
    uint64_t n = block_length(idx);
    hashes_[idx] = zero_block_hash(n);
    pos += n;
  }
}

std::string BlockDigests::final_digest(const std::vector<ByteRange>& ranges) const {
  XXH3_state_t* st = XXH3_createState();
  XXH3_128bits_reset(st);
  for (const auto& r : ranges) {
    for (uint64_t idx = r.offset / kDigestBlock;
         idx < hashes_.size() && idx * kDigestBlock < r.offset + r.length; idx++) {
      XXH128_canonical_t c;
      XXH128_canonicalFromHash(&c, hashes_[idx]);
      XXH3_128bits_update(st, c.digest, sizeof c.digest);
    }
  }
  XXH128_hash_t h = XXH3_128bits_digest(st);
  XXH3_freeState(st);
  return to_hex(h);
}

std::string to_hex(const XXH128_hash_t& h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : c.digest) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

}  // namespace ferry::agent::transfer
