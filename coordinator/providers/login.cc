#include "coordinator/providers/login.h"

namespace ferry::coordinator {

Result<SourceLogin> read_login(const model::Resource& provider, const model::Json& secret) {
  auto key = provider.key();
  auto sref =
      model::ref_key(provider.spec().value("secret", model::Json::object()), "Secret", key.ns);
  SourceLogin l;
  l.secret_name = "Secret " + sref.ns + "/" + sref.name;
  if (secret.is_null())
    return Error(ErrorCode::kNotFound,
                 key.to_string() + ": spec.secret: " + l.secret_name + " not found");
  l.user = model::secret_value(secret, "user");
  l.password = model::secret_value(secret, "password");
  if (l.user.empty())
    return Error(ErrorCode::kInvalidArgument, l.secret_name + ": user: is required");
  if (l.password.empty())
    return Error(ErrorCode::kInvalidArgument, l.secret_name + ": password: is required");
  std::string insecure = model::secret_value(secret, "insecureSkipVerify");
  l.insecure_skip_verify = insecure == "true" || insecure == "True" || insecure == "1";
  return l;
}

}  // namespace ferry::coordinator
