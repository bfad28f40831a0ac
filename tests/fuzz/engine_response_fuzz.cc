// libFuzzer target: an oVirt engine's JSON answers, as the oVirt provider reads
// them (collections into the neutral inventory with its concerns, faults).
#include <cstddef>
#include <cstdint>
#include <string>

#include "coordinator/providers/ovirt/engine_client.h"
#include "coordinator/providers/ovirt/inventory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::coordinator::ovirt;
  std::string body(reinterpret_cast<const char*>(data), size);
  Json j = Json::parse(body, nullptr, false);
  if (j.is_discarded()) return 0;
  EngineReply r{409, j};
  (void)r.fault();
  // The same answer as every collection at once, and as the VMs alone.
  EngineCollections all{j, j, j, j, j, j, j, j};
  (void)to_inventory(all);
  EngineCollections vms;
  vms.vms = j;
  vms.disks = j;
  (void)to_inventory(vms);
  for (const char* k : {"id", "phase", "transfer_url", "status"}) (void)as_str(field(j, k));
  return 0;
}
