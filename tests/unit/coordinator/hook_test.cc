// Hooks read for running (coordinator/hooks/hook.h) and checked on a Plan
// (HookNotValid, HookStepNotValid), as MTV's rules have them.
#include <catch2/catch.hpp>

#include <map>

#include "coordinator/hooks/hook.h"
#include "coordinator/validation/plan_validation.h"

using namespace ferry;
using namespace ferry::coordinator;
using model::Json;
using model::Resource;
using model::ResourceKey;

namespace {

Resource hook(Json spec) {
  return Resource{{{"apiVersion", "forklift.konveyor.io/v1beta1"},
                   {"kind", "Hook"},
                   {"metadata", {{"name", "h"}, {"namespace", "ns"}}},
                   {"spec", spec}}};
}

const std::string kPlaybook = "- hosts: localhost\n  tasks: []\n";

}  // namespace

TEST_CASE("a Hook's playbook is decoded and MTV's image rules hold", "[hooks]") {
  auto ok = hooks::parse_hook(hook({{"playbook", model::base64_encode(kPlaybook)}}));
  REQUIRE(ok.ok());
  CHECK(ok->image == hooks::kHookRunnerImage);
  CHECK(ok->playbook == kPlaybook);
  CHECK(ok->deadline_seconds == 0);
  // A tagged hook-runner, and one from a mirror, are hook-runner too.
  for (const char* img : {"quay.io/konveyor/hook-runner:latest",
                          "registry.example.com:5000/mirror/hook-runner@sha256:abc"}) {
    CHECK(hooks::is_hook_runner(img));
    CHECK(hooks::parse_hook(hook({{"image", img}, {"playbook", model::base64_encode(kPlaybook)}}))
              .ok());
  }
  CHECK_FALSE(hooks::is_hook_runner("quay.io/acme/not-hook-runner:1"));
  // A custom image needs no playbook.
  auto image = hooks::parse_hook(hook({{"image", "quay.io/acme/tool:1"}, {"deadline", 30}}));
  REQUIRE(image.ok());
  CHECK(image->playbook.empty());
  CHECK(image->deadline_seconds == 30);
}

TEST_CASE("a Hook that cannot run is an error naming the Hook and the field", "[hooks]") {
  auto err = [](Json spec) {
    auto r = hooks::parse_hook(hook(spec));
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  CHECK(err({{"playbook", "not base64!"}}) == "Hook ns/h: spec.playbook: is not base64");
  CHECK(err({{"playbook", model::base64_encode("- hosts: [\n")}})
            .rfind("Hook ns/h: spec.playbook: is not YAML: line ", 0) == 0);
  CHECK(err({{"playbook", model::base64_encode("hosts: localhost\n")}}) ==
        "Hook ns/h: spec.playbook: is not an Ansible playbook (a YAML list of plays)");
  CHECK(err({{"playbook", model::base64_encode("- just a string\n")}}) ==
        "Hook ns/h: spec.playbook: play 1 is not a YAML mapping");
  CHECK(err({{"image", "quay.io/acme/tool:1"}, {"playbook", model::base64_encode(kPlaybook)}})
            .find("spec.image: \"quay.io/acme/tool:1\": a playbook runs only with the "
                  "hook-runner image") != std::string::npos);
  CHECK(err(Json::object()) == "Hook ns/h: spec.playbook: the hook-runner image needs a playbook");
  CHECK(err({{"playbook", model::base64_encode(kPlaybook)}, {"deadline", -1}}) ==
        "Hook ns/h: spec.deadline: must be a whole number of seconds, 0 or more");
}

TEST_CASE("a Plan's hooks are checked: one per step, each an existing Hook that can run",
          "[hooks]") {
  std::map<ResourceKey, Resource> res;
  auto put = [&](Resource r) { res[r.key()] = r; };
  put(hook({{"playbook", model::base64_encode(kPlaybook)}}));
  Resource image = hook({{"image", "quay.io/acme/tool:1"}});
  image.doc["metadata"]["name"] = "img";
  put(image);
  validation::Context ctx;
  ctx.find = [&](const ResourceKey& k) -> const Resource* {
    auto it = res.find(k);
    return it == res.end() ? nullptr : &it->second;
  };
  ctx.inventory = [](const ResourceKey&) -> const Json* { return nullptr; };
  auto check = [&](Json hooks_list) {
    Resource plan{{{"kind", "Plan"},
                   {"metadata", {{"name", "p"}, {"namespace", "ns"}}},
                   {"spec",
                    {{"provider", {{"source", {{"name", "vs"}}}, {"destination", {{"name", "h"}}}}},
                     {"map", {{"network", {{"name", "n"}}}, {"storage", {{"name", "s"}}}}},
                     {"vms", {{{"name", "web"}, {"hooks", hooks_list}}}}}}}};
    std::map<std::string, std::string> by_type;
    for (const auto& c : validation::validate_plan(plan, ctx).conditions)
      if (c.type.rfind("Hook", 0) == 0) by_type[c.type] = c.message;
    return by_type;
  };
  auto ref = [](const char* name, const char* step) {
    return Json{{"hook", {{"name", name}}}, {"step", step}};
  };
  CHECK(check(Json::array({ref("h", "PreHook"), ref("h", "PostHook")})).empty());
  auto two = check(Json::array({ref("h", "PreHook"), ref("h", "PreHook")}));
  REQUIRE(two.count("HookStepNotValid"));
  CHECK(two["HookStepNotValid"].find("spec.vms[0].hooks[1].step: a second PreHook hook (also "
                                     "spec.vms[0].hooks[0])") != std::string::npos);
  auto missing = check(Json::array({ref("nope", "PostHook")}));
  REQUIRE(missing.count("HookNotValid"));
  CHECK(missing["HookNotValid"].find("spec.vms[0].hooks[0].hook: Hook ns/nope not found") !=
        std::string::npos);
  // An image-only hook runs only where Jobs can (cluster mode).
  auto img = check(Json::array({ref("img", "PreHook")}));
  REQUIRE(img.count("HookNotValid"));
  CHECK(img["HookNotValid"].find("needs a container runtime") != std::string::npos);
  ctx.image_hooks = true;
  CHECK(check(Json::array({ref("img", "PreHook")})).empty());
}
