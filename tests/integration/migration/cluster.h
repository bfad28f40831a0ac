#pragma once
// A whole Ferry installation on loopback for integration tests: a real
// nats-server with JetStream, our vSphere test server (govmomi's simulator)
// holding VMs with real disks, the coordinator and agents as processes, and
// ferryctl to drive them. Everything lives in one TempDir and dies with the test.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/test_support.h"

namespace ferry::test {

using Json = nlohmann::json;

struct CtlResult {
  int rc = -1;
  std::string out, err;
};

struct SimVm {
  std::string name;                 // final name in the inventory
  std::string base = "DC0_H0_VM0";  // the simulator's default VM it customises
  uint64_t disk_mib = 64;
  uint64_t data_mib = 8;
  std::string power_state = "poweredOn";
  std::vector<std::string> macs;
  std::string firmware = "bios";
  std::string iso;
  bool shared_extra_disk = false;
  std::string image;  // use this raw image as the disk instead of making one
  int memory_mb = 1024;
  bool cbt = false;                    // config.changeTrackingEnabled (warm migration)
  std::vector<std::string> guest_ips;  // "IP/PREFIX" per NIC, as VMware Tools reports them
  std::string gateway;
  int extra_disks = 0;  // more disks of the same size and data, each its own image
};

struct ClusterOptions {
  std::vector<std::string> auth_nodes;
  bool tls = false;
  uint64_t cbt_query_window_bytes = 0;  // simulator's QueryChangedDiskAreas window (0: default)
  int vm_count = 0;  // > 0: keep the simulator's own VMs, this many per host and per cluster
};

class Cluster {
 public:
  // auth_nodes: run NATS with `ferryctl nats-config` users for these agent
  // nodes; every process then connects with its own credentials.
  // tls: NATS requires TLS with a certificate from a CA made for the test;
  // every process gets FERRY_NATS_CA.
  explicit Cluster(std::vector<SimVm> vms, std::vector<std::string> auth_nodes = {},
                   bool tls = false);
  Cluster(std::vector<SimVm> vms, const ClusterOptions& opts);
  ~Cluster();

  const TempDir& dir() const { return dir_; }
  const std::string& nats_url() const { return nats_url_; }
  const Json& sim_state() const { return sim_state_; }
  std::string sim_base_url() const;  // https://127.0.0.1:PORT
  std::string flat_path(const std::string& vm, size_t disk = 0) const;
  int disk_key(const std::string& vm, size_t disk = 0) const;  // the virtual disk's device key
  // The raw image the fixture made for a VM's disk (disk > 0: its extra disks).
  std::string disk_image(const std::string& vm, size_t disk = 0) const;
  std::string vm_id(const std::string& vm) const;

  // env: more KEY=VALUE (e.g. FERRY_FAILPOINTS). Waits until a coordinator answers.
  void start_coordinator(std::vector<std::string> extra_args = {},
                         std::vector<std::string> env = {});
  // Another coordinator process against the same NATS (logs under `name`); no wait.
  std::unique_ptr<Subprocess> spawn_coordinator(const std::string& name,
                                                std::vector<std::string> extra_args = {},
                                                std::vector<std::string> env = {});
  // Stops nats-server (SIGKILL) and starts it again on the same port and store.
  void stop_nats();
  void start_nats();
  void kill_coordinator();  // SIGKILL
  void stop_coordinator();  // SIGTERM, and waits (30 s) for it to exit
  bool coordinator_alive();
  std::string coordinator_log() const;  // the running (or last) coordinator's stderr
  // Starts the agent of `node` with a volume root for storage class "local".
  void start_agent(const std::string& node, std::vector<std::string> extra_args = {});
  void kill_agent(const std::string& node);
  Subprocess& agent(const std::string& node) { return *agents_.at(node); }
  std::string volume_root(const std::string& node) const;

  CtlResult ctl(std::vector<std::string> args);
  Json get_json(const std::string& kind, const std::string& name);
  Json sim_stats();
  // The simulator's test controls (/ferry-sim/...): GET, or POST with a body.
  Json sim_get(const std::string& path);
  Json sim_post(const std::string& path, const std::string& body);
  // GET http://127.0.0.1:<metrics port of "coordinator" or an agent node><path>.
  std::string http_get(const std::string& component, const std::string& path);

