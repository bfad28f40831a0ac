#include "tests/integration/migration/cluster.h"

#include <catch2/catch.hpp>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

namespace ferry::test {
namespace {

std::string bin(const std::string& rel) { return std::string(FERRY_BUILD_DIR) + "/" + rel; }

std::string run_capture(const std::vector<std::string>& argv, const std::string& log_dir) {
  Subprocess p(argv, {.log_dir = log_dir});
  auto rc = p.wait(std::chrono::seconds(120));
  if (!rc || *rc != 0) throw std::runtime_error(argv[0] + " failed: " + p.stderr_text());
  return p.stdout_text();
}

}  // namespace

Cluster::Cluster(std::vector<SimVm> vms, std::vector<std::string> auth_nodes, bool tls)
    : Cluster(std::move(vms), ClusterOptions{.auth_nodes = std::move(auth_nodes), .tls = tls}) {}

Cluster::Cluster(std::vector<SimVm> vms, const ClusterOptions& opts)
    : dir_("ferry-it"), tls_(opts.tls) {
  const auto& auth_nodes = opts.auth_nodes;
  require_program("nats-server");
  require_program("mkfs.ext4");
  // NATS with JetStream on a free loopback port.
  std::string nd = dir_.file("nats");
  std::filesystem::create_directories(nd);
  std::vector<std::string> nats_argv = {require_program("nats-server"),
                                        "-a",
                                        "127.0.0.1",
                                        "-p",
                                        "-1",
                                        "-js",
                                        "-sd",
                                        nd,
                                        "--ports_file_dir",
                                        dir_.path()};
  std::string conf;
  if (!auth_nodes.empty()) {
    std::vector<std::string> argv = {bin("tools/ferryctl"), "nats-config", "--out", dir_.path()};
    for (const auto& n : auth_nodes) argv.insert(argv.end(), {"--node", n});
    run_capture(argv, dir_.path());
    creds_ = Json::parse(read_file(dir_.file("credentials.json")));
    conf += "include \"nats-auth.conf\"\n";
  }
  if (tls_) {
    std::string openssl = require_program("openssl");
    auto f = [&](const char* n) { return dir_.file(n); };
    run_capture({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f("ca.key"),
                 "-out", f("ca.pem"), "-days", "1", "-subj", "/CN=ferry-test-ca"},
                dir_.path());
    run_capture({openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f("server.key"),
                 "-out", f("server.csr"), "-subj", "/CN=127.0.0.1"},
                dir_.path());
    write_file(f("san.ext"), "subjectAltName=IP:127.0.0.1\n");
    run_capture(
        {openssl, "x509", "-req", "-in", f("server.csr"), "-CA", f("ca.pem"), "-CAkey", f("ca.key"),
         "-CAcreateserial", "-out", f("server.pem"), "-days", "1", "-extfile", f("san.ext")},
        dir_.path());
    conf += "tls {\n  cert_file: \"" + f("server.pem") + "\"\n  key_file: \"" + f("server.key") +
            "\"\n  ca_file: \"" + f("ca.pem") + "\"\n  timeout: 5\n}\n";
  }
  if (!conf.empty()) {
    write_file(dir_.file("nats.conf"), conf);
    nats_argv.insert(nats_argv.end(), {"-c", dir_.file("nats.conf")});
  }
  nats_ = std::make_unique<Subprocess>(nats_argv,
                                       SubprocessOptions{.log_dir = dir_.path(), .name = "nats"});
  std::string ports = dir_.file("nats-server_" + std::to_string(nats_->pid()) + ".ports");
  if (!eventually(std::chrono::seconds(20),
                  [&] { return path_exists(ports) && file_size(ports) > 0; }))
    throw std::runtime_error("nats-server did not start: " + nats_->stderr_text());
  nats_url_ = Json::parse(read_file(ports))["nats"][0];
  nats_argv_ = nats_argv;
  for (size_t i = 0; i + 1 < nats_argv_.size(); i++)
    if (nats_argv_[i] == "-p") nats_argv_[i + 1] = nats_url_.substr(nats_url_.rfind(':') + 1);
  // Disks and the simulator.
  Json cfg = {{"remove_other_vms", true}, {"vms", Json::array()}};
  if (opts.cbt_query_window_bytes) cfg["cbt_query_window_bytes"] = opts.cbt_query_window_bytes;
  if (opts.vm_count > 0) {
    cfg["vm_count"] = opts.vm_count;
    cfg["remove_other_vms"] = false;
  }
  for (const auto& v : vms) {
    std::string img = v.image;
    if (img.empty()) {
      img = disk_image(v.name);
      run_capture({std::string(FERRY_SOURCE_DIR) + "/tools/make-test-disk", img,
                   std::to_string(v.disk_mib), std::to_string(v.data_mib)},
                  dir_.path());
    }
    Json vm = {{"name", v.base},         {"rename", v.name},
               {"disk_image", img},      {"power_state", v.power_state},
               {"firmware", v.firmware}, {"memory_mb", v.memory_mb}};
    if (!v.macs.empty()) vm["macs"] = v.macs;
    if (!v.iso.empty()) vm["iso"] = v.iso;
    if (v.cbt) vm["cbt"] = true;
    if (!v.guest_ips.empty()) vm["guest_ips"] = v.guest_ips;
    if (!v.gateway.empty()) vm["gateway"] = v.gateway;
    if (v.shared_extra_disk)
      vm["extra_disks"] = Json::array({{{"disk_image", img}, {"shared", true}}});
    for (int i = 1; i <= v.extra_disks; i++) {
      std::string extra = disk_image(v.name, static_cast<size_t>(i));
      run_capture({std::string(FERRY_SOURCE_DIR) + "/tools/make-test-disk", extra,
                   std::to_string(v.disk_mib), std::to_string(v.data_mib)},
                  dir_.path());
      vm["extra_disks"].push_back({{"disk_image", extra}});
    }
    cfg["vms"].push_back(vm);
  }
  write_file(dir_.file("sim-config.json"), cfg.dump(2));
  sim_ = std::make_unique<Subprocess>(
      std::vector<std::string>{bin("sim/vsphere-sim"), "--listen", "127.0.0.1:0", "--state-file",
                               dir_.file("sim-state.json"), "--config",
                               dir_.file("sim-config.json"), "--dir", dir_.path()},
      SubprocessOptions{.log_dir = dir_.path(), .name = "sim"});
  if (!eventually(std::chrono::seconds(60),
                  [&] { return path_exists(dir_.file("sim-state.json")); }))
    throw std::runtime_error("vsphere-sim did not start: " + sim_->stderr_text());
  sim_state_ = Json::parse(read_file(dir_.file("sim-state.json")));
}

Cluster::~Cluster() {
  for (auto& [n, a] : agents_) a->signal(SIGTERM);
  agents_.clear();
  coordinator_.reset();
  sim_.reset();
  nats_.reset();
  // No log Ferry wrote in this test may hold a secret: the vCenter password
  // or a session cookie's value (issue 17). A failed check, not a throw.
  for (const auto& e : std::filesystem::directory_iterator(dir_.path())) {
    std::string name = e.path().filename().string();
    bool ours = name.rfind("coordinator", 0) == 0 || name.rfind("agent-", 0) == 0 ||
                name.rfind("ferryctl", 0) == 0;
    if (!ours || !e.is_regular_file()) continue;
    std::string text;
    try {
      text = read_file(e.path().string());
    } catch (const std::exception&) {
      continue;  // a destructor must not throw
    }
    for (const char* secret : {"ferry-sim-pass", "vmware_soap_session="})
      if (text.find(secret) != std::string::npos)
        FAIL_CHECK("a secret (" << secret << ") is in the log " << e.path().string());
  }
}

std::string Cluster::sim_base_url() const {
  std::string u = sim_state_["url"];
  return u.substr(0, u.rfind("/sdk"));
}

std::string Cluster::flat_path(const std::string& vm, size_t disk) const {
  for (const auto& v : sim_state_["vms"])
    if (v["name"] == vm) return v["disks"].at(disk)["flat_path"];
  throw std::runtime_error("no VM " + vm + " in the simulator");
}

std::string Cluster::disk_image(const std::string& vm, size_t disk) const {
  return dir_.file(disk == 0 ? vm + ".img" : vm + "-" + std::to_string(disk) + ".img");
}

int Cluster::disk_key(const std::string& vm, size_t disk) const {
  for (const auto& v : sim_state_["vms"])
    if (v["name"] == vm) return v["disks"].at(disk)["key"];
  throw std::runtime_error("no VM " + vm + " in the simulator");
}

std::string Cluster::vm_id(const std::string& vm) const {
  for (const auto& v : sim_state_["vms"])
    if (v["name"] == vm) return v["id"];
  throw std::runtime_error("no VM " + vm + " in the simulator");
}

std::vector<std::string> Cluster::env_for(const std::string& who) const {
  std::vector<std::string> env;
  if (tls_) env.push_back("FERRY_NATS_CA=" + ca_file());
  if (creds_.is_null()) return env;
  const Json& c = who == "coordinator" || who == "ferryctl" ? creds_[who] : creds_["agents"][who];
  env.push_back("FERRY_NATS_USER=" + c["user"].get<std::string>());
  env.push_back("FERRY_NATS_PASSWORD=" + c["password"].get<std::string>());
  return env;
}

std::unique_ptr<Subprocess> Cluster::spawn_coordinator(const std::string& name,
                                                       std::vector<std::string> extra,
                                                       std::vector<std::string> env) {
  std::vector<std::string> argv = {
      bin("coordinator/ferry-coordinator"), "--nats", nats_url_, "--manifest-dir",
      dir_.file("cluster"),
      // The --name=value form, as the Deployment passes flags.
      "--metrics-address=127.0.0.1:0", "--metrics-port-file", dir_.file(name + ".port"),
      // Every coordinator of the test shares it, as they must.
      "--secret-key-file", dir_.file("secret.key"), "--hook-dir", dir_.file("hooks")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::vector<std::string> e = env_for("coordinator");
  e.insert(e.end(), env.begin(), env.end());
  return std::make_unique<Subprocess>(
      argv, SubprocessOptions{.env = e, .log_dir = dir_.path(), .name = name});
}

void Cluster::start_coordinator(std::vector<std::string> extra, std::vector<std::string> env) {
  coordinator_ = spawn_coordinator("coordinator", std::move(extra), std::move(env));
  // A coordinator killed just before holds the lease until it expires (10 s).
  if (!eventually(std::chrono::seconds(40), [&] { return ctl({"status"}).rc == 0; }))
    throw std::runtime_error("coordinator did not answer: " + coordinator_->stderr_text());
}

void Cluster::stop_nats() { nats_->kill(); }

void Cluster::start_nats() {
  nats_ = std::make_unique<Subprocess>(
      nats_argv_, SubprocessOptions{.log_dir = dir_.path(), .name = "nats-restarted"});
  std::string ports = dir_.file("nats-server_" + std::to_string(nats_->pid()) + ".ports");
  if (!eventually(std::chrono::seconds(20),
                  [&] { return path_exists(ports) && file_size(ports) > 0; }))
    throw std::runtime_error("nats-server did not restart: " + nats_->stderr_text());
}

void Cluster::kill_coordinator() { coordinator_->kill(); }
void Cluster::stop_coordinator() {
  coordinator_->signal(SIGTERM);
  if (!coordinator_->wait(std::chrono::seconds(30)))
    throw std::runtime_error("the coordinator did not stop on SIGTERM in 30 s");
}

std::string Cluster::coordinator_log() const {
  return coordinator_ ? coordinator_->stderr_text() : std::string();
}

bool Cluster::coordinator_alive() { return coordinator_ && coordinator_->alive(); }

std::string Cluster::volume_root(const std::string& node) const {
  return dir_.file(node + "/volumes");
}

void Cluster::start_agent(const std::string& node, std::vector<std::string> extra) {
  std::vector<std::string> argv = {bin("agent/ferry-agent"), "--node", node, "--nats", nats_url_,
                                   // The --name=value form, as the DaemonSet passes flags.
                                   "--volume-root=local=" + volume_root(node),
                                   "--metrics-address=127.0.0.1:0", "--metrics-port-file",
                                   dir_.file(node + ".port")};
  argv.insert(argv.end(), extra.begin(), extra.end());
  agents_[node] = std::make_unique<Subprocess>(
      argv,
      SubprocessOptions{.env = env_for(node), .log_dir = dir_.path(), .name = "agent-" + node});
  if (!eventually(std::chrono::seconds(20),
                  [&] { return ctl({"status"}).out.find(node) != std::string::npos; }))
    throw std::runtime_error("agent " + node + " did not join: " + agents_[node]->stderr_text());
}

void Cluster::kill_agent(const std::string& node) { agents_[node]->kill(); }

CtlResult Cluster::ctl(std::vector<std::string> args) {
  static int n = 0;
  args.insert(args.begin(), {bin("tools/ferryctl"), "--nats", nats_url_});
  Subprocess p(args, {.env = env_for("ferryctl"),
                      .log_dir = dir_.path(),
                      .name = "ferryctl-" + std::to_string(n++)});
  auto rc = p.wait(std::chrono::seconds(180));
  return CtlResult{rc ? *rc : -1, p.stdout_text(), p.stderr_text()};
}

Json Cluster::get_json(const std::string& kind, const std::string& name) {
  auto r = ctl({"get", kind, name, "--output=json"});  // the kubectl-style form
  if (r.rc != 0) return Json();
  return Json::parse(r.out);
}

size_t Cluster::listed(const std::string& kind) {
  auto r = ctl({"get", kind, "-A", "-o", "json"});
  if (r.rc != 0) throw std::runtime_error("ferryctl get " + kind + " failed: " + r.err);
  return Json::parse(r.out)["items"].size();
}

Json Cluster::sim_stats() { return sim_get("/ferry-sim/stats"); }

Json Cluster::sim_get(const std::string& path) {
  Subprocess p({require_program("curl"), "-sfk", sim_base_url() + path},
               {.log_dir = dir_.path(), .name = "curl-sim"});
  p.wait(std::chrono::seconds(30));
  return Json::parse(p.stdout_text());
}

Json Cluster::sim_post(const std::string& path, const std::string& body) {
  std::string f = dir_.file("sim-post.body");
  write_file(f, body);
  Subprocess p({require_program("curl"), "-sfk", "--data-binary", "@" + f, sim_base_url() + path},
               {.log_dir = dir_.path(), .name = "curl-sim"});
  if (p.wait(std::chrono::seconds(30)) != 0)
    throw std::runtime_error("POST " + path + " failed: " + p.stderr_text() + p.stdout_text());
  return Json::parse(p.stdout_text());
}

std::string Cluster::http_get(const std::string& component, const std::string& path) {
  std::string port = read_file(dir_.file(component + ".port"));
  while (!port.empty() && port.back() == '\n') port.pop_back();
  Subprocess p(
      {require_program("curl"), "-s", "-w", "\n%{http_code}", "http://127.0.0.1:" + port + path},
      {.log_dir = dir_.path(), .name = "curl-http"});
  p.wait(std::chrono::seconds(10));
  return p.stdout_text();
}

std::optional<double> metric(const std::string& text, const std::string& name,
                             const std::vector<std::string>& labels) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.rfind(name, 0) != 0 ||
        (line.size() > name.size() && line[name.size()] != '{' && line[name.size()] != ' '))
      continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (all) return std::stod(line.substr(line.rfind(' ') + 1));
  }
  return std::nullopt;
}

