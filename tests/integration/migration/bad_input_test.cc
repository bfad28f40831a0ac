// Bad input gets a clear error naming the resource and the field, and changes nothing.
#include <catch2/catch.hpp>

#include "tests/integration/migration/cluster.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// Nothing of the named kinds exists after a refused apply.
void check_nothing_stored(Cluster& c) {
  for (const char* kind :
       {"providers", "plans", "migrations", "networkmaps", "storagemaps", "secrets"})
    CHECK(c.listed(kind) == 0);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto p = s.find(from);
  REQUIRE(p != std::string::npos);
  return s.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("manifests with structural errors are refused whole, offline and by the coordinator",
          "[e2e]") {
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1}});
  c.start_coordinator();
  std::string good = read_file(c.write_manifests("p", {"vm-a"}));
  struct Case {
    const char* what;
    std::string yaml;
    const char* message;
  };
  std::vector<Case> cases = {
      {"invalid YAML", good + "\n---\nkind: [unclosed\n", "invalid YAML at line"},
      {"unknown kind",
       good + "---\napiVersion: forklift.konveyor.io/v1beta1\nkind: Planet\nmetadata: {name: "
              "x}\nspec: {}\n",
       "kind: unknown kind \"Planet\""},
      {"missing required field", replace(good, "  targetNamespace: target\n", ""),
       "Plan openshift-mtv/p: spec.targetNamespace: is required"},
      {"name that is not DNS-1123",
       replace(good, "metadata: {name: p,", "metadata: {name: My_Plan,"),
       "Plan openshift-mtv/My_Plan: metadata.name: \"My_Plan\" is not a valid name"},
      {"bad enum", replace(good, "destination: {type: pod}", "destination: {type: bridge}"),
       "NetworkMap openshift-mtv/net: spec.map[0].destination.type: \"bridge\" is not one of: "
       "ignored, multus, pod"},
      {"bad thumbprint format", replace(good, "thumbprint: \"", "thumbprint: \"zz"),
       "Secret openshift-mtv/vsphere-credentials: stringData.thumbprint: must be a SHA-1 "
       "fingerprint"},
  };
  for (const auto& k : cases) {
    INFO(k.what);
    std::string f = c.dir().file("bad.yaml");
    write_file(f, k.yaml);
    auto v = c.ctl({"validate", "-f", f});
    CHECK(v.rc != 0);
    CHECK(v.err.find(k.message) != std::string::npos);
    auto a = c.ctl({"apply", "-f", f});
    CHECK(a.rc != 0);
    CHECK(a.err.find(k.message) != std::string::npos);
    check_nothing_stored(c);
  }
}

TEST_CASE("provider connection problems name the Secret or Provider field and store nothing",
          "[e2e]") {
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1}});
  c.start_coordinator();
  std::string good = read_file(c.write_manifests("p", {"vm-a"}));
  std::string url = c.sim_state()["url"];
  struct Case {
    const char* what;
    std::string yaml;
    const char* message;
  };
  std::vector<Case> cases = {
      {"wrong thumbprint",
       replace(good, c.sim_state()["thumbprint"].get<std::string>(),
               "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33"),
       "Secret openshift-mtv/vsphere-credentials: thumbprint: server certificate SHA-1 fingerprint "
       "is"},
      {"wrong password", replace(good, "password: ferry-sim-pass", "password: nope"),
       "Secret openshift-mtv/vsphere-credentials: user/password:"},
      {"unreachable vCenter", replace(good, url, "https://127.0.0.1:9/sdk"),
       "Provider openshift-mtv/vsphere: spec.url: cannot reach https://127.0.0.1:9/sdk"},
  };
  for (const auto& k : cases) {
    INFO(k.what);
    std::string f = c.dir().file("bad.yaml");
    write_file(f, k.yaml);
    CHECK(c.ctl({"validate", "-f", f}).rc == 0);  // structurally fine
    auto a = c.ctl({"apply", "-f", f});
    CHECK(a.rc != 0);
    CHECK(a.err.find(k.message) != std::string::npos);
    check_nothing_stored(c);
  }
}

