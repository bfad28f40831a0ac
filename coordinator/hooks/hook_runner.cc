#include "coordinator/hooks/hook_runner.h"

#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/base/log.h"
#include "common/process/process.h"

namespace ferry::coordinator::hooks {
namespace {

namespace fs = std::filesystem;
const Logger kLog("hooks");

// ansible-playbook's path, or "" if it is not installed.
std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  for (size_t start = 0; start <= p.size();) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string cand = p.substr(start, end - start) + "/" + name;
    if (end > start && access(cand.c_str(), X_OK) == 0) return cand;
    start = end + 1;
  }
  return "";
}

bool write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

// A job id as one directory name.
std::string dir_name(const std::string& id) {
  std::string s;
  for (char c : id)
    s += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return s;
}

}  // namespace

HookRunner::HookRunner(Options o) : opts_(std::move(o)) {}

HookRunner::~HookRunner() {
  std::map<std::string, Run> runs;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, r] : runs_) *r.cancel = true;
    runs.swap(runs_);
  }
  for (auto& [id, r] : runs)
    if (r.thread.joinable()) r.thread.join();
}

std::string HookRunner::dir_of(const std::string& id) const {
  return (fs::path(opts_.work_root) / dir_name(id)).string();
}

void HookRunner::reap_locked() {
  for (auto it = runs_.begin(); it != runs_.end();)
    if (*it->second.finished) {
      it->second.thread.join();  // finished: returns at once
      it = runs_.erase(it);
    } else {
      ++it;
    }
}

bool HookRunner::start(HookJob job, std::function<void(HookResult)> done) {
  std::lock_guard<std::mutex> lock(mu_);
  reap_locked();
  if (runs_.count(job.id)) return false;
  Run& r = runs_[job.id];
  r.cancel = std::make_shared<std::atomic<bool>>(false);
  r.finished = std::make_shared<std::atomic<bool>>(false);
  r.thread = std::thread([this, job = std::move(job), done = std::move(done), cancel = r.cancel,
                          finished = r.finished] {
    HookResult res = execute(job, *cancel);
    done(std::move(res));
    *finished = true;
  });
  return true;
}

void HookRunner::cancel(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find(id);
  if (it != runs_.end()) *it->second.cancel = true;
}

bool HookRunner::running(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find(id);
  return it != runs_.end() && !*it->second.finished;
}

