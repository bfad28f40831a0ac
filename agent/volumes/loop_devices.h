#pragma once
// Block-mode volumes on a node: a loop device over a sparse file. The device
// node is made in the volume's own directory (mknod, the loop device's
// major:minor), so its path stays the same for as long as the volume lives,
// whichever /dev/loopN the kernel gave it; the file `<node>.img` beside it
// holds the data. Loop devices stay attached when the agent exits; after a
// reboot `attach` attaches the file again and remakes the node.
//
// Needs CAP_SYS_ADMIN and CAP_MKNOD (the agent's DaemonSet is privileged).
// Calls block: worker threads only.
#include <cstdint>
#include <string>

#include "common/base/result.h"

namespace ferry::agent::volumes {

// Makes (or finds) the volume: `node` becomes a block device of `size`
// bytes backed by `node`.img. Idempotent; an existing backing file keeps its
// contents (a warm disk's next copy writes on top of the last).
Status attach_loop(const std::string& node, uint64_t size);
// Detaches the loop device and removes the node and its backing file
// (absent is fine).
Status detach_loop(const std::string& node);
// The backing file of the loop device over `node` ("" if none is attached).
std::string loop_backing_file(const std::string& node);

}  // namespace ferry::agent::volumes
