#include <catch2/catch.hpp>

#include "coordinator/status/reports.h"

using namespace ferry::coordinator::status;
using nlohmann::json;

TEST_CASE("task reports keep the JSON field names ferryctl and stored statuses use") {
  ferry::v1::TaskSuccess s;
  s.set_bytes_read(10);
  s.set_bytes_written(8);
  s.set_bytes_zero(2);
  s.set_bytes_resumed(4);
  s.set_seconds(1.5);
  s.set_digest("sha256:ab");
  json d = DiskResult::from(s);
  CHECK(d == json{{"bytesRead", 10},
                  {"bytesWritten", 8},
                  {"bytesZero", 2},
                  {"bytesResumed", 4},
                  {"seconds", 1.5},
                  {"digest", "sha256:ab"}});

  ferry::v1::ConversionReport c;
  c.set_os_name("linux");
  c.set_os_distro("debian");
  c.set_os_version("12.5");
  c.set_firmware("bios");
  c.add_drivers_installed("virtio_blk");
  c.add_warnings("w1");
  c.set_virtio_disk(true);
  json cj = ConversionReport::from(c);
  CHECK(cj["os"] == "linux");
  CHECK(cj["drivers"] == json::array({"virtio_blk"}));
  CHECK(cj["warnings"] == json::array({"w1"}));
  CHECK(cj["virtioDisk"] == true);
  CHECK(cj["virtioNet"] == false);

  ferry::v1::InspectionReport x;
  x.set_found_os(false);
  x.add_concerns("no OS");
  json xj = InspectionReport::from(x);
  CHECK(xj["foundOS"] == false);
  CHECK(xj["concerns"] == json::array({"no OS"}));
}

TEST_CASE("a stored report with fields missing reads with their defaults") {
  // What an older coordinator wrote for a precopy that found nothing changed.
  auto r = json{{"bytesRead", 0}, {"bytesWritten", 0}, {"seconds", 0}}.get<DiskResult>();
  CHECK(r.bytesRead == 0);
  CHECK(r.digest.empty());
  auto c = json::object().get<ConversionReport>();
  CHECK_FALSE(c.virtioDisk);
  CHECK(c.drivers.empty());
}
