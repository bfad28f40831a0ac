// copy_disk(): plans the copy on the calling thread, then runs one worker
// thread per source connection, one checkpoint thread (if resumable) and
// reports progress from the calling thread. See README.md.
#include "agent/transfer/copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "agent/transfer/checkpoint.h"
#include "agent/transfer/copy_internal.h"
#include "agent/transfer/digest.h"
#include "agent/transfer/plan.h"
#include "agent/transfer/source.h"
#include "agent/transfer/target.h"
#include "agent/transfer/token_bucket.h"
#include "common/base/log.h"

namespace ferry::agent::transfer {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Zero detection granularity inside data that was read: fine enough to find
// unused filesystem space in a disk image, coarse enough to keep pwrites big.
constexpr uint64_t kZeroGranularity = 64 * 1024;
constexpr auto kCheckpointInterval = milliseconds(1000);
constexpr auto kProgressInterval = milliseconds(500);
constexpr auto kDrainTimeout = milliseconds(500);

const Logger& logger() {
  static const Logger l("transfer");
  return l;
}

milliseconds backoff(int attempt) {
  return milliseconds(std::min<int64_t>(100LL << std::min(attempt, 10), 3000));
}

struct Chunk {
  uint64_t offset;
  uint64_t length;
  bool write;  // false: read only to hash it (verify of resumed ranges)
};

// Everything the threads of one copy share. Lives on copy_disk's stack.
struct CopyState {
  CopyState(const CopyOptions& o, Source& src, const SourceInfo& i, Target& t)
      : opts(o), source(src), info(i), target(t) {}
  const CopyOptions& opts;
  Source& source;
  const SourceInfo& info;
  Target& target;
  BlockDigests* digests = nullptr;
  std::unique_ptr<TokenBucket> bucket;
  std::vector<Chunk> chunks;
  std::atomic<size_t> next{0};
  uint64_t request_size = 0;
  size_t buffers_per_worker = 1;

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes_read{0}, bytes_written{0}, bytes_zero{0}, bytes_done{0};
  std::atomic<size_t> chunks_done{0};

  std::mutex mu;
  std::condition_variable cv;
  std::optional<Error> error;      // first failure
  std::vector<ByteRange> written;  // written since the last checkpoint sync
  int workers_running = 0;

