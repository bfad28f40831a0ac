#pragma once
// Wall-clock helpers for status fields and timers.
#include <chrono>
#include <ctime>
#include <string>

namespace ferry {

// Seconds since the epoch.
inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// RFC 3339 UTC, whole seconds ("2026-11-22T07:40:16Z"); epoch seconds in, or now.
inline std::string iso_time(double epoch_seconds) {
  auto t = static_cast<std::time_t>(epoch_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}
inline std::string now_iso() { return iso_time(now_seconds()); }

}  // namespace ferry
