#pragma once
// Our oVirt Engine API stand-in (tests/ovirt-engine-sim/engine_sim.py, run
// with the Python of tools/install-deps' virtualenv) for tests: HTTPS on
// 127.0.0.1 with a certificate the test CA signs, the engine's collections
// from a config in the engine's JSON form, and image transfers whose tickets
// it adds to a real ovirt-imageio daemon. Its test hooks (/sim/...) read its
// state and inject faults. Throws std::runtime_error when it cannot run.
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "tests/support/imageio_daemon.h"
#include "tests/support/test_support.h"

namespace ferry::test {

class OvirtEngineSim {
 public:
  // `config`: the stand-in's config (users, objects, backends...); the
  // imageio section is filled in from `imageio` (its url only if not given).
  OvirtEngineSim(const TempDir& dir, const TestCa& ca, const ImageioDaemon& imageio,
                 nlohmann::json config);
  ~OvirtEngineSim();

  std::string api_url() const;   // https://127.0.0.1:PORT/ovirt-engine/api
  nlohmann::json state() const;  // GET /sim/state
  nlohmann::json post(const std::string& path, const nlohmann::json& body) const;  // /sim/...

 private:
  std::string curl(const std::vector<std::string>& args) const;
  const TempDir& dir_;
  const TestCa& ca_;
  int port_ = 0;
  std::unique_ptr<Subprocess> proc_;
};

// The Python of the virtualenv tools/install-deps makes (ovirt-imageio and
// the oVirt SDK are installed there).
std::string venv_python();

}  // namespace ferry::test
