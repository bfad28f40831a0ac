// Hooks: a Plan VM's PreHook and PostHook run their Hook's playbook with the
// real ansible-playbook, with hook-runner's inputs at /tmp/hook.
#include <catch2/catch.hpp>

#include <dirent.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "common/model/resource.h"
#include "tests/integration/migration/cluster.h"

using namespace ferry;
using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// The seed manual's example Hook playbook, base64 exactly as printed there.
const char* kSeedPlaybook =
    R"(    LS0tCi0gbmFtZTogTWFpbgogIGhvc3RzOiBsb2NhbGhvc3QKICB0YXNrczoKICAtIG5hbWU6IExv
    YWQgUGxhbgogICAgaW5jbHVkZV92YXJzOgogICAgICBmaWxlOiAiL3RtcC9ob29rL3BsYW4ueW1s
    IgogICAgICBuYW1lOiBwbGFuCiAgLSBuYW1lOiBMb2FkIFdvcmtsb2FkCiAgICBpbmNsdWRlX3Zh
    cnM6CiAgICAgIGZpbGU6ICIvdG1wL2hvb2svd29ya2xvYWQueW1sIgogICAgICBuYW1lOiB3b3Jr
    bG9hZAoK
)";

std::string hook_yaml(const std::string& name, const std::string& playbook_b64, int deadline = 0) {
  std::string y = "apiVersion: forklift.konveyor.io/v1beta1\nkind: Hook\nmetadata: {name: " + name +
                  ", namespace: openshift-mtv}\nspec:\n  image: quay.io/konveyor/hook-runner\n";
  if (deadline > 0) y += "  deadline: " + std::to_string(deadline) + "\n";
  return y + "  playbook: |\n" + playbook_b64;
}

std::string hook_of(const std::string& name, const std::string& playbook, int deadline = 0) {
  std::string b64 = model::base64_encode(playbook);
  return hook_yaml(name, "    " + b64 + "\n", deadline);
}

// Adds `hooks` (YAML lines at the VM entry's indentation) to VM `vm` of the
// manifests at `path`, and appends `extra` documents.
void add_hooks(const std::string& path, const std::string& vm, const std::string& hooks,
               const std::string& extra) {
  std::string y = read_file(path);
  std::string entry = "    - name: " + vm + "\n";
  auto at = y.find(entry);
  REQUIRE(at != std::string::npos);
  y.insert(at + entry.size(), "      hooks:\n" + hooks);
  std::ofstream(path, std::ios::trunc) << y << "---\n" << extra;
}

// Processes whose command line holds `marker`.
int processes_with(const std::string& marker) {
  int n = 0;
  DIR* d = opendir("/proc");
  while (dirent* e = d ? readdir(d) : nullptr) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    // A process may end between readdir and open: then it reads as empty.
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto& ch : cmd)
      if (ch == '\0') ch = ' ';
    if (cmd.find(marker) != std::string::npos && cmd.find("pgrep") == std::string::npos) n++;
  }
  if (d) closedir(d);
  return n;
}

Json step_named(const Json& vm, const std::string& name) {
  for (const auto& s : vm["pipeline"])
    if (s["name"] == name) return s;
  return Json();
}

}  // namespace

