#include "coordinator/store/status_view.h"

#include "coordinator/migration/pipeline.h"

namespace ferry::coordinator::store {

using Json = nlohmann::json;

namespace {
void copy(const Json& from, Json& to, std::initializer_list<const char*> fields) {
  for (const char* f : fields)
    if (from.contains(f)) to[f] = from[f];
}
}  // namespace

Json vm_view(const Json& vm, Detail detail) {
  Json v = Json::object();
  if (!vm.is_object()) return v;
  copy(vm, v, {"id", "name", "phase", "started", "completed", "error", "conditions"});
  if (vm.contains("warm") && vm["warm"].is_object()) {
    Json w = Json::object();
    for (auto it = vm["warm"].begin(); it != vm["warm"].end(); ++it)
      if (!it.value().is_structured()) w[it.key()] = it.value();
    v["warm"] = w;
  }
  if (detail == Detail::kNone || !vm.contains("pipeline") || !vm["pipeline"].is_array()) return v;
  Json steps = Json::array();
  for (const auto& s : vm["pipeline"]) {
    Json st = Json::object();
    if (detail == Detail::kRunningSteps) {
      if (s.value("phase", "") != "Running") continue;
      copy(s, st, {"name", "phase", "progress"});
    } else {
      copy(s, st, {"name", "description", "phase", "progress", "started", "completed", "error"});
    }
    steps.push_back(st);
  }
  v["pipeline"] = steps;
  return v;
}

Json status_view(const std::string& kind, const Json& summary, const VmViews& vms,
                 size_t max_bytes) {
  Json st = summary.is_object() ? summary : Json::object();
  st.erase("vmCount");
  st.erase("inspectionConditions");
  if (kind != "Migration") return st;
  // level 3: every pipeline; 2: those of VMs under way; 1: their running
  // steps; 0: none.
  auto build = [&](int level) {
    Json list = Json::array();
    for (const auto& [i, view] : vms) {
      const Json& vm = *view;
      std::string phase = vm.value("phase", "");
      bool active = !migration::is_terminal_name(phase) && phase != "Pending";
      Detail d = level == 3             ? Detail::kPipeline
                 : level == 2 && active ? Detail::kPipeline
                 : level == 1 && active ? Detail::kRunningSteps
                                        : Detail::kNone;
      list.push_back(vm_view(vm, d));
    }
    return list;
  };
  size_t base = st.dump().size() + 16;
  for (int level = 3; level >= 0; level--) {
    Json list = build(level);
    size_t size = base + list.dump().size();
    if (size > max_bytes && level > 0) continue;
    size_t omitted = 0;
    while (size > max_bytes && !list.empty()) {  // the last resort: cut the list
      size -= list.back().dump().size() + 1;
      list.erase(list.end() - 1);
      omitted++;
    }
    if (omitted) st["vmsOmitted"] = omitted;
    st["vms"] = std::move(list);
    break;
  }
  return st;
}

}  // namespace ferry::coordinator::store