std::string Cluster::write_manifests(const std::string& name, const std::vector<std::string>& vms,
                                     const std::string& plan_extra, const std::string& thumbprint) {
  // Test disks hold a filesystem, not an OS: raw copy mode unless a test asks for conversion.
  std::string extra = plan_extra.find("skipGuestConversion") == std::string::npos
                          ? plan_extra + "  skipGuestConversion: true\n"
                          : plan_extra;
  std::string vm_list;
  for (const auto& v : vms) vm_list += "    - name: " + v + "\n";
  std::string y = R"(apiVersion: v1
kind: Secret
metadata: {name: vsphere-credentials, namespace: openshift-mtv}
stringData:
  user: administrator@vsphere.local
  password: ferry-sim-pass
  thumbprint: ")" +
                  (thumbprint.empty() ? sim_state_["thumbprint"].get<std::string>() : thumbprint) +
                  R"("
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: vsphere, namespace: openshift-mtv}
spec:
  type: vsphere
  url: )" + sim_state_["url"].get<std::string>() +
                  R"(
  secret: {name: vsphere-credentials, namespace: openshift-mtv}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Provider
metadata: {name: host, namespace: openshift-mtv}
spec: {type: openshift}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: NetworkMap
metadata: {name: net, namespace: openshift-mtv}
spec:
  provider: {source: {name: vsphere}, destination: {name: host}}
  map:
    - source: {name: VM Network}
      destination: {type: pod}
    - source: {name: DC0_DVPG0}
      destination: {type: multus, name: vlan-10, namespace: target}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: StorageMap
