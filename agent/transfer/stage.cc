#include "agent/transfer/stage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/transfer/digest.h"
#include "common/base/files.h"

namespace ferry::agent::transfer {

namespace {

uint64_t block_count(uint64_t size) { return (size + kDigestBlock - 1) / kDigestBlock; }

Error sys_error(const std::string& what, const std::string& path) {
  return Error(errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
               what + " " + path + ": " + strerror(errno));
}

Result<std::string> read_whole(const std::string& path, bool* found) {
  *found = false;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT) return std::string();
    return sys_error("reading", path);
  }
  *found = true;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string encode_ranges(const std::vector<ByteRange>& rs) {
  std::string out;
  for (const auto& r : rs) out += std::to_string(r.offset) + " " + std::to_string(r.length) + "\n";
  return out;
}

Result<std::vector<ByteRange>> decode_ranges(const std::string& text, const std::string& path) {
  std::vector<ByteRange> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    std::istringstream l(line);
    ByteRange r{};
    if (!(l >> r.offset >> r.length))
      return Error(ErrorCode::kIo, path + ": not a list of ranges: \"" + line + "\"");
    out.push_back(r);
  }
  return out;
}

bool same_hash(const XXH128_hash_t& a, const XXH128_hash_t& b) {
  return a.low64 == b.low64 && a.high64 == b.high64;
}

// The blocks in `changed` (one flag per block) as merged byte ranges clipped to size.
std::vector<ByteRange> block_ranges(const std::vector<bool>& changed, uint64_t size) {
  std::vector<ByteRange> out;
  for (uint64_t i = 0; i < changed.size(); i++) {
    if (!changed[i]) continue;
    uint64_t off = i * kDigestBlock;
    uint64_t len = std::min(kDigestBlock, size - off);
    if (!out.empty() && out.back().offset + out.back().length == off)
      out.back().length += len;
    else
      out.push_back({off, len});
  }
  return out;
}

}  // namespace

Result<BlockHashes> hash_file_blocks(const std::string& path, uint64_t size,
                                     const std::vector<bool>* which,
                                     const std::atomic<bool>* cancel) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return sys_error("opening", path);
  BlockDigests digests(size);
  std::vector<char> buf(kDigestBlock);
  Status st;
  // Data regions by SEEK_DATA/SEEK_HOLE; a device (or a file system without
  // them) reads everything.
  bool seekable = ::lseek(fd, 0, SEEK_DATA) >= 0 || errno == ENXIO;
  for (uint64_t idx = 0; idx < block_count(size) && st.ok(); idx++) {
    if (which && (idx >= which->size() || !(*which)[idx])) continue;
    if (cancel && cancel->load()) {
      st = Error(ErrorCode::kCanceled, "canceled");
      break;
    }
    uint64_t off = idx * kDigestBlock;
    uint64_t len = digests.block_length(idx);
    if (seekable) {
      off_t data = ::lseek(fd, static_cast<off_t>(off), SEEK_DATA);
      if ((data < 0 && errno == ENXIO) || (data >= 0 && static_cast<uint64_t>(data) >= off + len)) {
        digests.hash_zero(off, len);
        continue;
      }
    }
    uint64_t got = 0;
    while (got < len) {
      ssize_t n = ::pread(fd, buf.data() + got, len - got, static_cast<off_t>(off + got));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        st = sys_error("reading", path);
        break;
      }
      if (n == 0) {  // past the end of a shorter file: zeros
        std::memset(buf.data() + got, 0, len - got);
        break;
      }
      got += static_cast<uint64_t>(n);
    }
    digests.hash_data(buf.data(), off, len);
  }
  ::close(fd);
  if (!st.ok()) return st.error();
  BlockHashes out(block_count(size));
  for (uint64_t i = 0; i < out.size(); i++) out[i] = digests.get(i);
  return out;
}

