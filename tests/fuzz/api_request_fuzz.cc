// libFuzzer target: the coordinator's API request decoder. The first byte picks
// the verb, the rest is the body. Decoding must never throw or crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "coordinator/api/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ferry::coordinator;
  if (size == 0) return 0;
  const auto& verbs = api::verbs();
  std::string verb = data[0] < verbs.size() * 8 ? verbs[data[0] % verbs.size()] : "unknown";
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto r = api::decode(verb, body);
  if (auto* e = std::get_if<api::RequestError>(&r))
    if (e->error.message.empty()) __builtin_trap();  // every refusal says why
  return 0;
}
