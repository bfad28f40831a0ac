#pragma once
// The real ovirt-imageio daemon (PyPI `ovirt-imageio`, installed by
// tools/install-deps into a virtualenv) for tests: TLS on 127.0.0.1 with a
// certificate made for the run, its control service on a unix socket in the
// test's directory, and tickets added and read through that service, as
// oVirt's engine and vdsm do. Throws std::runtime_error when it cannot run.
#include <memory>
#include <string>

#include "tests/support/test_support.h"

namespace ferry::test {

// A CA made for one test and certificates it signs for 127.0.0.1, as an oVirt
// engine's CA signs the engine's and every host's imageio certificate.
struct TestCa {
  explicit TestCa(const TempDir& dir);
  // Writes DIR/<name>-cert.pem and DIR/<name>-key.pem for IP 127.0.0.1.
  void issue(const std::string& name) const;
  std::string cert(const std::string& name) const { return dir.file(name + "-cert.pem"); }
  std::string key(const std::string& name) const { return dir.file(name + "-key.pem"); }
  std::string ca_file() const { return dir.file("test-ca.pem"); }
  const TempDir& dir;
};

class ImageioDaemon {
 public:
  // ca: serve a certificate this CA signs ("imageio"); null: a self-signed one.
  explicit ImageioDaemon(const TempDir& dir, const TestCa* ca = nullptr);
  // The control service's unix socket (the engine stand-in adds tickets there).
  const std::string& control_socket() const { return control_sock_; }
  // https://127.0.0.1:PORT
  std::string base_url() const;
  ~ImageioDaemon();

  // https://127.0.0.1:PORT/images/TICKET
  std::string image_url(const std::string& ticket) const;
  // The server certificate's SHA-1 ("AA:BB:..."), to pin.
  const std::string& thumbprint() const { return thumbprint_; }
  // Adds a read ticket for `backend_url` ("nbd:unix:/path/sock", "file:///path").
  // `dirty`: the ticket serves dirty extents (the backend exports a dirty bitmap).
  void add_ticket(const std::string& ticket, uint64_t size, const std::string& backend_url,
                  int timeout_seconds = 300, bool dirty = false);
  // The ticket as the control service reports it (JSON text; "" if none).
  std::string ticket_info(const std::string& ticket) const;
  // Bytes the daemon has served under the ticket (its "transferred": distinct ranges).
  uint64_t transferred(const std::string& ticket) const;
  // Removes the ticket, as the engine does when a transfer is canceled or
  // expires: its running reads are canceled, later ones refused with 403.
  void remove_ticket(const std::string& ticket);
  // What GET .../extents?context=zero answers for the ticket (JSON text).
  std::string extents(const std::string& ticket) const;

 private:
  std::string control(const std::string& method, const std::string& path,
                      const std::string& body = "") const;
  const TempDir& dir_;
  std::string control_sock_, thumbprint_;
  int port_ = 0;
  std::unique_ptr<Subprocess> proc_;
};

// The daemon's binary: $PATH, else where tools/install-deps puts it.
std::string imageio_program(const std::string& name = "ovirt-imageio");

}  // namespace ferry::test
