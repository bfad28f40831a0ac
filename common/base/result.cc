#include "common/base/result.h"

namespace ferry {

const char* error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return "ok";
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kAlreadyExists:
      return "already_exists";
    case ErrorCode::kFailedPrecondition:
      return "failed_precondition";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kPermissionDenied:
      return "permission_denied";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kNoSpace:
      return "no_space";
    case ErrorCode::kCanceled:
      return "canceled";
    case ErrorCode::kTimeout:
      return "timeout";
    case ErrorCode::kDataMismatch:
      return "data_mismatch";
    case ErrorCode::kInternal:
      return "internal";
  }
  return "unknown";
}

}  // namespace ferry
