#include "coordinator/status/outcome.h"

namespace ferry::coordinator::status {

std::optional<std::string> migration_outcome(const std::vector<VmStatus>& vms) {
  int failed = 0, canceled = 0, done = 0;
  for (const auto& vm : vms) {
    if (vm.phase == "Failed")
      failed++;
    else if (vm.phase == "Canceled")
      canceled++;
    else if (vm.phase == "Completed")
      done++;
    else
      return std::nullopt;
  }
  if (failed) return "Failed";
  if (done == 0 && canceled > 0) return "Canceled";
  return "Succeeded";
}

}  // namespace ferry::coordinator::status
