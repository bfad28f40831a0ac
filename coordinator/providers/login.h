#pragma once
// The part of a Provider's Secret every source logs in with, under MTV's
// keys: user, password, insecureSkipVerify. Each provider reads its own
// certificate key (vSphere: thumbprint, oVirt: cacert).
#include <string>

#include "common/base/result.h"
#include "common/model/resource.h"

namespace ferry::coordinator {

struct SourceLogin {
  std::string secret_name;  // "Secret ns/name", for messages
  std::string user, password;
  bool insecure_skip_verify = false;
};

// Errors name the resource and field: the Provider's spec.secret when the
// Secret is missing (null), the Secret's user or password when empty.
Result<SourceLogin> read_login(const model::Resource& provider, const model::Json& secret);

}  // namespace ferry::coordinator
