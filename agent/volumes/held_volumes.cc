#include "agent/volumes/held_volumes.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

namespace ferry::agent {

namespace fs = std::filesystem;

namespace {

bool hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// A block device's size (its file size is 0).
uint64_t device_size(const fs::path& p) {
  int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  off_t end = ::lseek(fd, 0, SEEK_END);
  ::close(fd);
  return end > 0 ? static_cast<uint64_t>(end) : 0;
}

// The entries of `dir`; a directory that cannot be read (or read to its end) has none more.
std::vector<fs::directory_entry> entries(const fs::path& dir) {
  std::vector<fs::directory_entry> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  while (!ec && it != end) {
    if (!hidden(it->path())) out.push_back(*it);
    it.increment(ec);  // (the throwing ++ would end the heartbeat thread)
  }
  return out;
}

}  // namespace

HeldVolumes held_volumes(const std::string& root, size_t limit) {
  HeldVolumes out;
  // Past 4 times the limit the root is not read further (a heartbeat's cost
  // stays bounded); the list is then cut, and says so, either way.
  const size_t scan = limit * 4;
  for (const auto& ns : entries(root)) {
    std::error_code ec;
    if (!ns.is_directory(ec)) continue;
    if (out.volumes.size() >= scan) {
      out.truncated = true;
      break;
    }
    for (const auto& e : entries(ns.path())) {
      const fs::path& p = e.path();
      std::string rel = ns.path().filename().string() + "/" + p.filename().string();
      if (e.is_regular_file(ec) && p.extension() == ".img") {
        out.volumes.push_back({rel, static_cast<uint64_t>(e.file_size(ec)), false});
      } else if (e.is_directory(ec)) {
        if (fs::is_regular_file(p / "disk.img", ec))
          out.volumes.push_back(
              {rel + "/disk.img", static_cast<uint64_t>(fs::file_size(p / "disk.img", ec)), false});
        else if (fs::is_block_file(p / "block", ec))
          out.volumes.push_back({rel + "/block", device_size(p / "block"), true});
      }
    }
  }
  std::sort(out.volumes.begin(), out.volumes.end(),
            [](const HeldVolume& a, const HeldVolume& b) { return a.path < b.path; });
  if (out.volumes.size() > limit) {
    out.volumes.resize(limit);
    out.truncated = true;
  }
  return out;
}

}  // namespace ferry::agent
