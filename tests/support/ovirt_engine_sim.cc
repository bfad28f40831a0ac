#include "tests/support/ovirt_engine_sim.h"

#include <csignal>
#include <stdexcept>

namespace ferry::test {

using namespace std::chrono_literals;

std::string venv_python() {
  std::string ctl = imageio_program("ovirt-imageio");  // <venv>/bin/ovirt-imageio
  return ctl.substr(0, ctl.rfind('/')) + "/python";
}

OvirtEngineSim::OvirtEngineSim(const TempDir& dir, const TestCa& ca, const ImageioDaemon& imageio,
                               nlohmann::json config)
    : dir_(dir), ca_(ca) {
  ca.issue("engine");
  // The daemon's address unless the test names another for it (a host name
  // its certificate does not carry, say).
  auto& io = config["imageio"];
  io["control_socket"] = imageio.control_socket();
  if (!io.contains("url")) io["url"] = imageio.base_url();
  if (!io.contains("proxy_url")) io["proxy_url"] = io["url"];
  std::string conf = dir.file("engine-sim.json"), port_file = dir.file("engine-sim.port");
  write_file(conf, config.dump(2));
  SubprocessOptions o;
  o.log_dir = dir.path();
  o.name = "engine-sim";
  proc_ = std::make_unique<Subprocess>(
      std::vector<std::string>{venv_python(),
                               FERRY_SOURCE_DIR "/tests/ovirt-engine-sim/engine_sim.py", "--config",
                               conf, "--cert", ca.cert("engine"), "--key", ca.key("engine"), "--ca",
                               ca.ca_file(), "--port-file", port_file},
      o);
  bool up = eventually(30s, [&] { return !proc_->alive() || path_exists(port_file); });
  if (!up || !proc_->alive())
    throw std::runtime_error("the engine stand-in did not start: " + proc_->stderr_text());
  port_ = std::stoi(read_file(port_file));
}

OvirtEngineSim::~OvirtEngineSim() {
  if (proc_) {
    proc_->signal(SIGTERM);
    if (!proc_->wait(10s)) proc_->kill();
  }
}

std::string OvirtEngineSim::api_url() const {
  return "https://127.0.0.1:" + std::to_string(port_) + "/ovirt-engine/api";
}

std::string OvirtEngineSim::curl(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {require_program("curl"), "-sS", "--fail-with-body", "--cacert",
                                   ca_.ca_file()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_ok(dir_, argv, "engine-sim-hook");
}

nlohmann::json OvirtEngineSim::state() const {
  return nlohmann::json::parse(curl({"https://127.0.0.1:" + std::to_string(port_) + "/sim/state"}));
}

nlohmann::json OvirtEngineSim::post(const std::string& path, const nlohmann::json& body) const {
  std::string out = curl({"-X", "POST", "-H", "Content-Type: application/json", "--data-binary",
                          body.dump(), "https://127.0.0.1:" + std::to_string(port_) + path});
  return nlohmann::json::parse(out, nullptr, false);
}

}  // namespace ferry::test