std::string encode_block_hashes(const BlockHashes& h) {
  std::string out;
  out.reserve(h.size() * sizeof(XXH128_canonical_t));
  for (const auto& x : h) {
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, x);
    out.append(reinterpret_cast<const char*>(c.digest), sizeof c.digest);
  }
  return out;
}

Result<BlockHashes> decode_block_hashes(const std::string& bytes, uint64_t disk_size) {
  const size_t w = sizeof(XXH128_canonical_t);
  uint64_t blocks = block_count(disk_size);
  // A served digest export may be padded (NBD sizes); only the first blocks count.
  if (bytes.size() < blocks * w)
    return Error(ErrorCode::kInvalidArgument, "digest list of " + std::to_string(bytes.size()) +
                                                  " bytes is too short for " +
                                                  std::to_string(blocks) + " blocks of a " +
                                                  std::to_string(disk_size) + "-byte disk");
  BlockHashes out(blocks);
  for (uint64_t i = 0; i < blocks; i++) {
    XXH128_canonical_t c;
    std::memcpy(c.digest, bytes.data() + i * w, w);
    out[i] = XXH128_hashFromCanonical(&c);
  }
  return out;
}

Result<BlockHashes> fetch_block_hashes(const SourceSpec& digests, uint64_t disk_size,
                                       const std::string& scratch) {
  CopyOptions o;
  o.connections = 1;
  SourceSpec spec = digests;
  spec.size = 0;  // the list's own size, not the disk's
  ::unlink(scratch.c_str());
  auto copied = copy_disk(spec, scratch, o);
  if (!copied.ok()) return copied.error().wrap("reading the source's block digests");
  bool found = false;
  auto bytes = read_whole(scratch, &found);
  ::unlink(scratch.c_str());
  if (!bytes.ok()) return bytes.error();
  return decode_block_hashes(*bytes, disk_size);
}

std::string digest_of(const BlockHashes& h) {
  std::string enc = encode_block_hashes(h);
  return to_hex(XXH3_128bits(enc.data(), enc.size()));
}