metadata: {name: storage, namespace: openshift-mtv}
spec:
  provider: {source: {name: vsphere}, destination: {name: host}}
  map:
    - source: {name: LocalDS_0}
      destination: {storageClass: local}
---
apiVersion: forklift.konveyor.io/v1beta1
kind: Plan
metadata: {name: )" +
                  name + R"(, namespace: openshift-mtv}
spec:
  provider: {source: {name: vsphere}, destination: {name: host}}
  map: {network: {name: net}, storage: {name: storage}}
  targetNamespace: target
)" + extra + "  vms:\n" +
                  vm_list;
  std::string path = dir_.file("manifests-" + name + ".yaml");
  write_file(path, y);
  return path;
}

std::string Cluster::write_migration(const std::string& name, const std::string& plan) {
  std::string path = dir_.file("migration-" + name + ".yaml");
  write_file(path, "apiVersion: forklift.konveyor.io/v1beta1\nkind: Migration\nmetadata: {name: " +
                       name + ", namespace: openshift-mtv}\nspec:\n  plan: {name: " + plan + "}\n");
  return path;
}

std::vector<std::string> pipeline_steps(const Json& vm) {
  std::vector<std::string> steps;
  for (const auto& s : vm.value("pipeline", Json::array()))
    steps.push_back(s.value("name", "") + "=" + s.value("phase", ""));
  return steps;
}

