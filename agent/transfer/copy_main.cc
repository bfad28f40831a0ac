// `ferry-agent copy` / `ferry-copy`: the copy engine from the command line.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "agent/transfer/copy.h"
#include "agent/transfer/stage.h"

namespace ferry::agent::transfer {
namespace {

std::atomic<bool> g_cancel{false};

extern "C" void on_signal(int) { g_cancel.store(true); }

const char kUsage[] =
    "usage: ferry-copy SOURCE TARGET [options]\n"
    "  SOURCE  nbd://host:port[/export] | nbd+unix:///export?socket=PATH | http(s)://... | FILE\n"
    "  TARGET  regular file (created sparse) or block device\n"
    "options:\n"
    "  --verify              check an end-to-end digest (XXH3-128 per 1 MiB block)\n"
    "  --direct              write aligned data with O_DIRECT (bypass the page cache)\n"
    "  --checkpoint FILE     resume from / record progress in FILE (removed on success)\n"
    "  --connections N       parallel source connections (default 4)\n"
    "  --requests N          requests in flight per connection (default 8)\n"
    "  --block-size BYTES    request size (default 2M)\n"
    "  --bandwidth BYTES/s   cap source reads (suffixes K, M, G)\n"
    "  --max-in-flight BYTES memory cap for buffers (default 256M)\n"
    "  --max-retries N       per range, transient errors (default 5)\n"
    "  --progress            print progress to stderr every second\n"
    "  --ranges OFF:LEN,...  copy only these byte ranges (suffixes allowed)\n"
    "  --size BYTES          known source size\n"
    "  --insecure            https without certificate verification\n"
    "  --thumbprint X        pin the server certificate's SHA-1 (AA:BB:...)\n"
    "  --cacert FILE         verify https against this CA (PEM) instead of the system's\n"
    "  --header H            extra HTTP header (repeatable)\n"
    "  --imageio             the http(s) URL is an ovirt-imageio ticket (reads its extents)\n"
    "  --changed-only        copy only what the source reports changed (imageio: dirty extents)\n"
    "  --bind ADDR           local address (or interface for http) for source connections\n"
    "  --tls-psk FILE        NBD: require TLS with this pre-shared key file (user:hexkey)\n"
    "  --tls-username NAME   NBD: the key's user name in FILE\n"
    "  --stage RECORD        a stage copy (needs --size): only the 1 MiB blocks whose digests\n"
    "                        changed since the copy RECORD remembers (storage migration)\n"
    "  --digests URI         with --stage: the source's block digests (a served volume's\n"
    "                        digests export); default: hash SOURCE, a local file\n"
    "On success prints the copy statistics as one JSON line on stdout.\n";

bool parse_size(const std::string& s, uint64_t* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno || end == s.c_str()) return false;
  uint64_t mul = 1;
  std::string suf(end);
  if (suf == "K" || suf == "k" || suf == "KiB")
    mul = 1ULL << 10;
  else if (suf == "M" || suf == "MiB")
    mul = 1ULL << 20;
  else if (suf == "G" || suf == "GiB")
    mul = 1ULL << 30;
  else if (suf == "T" || suf == "TiB")
    mul = 1ULL << 40;
  else if (!suf.empty())
    return false;
  *out = v * mul;
  return true;
}

bool parse_int(const std::string& s, int* out) {
  uint64_t v;
  if (!parse_size(s, &v) || v > 1000000) return false;
  *out = static_cast<int>(v);
  return true;
}

}  // namespace

