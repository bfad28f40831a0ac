#pragma once
// How the coordinator's state is laid out in key-value entries so that no
// entry grows with the size of a plan or a source (NATS' default payload limit
// is 1 MiB; etcd's object limit is 1.5 MiB):
//   - a Migration's status is a summary (everything but `vms`, plus `vmCount`)
//     under the resource's key, and each VM's status under `<key>/<index>`;
//   - an inventory is a header (its scalar fields, `generation`, `chunks`)
//     under `<ns>.<provider>`, and its lists in chunks of at most
//     kChunkBytes under `<ns>.<provider>/<generation>/<n>`. A new inventory is
//     written under a new generation before its header, so a reader never mixes two.
// Pure functions; any thread.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ferry::coordinator::store {

using Json = nlohmann::json;

inline constexpr size_t kChunkBytes = 256 * 1024;

// A Migration status without its VMs (and with vmCount).
Json migration_summary(const Json& status);
std::string vm_key(const std::string& resource_key, size_t index);
// Splits "<key>/<index>"; false for a key without a VM part.
bool parse_vm_key(const std::string& key, std::string* resource_key, size_t* index);

struct InventoryChunks {
  Json header;                      // scalars + generation + chunks
  std::vector<std::string> chunks;  // serialized {"<list>": [items...], ...}
};
// Splits an inventory object: every array member goes into chunks, in order.
InventoryChunks split_inventory(const Json& inventory, uint64_t generation,
                                size_t max_bytes = kChunkBytes);
std::string inventory_chunk_key(const std::string& header_key, uint64_t generation, size_t n);
// Appends one chunk's lists to `inventory` (which starts as the header).
// False if the chunk is not an object of arrays.
bool join_inventory_chunk(Json& inventory, const std::string& chunk);

}  // namespace ferry::coordinator::store
