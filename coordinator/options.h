#pragma once
// The coordinator's options (ferry-coordinator's flags, coordinator/app.cc).
#include <string>

#include "common/bus/nats_bus.h"

namespace ferry::coordinator {

struct CoordinatorOptions {
  bus::ConnectOptions nats;
  std::string manifest_dir;     // where VirtualMachine manifests are written ("" = status only)
  int per_host_transfers = 10;  // ESXi NFC limit
  int max_vms_in_flight = 20;   // per migration
  int inventory_refresh_seconds = 300;
  int sessions_per_provider = 8;      // parallel SOAP sessions per source
  double session_idle_seconds = 600;  // a source session idle this long is logged out
  int js_replicas = 1;            // replicas of Ferry's streams and buckets (3 in a NATS cluster)
  std::string metrics_address;    // "" = no HTTP endpoint; ":9465", "127.0.0.1:0"
  std::string metrics_port_file;  // written with the bound port (tests)
  // The console's HTTP API on the metrics port, with the Bearer token in
  // this file (made at the first start); "" = no console API.
  std::string console_token_file;
  // The built web console (console/, `npm run build`), served at /console/;
  // "" = /usr/share/ferry/console where it is installed, else the API only.
  std::string console_dir;
  double precopy_interval_seconds = 3600;  // warm: MTV's default; Plan spec.precopyInterval wins
  int warm_failure_limit = 3;              // consecutive failed precopies before the VM fails
  double agent_timeout_seconds = 180;      // a node silent this long is gone (its tasks fail)
  // Cluster mode: resources and their statuses in the Kubernetes API.
  bool kubernetes = false;
  std::string kubeconfig;       // "" in cluster mode: the pod's service account
  std::string lease_namespace;  // the Lease's; "": the kubeconfig's, else openshift-mtv
  std::string identity;         // the Lease holder's name; "": host/pid/start time
  // Local mode: the key Secrets are sealed with in NATS KV (store/secret_box.h).
  std::string secret_key_file;
  // Where Hook playbooks run (a directory per run, with its inputs and log).
  std::string hook_dir;
  std::string ansible_playbook = "ansible-playbook";
};

}  // namespace ferry::coordinator
