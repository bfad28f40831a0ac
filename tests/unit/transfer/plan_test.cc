#include <catch2/catch.hpp>

#include <string>

#include "agent/transfer/plan.h"

using namespace ferry::agent::transfer;

namespace {
constexpr uint64_t MiB = 1 << 20;
}

TEST_CASE("normalize_ranges sorts, merges overlapping and adjacent, drops empty", "[plan]") {
  auto r = normalize_ranges({{100, 50}, {0, 10}, {10, 5}, {120, 100}, {500, 0}});
  REQUIRE(r == std::vector<ByteRange>{{0, 15}, {100, 120}});
}

TEST_CASE("intersect and subtract ranges", "[plan]") {
  std::vector<ByteRange> a{{0, 100}, {200, 100}};
  std::vector<ByteRange> b{{50, 200}};
  REQUIRE(intersect_ranges(a, b) == std::vector<ByteRange>{{50, 50}, {200, 50}});
  REQUIRE(subtract_ranges(a, b) == std::vector<ByteRange>{{0, 50}, {250, 50}});
  REQUIRE(subtract_ranges(a, {}) == a);
  REQUIRE(subtract_ranges(a, {{0, 1000}}).empty());
  REQUIRE(subtract_ranges({{0, 100}}, {{10, 10}, {30, 10}}) ==
          std::vector<ByteRange>{{0, 10}, {20, 10}, {40, 60}});
  REQUIRE(total_length(a) == 200);
}

TEST_CASE("align_out and align_in respect the disk end", "[plan]") {
  REQUIRE(align_out({{5, 10}, {4090, 20}}, 4096, 10000) == std::vector<ByteRange>{{0, 8192}});
  REQUIRE(align_out({{9000, 500}}, 4096, 9500) == std::vector<ByteRange>{{8192, 1308}});
  REQUIRE(align_in({{5, 8192}}, 4096, 100000) == std::vector<ByteRange>{{4096, 4096}});
  REQUIRE(align_in({{5, 100}}, 4096, 100000).empty());
  // A range ending at the (unaligned) disk end keeps its end.
  REQUIRE(align_in({{4096, 5000}}, 4096, 9096) == std::vector<ByteRange>{{4096, 5000}});
}

TEST_CASE("merge_extents joins neighbours of the same kind", "[plan]") {
  auto m =
      merge_extents({{0, 10, false}, {10, 5, false}, {15, 5, true}, {20, 5, true}, {25, 0, false}});
  REQUIRE(m == std::vector<Extent>{{0, 15, false}, {15, 10, true}});
}

TEST_CASE("intersect_extents covers exactly the wanted ranges", "[plan]") {
  std::vector<Extent> ex{{0, 100, false}, {100, 100, true}, {200, 100, false}};
  auto r = intersect_extents(ex, {{50, 100}, {250, 100}});
  // The part beyond the map (300..350) is treated as data.
  REQUIRE(r == std::vector<Extent>{{50, 50, false}, {100, 50, true}, {250, 100, false}});
}

TEST_CASE("split_extents cuts at multiples of the block size", "[plan]") {
  auto r = split_extents({{0, 10, true}, {10, 25, false}}, 16);
  REQUIRE(r == std::vector<Extent>{{0, 10, true}, {10, 6, false}, {16, 16, false}, {32, 3, false}});
  for (auto& e : split_extents({{3 * MiB + 5, 9 * MiB, false}}, 4 * MiB)) {
    REQUIRE(e.length <= 4 * MiB);
    REQUIRE(e.offset / (4 * MiB) == (e.offset + e.length - 1) / (4 * MiB));
  }
}

TEST_CASE("align_data_out grows data to whole blocks and shrinks holes", "[plan]") {
  std::vector<Extent> ex{
      {0, 10 * MiB, true}, {10 * MiB + 4096, 4096, false}, {10 * MiB + 8192, 6 * MiB - 8192, true}};
  // The first extent starts at 0 but the map has a gap at 10M..10M+4K (treated as hole here).
  ex.insert(ex.begin() + 1, Extent{10 * MiB, 4096, true});
  auto r = align_data_out(ex, MiB, 16 * MiB);
  REQUIRE(r == std::vector<Extent>{
                   {0, 10 * MiB, true}, {10 * MiB, MiB, false}, {11 * MiB, 5 * MiB, true}});
  // Clipped at an unaligned disk end.
  auto t = align_data_out({{0, 1000, true}, {1000, 24, false}}, MiB, 1024);
  REQUIRE(t == std::vector<Extent>{{0, 1024, false}});
}

TEST_CASE("is_zero", "[zero]") {
  std::string buf(1 << 20, '\0');
  REQUIRE(is_zero(buf.data(), buf.size()));
  REQUIRE(is_zero(buf.data(), 0));
  REQUIRE(is_zero(buf.data(), 7));
  for (size_t pos : {size_t{0}, size_t{15}, size_t{16}, size_t{4095}, buf.size() - 1}) {
    buf[pos] = 1;
    REQUIRE_FALSE(is_zero(buf.data(), buf.size()));
    buf[pos] = 0;
  }
}

TEST_CASE("classify_zero finds zero runs on absolute granularity boundaries", "[zero]") {
  const uint64_t g = 64 * 1024;
  std::string buf(4 * g, '\0');
  buf[g + 5] = 'x';        // second granule is data
  buf[3 * g + 100] = 'y';  // fourth granule is data
  auto r = classify_zero(buf.data(), 8 * g, buf.size(), g);
  REQUIRE(r == std::vector<Extent>{
                   {8 * g, g, true}, {9 * g, g, false}, {10 * g, g, true}, {11 * g, g, false}});
  // Unaligned start: the first piece ends at the next granule boundary.
  auto u = classify_zero(buf.data() + 100, 8 * g + 100, g, g);
  REQUIRE(u == std::vector<Extent>{{8 * g + 100, g - 100, true}, {9 * g, 100, false}});
}