  bool canceled() const { return opts.cancel && opts.cancel->load(std::memory_order_relaxed); }
  void fail(Error e) {
    std::lock_guard<std::mutex> lk(mu);
    if (!error) error = std::move(e);
    stop = true;
    cv.notify_all();
  }
  void record_written(uint64_t offset, uint64_t length) {
    std::lock_guard<std::mutex> lk(mu);
    written.push_back({offset, length});
  }
};

struct AlignedFree {
  void operator()(char* p) const { std::free(p); }
};
using Buffer = std::unique_ptr<char, AlignedFree>;

// Written ranges of one worker whose writeback has started but which are
// still in the page cache; the oldest are waited for and dropped.
struct WritebackWindow {
  std::deque<ByteRange> ranges;
  uint64_t bytes = 0;
};
constexpr uint64_t kWritebackWindow = 64ULL << 20;  // per worker

void writeback(CopyState& s, WritebackWindow& w, uint64_t offset, uint64_t length) {
  s.target.writeback_start(offset, length);
  w.ranges.push_back({offset, length});
  w.bytes += length;
  while (w.bytes > kWritebackWindow) {
    auto r = w.ranges.front();
    w.ranges.pop_front();
    w.bytes -= r.length;
    s.target.writeback_finish(r.offset, r.length);
  }
}

Status process_chunk(CopyState& s, const Chunk& c, const char* buf, WritebackWindow& wb) {
  s.bytes_read += c.length;
  if (s.digests) s.digests->hash_data(buf, c.offset, c.length);
  if (!c.write) {
    s.chunks_done++;
    return {};
  }
  for (const auto& run : classify_zero(buf, c.offset, c.length, kZeroGranularity)) {
    const char* p = buf + (run.offset - c.offset);
    if (run.zero) {
      if (s.target.needs_zeroing()) FERRY_TRY(s.target.zero(run.offset, run.length));
      s.bytes_zero += run.length;
    } else {
      FERRY_TRY(s.target.write(p, run.offset, run.length));
      s.bytes_written += run.length;
      writeback(s, wb, run.offset, run.length);
    }
  }
  s.record_written(c.offset, c.length);
  s.bytes_done += c.length;
  s.chunks_done++;
  return {};
}

std::string read_error(const CopyState& s, const Chunk& c, const std::string& msg, int attempts) {
  std::string m = "reading source " + s.info.identity + " at offset " + std::to_string(c.offset) +
                  " (length " + std::to_string(c.length) + "): " + msg;
  if (attempts > 0) m += " (after " + std::to_string(attempts) + " retries)";
  return m;
}

// One worker thread: owns one SourceReader (connection) and its buffers.
void run_worker(CopyState& s, int index) {
  struct Pending {
    Chunk chunk;
    int attempt;
    Clock::time_point due;
  };
  struct Op {
    Chunk chunk;
    char* buf;
    int attempt;
  };
  // Buffers are declared before the reader so they outlive it: a reader being
  // destroyed may still have reads in flight into them.
  std::vector<Buffer> buffers;
  std::vector<char*> free_bufs;
  std::unique_ptr<SourceReader> reader;
  for (int attempt = 0;; attempt++) {
    auto r = s.source.new_reader();
    if (r.ok()) {
      reader = std::move(r.value());
      break;
    }
    if (r.error().code != ErrorCode::kUnavailable || attempt >= s.opts.max_retries) {
      s.fail(r.error());
      return;
    }
    std::this_thread::sleep_for(backoff(attempt));
    if (s.stop) return;
  }

  const size_t parallel =
      std::min<size_t>(static_cast<size_t>(s.info.parallel), s.buffers_per_worker);
  std::unordered_map<uint64_t, Op> inflight;
  std::vector<Pending> retries;
  std::optional<Pending> paced;  // took bandwidth tokens, waiting for its time
  bool exhausted = false;
  uint64_t next_id = 0;
  std::vector<ReadCompletion> done;
  WritebackWindow wb;

  auto take_buffer = [&]() -> char* {
    if (free_bufs.empty()) {
      // No MADV_HUGEPAGE: with THP defrag=madvise the first touch may stall
      // in compaction; measured no better (docs/performance.md).
      char* p = static_cast<char*>(std::aligned_alloc(4096, s.request_size));
      if (!p) return nullptr;
      buffers.emplace_back(p);
      return p;
    }
    char* p = free_bufs.back();
    free_bufs.pop_back();
    return p;
  };

  while (!s.stop && !s.canceled()) {
    auto now = Clock::now();
    // Fill the pipeline.
    while (inflight.size() < parallel && !reader->broken()) {
      Pending item;
      if (paced) {
        if (paced->due > now) break;
        item = *paced;
        paced.reset();
      } else {
        auto it =
            std::min_element(retries.begin(), retries.end(),
                             [](const Pending& a, const Pending& b) { return a.due < b.due; });
        if (it != retries.end() && it->due <= now) {
          item = *it;
          retries.erase(it);
        } else if (!exhausted) {
          size_t i = s.next.fetch_add(1);
          if (i >= s.chunks.size()) {
            exhausted = true;
            break;
          }
          item = {s.chunks[i], 0, now};
        } else {
          break;
        }
        if (s.bucket || s.opts.shared_bandwidth) {
          // Both caps are charged (a bucket may go into debt); the later one decides.
          std::chrono::nanoseconds wait{0};
          if (s.bucket) wait = s.bucket->take(item.chunk.length, now);
          if (s.opts.shared_bandwidth)
            wait = std::max(wait, s.opts.shared_bandwidth->take(item.chunk.length, now));
          if (wait.count() > 0) {
            item.due = now + wait;
            paced = item;
            break;
          }
        }
      }
      char* buf = take_buffer();
      if (!buf) {
        s.fail(Error(ErrorCode::kInternal, "out of memory for read buffers"));
        break;
      }
      uint64_t id = next_id++;
      inflight.emplace(id, Op{item.chunk, buf, item.attempt});
      if (Status st = reader->submit(id, item.chunk.offset, item.chunk.length, buf); !st.ok()) {
        s.fail(st.error().wrap("reading source " + s.info.identity));
        break;
      }
    }
    if (s.stop) break;
    if (inflight.empty() && !paced && retries.empty() && exhausted) break;  // all done

    // Wait for completions, or until the next paced/retry item is due.
    milliseconds timeout(100);
    auto until_due = [&](Clock::time_point due) {
      auto ms = std::chrono::duration_cast<milliseconds>(due - now) + milliseconds(1);
      timeout = std::clamp(ms, milliseconds(1), timeout);
    };
    if (paced) until_due(paced->due);
    for (auto& r : retries) until_due(r.due);
    if (inflight.empty())
      std::this_thread::sleep_for(timeout);
    else
      reader->poll(static_cast<int>(timeout.count()), done);

    for (auto& c : done) {
      auto it = inflight.find(c.id);
      if (it == inflight.end()) continue;
      Op op = it->second;
      inflight.erase(it);
      if (c.ok) {
        if (Status st = process_chunk(s, op.chunk, op.buf, wb); !st.ok()) s.fail(st.error());
      } else if (c.transient && op.attempt < s.opts.max_retries) {
        logger().warn("transient source error, retrying",
                      {{"source", s.info.identity},
                       {"offset", std::to_string(op.chunk.offset)},
                       {"attempt", std::to_string(op.attempt + 1)},
                       {"error", c.message}});
        retries.push_back({op.chunk, op.attempt + 1, Clock::now() + backoff(op.attempt)});
      } else {
        ErrorCode code = c.transient ? ErrorCode::kIo : c.code;
        if (code == ErrorCode::kOk) code = ErrorCode::kIo;
        s.fail(Error(code, read_error(s, op.chunk, c.message, op.attempt)));
      }
      free_bufs.push_back(op.buf);
    }
    done.clear();

    // A dead connection: every read on it has been reported; reconnect.
    if (reader->broken() && inflight.empty() && !s.stop) {
      for (int attempt = 0;; attempt++) {
        std::this_thread::sleep_for(backoff(attempt));
        if (s.stop || s.canceled()) break;
        Status st = reader->reconnect();
        if (st.ok()) {
          logger().info("reconnected to source",
                        {{"source", s.info.identity}, {"worker", std::to_string(index)}});
          break;
        }
        if (attempt >= s.opts.max_retries) {
          s.fail(st.error());
          break;
        }
      }
    }
  }

  // Stopping: let reads already sent finish (briefly) so the server does not
  // see a connection drop with requests in flight; their data is discarded.
  auto deadline = Clock::now() + kDrainTimeout;
  while (!inflight.empty() && !reader->broken() && Clock::now() < deadline) {
    reader->poll(50, done);
    for (auto& c : done) inflight.erase(c.id);
    done.clear();
  }
  reader.reset();
  for (const auto& r : wb.ranges) s.target.writeback_finish(r.offset, r.length);
}

// Reads the target back and compares every digest block with the source's.
Status verify_target(const Target& target, const BlockDigests& digests,
                     const std::vector<ByteRange>& want, uint64_t size) {
  int fd = ::open(target.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return Error(ErrorCode::kIo, "verify: opening " + target.path() + ": " + std::strerror(errno));
  // Read from the device, not from the page cache we just filled.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  constexpr uint64_t kBatch = 8 * kDigestBlock;
  Buffer buf(static_cast<char*>(std::aligned_alloc(4096, kBatch)));
  Status result;
  for (const auto& r : want) {
    for (uint64_t pos = r.offset; pos < r.offset + r.length && result.ok();) {
      uint64_t len = std::min<uint64_t>(kBatch, r.offset + r.length - pos);
      // Holes read as zeros: skip reading a batch that is one hole.
      bool hole = false;
      if (!target.is_block_device()) {
        off_t d = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
        hole = (d < 0 && errno == ENXIO) || (d >= 0 && static_cast<uint64_t>(d) >= pos + len);
      }
      if (!hole) {
        for (uint64_t got = 0; got < len;) {
          ssize_t n = ::pread(fd, buf.get() + got, len - got, static_cast<off_t>(pos + got));
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) {
            result = Error(ErrorCode::kIo, "verify: reading " + target.path() + " at offset " +
                                               std::to_string(pos + got) + ": " +
                                               (n < 0 ? std::strerror(errno) : "end of file"));
            break;
          }
          got += static_cast<uint64_t>(n);
        }
        if (!result.ok()) break;
      }
      for (uint64_t b = pos; b < pos + len;) {
        uint64_t idx = b / kDigestBlock;
        uint64_t n = digests.block_length(idx);
        XXH128_hash_t h = hole ? zero_block_hash(n) : hash_block(buf.get() + (b - pos), n);
        if (!XXH128_isEqual(h, digests.get(idx))) {
          result = Error(ErrorCode::kDataMismatch,
                         "verification failed: target " + target.path() +
                             " differs from the source in the block at offset " +
                             std::to_string(b) + " (" + std::to_string(n) + " bytes)");
          break;
        }
        b += n;
      }
      pos += len;
    }
  }
  ::close(fd);
  (void)size;
  return result;
}

Status validate(const CopyOptions& o) {
  auto bad = [](const std::string& m) { return Error(ErrorCode::kInvalidArgument, m); };
  if (o.connections < 1 || o.connections > 64) return bad("connections must be 1..64");
  if (o.requests < 1 || o.requests > 1024) return bad("requests must be 1..1024");
  if (o.block_size < 64 * 1024 || o.block_size > (64ULL << 20) || o.block_size % 4096)
    return bad("block_size must be a multiple of 4 KiB between 64 KiB and 64 MiB");
  if (o.verify && o.block_size % kDigestBlock)
    return bad("with verify, block_size must be a multiple of 1 MiB");
  if (o.max_retries < 0) return bad("max_retries must be >= 0");
  return {};
}

}  // namespace

