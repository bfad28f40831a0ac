#pragma once
// Pure planning functions: byte-range algebra, extent planning and zero
// detection. No I/O; unit tested in tests/unit/transfer/plan_test.cc.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "agent/transfer/copy.h"

namespace ferry::agent::transfer {

// A piece of the source: data (must be read) or zero (a hole, known zero).
struct Extent {
  uint64_t offset;
  uint64_t length;
  bool zero;
  bool operator==(const Extent&) const = default;
};

// Sorts, drops empty ranges and merges overlapping or adjacent ones.
std::vector<ByteRange> normalize_ranges(std::vector<ByteRange> ranges);
// Intersection of two normalized range lists.
std::vector<ByteRange> intersect_ranges(const std::vector<ByteRange>& a,
                                        const std::vector<ByteRange>& b);
// a minus b; both normalized.
std::vector<ByteRange> subtract_ranges(const std::vector<ByteRange>& a,
                                       const std::vector<ByteRange>& b);
uint64_t total_length(const std::vector<ByteRange>& ranges);
// Rounds every range outwards to multiples of `align`, clipped to `size`, normalized.
std::vector<ByteRange> align_out(const std::vector<ByteRange>& ranges, uint64_t align,
                                 uint64_t size);
// Shrinks every range inwards to multiples of `align` (a range ending at `size` keeps its end).
std::vector<ByteRange> align_in(const std::vector<ByteRange>& ranges, uint64_t align,
                                uint64_t size);

// Merges adjacent extents of the same kind (input sorted, non-overlapping).
std::vector<Extent> merge_extents(const std::vector<Extent>& extents);
// Restricts extents to `want` (normalized): the result covers exactly `want`;
// parts of `want` not described by `extents` are treated as data.
std::vector<Extent> intersect_extents(const std::vector<Extent>& extents,
                                      const std::vector<ByteRange>& want);
// Splits extents so no piece crosses a multiple of `block` (pieces <= block).
std::vector<Extent> split_extents(const std::vector<Extent>& extents, uint64_t block);
// Rounds data extents outwards to multiples of `align` (clipped to size); zero
// extents shrink accordingly. Used in verify mode so every digest block is
// either entirely a hole or entirely inside one data piece.
std::vector<Extent> align_data_out(const std::vector<Extent>& extents, uint64_t align,
                                   uint64_t size);

// True if all `len` bytes are zero. Fast: compares the buffer with itself shifted.
bool is_zero(const char* buf, size_t len);

// Classifies buf (holding the source bytes at `offset`) into zero / data runs
// on `granularity`-aligned boundaries (absolute offsets), merged.
std::vector<Extent> classify_zero(const char* buf, uint64_t offset, uint64_t len,
                                  uint64_t granularity);

}  // namespace ferry::agent::transfer
