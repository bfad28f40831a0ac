#pragma once
// Writing a whole file so that a crash leaves either the old or the new one:
// a temporary file next to it, fsync, rename over it, fsync of the directory.
// Errors name the file; ENOSPC is kNoSpace.
#include <sys/types.h>
#include <string>

#include "common/base/result.h"

namespace ferry {

Status write_file_atomic(const std::string& path, const std::string& data, mode_t mode = 0644);

}  // namespace ferry
