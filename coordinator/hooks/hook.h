#pragma once
// A Hook resource read for running: its image, its playbook decoded, its
// deadline. Pure; unit-tested. MTV's rules: the default image is hook-runner;
// a playbook needs the hook-runner image; a custom image needs no playbook.
#include <cstdint>
#include <string>

#include "common/base/result.h"
#include "common/model/resource.h"

namespace ferry::coordinator::hooks {

inline constexpr const char* kHookRunnerImage = "quay.io/konveyor/hook-runner";
// Forklift retries a failed hook Job this many times in all.
inline constexpr int kHookAttempts = 3;

struct Hook {
  model::ResourceKey key;
  std::string image;             // as given, else kHookRunnerImage
  std::string playbook;          // the decoded YAML; "" for an image-only hook
  int64_t deadline_seconds = 0;  // every attempt together; 0: none (as MTV)
  std::string service_account;
};

// Whether `image` is (a tag or digest of) hook-runner.
bool is_hook_runner(const std::string& image);

// Reads a Hook. An error (HookNotValid's message) names the Hook and the
// field: a playbook that is not base64, not YAML, or not a list of plays; a
// playbook with another image; hook-runner without a playbook.
Result<Hook> parse_hook(const model::Resource& r);

}  // namespace ferry::coordinator::hooks
