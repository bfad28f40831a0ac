#include "coordinator/status/reports.h"

namespace ferry::coordinator::status {

DiskResult DiskResult::from(const ferry::v1::TaskSuccess& s) {
  return {.bytesRead = s.bytes_read(),
          .bytesWritten = s.bytes_written(),
          .bytesZero = s.bytes_zero(),
          .bytesResumed = s.bytes_resumed(),
          .seconds = s.seconds(),
          .digest = s.digest()};
}

ConversionReport ConversionReport::from(const ferry::v1::ConversionReport& c) {
  return {.os = c.os_name(),
          .distro = c.os_distro(),
          .version = c.os_version(),
          .product = c.os_product(),
          .firmware = c.firmware(),
          .drivers = {c.drivers_installed().begin(), c.drivers_installed().end()},
          .warnings = {c.warnings().begin(), c.warnings().end()},
          .virtioDisk = c.virtio_disk(),
          .virtioNet = c.virtio_net(),
          .seconds = c.seconds()};
}

InspectionReport InspectionReport::from(const ferry::v1::InspectionReport& x) {
  return {.foundOS = x.found_os(),
          .os = x.os_name(),
          .distro = x.os_distro(),
          .version = x.os_version(),
          .product = x.os_product(),
          .osinfo = x.osinfo(),
          .firmware = x.firmware(),
          .concerns = {x.concerns().begin(), x.concerns().end()},
          .seconds = x.seconds()};
}

}  // namespace ferry::coordinator::status
