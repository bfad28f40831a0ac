#pragma once
// The volumes under one of the node's volume roots, for the heartbeat: what
// this agent holds, so the coordinator can find a claim's volume where no
// PersistentVolume records it (local mode's storage migration). Both layouts:
//   <ns>/<name>.img          a Filesystem volume (local mode)
//   <ns>/<name>/disk.img     a Filesystem volume (cluster mode: a claim's directory)
//   <ns>/<name>/block        a Block volume (a loop device node)
// Hidden entries (.ferry-agent, a stage record's files) are not volumes.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::agent {

struct HeldVolume {
  std::string path;  // relative to the root
  uint64_t size_bytes = 0;
  bool block = false;
};

struct HeldVolumes {
  std::vector<HeldVolume> volumes;  // in path order
  bool truncated = false;           // more than the limit: only the first are listed
};

// Unreadable entries are skipped.
HeldVolumes held_volumes(const std::string& root, size_t limit = 4096);

}  // namespace ferry::agent
