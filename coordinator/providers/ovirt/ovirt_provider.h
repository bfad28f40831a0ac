#pragma once
// OvirtProvider: inventory, power control and disk sources for an oVirt / RHV
// Provider, through the Engine REST API (engine_client.h).
// Disks are read by agents from ovirt-imageio: for each claim of a disk's
// task the provider opens an image transfer (a download ticket on the VM's
// host), hands its ticket URL to the agent as the task's credential, and
// finalizes the transfer when the disk is copied or cancels it otherwise.
// Nothing is left open: a transfer's id is stored in the disk's status until
// it is closed, so a restarted coordinator closes what its predecessor opened.
#include <chrono>
#include <memory>
#include <string>

#include "coordinator/providers/ovirt/engine_client.h"
#include "coordinator/providers/provider.h"

namespace ferry::coordinator::ovirt {

// Bounds of the engine's asynchronous work, polled every kPollInterval.
struct Waits {
  std::chrono::milliseconds poll{500};
  std::chrono::seconds shutdown{300};     // shutdown until down, then stop (forced)
  std::chrono::seconds stop{120};         // stop until down
  std::chrono::seconds transfer{300};     // initializing until transferring
  std::chrono::seconds disk_locked{120};  // "Disk is locked" answers retried this long
  std::chrono::seconds close{120};        // finalizing/cancelling until finished
  int inactivity_timeout_seconds = 300;   // the ticket's, while the agent reads
};

class OvirtProvider : public SourceProvider {
 public:
  ~OvirtProvider() override;
  static Result<std::unique_ptr<SourceProvider>> create(const model::Resource& provider,
                                                        const Json& secret);
  Status test_connection() override;
  Result<Inventory> load_inventory() override;
  Result<bool> is_powered_on(const std::string& vm_id) override;
  Status power_off(const std::string& vm_id) override;
  Status power_on(const std::string& vm_id) override;
  Status disk_source(const Json& vm, const Json& disk, const std::string& host_address,
                     ferry::v1::TransferTask& task) override;
  Result<SourceAccess> source_access(const SourceRequest& req) override;
  Status close_source(const std::string& handle, bool completed) override;
  std::vector<std::string> session_credentials() const override { return {}; }
  // Warm, through incremental backup (see "Warm" in ovirt_provider.cc): a
  // snapshot is a backup, a change ID its checkpoint.
  Result<std::string> create_snapshot(const std::string& vm_id, const std::string& name,
                                      const std::string& description,
                                      const std::map<int, std::string>& base) override;
  Result<std::map<int, std::string>> snapshot_change_ids(const std::string& vm_id,
                                                         const std::string& snapshot_id) override;
  // The VM's backups not yet over; a backup's name is its description.
  Result<std::vector<SnapshotRef>> list_snapshots(const std::string& vm_id) override;
  Status remove_snapshot(const std::string& vm_id, const std::string& snapshot_id) override;
  Result<ChangedAreas> changed_areas(const std::string& vm_id, const std::string& snapshot_id,
                                     int disk_key, uint64_t capacity,
                                     const std::string& change_id) override;
  Status release_change_ids(const std::string& vm_id,
                            const std::vector<std::string>& change_ids) override;

  void set_waits(const Waits& w) { waits_ = w; }

 private:
  OvirtProvider(std::string provider_name, std::string secret_name, std::string url,
                std::string user, std::string password, EngineTls tls);
  Status ensure_session();
  Error explain(const Error& e) const;
  // A call that answered with an HTTP error, as an Error naming what was asked.
  Error failed(const std::string& what, const EngineReply& r) const;
  Result<Json> get_json(const std::string& path);
  Result<EngineReply> post(const std::string& path, const Json& body);
  // POST with a body, DELETE without; once more after a 401.
  Result<EngineReply> send(const char* method, const std::string& path, const Json* body);
  Result<std::string> vm_status(const std::string& vm_id);
  Status wait_down(const std::string& vm_id, std::chrono::seconds limit, bool* down);
  Result<SourceAccess> open_transfer(const SourceRequest& req);
  Result<Json> get_backup(const std::string& vm_id, const std::string& backup_id);

  std::string provider_name_, secret_name_, url_, user_, password_;
  EngineTls tls_;
  EngineClient client_;
  Waits waits_;
  // The last event id seen by load_inventory, and the inventory then: the
  // engine has no watch, so a refresh first asks whether any event came since
  // (and reads everything anyway once the inventory is 10 minutes old).
  std::string last_event_;
  std::shared_ptr<const Inventory> cached_;
  std::chrono::steady_clock::time_point read_at_;  // of cached_
};

}  // namespace ferry::coordinator::ovirt
