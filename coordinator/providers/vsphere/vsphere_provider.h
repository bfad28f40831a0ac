#pragma once
// VsphereProvider: inventory, power control and disk sources for a vSphere
// Provider (vCenter or ESXi) over the vSphere Web Services API.
// Disks are read by agents over the datastore's HTTPS file access
// (/folder/<path>?dcPath=..&dsName=.. with the session cookie), the path
// virt-v2v uses without VDDK; flat VMDK extents are plain raw data.
#include <memory>

#include "coordinator/providers/provider.h"
#include "coordinator/providers/vsphere/vim_client.h"

namespace ferry::coordinator::vsphere {

class VsphereProvider : public SourceProvider {
 public:
  ~VsphereProvider() override;  // logs out: vCenter holds a finite number of sessions
  static Result<std::unique_ptr<SourceProvider>> create(const model::Resource& provider,
                                                        const Json& secret);
  Status test_connection() override;
  Result<Inventory> load_inventory() override;
  Result<bool> is_powered_on(const std::string& vm_id) override;
  Status power_off(const std::string& vm_id) override;
  Status power_on(const std::string& vm_id) override;
  std::vector<std::string> session_credentials() const override;
  Result<SourceAccess> source_access(const SourceRequest& req) override;
  Status close_source(const std::string& handle, bool completed) override;
  Status disk_source(const Json& vm, const Json& disk, const std::string& host_address,
                     ferry::v1::TransferTask& task) override;
  // CBT needs no base to snapshot from: `base` is not used.
  Result<std::string> create_snapshot(const std::string& vm_id, const std::string& name,
                                      const std::string& description,
                                      const std::map<int, std::string>& base) override;
  Result<std::map<int, std::string>> snapshot_change_ids(const std::string& vm_id,
                                                         const std::string& snapshot_id) override;
  Result<std::vector<SnapshotRef>> list_snapshots(const std::string& vm_id) override;
  Status remove_snapshot(const std::string& vm_id, const std::string& snapshot_id) override;
  Result<ChangedAreas> changed_areas(const std::string& vm_id, const std::string& snapshot_id,
                                     int disk_key, uint64_t capacity,
                                     const std::string& change_id) override;
  // A CBT change ID holds nothing on the host.
  Status release_change_ids(const std::string&, const std::vector<std::string>&) override {
    return {};
  }

 private:
  VsphereProvider(std::string provider_name, std::string secret_name, std::string url,
                  std::string user, std::string password, TlsSettings tls);
  Status ensure_session();
  // Adds resource/field context to a connection or login error.
  Error explain(const Error& e) const;
  Status power(const std::string& vm_id, const char* method, bool want_on);

  std::string provider_name_, secret_name_, url_, user_, password_;
  TlsSettings tls_;
  VimClient client_;
  bool logged_in_ = false;
};

// "[LocalDS_0] dir/disk.vmdk" -> {"LocalDS_0", "dir/disk.vmdk"}.
std::pair<std::string, std::string> split_datastore_path(const std::string& file);
// Extent file names of a text VMDK descriptor ("RW 2048 FLAT \"x-flat.vmdk\" 0").
Result<std::vector<std::string>> parse_descriptor_extents(const std::string& descriptor);

}  // namespace ferry::coordinator::vsphere
