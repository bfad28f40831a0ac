#include "coordinator/migration/warm.h"

#include <algorithm>

namespace ferry::coordinator::migration {

std::string warm_snapshot_prefix(const std::string& migration_ns, const std::string& migration) {
  return "ferry-precopy-" + migration_ns + "." + migration + "-";
}

DowntimePrediction predict_downtime(const std::vector<CycleSample>& cycles, double cutover_at) {
  DowntimePrediction p;
  // Copy rate: the cycle that moved the most bytes is the least skewed by
  // fixed costs (task dispatch, connection setup).
  const CycleSample* big = nullptr;
  for (const auto& c : cycles)
    if (c.copy_seconds > 0 && (!big || c.changed_bytes > big->changed_bytes)) big = &c;
  if (!big || big->changed_bytes == 0) return p;
  p.copy_rate = static_cast<double>(big->changed_bytes) / big->copy_seconds;
  // Change rate: bytes changed between consecutive snapshots, over the last
  // three delta cycles; the maximum, so the prediction errs long.
  std::vector<double> fixed;
  int deltas = 0;
  for (size_t i = cycles.size(); i-- > 1 && deltas < 3;) {
    const auto& c = cycles[i];
    if (c.full) continue;
    double window = c.snapshot_at - cycles[i - 1].snapshot_at;
    if (window <= 0) continue;
    deltas++;
    p.change_rate = std::max(p.change_rate, static_cast<double>(c.changed_bytes) / window);
    fixed.push_back(
        std::max(0.0, c.copy_seconds - static_cast<double>(c.changed_bytes) / p.copy_rate));
  }
  if (deltas == 0) return p;
  std::sort(fixed.begin(), fixed.end());
  p.fixed_seconds = fixed[fixed.size() / 2];
  double snap = 0;
  int n = 0;
  for (size_t i = cycles.size(); i-- > 0 && n < 3; n++) snap += cycles[i].snapshot_seconds;
  p.snapshot_seconds = snap / n;
  double since = std::max(0.0, cutover_at - cycles.back().snapshot_at);
  p.expected_bytes = static_cast<uint64_t>(p.change_rate * since);
  p.seconds =
      p.snapshot_seconds + p.fixed_seconds + static_cast<double>(p.expected_bytes) / p.copy_rate;
  p.available = true;
  return p;
}

}  // namespace ferry::coordinator::migration