HookResult HookRunner::execute_job(const HookJob& job, const std::atomic<bool>& cancel) {
  using Clock = std::chrono::steady_clock;
  using Json = kube::Json;
  HookResult res;
  const auto started = Clock::now();
  auto finish = [&]() -> HookResult {
    res.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return res;
  };
  const KubeHookJob& k = *job.kube;
  const kube::Client& api = *opts_.kube;
  const std::string what = "hook Job " + k.ns + "/" + k.name;
  const std::string job_path = kube::path_of("batch/v1", "jobs", k.ns, k.name);
  const std::string cm_path = kube::path_of("v1", "configmaps", k.ns, k.name);
  Json labels = Json::object();
  for (const auto& [key, v] : k.labels) labels[key] = v;
  labels["app.kubernetes.io/managed-by"] = "ferry";
  Json pod = {{"restartPolicy", "Never"},
              {"containers",
               Json::array({{{"name", "hook"},
                             {"image", k.image},
                             {"volumeMounts",
                              Json::array({{{"name", "hook"}, {"mountPath", "/tmp/hook"}}})}}})},
              {"volumes", Json::array({{{"name", "hook"}, {"configMap", {{"name", k.name}}}}})}};
  if (!k.service_account.empty()) pod["serviceAccountName"] = k.service_account;
  Json spec = {{"backoffLimit", std::max(0, job.attempts - 1)},
               {"template", {{"metadata", {{"labels", labels}}}, {"spec", pod}}}};
  if (job.deadline_seconds > 0) spec["activeDeadlineSeconds"] = job.deadline_seconds;
  Json body = {{"apiVersion", "batch/v1"},
               {"kind", "Job"},
               {"metadata", {{"name", k.name}, {"namespace", k.ns}, {"labels", labels}}},
               {"spec", spec}};
  // A Job of this name is this run's (a restarted coordinator follows it).
  auto made = api.request("POST", kube::path_of("batch/v1", "jobs", k.ns), &body);
  if (!made.ok()) {
    res.message = "creating " + what + ": " + made.error().message;
    return finish();
  }
  Json created;
  if (made->code == 409) {
    auto got = api.get(job_path);
    if (!got.ok() || !got->ok()) {
      res.message = "reading " + what + ": " + (got.ok() ? got->message() : got.error().message);
      return finish();
    }
    created = got->body;
  } else if (!made->ok()) {
    res.message = "creating " + what + ": " + made->message();
    return finish();
  } else {
    created = made->body;
  }
  // The inputs, owned by the Job so that they go with it.
  Json data = {{"plan.yml", job.plan_yaml}, {"workload.yml", job.workload_yaml}};
  if (!job.playbook.empty()) data["playbook.yml"] = job.playbook;
  Json cm = {
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata",
       {{"name", k.name},
        {"namespace", k.ns},
        {"labels", labels},
        {"ownerReferences", Json::array({{{"apiVersion", "batch/v1"},
                                          {"kind", "Job"},
                                          {"name", k.name},
                                          {"uid", created["metadata"].value("uid", "")}}})}}},
      {"data", data}};
  auto cm_made = api.request("POST", kube::path_of("v1", "configmaps", k.ns), &cm);
  if (!cm_made.ok() || (!cm_made->ok() && cm_made->code != 409)) {
    res.message = "creating the ConfigMap of " + what + ": " +
                  (cm_made.ok() ? cm_made->message() : cm_made.error().message);
    Json opts = {{"propagationPolicy", "Background"}};
    (void)api.request("DELETE", job_path, &opts);
    return finish();
  }
  kLog.info("hook Job created", {{"hook", job.id}, {"job", k.ns + "/" + k.name}});
  auto remove = [&] {
    Json opts = {{"propagationPolicy", "Background"}};  // its pods and ConfigMap too
    auto d = api.request("DELETE", job_path, &opts);
    if (!d.ok() || (!d->ok() && d->code != 404))
      kLog.warn("hook Job not deleted", {{"job", k.ns + "/" + k.name},
                                         {"error", d.ok() ? d->message() : d.error().message}});
    (void)api.request("DELETE", cm_path);
  };
  std::string last_error;
  while (true) {
    if (cancel) {
      remove();
      res.canceled = true;
      res.message = "canceled while running; " + what + " deleted";
      return finish();
    }
    auto got = api.get(job_path);
    if (got.ok() && got->code == 404) {
      res.message = what + " was deleted before it ended";
      return finish();
    }
    if (!got.ok() || !got->ok()) {  // the API server is away: keep waiting
      std::string e = got.ok() ? got->message() : got.error().message;
      if (e != last_error) kLog.warn("hook Job not readable", {{"job", k.name}, {"error", e}});
      last_error = e;
    } else {
      const Json& st = got->body.value("status", Json::object());
      res.attempts = st.value("failed", 0) + st.value("succeeded", 0) + st.value("active", 0);
      for (const auto& c : st.value("conditions", Json::array())) {
        if (c.value("status", "") != "True") continue;
        std::string type = c.value("type", "");
        if (type == "Complete") {
          res.succeeded = true;
          res.attempts = std::max(1, st.value("failed", 0) + 1);
          res.tail = {what + " completed"};
          return finish();
        }
        if (type == "Failed") {
          std::string reason = c.value("reason", "");
          res.timed_out = reason == "DeadlineExceeded";
          res.attempts = std::max(1, st.value("failed", 0));
          res.message = what + " failed: " + reason +
                        (c.value("message", "").empty() ? "" : ": " + c.value("message", ""));
          res.tail = {res.message};
          return finish();
        }
      }
    }
    std::this_thread::sleep_for(opts_.job_poll);
  }
}

