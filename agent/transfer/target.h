#pragma once
// Target: the local destination, a sparse regular file or a block device.
// Opened once per copy; write()/zero() are called concurrently by worker
// threads on disjoint ranges (pwrite/fallocate are thread-safe), sync() by the
// checkpoint thread.
#include <cstdint>
#include <memory>
#include <string>

#include "common/base/result.h"

namespace ferry::agent::transfer {

class Target {
 public:
  // keep_contents: the target's current data matters (resume, ranges mode):
  // don't truncate it. Otherwise a regular file is truncated to 0 and then
  // extended to `size`, so it is one big hole and zeros need no work.
  // direct: also open the target with O_DIRECT and write 4 KiB-aligned data
  // through it, bypassing the page cache (other writes stay buffered).
  static Result<std::unique_ptr<Target>> open(const std::string& path, uint64_t size,
                                              bool keep_contents, bool direct = false);
  ~Target();

  // True if zero ranges must be written explicitly (block device, or a file
  // whose old contents were kept); false for a freshly truncated file.
  bool needs_zeroing() const { return needs_zeroing_; }
  bool is_block_device() const { return block_; }
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  Status write(const char* buf, uint64_t offset, uint64_t length);
  // Makes [offset, offset+length) read as zeros: PUNCH_HOLE|KEEP_SIZE on a
  // file, BLKZEROOUT on a block device, writing zeros as the last resort.
  Status zero(uint64_t offset, uint64_t length);
  Status sync();

  // Page-cache control (as nbdcopy does): start writeback of freshly written
  // data at once, and later wait for it and drop it from the cache. Keeps
  // dirty memory bounded and overlaps disk writes with the copy, so the final
  // fsync is short. Best effort: errors surface in sync().
  void writeback_start(uint64_t offset, uint64_t length);
  void writeback_finish(uint64_t offset, uint64_t length);

 private:
  Target() = default;
  Error io_error(const std::string& what, uint64_t offset, int err) const;
  std::string path_;
  int fd_ = -1;
  int direct_fd_ = -1;  // O_DIRECT descriptor, or -1
  bool block_ = false;
  bool needs_zeroing_ = false;
};

}  // namespace ferry::agent::transfer