std::vector<std::string> files_containing(const std::string& dir, const std::string& needle) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    if (read_file(e.path().string()).find(needle) != std::string::npos)
      out.push_back(e.path().string());
  }
  return out;
}

Json vm_status(Cluster& c, const std::string& migration) {
  return c.get_json("migration", migration)["status"]["vms"][0];
}

std::string wait_migration(Cluster& c, const std::string& name, int seconds) {
  std::string phase;
  eventually(
      std::chrono::seconds(seconds),
      [&] {
        Json m = c.get_json("migration", name);
        if (m.is_null()) return false;
        phase = m["status"].value("phase", "");
        return phase == "Succeeded" || phase == "Failed" || phase == "Canceled";
      },
      std::chrono::milliseconds(250));
  return phase == "Running" ? "" : phase;
}

// ---------------------------------------------------------------- ControlPlane

namespace {
const std::string kSource = FERRY_SOURCE_DIR;
const std::string kK8sBin = std::string(FERRY_BUILD_DIR) + "/k8s";
}  // namespace

ControlPlane::ControlPlane(const Cluster& c) : dir_(c.dir().file("k8s")), log_(c.dir().path()) {
  // No kubelet runs pods here, so the Job controller could never finish a
  // Job: the tests play its part and set hook Jobs' status themselves.
  auto up = run({"/usr/bin/env", "FERRY_KCM_CONTROLLERS=*,-job-controller",
                 kSource + "/tools/dev-cluster", "up", dir_});
  if (up.rc != 0) throw std::runtime_error("dev-cluster up failed: " + up.err);
  auto crds = kubectl({"apply", "--server-side", "-k", kSource + "/manifests/crds"});
  if (crds.rc != 0) throw std::runtime_error("CRDs not applied: " + crds.err);
  // (kubectl wait fails at once on a CRD whose status is still empty.)
  auto established = [&](const std::string& crd) {
    return eventually(
        std::chrono::seconds(60),
        [&] {
          return kubectl({"get", "crd", crd, "-o",
                          "jsonpath={.status.conditions[?(@.type==\"Established\")].status}"})
                     .out == "True";
        },
        std::chrono::milliseconds(250));
  };
  for (const char* k :
       {"plans", "migrations", "providers", "networkmaps", "storagemaps", "hosts", "hooks"})
    if (!established(std::string(k) + ".forklift.konveyor.io"))
      throw std::runtime_error(std::string("CRD not established: ") + k);
  for (const char* k : {"migplans", "migmigrations"})
    if (!established(std::string(k) + ".migration.openshift.io"))
      throw std::runtime_error(std::string("CRD not established: ") + k);
  if (kubectl({"create", "namespace", "openshift-mtv"}).rc != 0 ||
      kubectl({"create", "namespace", "target"}).rc != 0)
    throw std::runtime_error("namespaces not created");
  // KubeVirt's VirtualMachine CRD as KubeVirt generates it, and Multus' NAD CRD.
  auto gen = run({kSource + "/tools/kubevirt-crds", dir_ + "/kubevirt-crds"});
  if (gen.rc != 0) throw std::runtime_error("tools/kubevirt-crds failed: " + gen.err);
  auto kv = kubectl({"apply", "--server-side", "-f", dir_ + "/kubevirt-crds"});
  if (kv.rc != 0) throw std::runtime_error("KubeVirt CRDs not applied: " + kv.err);
  if (!established("virtualmachines.kubevirt.io") ||
      !established("network-attachment-definitions.k8s.cni.cncf.io"))
    throw std::runtime_error("the KubeVirt or NAD CRD is not established");
  // The network write_manifests' multus map names.
  std::string nad = dir_ + "/nad-vlan-10.yaml";
  write_file(nad, R"(apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: vlan-10, namespace: target}
spec:
  config: '{"cniVersion": "0.3.1", "type": "bridge", "bridge": "br10", "vlan": 10}'
)");
  if (kubectl({"apply", "-f", nad}).rc != 0) throw std::runtime_error("NAD not created");
  auto rbac =
      kubectl({"apply", "-n", "openshift-mtv", "-f", kSource + "/manifests/base/rbac.yaml"});
  if (rbac.rc != 0) throw std::runtime_error("RBAC not applied: " + rbac.err);
  // The daemons run with their ServiceAccounts' rights (manifests/base/rbac.yaml), not admin's.
  for (const char* sa : {"ferry-coordinator", "ferry-agent"}) {
    auto token = kubectl({"create", "token", sa, "-n", "openshift-mtv", "--duration=4h"});
    if (token.rc != 0)
      throw std::runtime_error(std::string("no token for ") + sa + ": " + token.err);
    std::string admin = read_file(kubeconfig());
    std::string t = token.out.substr(0, token.out.find_last_not_of("\n") + 1);
    write_file(
        dir_ + "/" + sa + ".kubeconfig",
        admin.substr(0, admin.find("users:")) + "users:\n- name: " + sa +
            "\n  user:\n    token: " + t +
            "\ncontexts:\n- name: ferry-dev\n  context:\n    cluster: ferry-dev\n    user: " + sa +
            "\n    namespace: openshift-mtv\ncurrent-context: ferry-dev\n");
  }
}

