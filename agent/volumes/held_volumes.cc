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

}  // namespace

std::vector<HeldVolume> held_volumes(const std::string& root, size_t limit) {
  std::vector<HeldVolume> out;
  std::error_code ec;
  for (const auto& ns : fs::directory_iterator(root, ec)) {
    if (out.size() >= limit) break;
    if (hidden(ns.path()) || !ns.is_directory(ec)) continue;
    std::error_code ec2;
    for (const auto& e : fs::directory_iterator(ns.path(), ec2)) {
      if (out.size() >= limit) break;
      const fs::path& p = e.path();
      if (hidden(p)) continue;
      std::string rel = ns.path().filename().string() + "/" + p.filename().string();
      std::error_code ec3;
      if (e.is_regular_file(ec3) && p.extension() == ".img") {
        out.push_back({rel, static_cast<uint64_t>(e.file_size(ec3)), false});
      } else if (e.is_directory(ec3)) {
        if (fs::is_regular_file(p / "disk.img", ec3))
          out.push_back({rel + "/disk.img",
                         static_cast<uint64_t>(fs::file_size(p / "disk.img", ec3)), false});
        else if (fs::is_block_file(p / "block", ec3))
          out.push_back({rel + "/block", device_size(p / "block"), true});
      }
    }
  }
  std::sort(out.begin(), out.end(),
            [](const HeldVolume& a, const HeldVolume& b) { return a.path < b.path; });
  return out;
}

}  // namespace ferry::agent
