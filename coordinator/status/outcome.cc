#include "coordinator/status/outcome.h"

namespace ferry::coordinator::status {

std::optional<std::string> migration_outcome(const nlohmann::json& vms) {
  int failed = 0, canceled = 0, done = 0;
  for (const auto& vm : vms) {
    const auto it = vm.is_object() ? vm.find("phase") : vm.end();
    if (!vm.is_object() || it == vm.end() || !it->is_string()) return std::nullopt;
    const std::string& ph = it->get_ref<const std::string&>();
    if (ph == "Failed")
      failed++;
    else if (ph == "Canceled")
      canceled++;
    else if (ph == "Completed")
      done++;
    else
      return std::nullopt;
  }
  if (failed) return "Failed";
  if (done == 0 && canceled > 0) return "Canceled";
  return "Succeeded";
}

}  // namespace ferry::coordinator::status
