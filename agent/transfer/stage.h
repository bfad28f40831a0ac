#pragma once
// Repeated copies of one source into one target (a storage migration's
// stages, then its cutover's final sync): each copy after the first writes
// only the kDigestBlock (1 MiB) blocks whose XXH3-128 changed since the last
// completed copy.
//
// The source's block digests come from the side that holds the source (the
// serving agent hashes its own volume, or the same node hashes the file), so
// finding the changes never reads the source over the network. The target
// keeps, beside its own state, a record of its own blocks' digests
// (`<record>.digests`: each block written by a later or resumed copy read
// back after it; a whole first copy records the source's digests) and,
// while a copy runs, the blocks that copy may write (`<record>.pending`). A
// copy cut short leaves the pending blocks, which the next copy writes again
// whatever their digests say: a block changed and changed back between two
// stages is never left half-written. A written block that reads back
// different from the source's digest (the source changed meanwhile, or an
// earlier attempt's checkpoint claimed it) is copied again.
//
// The record says nothing of writes to the target by anyone else: once the
// target is used (a VM switched to it), forget the record (the agent's
// CancelTask.forget_stage) so the next copy is whole.
//
// Verify compares the digests of every block of the target, read back after
// the copy, with the source's; blocks that differ go to the pending list.
#include <xxhash.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/transfer/copy.h"
#include "common/base/result.h"

namespace ferry::agent::transfer {

using BlockHashes = std::vector<XXH128_hash_t>;

// Every block of a local file or block device of `size` bytes (data regions
// read, holes hashed as zeros without reading); with `which`, only the blocks
// it flags (the others are left zero). `cancel` set: kCanceled.
Result<BlockHashes> hash_file_blocks(const std::string& path, uint64_t size,
                                     const std::vector<bool>* which = nullptr,
                                     const std::atomic<bool>* cancel = nullptr);

// The wire form: each block's canonical (big-endian) 16 bytes, in order.
std::string encode_block_hashes(const BlockHashes& h);
Result<BlockHashes> decode_block_hashes(const std::string& bytes, uint64_t disk_size);

// Reads a digest list served next to a volume (SourceSpec of the digests
// export) through the copy engine into `scratch`, then decodes it.
Result<BlockHashes> fetch_block_hashes(const SourceSpec& digests, uint64_t disk_size,
                                       const std::string& scratch);

struct StageStats {
  CopyStats copy;
  uint64_t blocks = 0;          // blocks of the disk
  uint64_t blocks_changed = 0;  // blocks this copy wrote (all of them on a first copy)
  bool full = false;            // no usable record: the whole disk was copied
  bool verified = false;        // every target block matched the source's digest
  std::string digest;           // hex XXH3-128 over the source's block digests
};

// Copies the blocks of `src` (size src.size, which must be set) that differ
// from `record` into `target`. `source_now` is the source's digests as it is
// now. opts.ranges and opts.fresh_target are set here; a checkpoint in opts
// resumes an interrupted copy of the same changes.
Result<StageStats> stage_copy(const SourceSpec& src, const BlockHashes& source_now,
                              const std::string& target, const std::string& record,
                              CopyOptions opts, bool verify);

// Digest of a whole list (the value StageStats::digest reports).
std::string digest_of(const BlockHashes& h);

}  // namespace ferry::agent::transfer
