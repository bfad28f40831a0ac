// libFuzzer target: the YAML/JSON manifest decoder and its structural checks
// (what `ferryctl validate` and the coordinator's apply run on user files).
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/model/resource.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = ferry::model::decode_documents(text, "fuzz.yaml");
  for (const auto& e : r.errors)
    if (e.to_string().empty()) __builtin_trap();
  for (const auto& res : r.resources) (void)res.key();
  return 0;
}
