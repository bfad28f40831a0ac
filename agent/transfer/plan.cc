#include "agent/transfer/plan.h"

#include <algorithm>
#include <cstring>

namespace ferry::agent::transfer {

std::vector<ByteRange> normalize_ranges(std::vector<ByteRange> ranges) {
  std::sort(ranges.begin(), ranges.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  std::vector<ByteRange> out;
  for (const auto& r : ranges) {
    if (r.length == 0) continue;
    if (!out.empty() && r.offset <= out.back().offset + out.back().length) {
      uint64_t end = std::max(out.back().offset + out.back().length, r.offset + r.length);
      out.back().length = end - out.back().offset;
    } else {
      out.push_back(r);
    }
  }
  return out;
}

std::vector<ByteRange> intersect_ranges(const std::vector<ByteRange>& a,
                                        const std::vector<ByteRange>& b) {
  std::vector<ByteRange> out;
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    uint64_t s = std::max(a[i].offset, b[j].offset);
    uint64_t ea = a[i].offset + a[i].length, eb = b[j].offset + b[j].length;
    uint64_t e = std::min(ea, eb);
    if (s < e) out.push_back({s, e - s});
    if (ea < eb)
      i++;
    else
      j++;
  }
  return out;
}

std::vector<ByteRange> subtract_ranges(const std::vector<ByteRange>& a,
                                       const std::vector<ByteRange>& b) {
  std::vector<ByteRange> out;
  size_t j = 0;
  for (const auto& r : a) {
    uint64_t pos = r.offset, end = r.offset + r.length;
    while (j < b.size() && b[j].offset + b[j].length <= pos) j++;
    size_t k = j;
    while (pos < end && k < b.size() && b[k].offset < end) {
      if (b[k].offset > pos) out.push_back({pos, b[k].offset - pos});
      pos = std::max(pos, b[k].offset + b[k].length);
      k++;
    }
    if (pos < end) out.push_back({pos, end - pos});
  }
  return out;
}

uint64_t total_length(const std::vector<ByteRange>& ranges) {
  uint64_t t = 0;
  for (const auto& r : ranges) t += r.length;
  return t;
}

std::vector<ByteRange> align_out(const std::vector<ByteRange>& ranges, uint64_t align,
                                 uint64_t size) {
  std::vector<ByteRange> out;
  for (const auto& r : ranges) {
    if (r.offset >= size || r.length == 0) continue;
    uint64_t s = r.offset / align * align;
    uint64_t e = std::min(size, (r.offset + r.length + align - 1) / align * align);
    out.push_back({s, e - s});
  }
  return normalize_ranges(std::move(out));
}

std::vector<ByteRange> align_in(const std::vector<ByteRange>& ranges, uint64_t align,
                                uint64_t size) {
  std::vector<ByteRange> out;
  for (const auto& r : ranges) {
    uint64_t s = (r.offset + align - 1) / align * align;
    uint64_t end = r.offset + r.length;
    uint64_t e = end >= size ? size : end / align * align;
    if (s < e) out.push_back({s, e - s});
  }
  return normalize_ranges(std::move(out));
}

std::vector<Extent> merge_extents(const std::vector<Extent>& extents) {
  std::vector<Extent> out;
  for (const auto& e : extents) {
    if (e.length == 0) continue;
    if (!out.empty() && out.back().zero == e.zero &&
        out.back().offset + out.back().length == e.offset) {
      out.back().length += e.length;
    } else {
      out.push_back(e);
    }
  }
  return out;
}

std::vector<Extent> intersect_extents(const std::vector<Extent>& extents,
                                      const std::vector<ByteRange>& want) {
  std::vector<Extent> out;
  size_t i = 0;
  for (const auto& w : want) {
    uint64_t pos = w.offset, end = w.offset + w.length;
    while (i < extents.size() && extents[i].offset + extents[i].length <= pos) i++;
    size_t k = i;
    while (pos < end) {
      if (k >= extents.size() || extents[k].offset >= end) {
        out.push_back({pos, end - pos, false});
        break;
      }
      const auto& e = extents[k];
      if (e.offset > pos) {  // gap in the map: treat as data
        out.push_back({pos, e.offset - pos, false});
        pos = e.offset;
      }
      uint64_t e_end = std::min(end, e.offset + e.length);
      if (e_end > pos) out.push_back({pos, e_end - pos, e.zero});
      pos = std::max(pos, e_end);
      if (e.offset + e.length <= end) k++;
    }
  }
  return merge_extents(out);
}

std::vector<Extent> split_extents(const std::vector<Extent>& extents, uint64_t block) {
  std::vector<Extent> out;
  for (const auto& e : extents) {
    uint64_t pos = e.offset, end = e.offset + e.length;
    while (pos < end) {
      uint64_t next = std::min(end, (pos / block + 1) * block);
      out.push_back({pos, next - pos, e.zero});
      pos = next;
    }
  }
  return out;
}

std::vector<Extent> align_data_out(const std::vector<Extent>& extents, uint64_t align,
                                   uint64_t size) {
  if (extents.empty()) return {};
  std::vector<ByteRange> data;
  for (const auto& e : extents)
    if (!e.zero) data.push_back({e.offset, e.length});
  data = align_out(data, align, size);
  // Rebuild over the covered span: data where `data` says, zero elsewhere.
  uint64_t start = extents.front().offset;
  uint64_t end = extents.back().offset + extents.back().length;
  std::vector<Extent> out;
  uint64_t pos = start;
  for (const auto& d : data) {
    uint64_t s = std::max(d.offset, start), e = std::min(d.offset + d.length, end);
    if (s >= e) continue;
    if (s > pos) out.push_back({pos, s - pos, true});
    out.push_back({s, e - s, false});
    pos = e;
  }
  if (pos < end) out.push_back({pos, end - pos, true});
  return merge_extents(out);
}

bool is_zero(const char* buf, size_t len) {
  // Check a small prefix by hand (random data exits at byte 0), then compare
  // the buffer with itself shifted by 16 bytes: memcmp is vectorised.
  size_t head = std::min<size_t>(len, 16);
  for (size_t i = 0; i < head; i++)
    if (buf[i]) return false;
  return len <= 16 || std::memcmp(buf, buf + 16, len - 16) == 0;
}

std::vector<Extent> classify_zero(const char* buf, uint64_t offset, uint64_t len,
                                  uint64_t granularity) {
  std::vector<Extent> out;
  uint64_t pos = offset, end = offset + len;
  while (pos < end) {
    uint64_t next = std::min(end, (pos / granularity + 1) * granularity);
    bool z = is_zero(buf + (pos - offset), next - pos);
    if (!out.empty() && out.back().zero == z)
      out.back().length += next - pos;
    else
      out.push_back({pos, next - pos, z});
    pos = next;
  }
  return out;
}

}  // namespace ferry::agent::transfer
