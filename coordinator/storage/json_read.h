#pragma once
// Reading objects that come from outside (the API server, KV, manifests)
// without assuming their shape: a missing field or one of another type reads
// as null, "", false, 0 or an empty list. Pure.
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include <nlohmann/json.hpp>

namespace ferry::coordinator::storage {

// The value at `path` (object keys; array indexes as "0", "1"...), or null.
inline const nlohmann::json& at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  static const nlohmann::json kNull;
  const nlohmann::json* cur = &j;
  for (const char* k : path) {
    if (cur->is_object()) {
      auto it = cur->find(k);
      if (it == cur->end()) return kNull;
      cur = &*it;
    } else if (cur->is_array()) {
      char* end = nullptr;
      unsigned long i = std::strtoul(k, &end, 10);
      if (end == k || *end || i >= cur->size()) return kNull;
      cur = &(*cur)[i];
    } else {
      return kNull;
    }
  }
  return *cur;
}
inline std::string str_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json& v = at(j, path);
  return v.is_string() ? v.get<std::string>() : "";
}
inline bool bool_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json& v = at(j, path);
  return v.is_boolean() && v.get<bool>();
}
inline const nlohmann::json& list_at(const nlohmann::json& j,
                                     std::initializer_list<const char*> path) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const nlohmann::json& v = at(j, path);
  return v.is_array() ? v : kEmpty;
}
inline uint64_t u64_at(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json& v = at(j, path);
  return v.is_number_unsigned() ? v.get<uint64_t>() : 0;
}

}  // namespace ferry::coordinator::storage