TEST_CASE("plans that cannot run are refused with Forklift's condition names", "[e2e]") {
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1, .macs = {"00:50:56:00:00:01"}},
             {.name = "vm-b",
              .base = "DC0_H0_VM1",
              .disk_mib = 16,
              .data_mib = 1,
              .macs = {"00:50:56:00:00:01"}},
             {.name = "vm-iso",
              .base = "DC0_C0_RP0_VM0",
              .disk_mib = 16,
              .data_mib = 1,
              .iso = "[LocalDS_0] tools.iso"},
             {.name = "Bad_Name", .base = "DC0_C0_RP0_VM1", .disk_mib = 16, .data_mib = 1}});
  c.start_coordinator();
  c.start_agent("node-1");
  // A valid base to apply first, so refused plans are seen against a real inventory.
  REQUIRE(c.ctl({"apply", "-f", c.write_manifests("ok", {"vm-a"})}).rc == 0);
  struct Case {
    const char* what;
    std::vector<std::string> vms;
    std::string extra;
    const char* message;
  };
  std::vector<Case> cases = {
      {"VM not in inventory",
       {"vm-zzz"},
       "",
       "VMNotFound: Plan openshift-mtv/bad: spec.vms[0].name: VM name \"vm-zzz\" not found"},
      {"duplicate VM", {"vm-a", "vm-a"}, "", "DuplicateVM: Plan openshift-mtv/bad: spec.vms[1]"},
      {"MAC conflict",
       {"vm-a", "vm-b"},
       "",
       "MacConflicts: Plan openshift-mtv/bad: spec.vms[1]: MAC 00:50:56:00:00:01"},
      {"ISO mounted",
       {"vm-iso"},
       "",
       "VMCriticalConcerns: Plan openshift-mtv/bad: spec.vms[0]: VM \"vm-iso\" has ISO [LocalDS_0] "
       "tools.iso mounted"},
      {"missing map",
       {"vm-a"},
       "",
       "NetworkMapRefNotValid: Plan openshift-mtv/bad: spec.map.network: NetworkMap "
       "openshift-mtv/nope not found"},
      {"warm without CBT",
       {"vm-a"},
       "  warm: true\n",
       "VMMissingChangedBlockTracking: Plan openshift-mtv/bad: spec.vms[0]: VM \"vm-a\" does not "
       "have changed block tracking enabled"},
      {"bad precopy interval",
       {"vm-a"},
       "  warm: true\n  precopyInterval: soon\n",
       "Plan openshift-mtv/bad: spec.precopyInterval: \"soon\" is not a duration"},
      {"unknown transfer network",
       {"vm-a"},
       "  transferNetwork: {name: storage-net}\n",
       "TransferNetworkNotValid: Plan openshift-mtv/bad: spec.transferNetwork"},
  };
  for (const auto& k : cases) {
    INFO(k.what);
    std::string y = read_file(c.write_manifests("bad", k.vms, k.extra));
    if (std::string(k.what) == "missing map")
      y.replace(y.find("network: {name: net}"), 20, "network: {name: nope}");
    std::string f = c.dir().file("bad.yaml");
    write_file(f, y);
    auto a = c.ctl({"apply", "-f", f});
    CHECK(a.rc != 0);
    CHECK(a.err.find(k.message) != std::string::npos);
    CHECK(c.ctl({"get", "plan", "bad"}).rc != 0);
  }
  // A hook that cannot run is refused clearly, by validation: hook-runner
  // without a playbook.
  std::string y = read_file(c.write_manifests("hooked", {"vm-a"}));
  y.replace(
      y.find("    - name: vm-a\n"), 17,
      "    - name: vm-a\n      hooks:\n        - hook: {name: h1}\n          step: PreHook\n");
  y += "---\napiVersion: forklift.konveyor.io/v1beta1\nkind: Hook\nmetadata: {name: h1}\nspec: "
       "{image: quay.io/konveyor/hook-runner}\n";
  write_file(c.dir().file("hook.yaml"), y);
  auto a = c.ctl({"apply", "-f", c.dir().file("hook.yaml")});
  CHECK(a.rc != 0);
  CHECK(a.err.find("HookNotValid: Plan openshift-mtv/hooked: spec.vms[0].hooks[0].hook: Hook "
                   "openshift-mtv/h1: spec.playbook: the hook-runner image needs a playbook") !=
        std::string::npos);
  // A name that is not DNS-1123 is renamed, with a warning, as Forklift does.
  auto w = c.ctl({"apply", "-f", c.write_manifests("renamed", {"Bad_Name"})});
  CHECK(w.rc == 0);
  CHECK(w.err.find("TargetNameNotValid") == std::string::npos);  // warnings are printed as text
  CHECK(w.err.find("will be renamed \"bad-name\"") != std::string::npos);
}

