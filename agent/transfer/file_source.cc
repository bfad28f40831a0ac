// FileSource: a local file or block device. Extents from SEEK_DATA/SEEK_HOLE
// (holes of a regular file are zero). Readers are synchronous pread()s, one
// per worker thread.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

#include "agent/transfer/source.h"

namespace ferry::agent::transfer {
namespace {

bool transient_errno(int e) { return e == EIO || e == EAGAIN || e == EINTR || e == ETIMEDOUT; }

class FileReader : public SourceReader {
 public:
  explicit FileReader(int fd) : fd_(fd) {}
  ~FileReader() override { ::close(fd_); }
  Status submit(uint64_t id, uint64_t offset, uint64_t length, char* buf) override {
    ReadCompletion c{id, true, false, ErrorCode::kOk, ""};
    uint64_t done = 0;
    while (done < length) {
      ssize_t n = ::pread(fd_, buf + done, length - done, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        c.ok = false;
        c.transient = transient_errno(errno);
        c.code = ErrorCode::kIo;
        c.message = std::strerror(errno);
        break;
      }
      if (n == 0) {  // file shrank under us
        c.ok = false;
        c.code = ErrorCode::kIo;
        c.message = "unexpected end of file";
        break;
      }
      done += static_cast<uint64_t>(n);
    }
    done_.push_back(std::move(c));
    return {};
  }
  void poll(int, std::vector<ReadCompletion>& out) override {
    while (!done_.empty()) {
      out.push_back(std::move(done_.front()));
      done_.pop_front();
    }
  }
  size_t in_flight() const override { return done_.size(); }

 private:
  int fd_;
  std::deque<ReadCompletion> done_;
};

class FileSource : public Source {
 public:
  explicit FileSource(SourceSpec spec) : spec_(std::move(spec)) {}
  ~FileSource() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Result<SourceInfo> open(const CopyOptions& opts) override {
    path_ = spec_.uri.rfind("file://", 0) == 0 ? spec_.uri.substr(7) : spec_.uri;
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0)
      return Error(errno == ENOENT ? ErrorCode::kNotFound : ErrorCode::kIo,
                   "opening source " + path_ + ": " + std::strerror(errno));
    struct stat st;
    if (::fstat(fd_, &st) != 0)
      return Error(ErrorCode::kIo, "stat source " + path_ + ": " + std::strerror(errno));
    SourceInfo info;
    if (S_ISBLK(st.st_mode)) {
      uint64_t sz = 0;
      if (::ioctl(fd_, BLKGETSIZE64, &sz) != 0)
        return Error(ErrorCode::kIo, "BLKGETSIZE64 " + path_ + ": " + std::strerror(errno));
      info.size = sz;
      info.has_extents = false;
    } else {
      info.size = static_cast<uint64_t>(st.st_size);
      info.has_extents = true;
    }
    regular_ = info.has_extents;
    info.workers = std::max(1, opts.connections);
    info.parallel = 1;
    info.identity = spec_.identity.empty() ? "file://" + path_ : spec_.identity;
    return info;
  }

  Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) override {
    std::vector<Extent> out;
    uint64_t end = offset + length, pos = offset;
    while (pos < end) {
      off_t d = ::lseek(fd_, static_cast<off_t>(pos), SEEK_DATA);
      if (d < 0 && errno == ENXIO) {  // only a hole until EOF
        out.push_back({pos, end - pos, true});
        break;
      }
      if (d < 0) {  // no SEEK_DATA support: everything is data
        out.push_back({pos, end - pos, false});
        break;
      }
      uint64_t data = std::min<uint64_t>(static_cast<uint64_t>(d), end);
      if (data > pos) out.push_back({pos, data - pos, true});
      if (data >= end) break;
      off_t h = ::lseek(fd_, static_cast<off_t>(data), SEEK_HOLE);
      uint64_t hole = h < 0 ? end : std::min<uint64_t>(static_cast<uint64_t>(h), end);
      out.push_back({data, hole - data, false});
      pos = hole;
    }
    return out;
  }

  Result<std::unique_ptr<SourceReader>> new_reader() override {
    int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      return Error(ErrorCode::kIo, "opening source " + path_ + ": " + std::strerror(errno));
    return std::unique_ptr<SourceReader>(new FileReader(fd));
  }

 private:
  SourceSpec spec_;
  std::string path_;
  int fd_ = -1;
  bool regular_ = true;
};

}  // namespace

Result<std::unique_ptr<Source>> make_file_source(const SourceSpec& spec) {
  return std::unique_ptr<Source>(new FileSource(spec));
}

std::string redact_uri(const std::string& uri) {
  if (uri.rfind("http://", 0) != 0 && uri.rfind("https://", 0) != 0) return uri;
  std::string u = uri.substr(0, uri.find_first_of("?#"));
  auto scheme_end = u.find("://") + 3;
  auto at = u.find('@', scheme_end);
  auto slash = u.find('/', scheme_end);
  if (at != std::string::npos && (slash == std::string::npos || at < slash))
    u.erase(scheme_end, at + 1 - scheme_end);
  return u;
}

Result<std::unique_ptr<Source>> make_source(const SourceSpec& spec) {
  const std::string& u = spec.uri;
  if (u.rfind("nbd://", 0) == 0 || u.rfind("nbd+unix://", 0) == 0 || u.rfind("nbds://", 0) == 0 ||
      u.rfind("nbds+unix://", 0) == 0)
    return make_nbd_source(spec);
  if (u.rfind("http://", 0) == 0 || u.rfind("https://", 0) == 0) return make_http_source(spec);
  if (u.find("://") != std::string::npos && u.rfind("file://", 0) != 0)
    return Error(ErrorCode::kInvalidArgument, "unsupported source URI scheme: " + redact_uri(u));
  return make_file_source(spec);
}

}  // namespace ferry::agent::transfer
