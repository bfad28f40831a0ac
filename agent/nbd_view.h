#pragma once
// NbdView: one of a task's disk sources as an NBD endpoint that libguestfs can
// read (the preflight inspection). File and NBD sources are used as they are.
// An HTTP(S) source (vSphere datastore access) is first checked by the copy
// engine's own HTTP client (certificate pin, session cookie, size), then
// served by nbdkit's curl plugin on a unix socket in `dir`, reading only the
// ranges libguestfs asks for. The cookie goes to nbdkit in a 0600 file, never
// on its command line. The view owns its nbdkit: destroying it stops it.
#include <sys/types.h>

#include <memory>
#include <string>

#include "common/base/result.h"
#include "ferry/v1/agent.pb.h"

namespace ferry::agent {

class NbdView {
 public:
  // nbdkit's curl plugin cannot bind to an address: the view's reads use the
  // node's default route, not a Plan's transferNetwork (inspection reads MiBs).
  static Result<std::unique_ptr<NbdView>> open(const ferry::v1::TransferTask& disk,
                                               const std::string& dir, int index);
  ~NbdView();
  NbdView(const NbdView&) = delete;
  NbdView& operator=(const NbdView&) = delete;

  // nbd://?socket=... (libguestfs spelling), nbd://..., or a local path.
  const std::string& uri() const { return uri_; }

 private:
  NbdView() = default;
  pid_t pid_ = -1;
  std::string uri_;
};

}  // namespace ferry::agent
