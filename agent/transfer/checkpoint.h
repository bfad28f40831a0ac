#pragma once
// Checkpoint: which byte ranges of the target are durably written (fsync'd)
// for a given source. Text format (version 1), one record per line:
//
//   ferry-checkpoint 1
//   source <source identity, rest of line>
//   size <virtual size in bytes>
//   done <offset> <length>        (zero or more, sorted, non-overlapping)
//   end
//
// Written atomically (tmp file, fsync, rename, fsync dir). A checkpoint whose
// source or size differs from the current copy is rejected, never ignored.
#include <cstdint>
#include <string>
#include <vector>

#include "agent/transfer/copy.h"
#include "common/base/result.h"

namespace ferry::agent::transfer {

struct Checkpoint {
  std::string source;  // source identity (the URI without query string/credentials)
  uint64_t size = 0;
  std::vector<ByteRange> done;  // normalized
};

std::string encode_checkpoint(const Checkpoint& cp);
Result<Checkpoint> decode_checkpoint(const std::string& text);
// Fails with kFailedPrecondition naming both identities if `cp` is for another source or size.
Status check_checkpoint_matches(const Checkpoint& cp, const std::string& source, uint64_t size,
                                const std::string& path);

// Loads `path`; a missing file yields an empty Checkpoint with found=false.
struct LoadedCheckpoint {
  bool found = false;
  Checkpoint cp;
};
Result<LoadedCheckpoint> load_checkpoint(const std::string& path);
Status save_checkpoint(const std::string& path, const Checkpoint& cp);

}  // namespace ferry::agent::transfer
