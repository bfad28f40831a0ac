#include "common/base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>

#include <nlohmann/json.hpp>

namespace ferry {
namespace {

LogLevel level_from_env() {
  const char* v = std::getenv("FERRY_LOG_LEVEL");
  if (!v) return LogLevel::kInfo;
  if (!std::strcmp(v, "debug")) return LogLevel::kDebug;
  if (!std::strcmp(v, "warn")) return LogLevel::kWarn;
  if (!std::strcmp(v, "error")) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int> g_level{static_cast<int>(level_from_env())};
std::mutex g_recent_mu;
std::deque<std::string> g_recent;

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

}  // namespace

void Logger::set_level(LogLevel level) { g_level = static_cast<int>(level); }

std::vector<std::string> Logger::recent() {
  std::lock_guard<std::mutex> lock(g_recent_mu);
  return {g_recent.begin(), g_recent.end()};
}

void Logger::write(LogLevel level, const std::string& msg,
                   std::initializer_list<LogField> fields) const {
  if (static_cast<int>(level) < g_level.load()) return;
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[64];
  std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  nlohmann::json j;
  j["ts"] = ts;
  j["level"] = level_name(level);
  j["logger"] = name_;
  j["msg"] = msg;
  for (const auto& [k, v] : fields) j[k] = v;
  std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  std::fwrite(line.data(), 1, line.size(), stderr);  // one call per line keeps lines whole
  std::lock_guard<std::mutex> lock(g_recent_mu);
  g_recent.push_back(std::move(line));
  if (g_recent.size() > kRecentLines) g_recent.pop_front();
}

}  // namespace ferry
