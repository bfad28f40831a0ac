#include "coordinator/storage/cluster.h"

#include <set>

#include "coordinator/storage/json_read.h"

namespace ferry::coordinator::storage {

std::string run_strategy_of(const Json& obj) {
  std::string rs = str_at(obj, {"spec", "runStrategy"});
  if (!rs.empty()) return rs;
  return bool_at(obj, {"spec", "running"}) ? "Always" : "Halted";
}

Vm vm_from_object(const Json& obj) {
  Vm vm;
  vm.name = str_at(obj, {"metadata", "name"});
  vm.ns = str_at(obj, {"metadata", "namespace"});
  vm.run_strategy = run_strategy_of(obj);
  vm.wants_running = bool_at(obj, {"spec", "running"}) || vm.run_strategy == "Always" ||
                     vm.run_strategy == "RerunOnFailure";
  std::set<std::string> shareable;
  for (const auto& d : list_at(obj, {"spec", "template", "spec", "domain", "devices", "disks"}))
    if (bool_at(d, {"shareable"})) shareable.insert(str_at(d, {"name"}));
  for (const auto& v : list_at(obj, {"spec", "template", "spec", "volumes"})) {
    VmVolume x;
    x.name = str_at(v, {"name"});
    x.claim = str_at(v, {"persistentVolumeClaim", "claimName"});
    x.data_volume = str_at(v, {"dataVolume", "name"});
    x.shareable = shareable.count(x.name) > 0;
    vm.volumes.push_back(std::move(x));
  }
  return vm;
}

}  // namespace ferry::coordinator::storage
