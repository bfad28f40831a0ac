#include "agent/transfer/target.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace ferry::agent::transfer {

Result<std::unique_ptr<Target>> Target::open(const std::string& path, uint64_t size,
                                             bool keep_contents, bool direct) {
  std::unique_ptr<Target> t(new Target());
  t->path_ = path;
  t->fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (t->fd_ < 0)
    return Error(errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
                 "opening target " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(t->fd_, &st) != 0) return t->io_error("stat", 0, errno);
  if (direct) {
    t->direct_fd_ = ::open(path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
    if (t->direct_fd_ < 0) return t->io_error("opening with O_DIRECT", 0, errno);
  }
  if (S_ISBLK(st.st_mode)) {
    t->block_ = true;
    t->needs_zeroing_ = true;
    uint64_t dev_size = 0;
    if (::ioctl(t->fd_, BLKGETSIZE64, &dev_size) != 0) return t->io_error("BLKGETSIZE64", 0, errno);
    if (dev_size < size)
      return Error(ErrorCode::kNoSpace, "target block device " + path + " has " +
                                            std::to_string(dev_size) + " bytes, source needs " +
                                            std::to_string(size));
    return t;
  }
  if (!S_ISREG(st.st_mode))
    return Error(ErrorCode::kInvalidArgument,
                 "target " + path + " is neither a regular file nor a block device");
  if (!keep_contents && st.st_size != 0) {
    if (::ftruncate(t->fd_, 0) != 0) return t->io_error("truncate", 0, errno);
    st.st_size = 0;
  }
  t->needs_zeroing_ = st.st_size != 0;
  if (static_cast<uint64_t>(st.st_size) != size &&
      ::ftruncate(t->fd_, static_cast<off_t>(size)) != 0)
    return t->io_error("resize", size, errno);
  return t;
}

Target::~Target() {
  if (fd_ >= 0) ::close(fd_);
  if (direct_fd_ >= 0) ::close(direct_fd_);
}

Error Target::io_error(const std::string& what, uint64_t offset, int err) const {
  return Error(err == ENOSPC || err == EDQUOT ? ErrorCode::kNoSpace : ErrorCode::kIo,
               what + " target " + path_ + " at offset " + std::to_string(offset) + ": " +
                   std::strerror(err));
}

Status Target::write(const char* buf, uint64_t offset, uint64_t length) {
  constexpr uint64_t kAlign = 4096;
  uint64_t done = 0;
  while (done < length) {
    // O_DIRECT only for what is aligned now (a short write may leave an unaligned rest).
    const char* p = buf + done;
    const uint64_t off = offset + done, len = length - done;
    const bool aligned =
        off % kAlign == 0 && len % kAlign == 0 && reinterpret_cast<uintptr_t>(p) % kAlign == 0;
    const int fd = direct_fd_ >= 0 && aligned ? direct_fd_ : fd_;
    ssize_t n = ::pwrite(fd, p, len, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return io_error("writing", offset + done, errno);
    if (n == 0) return io_error("writing", offset + done, ENOSPC);
    done += static_cast<uint64_t>(n);
  }
  return {};
}

Status Target::zero(uint64_t offset, uint64_t length) {
  if (length == 0) return {};
  if (block_) {
    uint64_t range[2] = {offset, length};
    if (::ioctl(fd_, BLKZEROOUT, range) == 0) return {};
  } else {
    if (::fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) == 0)
      return {};
    if (errno != EOPNOTSUPP && errno != ENOSYS) return io_error("punching hole in", offset, errno);
  }
  // Last resort: write zeros.
  static const std::vector<char> zeros(1 << 20, 0);
  for (uint64_t pos = offset; pos < offset + length;) {
    uint64_t n = std::min<uint64_t>(zeros.size(), offset + length - pos);
    FERRY_TRY(write(zeros.data(), pos, n));
    pos += n;
  }
  return {};
}

void Target::writeback_start(uint64_t offset, uint64_t length) {
  ::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
                    SYNC_FILE_RANGE_WRITE);
}

void Target::writeback_finish(uint64_t offset, uint64_t length) {
  ::sync_file_range(
      fd_, static_cast<off_t>(offset), static_cast<off_t>(length),
      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER);
  ::posix_fadvise(fd_, static_cast<off_t>(offset), static_cast<off_t>(length), POSIX_FADV_DONTNEED);
}

Status Target::sync() {
  if (::fdatasync(fd_) != 0) return io_error("syncing", 0, errno);
  return {};
}

}  // namespace ferry::agent::transfer