  // Writes the standard manifests (Secret, Providers, maps, Plan for `vms`) to
  // DIR/manifests/<name>.yaml; returns the path. `plan_extra` is YAML appended
  // under the Plan's spec (indented by two spaces). Plans use raw copy mode
  // (skipGuestConversion: true) unless plan_extra sets skipGuestConversion.
  std::string write_manifests(const std::string& name, const std::vector<std::string>& vms,
                              const std::string& plan_extra = "",
                              const std::string& thumbprint = "");
  std::string write_migration(const std::string& name, const std::string& plan);
  // How many resources of a kind (any ferryctl type name) `ferryctl get` lists.
  size_t listed(const std::string& kind);

 private:
  TempDir dir_;
  std::unique_ptr<Subprocess> nats_, sim_, coordinator_;
  std::vector<std::string> nats_argv_;  // with the port it got the first time
  std::map<std::string, std::unique_ptr<Subprocess>> agents_;
  std::string nats_url_;
  Json sim_state_;
  Json creds_;  // from nats-config, when auth is on
  bool tls_ = false;
  std::vector<std::string> env_for(const std::string& who) const;

 public:
  const Json& credentials() const { return creds_; }
  std::string ca_file() const { return tls_ ? dir_.file("ca.pem") : ""; }
};

// A Kubernetes control plane (tools/dev-cluster, binaries from the build's
// control_plane target) in the Cluster's directory for the test's life, with
// Ferry's CRDs installed and the namespace openshift-mtv created.
class ControlPlane {
 public:
  explicit ControlPlane(const Cluster& c);
  ~ControlPlane();
  // Stops one of its processes and starts it again; waits until the API answers.
  void restart(const std::string& name);
  std::string kubeconfig() const { return dir_ + "/kubeconfig"; }  // admin
  // The coordinator's: a token of ServiceAccount openshift-mtv/ferry-coordinator,
  // whose rights are manifests/base/rbac.yaml's.
  std::string coordinator_kubeconfig() const { return dir_ + "/ferry-coordinator.kubeconfig"; }
  // The agent's (ServiceAccount openshift-mtv/ferry-agent): PersistentVolumes only.
  std::string agent_kubeconfig() const { return dir_ + "/ferry-agent.kubeconfig"; }
  // The API server's port, and a copy of `kubeconfig` that reaches it through
  // 127.0.0.1:<port> instead (a TcpProxy).
  int api_port() const;
  std::string kubeconfig_via(const std::string& kubeconfig, int port) const;
  CtlResult kubectl(std::vector<std::string> args);
  // kubectl get KIND NAME -n openshift-mtv -o json (null if it fails).
  Json get(const std::string& kind, const std::string& name);
  Json get_in(const std::string& ns, const std::string& kind, const std::string& name);
  std::string phase(const std::string& kind, const std::string& name);  // status.phase or ""
  // Waits (up to 30 s) until PVC ns/name is Bound to PersistentVolume `pv`.
  bool pvc_bound(const std::string& ns, const std::string& name, const std::string& pv);

 private:
  CtlResult run(std::vector<std::string> argv);
  std::string dir_, log_;
};

// The value of the first sample of `name` whose labels contain every `label="value"` given.
std::optional<double> metric(const std::string& text, const std::string& name,
                             const std::vector<std::string>& labels = {});

// A VM status's pipeline as "Step=Phase" strings, in order.
std::vector<std::string> pipeline_steps(const Json& vm);

// The status of the Migration's first VM (what most tests migrate: one VM).
Json vm_status(Cluster& c, const std::string& migration);

// Files under `dir` (recursively) whose bytes contain `needle`.
std::vector<std::string> files_containing(const std::string& dir, const std::string& needle);

// Waits for the migration to reach a final phase; returns it ("" on timeout).
std::string wait_migration(Cluster& c, const std::string& name, int seconds = 120);

}  // namespace ferry::test