bool ControlPlane::pvc_bound(const std::string& ns, const std::string& name,
                             const std::string& pv) {
  return eventually(
      std::chrono::seconds(30),
      [&] {
        auto p = kubectl({"get", "pvc", name, "-n", ns, "-o", "json"});
        if (p.rc != 0) return false;
        Json j = Json::parse(p.out, nullptr, false);
        return j.is_object() && j["status"].value("phase", "") == "Bound" &&
               j["spec"].value("volumeName", "") == pv;
      },
      std::chrono::milliseconds(250));
}

int ControlPlane::api_port() const {
  std::string k = read_file(kubeconfig());
  const std::string key = "server: https://127.0.0.1:";
  size_t at = k.find(key);
  if (at == std::string::npos) throw std::runtime_error("no server in " + kubeconfig());
  return std::stoi(k.substr(at + key.size()));
}

std::string ControlPlane::kubeconfig_via(const std::string& kubeconfig, int port) const {
  std::string k = read_file(kubeconfig);
  std::string from = "https://127.0.0.1:" + std::to_string(api_port());
  size_t at = k.find(from);
  if (at == std::string::npos) throw std::runtime_error("no " + from + " in " + kubeconfig);
  k.replace(at, from.size(), "https://127.0.0.1:" + std::to_string(port));
  std::string out = kubeconfig + "." + std::to_string(port);
  write_file(out, k);
  return out;
}

