#pragma once
// What an agent reported about a finished task, as a VM's status keeps it:
// a disk's copy (`disks[].result`), the guest's conversion
// (`conversion.report`) and its preflight inspection (`inspection.report`).
// Typed structs built from the protocol's messages; the JSON they write is
// what ferryctl, the tests and stored statuses read. Members are named as
// their JSON fields (NLOHMANN_DEFINE_TYPE_* derives the names from them).
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "ferry/v1/agent.pb.h"

namespace ferry::coordinator::status {

struct DiskResult {
  uint64_t bytesRead = 0, bytesWritten = 0, bytesZero = 0, bytesResumed = 0;
  double seconds = 0;
  std::string digest;
  static DiskResult from(const ferry::v1::TaskSuccess& s);
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DiskResult, bytesRead, bytesWritten, bytesZero,
                                                bytesResumed, seconds, digest)

struct ConversionReport {
  std::string os, distro, version, product, firmware;
  std::vector<std::string> drivers, warnings;
  bool virtioDisk = false, virtioNet = false;
  double seconds = 0;
  static ConversionReport from(const ferry::v1::ConversionReport& c);
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(ConversionReport, os, distro, version, product,
                                                firmware, drivers, warnings, virtioDisk, virtioNet,
                                                seconds)

struct InspectionReport {
  bool foundOS = false;
  std::string os, distro, version, product, osinfo, firmware;
  std::vector<std::string> concerns;
  double seconds = 0;
  static InspectionReport from(const ferry::v1::InspectionReport& x);
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(InspectionReport, foundOS, os, distro, version,
                                                product, osinfo, firmware, concerns, seconds)

}  // namespace ferry::coordinator::status
