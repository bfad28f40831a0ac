// libFuzzer target: a vCenter's SOAP response, as the vSphere provider reads it
// (faults, then RetrievePropertiesEx objects and their properties).
#include <cstddef>
#include <cstdint>
#include <string>

#include "coordinator/providers/vsphere/vim_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::coordinator::vsphere;
  std::string body(reinterpret_cast<const char*>(data), size);
  auto doc = parse_soap_response("RetrievePropertiesEx", "https://vcenter.example/sdk", body, 200);
  if (!doc.ok()) return 0;
  PropertyResult out;
  collect_objects(find_local(**doc, "returnval"), out);
  for (const auto& o : out.objects)
    for (const auto& [name, val] : o.props) {
      (void)mor_of(val);
      (void)xsi_type(val);
      (void)val.text().as_llong();
    }
  return 0;
}