TEST_CASE(
    "a PreHook runs the seed manual's playbook with the Plan and the VM, and a PostHook runs "
    "after the VM is created",
    "[e2e][hooks]") {
  require_program("ansible-playbook");
  Cluster c({{.name = "hk-01", .disk_mib = 16, .data_mib = 4, .guest_ips = {"192.168.10.21/24"}}});
  c.start_coordinator();
  c.start_agent("node-1");
  std::string out = c.dir().file("posthook.out");
  std::string manifests = c.write_manifests("p", {"hk-01"});
  add_hooks(manifests, "hk-01",
            "      - hook: {name: seed, namespace: openshift-mtv}\n"
            "        step: PreHook\n"
            "      - hook: {name: record}\n"
            "        step: PostHook\n",
            hook_yaml("seed", kSeedPlaybook) + "---\n" +
                hook_of("record", R"(- name: Record what hook-runner gives
  hosts: localhost
  gather_facts: false
  tasks:
  - include_vars: {file: /tmp/hook/plan.yml, name: plan}
  - include_vars: {file: /tmp/hook/workload.yml, name: workload}
  - copy:
      dest: )" + out + R"(
      content: "{{ plan.metadata.name }} {{ workload.vm.name }} {{ workload.vm.id }} {{ workload.vm.ipAddress }}\n"
)"));
  auto applied = c.ctl({"apply", "-f", manifests});
  INFO(applied.out << applied.err);
  REQUIRE(applied.rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m", 180) == "Succeeded");
  Json vm = vm_status(c, "m");
  INFO(vm.dump(1));
  // Both steps are in the pipeline, in MTV's places, and completed.
  std::vector<std::string> names;
  for (const auto& s : vm["pipeline"]) names.push_back(s["name"]);
  REQUIRE(names.size() >= 2);
  CHECK(names[1] == "PreHook");
  CHECK(names.back() == "PostHook");
  CHECK(step_named(vm, "PreHook")["phase"] == "Completed");
  CHECK(step_named(vm, "PostHook")["phase"] == "Completed");
  CHECK(vm["hooks"]["PreHook"]["state"] == "Completed");
  CHECK(vm["hooks"]["PreHook"]["attempts"] == 1);
  // The seed playbook loaded both inputs (include_vars fails on a missing or
  // non-YAML file); its output's last lines are on the step.
  std::string pre_out = step_named(vm, "PreHook")["output"].dump();
  CHECK(pre_out.find("ok=3") != std::string::npos);  // facts, Load Plan, Load Workload
  CHECK(pre_out.find("failed=0") != std::string::npos);
  // The PostHook saw the Plan and the VM's inventory record, and started
  // after the VM was created.
  CHECK(read_file(out) == "p hk-01 " + c.vm_id("hk-01") + " 192.168.10.21\n");
  CHECK(vm["hooks"]["PostHook"]["started"].get<std::string>() >=
        step_named(vm, "VirtualMachineCreation")["completed"].get<std::string>());
  CHECK(std::filesystem::exists(vm["vmManifestPath"].get<std::string>()));
  // Nothing of the run is left but its directory: no /tmp/hook on the host
  // holds the inputs (each run had a private one).
  CHECK_FALSE(std::filesystem::exists("/tmp/hook/plan.yml"));
  // must-gather carries each hook's whole output.
  std::string tgz = c.dir().file("gather.tar.gz");
  REQUIRE(c.ctl({"must-gather", "--out", tgz}).rc == 0);
  Subprocess tar({"tar", "-tzf", tgz}, {.log_dir = c.dir().path()});
  REQUIRE(tar.wait(30s) == 0);
  CHECK(tar.stdout_text().find("logs/hooks/openshift-mtv.m.hk-01.PreHook.log") !=
        std::string::npos);
}

TEST_CASE(
    "a failing PreHook is tried 3 times, fails the VM at PreHook with the playbook's error, "
    "leaves the source untouched, and runs again on retry",
    "[e2e][hooks]") {
  require_program("ansible-playbook");
  Cluster c({{.name = "hk-02", .disk_mib = 16, .data_mib = 4, .power_state = "poweredOn"}});
  c.start_coordinator();
  c.start_agent("node-1");
  std::string flag = c.dir().file("let-it-pass");
  std::string manifests = c.write_manifests("p", {"hk-02"});
  add_hooks(manifests, "hk-02",
            "      - hook: {name: check}\n"
            "        step: PreHook\n",
            hook_of("check", R"(- hosts: localhost
  gather_facts: false
  tasks:
  - name: The application is quiesced
    command: test -e )" + flag + "\n"));
  REQUIRE(c.ctl({"apply", "-f", manifests}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  REQUIRE(wait_migration(c, "m", 180) == "Failed");
  Json vm = vm_status(c, "m");
  INFO(vm.dump(1));
  CHECK(vm["error"]["phase"] == "PreHook");
  CHECK(vm["error"]["step"] == "PreHook");
  std::string reason = vm["error"]["reasons"][0];
  CHECK(reason.find("PreHook hook openshift-mtv/check: ansible-playbook exited with status 2 "
                    "(3 attempts)") != std::string::npos);
  CHECK(reason.find("fatal: [localhost]") != std::string::npos);
  CHECK(vm["hooks"]["PreHook"]["attempts"] == 3);
  CHECK(step_named(vm, "PreHook")["phase"] == "Failed");
  // The source was never touched: on, no snapshot, nothing read or copied.
  CHECK(c.sim_get("/ferry-sim/vm?name=hk-02")["power_state"] == "poweredOn");
  CHECK(c.sim_stats()["folder_bytes"] == 0);
  CHECK(c.sim_stats()["snapshots_created"] == 0);
  CHECK(vm["disks"].empty());
  // Fixed, and retried: the hook runs again and the migration completes.
  std::ofstream(flag) << "ok\n";
  auto r = c.ctl({"retry", "migration", "m", "--vm", "hk-02"});
  INFO(r.out << r.err);
  REQUIRE(r.rc == 0);
  REQUIRE(wait_migration(c, "m", 180) == "Succeeded");
  vm = vm_status(c, "m");
  CHECK(vm["hooks"]["PreHook"]["state"] == "Completed");
  CHECK(vm["hooks"]["PreHook"]["attempts"] == 1);
  CHECK_FALSE(first_difference(c.flat_path("hk-02"), vm["disks"][0]["path"]).has_value());
}

TEST_CASE(
    "a hook past its deadline is killed with everything it started, and a hook is killed on "
    "cancel",
    "[e2e][hooks]") {
  require_program("ansible-playbook");
  Cluster c({{.name = "hk-03", .disk_mib = 16, .data_mib = 4, .power_state = "poweredOn"},
             {.name = "hk-04",
              .base = "DC0_H0_VM1",
              .disk_mib = 16,
              .data_mib = 4,
              .power_state = "poweredOn"}});
  c.start_coordinator();
  c.start_agent("node-1");
  // The playbook starts a child that would outlive it (a shell in the
  // background), then hangs; the markers find them in /proc.
  auto hanging = [&](const std::string& marker) {
    return R"(- hosts: localhost
  gather_facts: false
  tasks:
  - shell: "(sleep )" +
           marker + R"( &) ; sleep )" + marker + "\"\n";
  };
  std::string manifests = c.write_manifests("p", {"hk-03", "hk-04"});
  add_hooks(manifests, "hk-03",
            "      - hook: {name: slow}\n"
            "        step: PreHook\n",
            hook_of("slow", hanging("3001.5"), 4) + "---\n" + hook_of("stuck", hanging("3002.5")));
  add_hooks(manifests, "hk-04",
            "      - hook: {name: stuck}\n"
            "        step: PreHook\n",
            "");
  REQUIRE(c.ctl({"apply", "-f", manifests}).rc == 0);
  REQUIRE(c.ctl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);
  // Both run; hk-04's is canceled once its sleep is under way.
  REQUIRE(eventually(
      60s, [] { return processes_with("sleep 3002.5") >= 2; }, 100ms));
  REQUIRE(c.ctl({"cancel", "migration", "m", "--vm", "hk-04"}).rc == 0);
  REQUIRE(wait_migration(c, "m", 120) == "Failed");
  Json st = c.get_json("migration", "m")["status"];
  Json slow, stuck;
  for (const auto& v : st["vms"]) (v["name"] == "hk-03" ? slow : stuck) = v;
  INFO(st.dump(1));
  CHECK(slow["phase"] == "Failed");
  CHECK(slow["error"]["reasons"][0].get<std::string>().find("killed at its deadline of 4 s") !=
        std::string::npos);
  CHECK(stuck["phase"] == "Canceled");
  CHECK(stuck["hooks"]["PreHook"]["state"] == "Canceled");
  CHECK(slow["hooks"]["PreHook"]["state"] == "Failed");
  // Nothing either hook started is left, the background child included.
  CHECK(eventually(
      10s, [] { return processes_with("sleep 3001.5") + processes_with("sleep 3002.5") == 0; },
      100ms));
  for (const char* vm : {"hk-03", "hk-04"})
    CHECK(c.sim_get(std::string("/ferry-sim/vm?name=") + vm)["power_state"] == "poweredOn");
}

TEST_CASE("a Hook that cannot run is refused or a condition, and a used Hook is not deleted",
          "[e2e][hooks]") {
  Cluster c({{.name = "hk-05", .disk_mib = 16, .data_mib = 4}});
  c.start_coordinator();
  // A playbook that is not YAML is refused at apply, naming the field.
  std::string bad = c.dir().file("bad-hook.yaml");
  std::ofstream(bad) << hook_of("broken", "- hosts: localhost\n  tasks: [\n");
  auto r = c.ctl({"apply", "-f", bad});
  CHECK(r.rc != 0);
  CHECK(r.err.find("spec.playbook: is not YAML") != std::string::npos);
  CHECK(c.listed("hook") == 0);
  // A missing Hook and two PreHooks are Plan conditions.
  std::string manifests = c.write_manifests("p", {"hk-05"});
  add_hooks(manifests, "hk-05",
            "      - hook: {name: gone}\n"
            "        step: PreHook\n"
            "      - hook: {name: ok}\n"
            "        step: PreHook\n",
            hook_of("ok", "- hosts: localhost\n  tasks: []\n"));
  r = c.ctl({"apply", "-f", manifests});
  INFO(r.out << r.err);
  CHECK(r.rc != 0);
  CHECK(r.err.find("HookNotValid") != std::string::npos);
  CHECK(r.err.find("spec.vms[0].hooks[0].hook: Hook openshift-mtv/gone not found") !=
        std::string::npos);
  CHECK(r.err.find("HookStepNotValid") != std::string::npos);
  CHECK(r.err.find("spec.vms[0].hooks[1].step: a second PreHook hook") != std::string::npos);
  CHECK(c.listed("plan") == 0);  // nothing of the batch was stored
  CHECK(c.listed("hook") == 0);
  // An unknown step is refused by the schema, naming the field.
  manifests = c.write_manifests("p", {"hk-05"});
  add_hooks(manifests, "hk-05",
            "      - hook: {name: ok}\n"
            "        step: Sometime\n",
            hook_of("ok", "- hosts: localhost\n  tasks: []\n"));
  r = c.ctl({"apply", "-f", manifests});
  CHECK(r.rc != 0);
  CHECK(r.err.find("spec.vms[0].hooks[0].step: \"Sometime\" is not one of: PostHook, PreHook") !=
        std::string::npos);
  // A valid one is applied; its Hook cannot then be deleted from under it.
  manifests = c.write_manifests("p", {"hk-05"});
  add_hooks(manifests, "hk-05",
            "      - hook: {name: ok}\n"
            "        step: PostHook\n",
            hook_of("ok", "- hosts: localhost\n  tasks: []\n"));
  r = c.ctl({"apply", "-f", manifests});
  INFO(r.out << r.err);
  REQUIRE(r.rc == 0);
  r = c.ctl({"delete", "hook", "ok"});
  CHECK(r.rc != 0);
  CHECK(r.err.find("Hook openshift-mtv/ok is used by Plan openshift-mtv/p "
                   "(spec.vms[0].hooks[0]); remove it from the Plan first") != std::string::npos);
  CHECK(c.listed("hook") == 1);
}

namespace {

// Plays the job controller's part for a hook Job (no kubelet runs its pod):
// sets the status the controller would at the end of a successful or failed
// run, through the status subresource.
void finish_job(ControlPlane& k8s, const Json& job, bool success, const std::string& reason = "") {
  std::string now = "2026-01-01T00:00:00Z";
  Json st = {{"startTime", now}};
  if (success) {
    st["succeeded"] = 1;
    st["completionTime"] = now;
    st["conditions"] = Json::array(
        {{{"type", "SuccessCriteriaMet"}, {"status", "True"}, {"lastTransitionTime", now}},
         {{"type", "Complete"}, {"status", "True"}, {"lastTransitionTime", now}}});
  } else {
    st["failed"] = 3;
    st["conditions"] = Json::array({{{"type", "FailureTarget"},
                                     {"status", "True"},
                                     {"reason", reason},
                                     {"message", "Job has reached the specified backoff limit"},
                                     {"lastTransitionTime", now}},
                                    {{"type", "Failed"},
                                     {"status", "True"},
                                     {"reason", reason},
                                     {"message", "Job has reached the specified backoff limit"},
                                     {"lastTransitionTime", now}}});
  }
  auto r = k8s.kubectl({"patch", "job", job["metadata"]["name"], "-n", job["metadata"]["namespace"],
                        "--subresource=status", "--type=merge", "-p", Json{{"status", st}}.dump()});
  INFO(r.err);
  REQUIRE(r.rc == 0);
}

// The hook Job of a VM's step in namespace `target` (null if none came in time).
Json wait_hook_job(ControlPlane& k8s, const std::string& vm_id, const std::string& step,
                   std::chrono::seconds limit) {
  Json job;
  eventually(
      limit,
      [&] {
        auto r = k8s.kubectl(
            {"get", "jobs", "-n", "target", "-l", "step=" + step + ",vmID=" + vm_id, "-o", "json"});
        if (r.rc != 0 || Json::parse(r.out)["items"].empty()) return false;
        job = Json::parse(r.out)["items"][0];
        return true;
      },
      std::chrono::milliseconds(250));
  return job;
}

}  // namespace

TEST_CASE(
    "cluster mode: hooks run as Jobs with their image, service account, deadline and inputs, "
    "and the Job's end decides the step",
    "[e2e][k8s][hooks]") {
  Cluster c({{.name = "kh-01", .disk_mib = 16, .data_mib = 4, .power_state = "poweredOn"},
             {.name = "kh-02", .base = "DC0_H0_VM1", .disk_mib = 16, .data_mib = 4},
             {.name = "kh-03", .base = "DC0_C0_RP0_VM0", .disk_mib = 16, .data_mib = 4}});
  ControlPlane k8s(c);
  c.start_coordinator({"--kubeconfig", k8s.coordinator_kubeconfig()});
  c.start_agent("node-1", {"--kubeconfig", k8s.agent_kubeconfig()});
  std::string manifests = c.write_manifests("p", {"kh-01", "kh-02", "kh-03"});
  // kh-01: an image-only PreHook (allowed in cluster mode); kh-02: a playbook PostHook.
  add_hooks(manifests, "kh-01",
            "      - hook: {name: quiesce}\n"
            "        step: PreHook\n",
            "apiVersion: forklift.konveyor.io/v1beta1\nkind: Hook\nmetadata: {name: quiesce, "
            "namespace: openshift-mtv}\nspec:\n  image: quay.io/acme/quiesce:1.2\n  "
            "serviceAccount: hook-runner\n  deadline: 600\n---\n" +
                hook_of("notify", "- hosts: localhost\n  tasks: []\n"));
  add_hooks(manifests, "kh-02",
            "      - hook: {name: notify}\n"
            "        step: PostHook\n",
            "");
  add_hooks(manifests, "kh-03",
            "      - hook: {name: quiesce}\n"
            "        step: PreHook\n",
            "");
  auto applied = k8s.kubectl({"apply", "-f", manifests});
  INFO(applied.err);
  REQUIRE(applied.rc == 0);
  REQUIRE(eventually(
      60s, [&] { return k8s.phase("plan", "p") == "Ready"; }, 250ms));
  REQUIRE(k8s.kubectl({"apply", "-f", c.write_migration("m", "p")}).rc == 0);

  // The PreHook's Job: the Hook's image, service account and deadline, and
  // hook-runner's inputs mounted at /tmp/hook from a ConfigMap it owns.
  Json pre = wait_hook_job(k8s, c.vm_id("kh-01"), "PreHook", 60s);
  REQUIRE(pre.is_object());
  INFO(pre.dump(1));
  const Json& pod = pre["spec"]["template"]["spec"];
  CHECK(pod["containers"][0]["image"] == "quay.io/acme/quiesce:1.2");
  CHECK(pod["containers"][0]["volumeMounts"][0]["mountPath"] == "/tmp/hook");
  CHECK(pod["serviceAccountName"] == "hook-runner");
  CHECK(pod["restartPolicy"] == "Never");
  CHECK(pre["spec"]["activeDeadlineSeconds"] == 600);
  CHECK(pre["spec"]["backoffLimit"] == 2);
  CHECK(pre["metadata"]["labels"]["vmID"] == c.vm_id("kh-01"));
  CHECK(pre["metadata"]["labels"]["migration"] == k8s.get("migration", "m")["metadata"]["uid"]);
  CHECK(pre["metadata"]["labels"]["plan"] == k8s.get("plan", "p")["metadata"]["uid"]);
  Json cm = k8s.get_in("target", "configmap", pre["metadata"]["name"]);
  REQUIRE(cm.is_object());
  CHECK(cm["metadata"]["ownerReferences"][0]["uid"] == pre["metadata"]["uid"]);
  CHECK(cm["data"]["workload.yml"].get<std::string>().find("name: kh-01") != std::string::npos);
  CHECK(cm["data"]["plan.yml"].get<std::string>().find("kind: Plan") != std::string::npos);
  CHECK_FALSE(cm["data"].contains("playbook.yml"));
  // Until the Job ends, the VM waits in PreHook with its source untouched.
  std::this_thread::sleep_for(2s);
  Json st = k8s.get("migration", "m")["status"];
  for (const auto& v : st["vms"])
    if (v["name"] == "kh-01") CHECK(v["phase"] == "PreHook");
  CHECK(c.sim_get("/ferry-sim/vm?name=kh-01")["power_state"] == "poweredOn");
  finish_job(k8s, pre, true);

  // kh-03 is canceled while its PreHook Job runs: the Job and its ConfigMap go.
  Json pre3 = wait_hook_job(k8s, c.vm_id("kh-03"), "PreHook", 60s);
  REQUIRE(pre3.is_object());
  REQUIRE(k8s.kubectl({"patch", "migration", "m", "-n", "openshift-mtv", "--type=merge", "-p",
                       R"({"spec":{"cancel":[{"name":"kh-03"}]}})"})
              .rc == 0);
  CHECK(eventually(
      30s,
      [&] {
        return k8s.get_in("target", "job", pre3["metadata"]["name"]).is_null() &&
               k8s.get_in("target", "configmap", pre3["metadata"]["name"]).is_null();
      },
      250ms));

  // kh-02's PostHook Job runs hook-runner with the playbook; it fails.
  Json post = wait_hook_job(k8s, c.vm_id("kh-02"), "PostHook", 120s);
  REQUIRE(post.is_object());
  CHECK(post["spec"]["template"]["spec"]["containers"][0]["image"] ==
        "quay.io/konveyor/hook-runner");
  Json post_cm = k8s.get_in("target", "configmap", post["metadata"]["name"]);
  CHECK(post_cm["data"]["playbook.yml"] == "- hosts: localhost\n  tasks: []\n");
  finish_job(k8s, post, false, "BackoffLimitExceeded");

  REQUIRE(eventually(
      120s, [&] { return k8s.phase("migration", "m") == "Failed"; }, 500ms));
  st = k8s.get("migration", "m")["status"];
  INFO(st.dump(1));
  for (const auto& v : st["vms"]) {
    if (v["name"] == "kh-01") {
      CHECK(v["phase"] == "Completed");
    } else if (v["name"] == "kh-03") {
      CHECK(v["phase"] == "Canceled");
      CHECK(step_named(v, "PreHook")["phase"] == "Canceled");
    } else {
      // Failed at PostHook, after its VirtualMachine was created.
      CHECK(v["phase"] == "Failed");
      CHECK(v["error"]["phase"] == "PostHook");
      CHECK(v["error"]["reasons"][0].get<std::string>().find(
                "failed: BackoffLimitExceeded: Job has reached the specified backoff limit") !=
            std::string::npos);
    }
  }
  CHECK(k8s.get_in("target", "virtualmachine", "kh-02").is_object());

  // A Hook deleted with kubectl while a Plan uses it: the Plan says so.
  REQUIRE(k8s.kubectl({"delete", "hook", "quiesce", "-n", "openshift-mtv"}).rc == 0);
  CHECK(eventually(
      30s,
      [&] {
        for (const auto& cond : k8s.get("plan", "p")["status"].value("conditions", Json::array()))
          if (cond.value("type", "") == "HookNotValid" &&
              cond.value("message", "").find("Hook openshift-mtv/quiesce not found") !=
                  std::string::npos)
            return true;
        return false;
      },
      500ms));
}
