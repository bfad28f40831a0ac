#pragma once
// Source: where disk bytes come from. One Source per copy; it probes the size
// and the extent map, and makes one SourceReader per worker thread. A
// SourceReader is used by exactly one thread and keeps up to
// max_in_flight() reads outstanding (NBD: async commands on one connection;
// HTTP: ranged GETs on a curl multi; file: synchronous pread).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "agent/transfer/copy.h"
#include "agent/transfer/plan.h"
#include "common/base/result.h"

namespace ferry::agent::transfer {

struct SourceInfo {
  uint64_t size = 0;
  bool has_extents = false;  // extents() gives a real allocation map
  int workers = 1;           // useful number of reader threads
  int parallel = 1;          // reads in flight per reader
  uint64_t max_request = 0;  // largest read the source accepts (0 = no limit)
  std::string identity;      // stable name for checkpoints and messages (no credentials)
};

struct ReadCompletion {
  uint64_t id;
  bool ok;
  bool transient;       // worth retrying (EIO, timeouts, connection loss, 5xx)
  ErrorCode code;       // if !ok and not retried
  std::string message;  // if !ok: the source's own words
};

class SourceReader {
 public:
  virtual ~SourceReader() = default;
  // Starts reading [offset, offset+length) into buf (which stays valid until completion).
  virtual Status submit(uint64_t id, uint64_t offset, uint64_t length, char* buf) = 0;
  // Waits up to timeout_ms for progress, appending finished reads to `out`.
  virtual void poll(int timeout_ms, std::vector<ReadCompletion>& out) = 0;
  virtual size_t in_flight() const = 0;
  // The connection died; every outstanding read has been reported as failed.
  virtual bool broken() const { return false; }
  virtual Status reconnect() { return {}; }
};

class Source {
 public:
  virtual ~Source() = default;
  // Connects and probes; `opts` tells how much parallelism the copy wants.
  virtual Result<SourceInfo> open(const CopyOptions& opts) = 0;
  // Allocation map of [offset, offset+length): sorted, contiguous, starting at
  // offset; may cover only a prefix (call again from where it ends).
  virtual Result<std::vector<Extent>> extents(uint64_t offset, uint64_t length) = 0;
  virtual Result<std::unique_ptr<SourceReader>> new_reader() = 0;
  // What changed since the source's base (SourceSpec::changed_only), sorted.
  virtual Result<std::vector<ByteRange>> changed_ranges() {
    return Error(ErrorCode::kFailedPrecondition, "this source cannot tell what changed");
  }
  // Releases probe-time resources (e.g. the NBD control connection).
  virtual void close_probe() {}
};

Result<std::unique_ptr<Source>> make_nbd_source(const SourceSpec& spec);
Result<std::unique_ptr<Source>> make_http_source(const SourceSpec& spec);
Result<std::unique_ptr<Source>> make_file_source(const SourceSpec& spec);
// Picks the implementation from the URI scheme.
Result<std::unique_ptr<Source>> make_source(const SourceSpec& spec);

// URI for messages and checkpoints: query string and userinfo removed for http(s).
std::string redact_uri(const std::string& uri);

}  // namespace ferry::agent::transfer
