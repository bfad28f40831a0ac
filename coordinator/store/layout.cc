#include "coordinator/store/layout.h"

namespace ferry::coordinator::store {

Json migration_summary(const Json& status) {
  Json s = Json::object();
  for (auto it = status.begin(); it != status.end(); ++it)
    if (it.key() != "vms") s[it.key()] = it.value();
  s["vmCount"] = status.contains("vms") && status["vms"].is_array() ? status["vms"].size() : 0;
  return s;
}

std::string vm_key(const std::string& resource_key, size_t index) {
  return resource_key + "/" + std::to_string(index);
}

bool parse_vm_key(const std::string& key, std::string* resource_key, size_t* index) {
  size_t slash = key.rfind('/');
  if (slash == std::string::npos || slash + 1 >= key.size() || slash == 0) return false;
  size_t n = 0;
  for (size_t i = slash + 1; i < key.size(); i++) {
    if (key[i] < '0' || key[i] > '9' || n > (SIZE_MAX - 9) / 10) return false;
    n = n * 10 + static_cast<size_t>(key[i] - '0');
  }
  *resource_key = key.substr(0, slash);
  *index = n;
  return true;
}

InventoryChunks split_inventory(const Json& inventory, uint64_t generation, size_t max_bytes) {
  InventoryChunks out;
  out.header = Json::object();
  Json cur = Json::object();
  size_t cur_bytes = 2;
  auto close = [&] {
    if (cur.empty()) return;
    out.chunks.push_back(cur.dump());
    cur = Json::object();
    cur_bytes = 2;
  };
  for (auto it = inventory.begin(); it != inventory.end(); ++it) {
    if (!it.value().is_array()) {
      out.header[it.key()] = it.value();
      continue;
    }
    out.header[it.key()] = Json::array();  // the list exists even when empty
    for (const auto& item : it.value()) {
      size_t n = item.dump().size() + 1;
      size_t extra = cur.contains(it.key()) ? 0 : it.key().size() + 5;
      if (cur_bytes + n + extra > max_bytes) close();
      if (!cur.contains(it.key())) {
        cur[it.key()] = Json::array();
        cur_bytes += it.key().size() + 5;
      }
      cur[it.key()].push_back(item);
      cur_bytes += n;
    }
  }
  close();
  out.header["generation"] = generation;
  out.header["chunks"] = out.chunks.size();
  return out;
}

std::string inventory_chunk_key(const std::string& header_key, uint64_t generation, size_t n) {
  return header_key + "/" + std::to_string(generation) + "/" + std::to_string(n);
}

bool join_inventory_chunk(Json& inventory, const std::string& chunk) {
  Json c = Json::parse(chunk, nullptr, false);
  if (!c.is_object()) return false;
  for (auto it = c.begin(); it != c.end(); ++it)
    if (!it.value().is_array()) return false;
  for (auto it = c.begin(); it != c.end(); ++it) {
    Json& dst = inventory[it.key()];
    if (!dst.is_array()) dst = Json::array();
    for (auto& item : it.value()) dst.push_back(std::move(item));
  }
  return true;
}

}  // namespace ferry::coordinator::store
