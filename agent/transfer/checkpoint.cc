#include "agent/transfer/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "agent/transfer/plan.h"
#include "common/base/files.h"

namespace ferry::agent::transfer {
namespace {

constexpr const char* kMagic = "ferry-checkpoint 1";

bool parse_u64(const std::string& s, uint64_t* out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

Error io_error(const std::string& what, const std::string& path) {
  return Error(errno == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
               what + " checkpoint " + path + ": " + std::strerror(errno));
}

}  // namespace

std::string encode_checkpoint(const Checkpoint& cp) {
  std::string out =
      std::string(kMagic) + "\nsource " + cp.source + "\nsize " + std::to_string(cp.size) + "\n";
  for (const auto& r : cp.done)
    out += "done " + std::to_string(r.offset) + " " + std::to_string(r.length) + "\n";
  out += "end\n";
  return out;
}

Result<Checkpoint> decode_checkpoint(const std::string& text) {
  auto bad = [](const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, "malformed checkpoint: " + why);
  };
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, line) || line != kMagic)
    return bad("missing '" + std::string(kMagic) + "'");
  Checkpoint cp;
  bool have_source = false, have_size = false, have_end = false;
  std::vector<ByteRange> done;
  int lineno = 1;
  while (std::getline(in, line)) {
    lineno++;
    if (have_end) return bad("data after 'end' at line " + std::to_string(lineno));
    if (line.rfind("source ", 0) == 0) {
      cp.source = line.substr(7);
      have_source = true;
    } else if (line.rfind("size ", 0) == 0) {
      if (!parse_u64(line.substr(5), &cp.size))
        return bad("bad size at line " + std::to_string(lineno));
      have_size = true;
    } else if (line.rfind("done ", 0) == 0) {
      std::string rest = line.substr(5);
      auto sp = rest.find(' ');
      ByteRange r{};
      if (sp == std::string::npos || !parse_u64(rest.substr(0, sp), &r.offset) ||
          !parse_u64(rest.substr(sp + 1), &r.length) || r.offset + r.length < r.offset)
        return bad("bad range at line " + std::to_string(lineno));
      done.push_back(r);
    } else if (line == "end") {
      have_end = true;
    } else {
      return bad("unknown record at line " + std::to_string(lineno));
    }
  }
  if (!have_source || !have_size) return bad("missing source or size");
  if (!have_end) return bad("truncated (no 'end')");
  for (const auto& r : done)
    if (r.offset + r.length > cp.size) return bad("range beyond size");
  cp.done = normalize_ranges(std::move(done));
  return cp;
}

Status check_checkpoint_matches(const Checkpoint& cp, const std::string& source, uint64_t size,
                                const std::string& path) {
  if (cp.source != source || cp.size != size) {
    return Error(ErrorCode::kFailedPrecondition,
                 "checkpoint " + path + " belongs to source '" + cp.source + "' of size " +
                     std::to_string(cp.size) + ", not '" + source + "' of size " +
                     std::to_string(size) + "; remove it to start over");
  }
  return {};
}

Result<LoadedCheckpoint> load_checkpoint(const std::string& path) {
  LoadedCheckpoint out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return out;
    return io_error("opening", path);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Error e = io_error("reading", path);
      ::close(fd);
      return e;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto cp = decode_checkpoint(text);
  if (!cp.ok()) return cp.error().wrap(path);
  out.found = true;
  out.cp = std::move(cp.value());
  return out;
}

Status save_checkpoint(const std::string& path, const Checkpoint& cp) {
  Status s = write_file_atomic(path, encode_checkpoint(cp));
  if (!s.ok()) return s.error().wrap("checkpoint");
  return {};
}

}  // namespace ferry::agent::transfer