Result<CopyStats> copy_disk_with_hooks(const SourceSpec& src, const std::string& target_path,
                                       const CopyOptions& opts, const CopyTestHooks& hooks) {
  auto t0 = Clock::now();
  FERRY_TRY(validate(opts));
  auto source_r = make_source(src);
  if (!source_r.ok()) return source_r.error();
  Source& source = *source_r.value();
  auto info_r = source.open(opts);
  if (!info_r.ok()) return info_r.error();
  SourceInfo info = info_r.value();
  if (src.size && info.size && src.size != info.size)
    return Error(ErrorCode::kFailedPrecondition,
                 "source " + info.identity + " has " + std::to_string(info.size) +
                     " bytes but the expected size is " + std::to_string(src.size));
  const uint64_t size = src.size ? src.size : info.size;

  // What to copy: everything, the given ranges, or what the source says changed.
  std::vector<ByteRange> ranges = opts.ranges;
  const bool ranges_mode = !ranges.empty() || src.changed_only;
  if (src.changed_only) {
    if (!ranges.empty() || opts.fresh_target)
      return Error(ErrorCode::kInvalidArgument,
                   "source " + info.identity +
                       ": changed-only updates the earlier copy; it cannot be combined with " +
                       (opts.fresh_target ? "a fresh target" : "ranges"));
    auto changed = source.changed_ranges();
    if (!changed.ok()) return changed.error();
    ranges = std::move(*changed);
  }
  std::vector<ByteRange> want;
  if (!ranges_mode) {
    if (size) want.push_back({0, size});
  } else {
    for (const auto& r : ranges)
      if (r.offset + r.length > size || r.offset + r.length < r.offset)
        return Error(ErrorCode::kInvalidArgument,
                     "range " + std::to_string(r.offset) + ":" + std::to_string(r.length) +
                         " is beyond the end of the source (" + std::to_string(size) + " bytes)");
    want = normalize_ranges(ranges);
  }
  if (opts.verify) want = align_out(want, kDigestBlock, size);

  // What is already durable.
  LoadedCheckpoint loaded;
  if (!opts.checkpoint_path.empty()) {
    auto l = load_checkpoint(opts.checkpoint_path);
    if (!l.ok()) return l.error();
    loaded = std::move(l.value());
    if (loaded.found)
      FERRY_TRY(check_checkpoint_matches(loaded.cp, info.identity, size, opts.checkpoint_path));
  }
  std::vector<ByteRange> resumed = intersect_ranges(loaded.cp.done, want);
  if (opts.verify) resumed = align_in(resumed, kDigestBlock, size);
  std::vector<ByteRange> todo = subtract_ranges(want, resumed);

  if (loaded.found) {
    // A checkpoint only means something together with the target it describes.
    struct stat st;
    if (::stat(target_path.c_str(), &st) != 0 ||
        (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) != size))
      return Error(ErrorCode::kFailedPrecondition,
                   "checkpoint " + opts.checkpoint_path + " exists but target " + target_path +
                       " is missing or has the wrong size; remove the checkpoint to start over");
  }
  auto target_r = Target::open(target_path, size,
                               loaded.found || (ranges_mode && !opts.fresh_target), opts.direct);
  if (!target_r.ok()) return target_r.error();
  Target& target = *target_r.value();

  std::optional<BlockDigests> digests;
  if (opts.verify) digests.emplace(size);

  uint64_t request_size = opts.block_size;
  if (info.max_request && info.max_request < request_size) {
    request_size = info.max_request / 4096 * 4096;
    if (opts.verify) request_size = request_size / kDigestBlock * kDigestBlock;
    if (request_size == 0)
      return Error(ErrorCode::kFailedPrecondition, "source " + info.identity + " accepts only " +
                                                       std::to_string(info.max_request) +
                                                       "-byte requests");
  }

  // Extent map of a set of ranges, aligned for the digest in verify mode.
  auto map_ranges = [&](const std::vector<ByteRange>& ranges) -> Result<std::vector<Extent>> {
    std::vector<Extent> all;
    for (const auto& r : ranges) {
      std::vector<Extent> ex;
      if (info.has_extents) {
        for (uint64_t pos = r.offset; pos < r.offset + r.length;) {
          if (opts.cancel && opts.cancel->load())
            return Error(ErrorCode::kCanceled, "copy canceled while mapping extents");
          auto e = source.extents(pos, r.offset + r.length - pos);
          if (!e.ok()) return e.error();
          for (auto& x : e.value()) {
            uint64_t end = std::min(x.offset + x.length, r.offset + r.length);
            if (x.offset < pos || end <= x.offset) continue;
            ex.push_back({x.offset, end - x.offset, x.zero});
            pos = end;
          }
          if (e.value().empty()) break;
        }
        ex = intersect_extents(merge_extents(ex), {r});
      } else {
        ex.push_back({r.offset, r.length, false});
      }
      if (opts.verify) ex = align_data_out(ex, kDigestBlock, size);
      all.insert(all.end(), ex.begin(), ex.end());
    }
    return all;
  };

  CopyState s(opts, source, info, target);
  s.digests = digests ? &*digests : nullptr;
  s.request_size = request_size;
  if (opts.bandwidth)
    s.bucket = std::make_unique<TokenBucket>(
        static_cast<double>(opts.bandwidth),
        static_cast<double>(std::max<uint64_t>(request_size, opts.bandwidth / 10)));

  CopyStats stats;
  stats.size = size;
  stats.bytes_skipped_resumed = total_length(resumed);
  const uint64_t total = total_length(want);

  auto todo_map = map_ranges(todo);
  if (!todo_map.ok()) return todo_map.error();
  // Holes: nothing to read. A fresh sparse file already reads as zeros there.
  for (const auto& e : todo_map.value()) {
    if (!e.zero) continue;
    if (target.needs_zeroing()) {
      if (opts.cancel && opts.cancel->load())
        return Error(ErrorCode::kCanceled, "copy canceled while zeroing");
      FERRY_TRY(target.zero(e.offset, e.length));
    }
    if (s.digests) s.digests->hash_zero(e.offset, e.length);
    s.bytes_zero += e.length;
    s.bytes_done += e.length;
    s.written.push_back({e.offset, e.length});
  }
  for (const auto& e : split_extents(todo_map.value(), request_size))
    if (!e.zero) s.chunks.push_back({e.offset, e.length, true});
  if (opts.verify && !resumed.empty()) {
    // Source digests of ranges copied by an earlier run: read, hash, don't write.
    auto done_map = map_ranges(resumed);
    if (!done_map.ok()) return done_map.error();
    for (const auto& e : split_extents(done_map.value(), request_size)) {
      if (e.zero)
        s.digests->hash_zero(e.offset, e.length);
      else
        s.chunks.push_back({e.offset, e.length, false});
    }
  }
  source.close_probe();
  s.bytes_done += stats.bytes_skipped_resumed;

  int workers = std::max(1, std::min<int>(info.workers, static_cast<int>(s.chunks.size())));
  if (s.chunks.empty()) workers = 0;
  s.buffers_per_worker = static_cast<size_t>(std::max<uint64_t>(
      1, opts.max_in_flight_bytes / (static_cast<uint64_t>(std::max(workers, 1)) * request_size)));
  logger().info(
      "copy starting",
      {{"source", info.identity},
       {"target", target_path},
       {"size", std::to_string(size)},
       {"data_chunks", std::to_string(s.chunks.size())},
       {"resumed_bytes", std::to_string(stats.bytes_skipped_resumed)},
       {"workers", std::to_string(workers)},
       {"requests", std::to_string(std::min<size_t>(info.parallel, s.buffers_per_worker))}});

  // Durable ranges: what the checkpoint file may claim.
  std::vector<ByteRange> durable = loaded.cp.done;
  std::mutex durable_mu;
  auto sync_and_checkpoint = [&]() -> Status {
    std::vector<ByteRange> batch;
    {
      std::lock_guard<std::mutex> lk(s.mu);
      batch.swap(s.written);
    }
    if (batch.empty()) return {};
    // Only ranges whose writes completed before this sync are claimed.
    FERRY_TRY(target.sync());
    std::lock_guard<std::mutex> lk(durable_mu);
    batch.insert(batch.end(), durable.begin(), durable.end());
    durable = normalize_ranges(std::move(batch));
    return save_checkpoint(opts.checkpoint_path, {info.identity, size, durable});
  };

  std::vector<std::thread> threads;
  s.workers_running = workers;
  for (int i = 0; i < workers; i++) {
    threads.emplace_back([&s, i] {
      run_worker(s, i);
      std::lock_guard<std::mutex> lk(s.mu);
      s.workers_running--;
      s.cv.notify_all();
    });
  }
  std::thread checkpointer;
  std::atomic<bool> checkpointer_stop{false};
  if (!opts.checkpoint_path.empty()) {
    checkpointer = std::thread([&] {
      auto next = Clock::now() + kCheckpointInterval;
      while (!checkpointer_stop) {
        std::this_thread::sleep_for(milliseconds(50));
        if (Clock::now() < next) continue;
        next = Clock::now() + kCheckpointInterval;
        if (Status st = sync_and_checkpoint(); !st.ok()) s.fail(st.error());
      }
    });
  }

  // Progress and cancellation, on this thread.
  auto last_t = Clock::now();
  uint64_t last_done = s.bytes_done.load();
  auto report = [&](bool final) {
    auto now = Clock::now();
    double dt = std::chrono::duration<double>(now - (final ? t0 : last_t)).count();
    uint64_t d = s.bytes_done.load();
    uint64_t delta = final ? d - stats.bytes_skipped_resumed : d - last_done;
    Progress p{d, total, dt > 0 ? static_cast<double>(delta) / dt : 0};
    last_t = now;
    last_done = d;
    if (opts.on_progress) opts.on_progress(p);
  };
  report(false);
  bool canceled = false;
  {
    std::unique_lock<std::mutex> lk(s.mu);
    while (s.workers_running > 0) {
      s.cv.wait_for(lk, milliseconds(100));
      if (s.canceled() && !s.stop) {
        canceled = true;
        s.stop = true;
      }
      if (Clock::now() - last_t >= kProgressInterval) {
        lk.unlock();
        report(false);
        lk.lock();
      }
    }
  }
  for (auto& t : threads) t.join();
  checkpointer_stop = true;
  if (checkpointer.joinable()) checkpointer.join();

  stats.bytes_read = s.bytes_read;
  stats.bytes_written = s.bytes_written;
  stats.bytes_zero = s.bytes_zero;
  auto finish = [&] { stats.seconds = std::chrono::duration<double>(Clock::now() - t0).count(); };

  if (s.error) {
    // Keep what is durable for a later resume; the copy error is what matters.
    if (!opts.checkpoint_path.empty() && s.error->code != ErrorCode::kNoSpace)
      (void)sync_and_checkpoint();
    report(true);
    logger().error("copy failed", {{"source", info.identity}, {"error", s.error->to_string()}});
    return *s.error;
  }
  if (canceled || s.chunks_done.load() < s.chunks.size()) {
    // No final sync: cancel must be quick. The checkpoint on disk already
    // claims only ranges synced before it was written.
    report(true);
    return Error(ErrorCode::kCanceled, "copy of " + info.identity + " to " + target_path +
                                           " canceled after " + std::to_string(s.bytes_done) +
                                           " of " + std::to_string(total) + " bytes");
  }
  FERRY_TRY(target.sync());
  if (opts.verify) {
    if (hooks.before_verify) hooks.before_verify(target_path);
    FERRY_TRY(verify_target(target, *digests, want, size));
    stats.digest = digests->final_digest(want);
  }
  if (!opts.checkpoint_path.empty()) {
    ::unlink(opts.checkpoint_path.c_str());
    ::unlink((opts.checkpoint_path + ".tmp").c_str());
  }
  finish();
  report(true);
  logger().info("copy done", {{"source", info.identity},
                              {"target", target_path},
                              {"bytes_read", std::to_string(stats.bytes_read)},
                              {"bytes_written", std::to_string(stats.bytes_written)},
                              {"seconds", std::to_string(stats.seconds)}});
  return stats;
}

Result<CopyStats> copy_disk(const SourceSpec& src, const std::string& target,
                            const CopyOptions& opts) {
  return copy_disk_with_hooks(src, target, opts, {});
}

}  // namespace ferry::agent::transfer