HookResult HookRunner::execute(const HookJob& job, const std::atomic<bool>& cancel) {
  using Clock = std::chrono::steady_clock;
  if (job.kube) {
    if (opts_.kube) return execute_job(job, cancel);
    HookResult res;
    res.message = "a Job hook needs cluster mode";
    return res;
  }
  HookResult res;
  const auto started = Clock::now();
  auto finish = [&]() -> HookResult {
    res.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return res;
  };
  const fs::path dir = dir_of(job.id);
  const fs::path inputs = dir / "hook";
  std::error_code ec;
  fs::remove_all(dir, ec);  // an earlier run of the same hook (a retry after a restart)
  fs::create_directories(inputs, ec);
  if (ec || !write_file(inputs / "playbook.yml", job.playbook) ||
      !write_file(inputs / "plan.yml", job.plan_yaml) ||
      !write_file(inputs / "workload.yml", job.workload_yaml)) {
    res.message = "cannot write the hook's inputs in " + inputs.string();
    return finish();
  }
  res.log_path = (dir / "output.log").string();
  const std::string ansible = find_program(opts_.ansible_playbook);
  if (ansible.empty()) {
    res.message = opts_.ansible_playbook +
                  " is not installed where the coordinator runs (ansible-core; tools/install-deps "
                  "installs it)";
    return finish();
  }
  uint64_t logged = 0;
  for (int attempt = 1; attempt <= std::max(1, job.attempts); attempt++) {
    res.attempts = attempt;
    process::ProcessSpec ps;
    // A private /tmp/hook: the inputs where hook-runner puts them, per run.
    ps.argv = {"unshare",
               "--user",
               "--map-root-user",
               "--mount",
               "--propagation",
               "private",
               "/bin/sh",
               "-c",
               "mkdir -p /tmp/hook && mount --bind \"$0\" /tmp/hook && cd /tmp/hook && "
               "exec \"$1\" playbook.yml",
               inputs.string(),
               ansible};
    ps.env = {"ANSIBLE_HOME=/tmp/hook/.ansible",
              "ANSIBLE_LOCAL_TEMP=/tmp/hook/.ansible/tmp",
              "ANSIBLE_REMOTE_TEMP=/tmp/hook/.ansible/tmp",
              "ANSIBLE_NOCOLOR=1",
              "ANSIBLE_FORCE_COLOR=0",
              "ANSIBLE_RETRY_FILES_ENABLED=0",
              "ANSIBLE_LOCALHOST_WARNING=0",
              "ANSIBLE_INVENTORY_UNPARSED_WARNING=0",
              "PYTHONUNBUFFERED=1"};
    ps.cancel = &cancel;
    ps.tail_lines = opts_.tail_lines;
    ps.log_path = res.log_path;
    {
      std::ofstream(res.log_path, std::ios::app)
          << "=== attempt " << attempt << " of " << job.attempts << " ===\n";
    }
    ps.log_limit_bytes = logged < opts_.log_limit_bytes ? opts_.log_limit_bytes - logged : 1;
    if (job.deadline_seconds > 0) {
      auto left = std::chrono::seconds(job.deadline_seconds) - (Clock::now() - started);
      if (left <= Clock::duration::zero()) {
        res.timed_out = true;
        res.message =
            "did not finish within its deadline of " + std::to_string(job.deadline_seconds) + " s";
        return finish();
      }
      ps.time_limit = std::chrono::duration_cast<std::chrono::milliseconds>(left);
    }
    auto out = process::run_process(ps);
    std::error_code sec;
    logged = fs::file_size(res.log_path, sec);
    if (!out.ok()) {
      res.message = "cannot run " + ansible + ": " + out.error().message;
      return finish();
    }
    res.tail.assign(out->tail.begin(), out->tail.end());
    if (out->canceled) {
      res.canceled = true;
      res.message = "canceled while running";
      return finish();
    }
    if (out->timed_out) {
      res.timed_out = true;
      res.message = "killed at its deadline of " + std::to_string(job.deadline_seconds) +
                    " s (attempt " + std::to_string(attempt) + ")";
      return finish();
    }
    if (out->exited && out->exit_code == 0) {
      res.succeeded = true;
      res.message.clear();
      return finish();
    }
    res.message = out->exited
                      ? "ansible-playbook exited with status " + std::to_string(out->exit_code)
                      : "ansible-playbook was killed by signal " + std::to_string(out->term_signal);
    if (out->log_cut) res.message += "; its output passed the log limit and was cut";
    kLog.warn("hook attempt failed",
              {{"hook", job.id}, {"attempt", std::to_string(attempt)}, {"error", res.message}});
  }
  res.message += " (" + std::to_string(res.attempts) + " attempts)";
  return finish();
}

}  // namespace ferry::coordinator::hooks
