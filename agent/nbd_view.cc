#include "agent/nbd_view.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <thread>
#include <vector>

#include "agent/nbdkit_child.h"
#include "agent/transfer/source.h"

namespace ferry::agent {

Result<std::unique_ptr<NbdView>> NbdView::open(const ferry::v1::TransferTask& disk,
                                               const std::string& dir, int index) {
  std::unique_ptr<NbdView> v(new NbdView());
  switch (disk.source_case()) {
    case ferry::v1::TransferTask::kFile:
      v->uri_ = disk.file().path();
      return v;
    case ferry::v1::TransferTask::kNbd:
      v->uri_ = disk.nbd().uri();
      return v;
    case ferry::v1::TransferTask::kHttp:
      break;
    default:
      return Error(ErrorCode::kInvalidArgument, "disk " + disk.disk() + " has no source");
  }
  const auto& h = disk.http();
  // Check the server as a copy would: pinned certificate, cookie accepted, size.
  transfer::SourceSpec spec;
  spec.uri = h.url();
  for (const auto& x : h.headers()) spec.http_headers.push_back(x);
  spec.tls_sha1_thumbprint = h.tls_sha1_thumbprint();
  spec.insecure_skip_verify = h.insecure_skip_verify();
  spec.ca_pem = h.ca_pem();
  spec.size = disk.target().size_bytes();
  auto src = transfer::make_source(spec);
  if (!src.ok()) return src.error().wrap("disk " + disk.disk());
  auto info = (*src)->open(transfer::CopyOptions{});
  if (!info.ok()) return info.error().wrap("disk " + disk.disk());
  (*src)->close_probe();

  std::string n = std::to_string(index);
  std::string sock = dir + "/disk-" + n + ".sock";
  std::string log = dir + "/nbdkit-" + n + ".log";
  std::vector<std::string> argv = {
      "nbdkit",         "-f",        "-t", "1", "--exit-with-parent", "-U", sock, "curl",
      "url=" + h.url(), "timeout=60"};
  for (const auto& x : h.headers()) {
    static const std::string kCookie = "Cookie: ";
    if (x.rfind(kCookie, 0) == 0) {
      std::string cookie_file = dir + "/cookie-" + n;
      int fd = ::open(cookie_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) return Error(ErrorCode::kIo, "writing " + cookie_file + ": " + strerror(errno));
      std::string val = x.substr(kCookie.size());
      bool ok = ::write(fd, val.data(), val.size()) == static_cast<ssize_t>(val.size());
      ::close(fd);
      if (!ok) return Error(ErrorCode::kIo, "writing " + cookie_file);
      argv.push_back("cookie=+" + cookie_file);
    } else {
      argv.push_back("header=" + x);
    }
  }
  argv.push_back("followlocation=false");
  // The pin was checked above on the same server; nbdkit cannot pin a SHA-1,
  // so its own connection is not verified (see docs/guest-conversion.md).
  if (!h.tls_sha1_thumbprint().empty() || h.insecure_skip_verify()) {
    argv.push_back("sslverify=false");
  } else if (!h.ca_pem().empty()) {
    std::string ca_file = dir + "/ca-" + n + ".pem";
    int fd = ::open(ca_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Error(ErrorCode::kIo, "writing " + ca_file + ": " + strerror(errno));
    bool ok = ::write(fd, h.ca_pem().data(), h.ca_pem().size()) ==
              static_cast<ssize_t>(h.ca_pem().size());
    ::close(fd);
    if (!ok) return Error(ErrorCode::kIo, "writing " + ca_file);
    argv.push_back("cainfo=" + ca_file);
  }

  // Ready when the socket exists; nbdkit exiting first is an error.
  auto pid = spawn_until_ready(
      argv, log,
      [&] {
        struct stat st;
        return ::stat(sock.c_str(), &st) == 0;
      },
      "disk " + disk.disk());
  if (!pid.ok()) return pid.error();
  v->pid_ = *pid;
  v->uri_ = "nbd://?socket=" + sock;  // libguestfs spelling of NBD over a unix socket
  return v;
}

NbdView::~NbdView() { stop_child(pid_); }

}  // namespace ferry::agent
