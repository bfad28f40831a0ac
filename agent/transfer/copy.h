#pragma once
// The disk copy engine: copies one virtual disk from a source (NBD, HTTP range
// source, local file) to a local target (sparse regular file or block device).
// Sparse and zero aware, parallel, resumable, bandwidth-capped, optionally
// verified end to end. See agent/transfer/README.md for threads and formats.
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/base/result.h"

namespace ferry::agent::transfer {

class TokenBucket;

struct ByteRange {
  uint64_t offset;
  uint64_t length;
  bool operator==(const ByteRange&) const = default;
};

struct SourceSpec {
  // nbd://host:port[/export], nbd+unix:///export?socket=PATH, http(s)://..., or a local file path.
  std::string uri;
  std::vector<std::string>
      http_headers;  // e.g. "Cookie: vmware_soap_session=..." (values never logged)
  std::string
      tls_sha1_thumbprint;  // "AA:BB:.." pins the server cert's SHA-1 (https), case-insensitive
  bool insecure_skip_verify = false;  // https without verification
  std::string ca_pem;                 // https: verify against this CA (PEM) instead of the system's
  // The source's stable name for checkpoints and logs, when the URL is not one
  // (an imageio ticket URL changes with every claim and is a credential).
  std::string identity;
  // Local address/interface for source connections: CURLOPT_INTERFACE for http(s);
  // for nbd:// (TCP) the socket is bound before connect. Unsupported for unix sockets.
  std::string bind_address;
  // nbd:// and nbd+unix:// only: require TLS authenticated by a pre-shared key
  // (the file holds "username:hexkey" lines, as nbdkit --tls-psk and GnuTLS
  // psktool write them) as `tls_username`. The copy fails rather than read
  // in the clear. For a volume served by another node's agent.
  std::string tls_psk_file;
  std::string tls_username;
  uint64_t size = 0;  // known size (0 = ask the source)
  // http(s): the URL is an ovirt-imageio ticket (https://HOST:54322/images/TICKET): its
  // OPTIONS and extents are read first, so holes and zeros are never fetched.
  bool imageio = false;
  // Copy only what the source reports changed (imageio: the dirty extents of an
  // incremental-backup ticket) into the target as it is: ranges mode, the ranges
  // asked of the source.
  bool changed_only = false;
};

struct Progress {
  uint64_t bytes_done;
  uint64_t bytes_total;
  double bytes_per_second;
};

struct CopyOptions {
  int connections =
      4;  // parallel source connections (NBD only with multi-conn; HTTP: parallel GETs)
  // 4 connections x 8 requests x 2 MiB = 64 MiB in flight: measured as fast as or
  // faster than 4 MiB x 16 on every benchmark image, at a quarter of the memory
  // (docs/performance.md, "Choosing the defaults").
  int requests = 8;  // requests in flight per connection (NBD async)
  uint64_t block_size = 2 << 20;
  uint64_t bandwidth = 0;  // bytes/s cap, 0 = none
  // A cap shared with other copies (the agent's per-node --node-bandwidth): every
  // read takes tokens from it as well as from this copy's own cap. Not owned.
  TokenBucket* shared_bandwidth = nullptr;
  uint64_t max_in_flight_bytes = 256 << 20;
  bool verify = false;            // end-to-end digest check
  bool direct = false;            // O_DIRECT writes of aligned data (docs/performance.md)
  std::string checkpoint_path;    // "" = no resume
  std::vector<ByteRange> ranges;  // empty = whole disk
  // Ranges mode normally updates the target in place; with fresh_target the
  // target starts all zero (unless a checkpoint resumes it) and only the ranges are written.
  bool fresh_target = false;
  // Called at least once per second and at the end, from an engine thread.
  std::function<void(const Progress&)> on_progress;
  const std::atomic<bool>* cancel = nullptr;  // set true -> copy returns kCanceled within ~1 s
  int max_retries = 5;                        // per range, transient errors, exponential backoff
};

struct CopyStats {
  uint64_t size = 0;                   // virtual size of the source
  uint64_t bytes_read = 0;             // bytes read from the source
  uint64_t bytes_written = 0;          // data bytes written to the target
  uint64_t bytes_zero = 0;             // holes and all-zero blocks (not written)
  uint64_t bytes_skipped_resumed = 0;  // already durable according to the checkpoint
  double seconds = 0;
  std::string digest;  // hex XXH3-128 scheme of README.md, empty unless verify
};

// Blocking; thread-safe to run several at once (no shared mutable state).
Result<CopyStats> copy_disk(const SourceSpec& src, const std::string& target,
                            const CopyOptions& opts);

// `ferry-agent copy SOURCE TARGET [options]`; exit 0 only on a complete (and
// verified) copy; errors go to stderr.
int copy_main(int argc, char** argv);

}  // namespace ferry::agent::transfer