TEST_CASE("daemon flags that are not numbers are refused naming the flag, in both forms", "[e2e]") {
  TempDir dir;
  const std::string build = FERRY_BUILD_DIR;
  struct Case {
    std::vector<std::string> argv;
    std::string says;
  };
  std::vector<Case> cases = {
      {{build + "/agent/ferry-agent", "--node", "n1", "--volume-root", dir.path(),
        "--max-tasks=four"},
       "ferry-agent: --max-tasks: not a valid number"},
      {{build + "/agent/ferry-agent", "--node=n1", "--volume-root=" + dir.path(),
        "--node-bandwidth", "99999999999999999999999"},
       "ferry-agent: --node-bandwidth: not a valid number"},
      {{build + "/coordinator/ferry-coordinator", "--per-host-transfers=ten"},
       "ferry-coordinator: --per-host-transfers: not a valid number"},
  };
  for (const auto& k : cases) {
    INFO(k.argv.back());
    Subprocess p(k.argv, {.log_dir = dir.path()});
    CHECK(p.wait(10s) == 2);
    CHECK_THAT(p.stderr_text(), Catch::Contains(k.says));
  }
}

TEST_CASE("a vCenter that accepts a session and never answers fails the apply within a minute",
          "[e2e]") {
  // The SOAP request's deadline (not curl's 300 s default) ends the call.
  Cluster c({{.name = "vm-a", .disk_mib = 16, .data_mib = 1}});
  c.start_coordinator();
  std::string openssl = require_program("openssl");
  std::string key = c.dir().file("quiet.key"), cert = c.dir().file("quiet.pem");
  Subprocess gen({openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                  "/CN=127.0.0.1", "-keyout", key, "-out", cert},
                 {.log_dir = c.dir().path(), .name = "openssl-req"});
  REQUIRE(gen.wait(60s) == 0);
  Subprocess fp({openssl, "x509", "-in", cert, "-noout", "-fingerprint", "-sha1"},
                {.log_dir = c.dir().path(), .name = "openssl-fp"});
  REQUIRE(fp.wait(30s) == 0);
  std::string thumb = fp.stdout_text();
  thumb = thumb.substr(thumb.find('=') + 1);
  while (!thumb.empty() && (thumb.back() == '\n' || thumb.back() == '\r')) thumb.pop_back();
  // A TLS server that completes each handshake and then never sends a byte.
  const char* kQuiet =
      "import socket, ssl, sys\n"
      "ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
      "ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
      "s = socket.socket()\n"
      "s.bind(('127.0.0.1', 0))\n"
      "s.listen(8)\n"
      "print(s.getsockname()[1], flush=True)\n"
      "held = []\n"
      "while True:\n"
      "    c, _ = s.accept()\n"
      "    try:\n"
      "        held.append(ctx.wrap_socket(c, server_side=True))\n"
      "    except (ssl.SSLError, OSError):\n"
      "        pass\n";
  write_file(c.dir().file("quiet.py"), kQuiet);
  Subprocess quiet({require_program("python3"), c.dir().file("quiet.py"), cert, key},
                   {.log_dir = c.dir().path(), .name = "quiet-vcenter"});
  REQUIRE(eventually(10s, [&] { return quiet.stdout_text().find('\n') != std::string::npos; }));
  int port = std::stoi(quiet.stdout_text());
  std::string url = "https://127.0.0.1:" + std::to_string(port) + "/sdk";
  std::string yaml =
      replace(read_file(c.write_manifests("p", {"vm-a"}, "", thumb)), c.sim_state()["url"], url);
  std::string f = c.dir().file("quiet.yaml");
  write_file(f, yaml);
  auto a = c.ctl({"apply", "-f", f});
  CHECK(a.rc != 0);
  CHECK(a.err.find("cannot reach " + url + ": Timeout was reached") != std::string::npos);
  check_nothing_stored(c);
}
