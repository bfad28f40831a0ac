#pragma once
// Test seams of the copy engine. Not for production callers.
#include <functional>
#include <string>

#include "agent/transfer/copy.h"

namespace ferry::agent::transfer {

struct CopyTestHooks {
  // Runs after the target has been written and fsync'd, just before the
  // verification pass reads it back (used to corrupt the target behind the
  // engine's back and prove that verification notices).
  std::function<void(const std::string& target)> before_verify;
};

Result<CopyStats> copy_disk_with_hooks(const SourceSpec& src, const std::string& target,
                                       const CopyOptions& opts, const CopyTestHooks& hooks);

}  // namespace ferry::agent::transfer