int copy_main(int argc, char** argv) {
  SourceSpec src;
  std::string target;
  CopyOptions opts;
  bool progress = false;
  std::string stage_record, digests_uri;
  std::vector<std::string> positional;
  auto usage_error = [](const std::string& m) {
    std::fprintf(stderr, "ferry-copy: %s\n%s", m.c_str(), kUsage);
    return 2;
  };
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--verify") {
      opts.verify = true;
    } else if (a == "--direct") {
      opts.direct = true;
    } else if (a == "--progress") {
      progress = true;
    } else if (a == "--insecure") {
      src.insecure_skip_verify = true;
    } else if (a == "--imageio") {
      src.imageio = true;
    } else if (a == "--changed-only") {
      src.changed_only = true;
    } else if (a == "--checkpoint") {
      if (!value(&opts.checkpoint_path)) return usage_error("--checkpoint needs a file");
    } else if (a == "--connections") {
      if (!value(&v) || !parse_int(v, &opts.connections)) return usage_error("bad --connections");
    } else if (a == "--requests") {
      if (!value(&v) || !parse_int(v, &opts.requests)) return usage_error("bad --requests");
    } else if (a == "--max-retries") {
      if (!value(&v) || !parse_int(v, &opts.max_retries)) return usage_error("bad --max-retries");
    } else if (a == "--block-size") {
      if (!value(&v) || !parse_size(v, &opts.block_size)) return usage_error("bad --block-size");
    } else if (a == "--bandwidth") {
      if (!value(&v) || !parse_size(v, &opts.bandwidth)) return usage_error("bad --bandwidth");
    } else if (a == "--max-in-flight") {
      if (!value(&v) || !parse_size(v, &opts.max_in_flight_bytes))
        return usage_error("bad --max-in-flight");
    } else if (a == "--size") {
      if (!value(&v) || !parse_size(v, &src.size)) return usage_error("bad --size");
    } else if (a == "--cacert") {
      if (!value(&v)) return usage_error("--cacert needs a file");
      std::ifstream in(v);
      std::stringstream pem;
      pem << in.rdbuf();
      if (!in || pem.str().empty()) return usage_error("--cacert: cannot read " + v);
      src.ca_pem = pem.str();
    } else if (a == "--thumbprint") {
      if (!value(&src.tls_sha1_thumbprint)) return usage_error("--thumbprint needs a value");
    } else if (a == "--header") {
      if (!value(&v)) return usage_error("--header needs a value");
      src.http_headers.push_back(v);
    } else if (a == "--bind") {
      if (!value(&src.bind_address)) return usage_error("--bind needs an address");
    } else if (a == "--tls-psk") {
      if (!value(&src.tls_psk_file)) return usage_error("--tls-psk needs a file");
    } else if (a == "--tls-username") {
      if (!value(&src.tls_username)) return usage_error("--tls-username needs a name");
    } else if (a == "--stage") {
      if (!value(&stage_record)) return usage_error("--stage needs a record file");
    } else if (a == "--digests") {
      if (!value(&digests_uri)) return usage_error("--digests needs a URI");
    } else if (a == "--ranges") {
      if (!value(&v)) return usage_error("--ranges needs OFF:LEN,...");
      size_t pos = 0;
      while (pos <= v.size()) {
        size_t comma = v.find(',', pos);
        if (comma == std::string::npos) comma = v.size();
        std::string item = v.substr(pos, comma - pos);
        auto colon = item.find(':');
        ByteRange r{};
        if (colon == std::string::npos || !parse_size(item.substr(0, colon), &r.offset) ||
            !parse_size(item.substr(colon + 1), &r.length))
          return usage_error("bad range '" + item + "'");
        opts.ranges.push_back(r);
        pos = comma + 1;
      }
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) return usage_error("need SOURCE and TARGET");
  src.uri = positional[0];
  target = positional[1];

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  opts.cancel = &g_cancel;
  if (progress) {
    opts.on_progress = [](const Progress& p) {
      double pct = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) /
                                       static_cast<double>(p.bytes_total)
                                 : 100.0;
      std::fprintf(stderr, "progress %llu/%llu bytes (%.1f%%) %.1f MB/s\n",
                   static_cast<unsigned long long>(p.bytes_done),
                   static_cast<unsigned long long>(p.bytes_total), pct, p.bytes_per_second / 1e6);
    };
  }
  if (!stage_record.empty()) {
    if (!src.size) return usage_error("--stage needs --size");
    Result<BlockHashes> hashes = Error(ErrorCode::kInternal, "");
    if (!digests_uri.empty()) {
      SourceSpec d = src;
      d.uri = digests_uri;
      hashes = fetch_block_hashes(d, src.size, stage_record + ".fetch");
    } else {
      hashes = hash_file_blocks(src.uri, src.size);
    }
    if (!hashes.ok()) {
      std::fprintf(stderr, "ferry-copy: %s\n", hashes.error().to_string().c_str());
      return 1;
    }
    bool verify = opts.verify;
    opts.verify = false;
    auto st = stage_copy(src, *hashes, target, stage_record, opts, verify);
    if (!st.ok()) {
      std::fprintf(stderr, "ferry-copy: %s\n", st.error().to_string().c_str());
      return 1;
    }
    std::printf(
        "{\"size\":%llu,\"bytes_read\":%llu,\"blocks\":%llu,\"blocks_changed\":%llu,"
        "\"full\":%s,\"verified\":%s,\"seconds\":%.3f,\"digest\":\"%s\"}\n",
        static_cast<unsigned long long>(src.size),
        static_cast<unsigned long long>(st->copy.bytes_read),
        static_cast<unsigned long long>(st->blocks),
        static_cast<unsigned long long>(st->blocks_changed), st->full ? "true" : "false",
        st->verified ? "true" : "false", st->copy.seconds, st->digest.c_str());
    return 0;
  }
  auto r = copy_disk(src, target, opts);
  if (!r.ok()) {
    std::fprintf(stderr, "ferry-copy: %s\n", r.error().to_string().c_str());
    return 1;
  }
  const CopyStats& s = r.value();
  std::printf(
      "{\"size\":%llu,\"bytes_read\":%llu,\"bytes_written\":%llu,\"bytes_zero\":%llu,"
      "\"bytes_skipped_resumed\":%llu,\"seconds\":%.3f,\"digest\":\"%s\"}\n",
      static_cast<unsigned long long>(s.size), static_cast<unsigned long long>(s.bytes_read),
      static_cast<unsigned long long>(s.bytes_written),
      static_cast<unsigned long long>(s.bytes_zero),
      static_cast<unsigned long long>(s.bytes_skipped_resumed), s.seconds, s.digest.c_str());
  return 0;
}

}  // namespace ferry::agent::transfer
