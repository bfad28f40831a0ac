#pragma once
// VolumeServer: one of this node's volumes served read-only over NBD to
// another node's agent, for a copy between nodes (a storage migration).
//
// nbdkit's file plugin serves a directory (WORK_DIR/export) holding two exports:
//   disk     a symbolic link to the volume (file or block device);
//   digests  the volume's block digests (agent/transfer/stage.h), hashed here
//            before serving, so the reading side finds what changed since its
//            last copy without reading the volume over the network.
// TLS is required and authenticated by a pre-shared key (the file is the
// caller's, "username:hexkey"); there is no clear-text fallback. nbdkit
// listens only on the given address (the migration network's), on a port
// free when it starts, and serializes each connection's requests
// (noparallel: Debian's nbdkit 1.32 aborts when a client drops with
// requests in flight on a multi-threaded connection); the reader's parallel
// connections still run side by side.
//
// The destructor stops nbdkit (SIGTERM, then SIGKILL) and removes the
// working directory. Blocking: a worker thread.
#include <atomic>
#include <memory>
#include <string>

#include "common/base/result.h"

namespace ferry::agent::volumes {

struct ServeOptions {
  std::string volume;                         // absolute path of the volume (file or block device)
  uint64_t size = 0;                          // the volume's virtual size
  std::string address;                        // IPv4 address to listen on
  std::string psk_file;                       // nbdkit --tls-psk
  std::string work_dir;                       // made here, removed by the destructor
  const std::atomic<bool>* cancel = nullptr;  // set while hashing: kCanceled
};

// The size of a volume: a regular file's length or a block device's size.
Result<uint64_t> volume_size(const std::string& path);

class VolumeServer {
 public:
  static Result<std::unique_ptr<VolumeServer>> start(const ServeOptions& o);
  ~VolumeServer();
  VolumeServer(const VolumeServer&) = delete;
  VolumeServer& operator=(const VolumeServer&) = delete;

  std::string disk_uri() const;     // nbd://ADDRESS:PORT/disk
  std::string digests_uri() const;  // nbd://ADDRESS:PORT/digests
  int port() const { return port_; }
  // Still serving (nbdkit has not exited).
  bool alive();
  const std::string& digest() const { return digest_; }  // hex, over the block digests

 private:
  VolumeServer() = default;
  std::string address_, work_dir_, digest_;
  int port_ = 0;
  int pid_ = -1;
};

}  // namespace ferry::agent::volumes