Result<StageStats> stage_copy(const SourceSpec& src, const BlockHashes& source_now,
                              const std::string& target, const std::string& record,
                              CopyOptions opts, bool verify) {
  if (src.size == 0) return Error(ErrorCode::kInvalidArgument, "stage copy: source size unknown");
  StageStats stats;
  stats.blocks = block_count(src.size);
  if (source_now.size() != stats.blocks)
    return Error(ErrorCode::kInvalidArgument, "stage copy: " + std::to_string(source_now.size()) +
                                                  " source digests for " +
                                                  std::to_string(stats.blocks) + " blocks");
  const std::string digests_path = record + ".digests";
  const std::string pending_path = record + ".pending";

  // What the target matches, if we know.
  std::vector<bool> changed(stats.blocks, true);
  stats.full = true;
  struct stat st;
  bool target_there = ::stat(target.c_str(), &st) == 0;
  bool found = false;
  auto old_bytes = read_whole(digests_path, &found);
  if (!old_bytes.ok()) return old_bytes.error();
  if (found && target_there) {
    auto old = decode_block_hashes(*old_bytes, src.size);
    if (old.ok() && old_bytes->size() == stats.blocks * sizeof(XXH128_canonical_t)) {
      stats.full = false;
      for (uint64_t i = 0; i < stats.blocks; i++) changed[i] = !same_hash((*old)[i], source_now[i]);
    }
  }
  bool pending_found = false;
  auto pending_text = read_whole(pending_path, &pending_found);
  if (!pending_text.ok()) return pending_text.error();
  if (!stats.full && pending_found) {
    auto pending = decode_ranges(*pending_text, pending_path);
    if (!pending.ok()) return pending.error();
    for (const auto& r : *pending)
      for (uint64_t i = r.offset / kDigestBlock;
           i < stats.blocks && i * kDigestBlock < r.offset + r.length; i++)
        changed[i] = true;
  }
  std::vector<ByteRange> ranges = block_ranges(changed, src.size);
  for (bool c : changed) stats.blocks_changed += c ? 1 : 0;
  // The new record: what the target holds, block by block. Unchanged blocks
  // keep their entry (equal to the source's); the others are read back below.
  BlockHashes held = source_now;

  if (!ranges.empty()) {
    // Which blocks this copy may write, durably, before it writes any.
    FERRY_TRY(write_file_atomic(pending_path, encode_ranges(ranges), 0600));
    if (stats.full) ::unlink(digests_path.c_str());
    opts.ranges = stats.full ? std::vector<ByteRange>{} : ranges;
    opts.fresh_target = false;
    auto copied = copy_disk(src, target, opts);
    if (!copied.ok()) return copied.error();
    stats.copy = *copied;
    // Read back what was written: a block that does not match the source's
    // digest (the source changed since it was hashed, or an earlier attempt's
    // checkpoint claimed it) is copied again, at most twice. A whole first
    // copy that resumed nothing wrote what it read in one pass over a source
    // that only stopped VMs' disks are (the coordinator's side): it is not
    // read back unless verify asks, as that doubles its cost.
    const bool read_back = !stats.full || stats.copy.bytes_skipped_resumed > 0;
    for (int round = 0; read_back; round++) {
      auto now = hash_file_blocks(target, src.size, &changed, opts.cancel);
      if (!now.ok()) return now.error().wrap("reading back the copy");
      std::vector<bool> wrong(stats.blocks, false);
      uint64_t first_wrong = stats.blocks;
      for (uint64_t i = 0; i < stats.blocks; i++) {
        if (!changed[i]) continue;
        held[i] = (*now)[i];
        if (!same_hash((*now)[i], source_now[i])) {
          wrong[i] = true;
          first_wrong = std::min(first_wrong, i);
        }
      }
      if (first_wrong == stats.blocks) break;
      if (round == 2)  // the pending list still names these blocks
        return Error(ErrorCode::kDataMismatch,
                     "block " + std::to_string(first_wrong) +
                         " still differs from the source's digest after copying it three times: "
                         "the source is changing under the copy");
      CopyOptions again = opts;
      again.ranges = block_ranges(wrong, src.size);
      again.checkpoint_path.clear();
      auto redo = copy_disk(src, target, again);
      if (!redo.ok()) return redo.error();
      stats.copy.bytes_read += redo->bytes_read;
      stats.copy.bytes_written += redo->bytes_written;
      stats.copy.seconds += redo->seconds;
    }
  } else {
    stats.copy.size = src.size;
  }

  if (verify) {
    auto now = hash_file_blocks(target, src.size, nullptr, opts.cancel);
    if (!now.ok()) return now.error().wrap("verifying");
    std::vector<bool> wrong(stats.blocks, false);
    uint64_t first_wrong = stats.blocks;
    for (uint64_t i = 0; i < stats.blocks; i++)
      if (!same_hash((*now)[i], source_now[i])) {
        wrong[i] = true;
        first_wrong = std::min(first_wrong, i);
      }
    if (first_wrong < stats.blocks) {
      // The next copy writes them again whatever the record says.
      for (uint64_t i = 0; i < stats.blocks; i++) wrong[i] = wrong[i] || changed[i];
      FERRY_TRY(
          write_file_atomic(pending_path, encode_ranges(block_ranges(wrong, src.size)), 0600));
      return Error(ErrorCode::kDataMismatch,
                   "verify: block " + std::to_string(first_wrong) + " (offset " +
                       std::to_string(first_wrong * kDigestBlock) +
                       ") of the target does not match the source's digest");
    }
    stats.verified = true;
  }
  FERRY_TRY(write_file_atomic(digests_path, encode_block_hashes(held), 0600));
  ::unlink(pending_path.c_str());
  stats.digest = digest_of(source_now);
  return stats;
}

}  // namespace ferry::agent::transfer