ControlPlane::~ControlPlane() { run({kSource + "/tools/dev-cluster", "down", dir_}); }

void ControlPlane::restart(const std::string& name) {
  auto r = run({kSource + "/tools/dev-cluster", "restart", dir_, name});
  if (r.rc != 0) throw std::runtime_error("restart " + name + " failed: " + r.err);
  if (!eventually(
          std::chrono::seconds(90),
          [&] {
            return kubectl({"get", "--raw", "/readyz"}).rc == 0;
          },
          std::chrono::milliseconds(500)))
    throw std::runtime_error(name + " did not come back");
}

CtlResult ControlPlane::kubectl(std::vector<std::string> args) {
  args.insert(args.begin(), {kK8sBin + "/kubectl", "--kubeconfig", kubeconfig()});
  return run(args);
}

Json ControlPlane::get(const std::string& kind, const std::string& name) {
  return get_in("openshift-mtv", kind, name);
}

Json ControlPlane::get_in(const std::string& ns, const std::string& kind, const std::string& name) {
  auto r = kubectl({"get", kind, name, "-n", ns, "-o", "json"});
  return r.rc == 0 ? Json::parse(r.out, nullptr, false) : Json();
}

std::string ControlPlane::phase(const std::string& kind, const std::string& name) {
  Json o = get(kind, name);
  return o.is_object() && o.contains("status") ? o["status"].value("phase", "") : "";
}

CtlResult ControlPlane::run(std::vector<std::string> argv) {
  static int n = 0;
  Subprocess p(
      argv,
      {.env = {"FERRY_K8S_BIN=" + kK8sBin}, .log_dir = log_, .name = "k8s-" + std::to_string(n++)});
  auto rc = p.wait(std::chrono::seconds(300));
  return CtlResult{rc ? *rc : -1, p.stdout_text(), p.stderr_text()};
}

}  // namespace ferry::test
