// The PreHook and PostHook phases: a VM's hook runs through the HookRunner
// (coordinator/hooks), off the loop; its end comes back here, on the loop.
#include <algorithm>
#include <cctype>
#include <cstdio>

#include "common/base/clock.h"
#include "common/base/log.h"
#include "coordinator/hooks/hook.h"
#include "coordinator/runner/migration_runner.h"

namespace ferry::coordinator::runner {
namespace {

using model::Json;
using status::TaskState;
using status::VmStatus;

const Logger kLog("coordinator");

// hook-runner's workload.yml: the VM as the source inventory has it, with its
// first IP address as `ipAddress` (what playbooks connect to).
Json workload_of(const Json& inv_vm) {
  Json vm = inv_vm;
  if (!vm.contains("ipAddress"))
    for (const auto& nic : inv_vm.value("nics", Json::array()))
      for (const auto& ip : nic.value("ips", Json::array()))
        if (!vm.contains("ipAddress") && ip.is_object() && !ip.value("ip", "").empty() &&
            ip.value("ip", "").find(':') == std::string::npos)
          vm["ipAddress"] = ip.value("ip", "");
  return {{"vm", vm}};
}

// A hook run's Job name: DNS-1123, under 63 characters, the same for the
// same run (a restarted coordinator finds its Job again).
std::string job_name(const std::string& run_id, int run) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : run_id) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  std::string step = run_id.substr(run_id.rfind('/') + 1);
  for (auto& c : step) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return "ferry-" + step + "-" + hex + "-" + std::to_string(run);
}

}  // namespace

std::string MigrationRunner::hook_run_id(const ResourceKey& mkey, const std::string& vm_id,
                                         const std::string& hook_step) {
  return mkey.ns + "/" + mkey.name + "/" + vm_id + "/" + hook_step;
}

void MigrationRunner::stop_hooks(const ResourceKey& mkey, VmStatus& vm) {
  for (auto& [hook_step, h] : vm.hooks) {
    if (hooks_) hooks_->cancel(hook_run_id(mkey, vm.id, hook_step));
    if (h.state == TaskState::kRunning) h.state = TaskState::kCanceled;
  }
}

bool MigrationRunner::hook_finished(const ResourceKey& mkey, VmStatus& vm,
                                    const std::string& hook_step, const Resource& plan,
                                    const Json& inv_vm) {
  auto found = vm.hooks.find(hook_step);
  if (found == vm.hooks.end()) return true;
  status::HookStatus& h = found->second;
  if (h.state == TaskState::kCompleted) return true;
  const std::string vm_id = vm.id;
  const std::string run_id = hook_run_id(mkey, vm_id, hook_step);
  if (!hooks_ || hooks_->running(run_id)) return false;  // its end calls advance()
  ResourceKey hk{"Hook", h.hook.ns.empty() ? plan.key().ns : h.hook.ns, h.hook.name};
  const Resource* r = find(hk);
  if (!r) {
    fail_vm(mkey, vm_id,
            hook_step + " hook: " + hk.to_string() + " not found (deleted while " +
                plan.key().to_string() + " uses it)");
    return false;
  }
  auto parsed = hooks::parse_hook(*r);
  if (!parsed.ok()) {
    fail_vm(mkey, vm_id, hook_step + " hook: " + parsed.error().message);
    return false;
  }
  if (parsed->playbook.empty() && !opts_.kubernetes) {  // validation refuses these locally
    fail_vm(mkey, vm_id,
            hook_step + " hook: " + hk.to_string() + ": spec.image \"" + parsed->image +
                "\" without a playbook cannot run here");
    return false;
  }
  hooks::HookJob job;
  job.id = run_id;
  job.playbook = parsed->playbook;
  Json plan_doc = plan.doc;
  if (status_.count(plan.key())) plan_doc["status"] = status_[plan.key()];
  job.plan_yaml = model::to_yaml(plan_doc);
  job.workload_yaml = model::to_yaml(workload_of(inv_vm));
  job.deadline_seconds = parsed->deadline_seconds;
  job.attempts = hooks::kHookAttempts;
  // A fresh start (not the same run followed again after a restart) is a
  // new run: in cluster mode, a Job of its own.
  if (h.state != TaskState::kRunning) h.runs++;
  if (opts_.kubernetes) {
    hooks::KubeHookJob k;
    k.ns = plan.spec().value("targetNamespace", plan.key().ns);
    k.name = job_name(run_id, std::max(h.runs, 1));
    k.image = parsed->image;
    k.service_account = parsed->service_account;
    // Forklift's labels: the Migration's and Plan's uids, as on the VM's PVCs.
    k.labels = {{"migration", store_->uid(mkey)},
                {"plan", store_->uid(plan.key())},
                {"vmID", vm_id},
                {"step", hook_step}};
    job.kube = k;
  }
  h.state = TaskState::kRunning;
  h.started = now_iso();
  h.message.clear();
  save_status(mkey);
  kLog.info("hook started", {{"migration", mkey.to_string()},
                             {"vm", vm.name},
                             {"step", hook_step},
                             {"hook", hk.to_string()}});
  hooks_->start(std::move(job), [this, mkey, vm_id, hook_step](hooks::HookResult res) {
    loop_.post([this, mkey, vm_id, hook_step, res = std::move(res)] {
      on_hook_result(mkey, vm_id, hook_step, res);
    });
  });
  return false;
}

void MigrationRunner::on_hook_result(const ResourceKey& mkey, const std::string& vm_id,
                                     const std::string& hook_step, const hooks::HookResult& r) {
  VmStatus* vm = vm_status(mkey, vm_id);
  // Canceled or failed meanwhile: that VM's state already says so.
  if (!vm || vm->terminal() || vm->phase != hook_step || !vm->hooks.count(hook_step)) return;
  status::HookStatus& h = vm->hooks[hook_step];
  h.attempts = r.attempts;
  h.seconds = r.seconds;
  h.log = r.log_path;
  std::vector<std::string> output;
  for (const auto& line : r.tail) output.push_back(line.substr(0, 400));
  if (auto* s = vm->step(hook_step)) s->output = output;
  ResourceKey hk{"Hook", h.hook.ns.empty() ? mkey.ns : h.hook.ns, h.hook.name};
  std::string hook = hk.ns + "/" + hk.name;
  if (r.succeeded) {
    h.state = TaskState::kCompleted;
    kLog.info("hook succeeded", {{"migration", mkey.to_string()},
                                 {"vm", vm->name},
                                 {"step", hook_step},
                                 {"hook", hook},
                                 {"attempts", std::to_string(r.attempts)}});
    save_status(mkey);
    return advance(mkey, vm_id);
  }
  h.state = r.canceled ? TaskState::kCanceled : TaskState::kFailed;
  h.message = r.message;
  std::string why = hook_step + " hook " + hook + ": " + r.message;
  // The playbook's last words, usually its failing task.
  for (auto it = r.tail.rbegin(); it != r.tail.rend(); ++it)
    if (it->find("fatal:") != std::string::npos || it->find("FAILED") != std::string::npos ||
        it->find("ERROR") != std::string::npos) {
      why += ": " + it->substr(0, 400);
      break;
    }
  fail_vm(mkey, vm_id, why);
}

}  // namespace ferry::coordinator::runner
