#pragma once
// Failpoints: named places where a test makes a daemon fail on purpose, at a
// moment no outside signal can hit (e.g. between applying a result and storing
// it). Set by FERRY_FAILPOINTS=name[,name...] in the daemon's environment;
// read once. Never set in production; each use names its test.
#include <cstdlib>
#include <string>

namespace ferry {

inline bool failpoint(const char* name) {
  static const std::string set = [] {
    const char* v = std::getenv("FERRY_FAILPOINTS");
    return "," + std::string(v ? v : "") + ",";
  }();
  return set.find("," + std::string(name) + ",") != std::string::npos;
}

}  // namespace ferry
