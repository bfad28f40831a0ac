#pragma once
// JSON-lines logging to stderr. One named Logger per subsystem; fields such as
// plan, vm and disk are attached per call. Thread-safe (one write per line).
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace ferry {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

using LogField = std::pair<std::string, std::string>;

class Logger {
 public:
  explicit Logger(std::string name) : name_(std::move(name)) {}
  void debug(const std::string& msg, std::initializer_list<LogField> f = {}) const {
    write(LogLevel::kDebug, msg, f);
  }
  void info(const std::string& msg, std::initializer_list<LogField> f = {}) const {
    write(LogLevel::kInfo, msg, f);
  }
  void warn(const std::string& msg, std::initializer_list<LogField> f = {}) const {
    write(LogLevel::kWarn, msg, f);
  }
  void error(const std::string& msg, std::initializer_list<LogField> f = {}) const {
    write(LogLevel::kError, msg, f);
  }
  void write(LogLevel level, const std::string& msg, std::initializer_list<LogField> f) const;

  // Minimum level for all loggers; FERRY_LOG_LEVEL=debug|info|warn|error sets it at start.
  static void set_level(LogLevel level);
  // The last lines written by this process (up to kRecentLines), oldest first;
  // for must-gather.
  static std::vector<std::string> recent();
  static constexpr size_t kRecentLines = 5000;

 private:
  std::string name_;
};

}  // namespace ferry
