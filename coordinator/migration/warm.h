#pragma once
// Warm migration arithmetic, free of I/O: snapshot names, and the predicted
// cutover downtime from what earlier precopy cycles measured.
#include <cstdint>
#include <string>
#include <vector>

namespace ferry::coordinator::migration {

// Ferry's precopy snapshots are named "<prefix><n>" so that a restarted
// coordinator (or a cleanup after failure) recognises its own and never
// touches the user's. The prefix is per Migration.
std::string warm_snapshot_prefix(const std::string& migration_ns, const std::string& migration);

struct CycleSample {
  double snapshot_at = 0;       // when the cycle's snapshot was taken (epoch seconds)
  uint64_t changed_bytes = 0;   // bytes the cycle had to copy
  double copy_seconds = 0;      // first disk task queued -> last disk done
  double snapshot_seconds = 0;  // create + remove of the cycle's snapshot
  bool full = false;            // a full copy (initial, or after a change ID reset)
};

struct DowntimePrediction {
  bool available = false;  // needs one full copy and one delta cycle after it
  double seconds = 0;      // snapshot + fixed cost + expected delta / copy rate
  double change_rate = 0;  // bytes/s the guest changes (max of the last 3 deltas)
  double copy_rate = 0;    // bytes/s, from the largest cycle
  double fixed_seconds = 0;
  double snapshot_seconds = 0;
  uint64_t expected_bytes = 0;  // final delta if the cutover starts at `cutover_at`
};

// Predicts the copy part of the cutover downtime (the source is off from
// power-off until the final delta is copied; guest conversion comes on top)
// for a cutover starting at `cutover_at`.
DowntimePrediction predict_downtime(const std::vector<CycleSample>& cycles, double cutover_at);

}  // namespace ferry::coordinator::migration
