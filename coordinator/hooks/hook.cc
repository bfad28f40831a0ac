#include "coordinator/hooks/hook.h"

#include <yaml-cpp/yaml.h>

namespace ferry::coordinator::hooks {

bool is_hook_runner(const std::string& image) {
  std::string repo = image.substr(0, image.find('@'));
  size_t slash = repo.rfind('/');
  size_t colon = repo.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash))
    repo = repo.substr(0, colon);
  return repo == kHookRunnerImage || repo == "hook-runner" ||
         (repo.size() > 12 && repo.compare(repo.size() - 12, 12, "/hook-runner") == 0);
}

Result<Hook> parse_hook(const model::Resource& r) {
  Hook h;
  h.key = r.key();
  const std::string who = h.key.to_string();
  const model::Json& spec = r.spec();
  auto bad = [&](const std::string& field, const std::string& why) {
    return Error(ErrorCode::kInvalidArgument, who + ": " + field + ": " + why);
  };
  if (!spec.is_object()) return bad("spec", "missing");
  h.image = spec.value("image", "");
  if (h.image.empty()) h.image = kHookRunnerImage;
  if (spec.contains("deadline")) {
    if (!spec["deadline"].is_number_integer() || spec["deadline"].get<int64_t>() < 0)
      return bad("spec.deadline", "must be a whole number of seconds, 0 or more");
    h.deadline_seconds = spec["deadline"].get<int64_t>();
  }
  h.service_account = spec.value("serviceAccount", "");
  std::string encoded = spec.value("playbook", "");
  if (encoded.empty()) {
    if (is_hook_runner(h.image))
      return bad("spec.playbook", "the hook-runner image needs a playbook");
    return h;
  }
  if (!is_hook_runner(h.image))
    return bad("spec.image", "\"" + h.image +
                                 "\": a playbook runs only with the hook-runner image (" +
                                 kHookRunnerImage + "); drop spec.image or the playbook");
  bool ok = true;
  h.playbook = model::base64_decode(encoded, &ok);
  if (!ok) return bad("spec.playbook", "is not base64");
  try {
    YAML::Node plays = YAML::Load(h.playbook);
    if (!plays.IsSequence() || plays.size() == 0)
      return bad("spec.playbook", "is not an Ansible playbook (a YAML list of plays)");
    for (size_t i = 0; i < plays.size(); i++)
      if (!plays[i].IsMap())
        return bad("spec.playbook", "play " + std::to_string(i + 1) + " is not a YAML mapping");
  } catch (const YAML::Exception& e) {
    return bad("spec.playbook",
               "is not YAML: line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
  return h;
}

}  // namespace ferry::coordinator::hooks
