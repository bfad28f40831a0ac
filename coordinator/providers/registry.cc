#include "coordinator/providers/ovirt/ovirt_provider.h"
#include "coordinator/providers/provider.h"
#include "coordinator/providers/vsphere/vsphere_provider.h"

namespace ferry::coordinator {

Result<std::unique_ptr<SourceProvider>> make_provider(const model::Resource& provider,
                                                      const Json& secret) {
  std::string type = provider.spec().value("type", "");
  if (type == "vsphere") return vsphere::VsphereProvider::create(provider, secret);
  if (type == "ovirt") return ovirt::OvirtProvider::create(provider, secret);
  return Error(ErrorCode::kInvalidArgument,
               provider.key().to_string() + ": spec.type: \"" + type +
                   "\" providers are not supported yet (vsphere and ovirt are)");
}

}  // namespace ferry::coordinator
