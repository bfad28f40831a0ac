#include "tests/support/imageio_daemon.h"

#include <csignal>
#include <cstdlib>
#include <regex>
#include <stdexcept>

namespace ferry::test {
namespace {

using namespace std::chrono_literals;

}  // namespace

std::string imageio_program(const std::string& name) {
  if (auto p = find_program(name); !p.empty()) return p;
  const char* cache = std::getenv("FERRY_CACHE");
  const char* home = std::getenv("HOME");
  std::string root = cache && *cache ? cache : std::string(home ? home : "/root") + "/.cache/ferry";
  std::string p = root + "/imageio-venv/bin/" + name;
  if (path_exists(p)) return p;
  throw std::runtime_error(name + " not found in $PATH or " + p + ": run tools/install-deps");
}

TestCa::TestCa(const TempDir& d) : dir(d) {
  run_ok(dir,
         {require_program("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
          dir.file("test-ca-key.pem"), "-out", ca_file(), "-days", "2", "-subj",
          "/CN=Ferry test CA", "-addext", "basicConstraints=critical,CA:TRUE", "-addext",
          "keyUsage=critical,keyCertSign,cRLSign"},
         "test-ca");
}

void TestCa::issue(const std::string& name) const {
  std::string openssl = require_program("openssl");
  std::string csr = dir.file(name + ".csr"), ext = dir.file(name + ".ext");
  run_ok(dir,
         {openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key(name), "-out", csr,
          "-subj", "/CN=127.0.0.1"},
         name + "-csr");
  write_file(ext, "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n");
  run_ok(
      dir,
      {openssl, "x509", "-req", "-in", csr, "-CA", ca_file(), "-CAkey", dir.file("test-ca-key.pem"),
       "-CAcreateserial", "-out", cert(name), "-days", "2", "-extfile", ext},
      name + "-sign");
}

ImageioDaemon::ImageioDaemon(const TempDir& dir, const TestCa* ca)
    : dir_(dir), control_sock_(dir.file("imageio-control.sock")) {
  std::string key = dir.file("imageio-key.pem"), cert = dir.file("imageio-cert.pem");
  std::string openssl = require_program("openssl");
  if (ca) {
    ca->issue("imageio");
  } else {
    run_ok(dir,
           {openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
            "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"},
           "imageio-cert");
  }
  std::string fp = run_ok(dir, {openssl, "x509", "-in", cert, "-noout", "-fingerprint", "-sha1"},
                          "imageio-fingerprint");
  thumbprint_ = fp.substr(fp.find('=') + 1);
  while (!thumbprint_.empty() && (thumbprint_.back() == '\n' || thumbprint_.back() == '\r'))
    thumbprint_.pop_back();
  std::string conf = dir.file("imageio-conf");
  run_ok(dir, {"/bin/mkdir", "-p", conf + "/conf.d", dir.file("imageio-run")}, "imageio-mkdir");
  // Port 0: the kernel picks one, the log says which. Logs go to stderr.
  write_file(conf + "/conf.d/50-ferry-test.conf",
             "[daemon]\nrun_dir = " + dir.file("imageio-run") +
                 "\ndrop_privileges = false\nsystemd_enable = false\npoll_interval = 0.1\n"
                 "\n[tls]\nenable = true\nkey_file = " +
                 key + "\ncert_file = " + cert + "\nca_file = " + (ca ? ca->ca_file() : cert) +
                 "\n\n[remote]\nhost = 127.0.0.1\nport = 0\n"
                 "\n[local]\nenable = false\n"
                 "\n[control]\ntransport = unix\nsocket = " +
                 control_sock_ +
                 "\n\n[handlers]\nkeys = stderr\n"
                 "\n[logger_root]\nlevel = INFO\nhandlers = stderr\n"
                 "\n[handler_stderr]\nclass = logging.StreamHandler\nargs = ()\nkwargs = {}\n"
                 "formatter = long\n");
  SubprocessOptions o;
  o.log_dir = dir.path();
  o.name = "ovirt-imageio";
  proc_ = std::make_unique<Subprocess>(
      std::vector<std::string>{imageio_program(), "--conf-dir", conf}, o);
  std::regex listening(R"(remote\.service listening on \('127\.0\.0\.1', (\d+)\))");
  bool ready = eventually(30s, [&] {
    if (!proc_->alive()) return true;
    std::string log = proc_->stderr_text();
    std::smatch m;
    if (std::regex_search(log, m, listening)) port_ = std::stoi(m[1]);
    return port_ > 0 && log.find("Ready for requests") != std::string::npos;
  });
  if (!ready || port_ == 0)
    throw std::runtime_error("ovirt-imageio did not start: " + proc_->stderr_text());
}

ImageioDaemon::~ImageioDaemon() {
  if (proc_) {
    proc_->signal(SIGTERM);
    if (!proc_->wait(10s)) proc_->kill();
  }
}

std::string ImageioDaemon::base_url() const { return "https://127.0.0.1:" + std::to_string(port_); }

std::string ImageioDaemon::image_url(const std::string& ticket) const {
  return base_url() + "/images/" + ticket;
}

std::string ImageioDaemon::control(const std::string& method, const std::string& path,
                                   const std::string& body) const {
  std::vector<std::string> argv = {require_program("curl"),
                                   "-sS",
                                   "--fail-with-body",
                                   "--unix-socket",
                                   control_sock_,
                                   "-X",
                                   method};
  if (!body.empty()) argv.insert(argv.end(), {"--data-binary", body});
  argv.push_back("http://localhost" + path);
  return run_ok(dir_, argv, "imageio-control");
}

void ImageioDaemon::add_ticket(const std::string& ticket, uint64_t size,
                               const std::string& backend_url, int timeout_seconds, bool dirty) {
  control("PUT", "/tickets/" + ticket,
          R"({"uuid":")" + ticket + R"(","size":)" + std::to_string(size) + R"(,"url":")" +
              backend_url + R"(","timeout":)" + std::to_string(timeout_seconds) +
              R"(,"ops":["read"],"dirty":)" + (dirty ? "true" : "false") + "}");
}

std::string ImageioDaemon::ticket_info(const std::string& ticket) const {
  return control("GET", "/tickets/" + ticket);
}

uint64_t ImageioDaemon::transferred(const std::string& ticket) const {
  std::string info = ticket_info(ticket);
  std::smatch m;
  static const std::regex re(R"("transferred":\s*(\d+))");
  if (!std::regex_search(info, m, re))
    throw std::runtime_error("ticket " + ticket + " has no transferred count: " + info);
  return std::stoull(m[1]);
}

void ImageioDaemon::remove_ticket(const std::string& ticket) {
  control("DELETE", "/tickets/" + ticket);
}

std::string ImageioDaemon::extents(const std::string& ticket) const {
  return run_ok(dir_,
                {require_program("curl"), "-sS", "--fail-with-body", "-k",
                 image_url(ticket) + "/extents?context=zero"},
                "imageio-extents");
}

}  // namespace ferry::test
