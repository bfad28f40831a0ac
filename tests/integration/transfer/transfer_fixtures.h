#pragma once
// Shared fixtures of the transfer integration tests: an nbdkit serving a file
// over a unix socket, and small image helpers.
#include <memory>
#include <string>
#include <vector>

#include "agent/transfer/copy.h"
#include "tests/support/test_support.h"

namespace ferry::agent::transfer::testing {

constexpr uint64_t KiB = 1024, MiB = 1024 * 1024;

// `nbdkit -f --exit-with-parent -U SOCK ARGS...`; waits for the socket.
class Nbdkit {
 public:
  Nbdkit(const ferry::test::TempDir& dir, std::vector<std::string> args,
         const std::string& name = "nbdkit");
  std::string uri() const { return "nbd+unix:///?socket=" + sock_; }
  const std::string& socket() const { return sock_; }
  ferry::test::Subprocess& process() { return *proc_; }
  void stop();  // SIGTERM (nbdkit removes its socket) and wait

 private:
  std::string sock_;
  std::unique_ptr<ferry::test::Subprocess> proc_;
};

// `qemu-nbd -r -t --shared=4 -f FORMAT -k SOCK IMAGE` (read-only, persistent: the
// engine's probe connection and its workers are separate clients).
class QemuNbd {
 public:
  // `extra`: more qemu-nbd options (e.g. "-A": report allocation depth, so holes show).
  QemuNbd(const ferry::test::TempDir& dir, const std::string& image, const std::string& format,
          const std::vector<std::string>& extra = {});
  SourceSpec source() const;

 private:
  std::string sock_;
  std::unique_ptr<ferry::test::Subprocess> proc_;
};

SourceSpec nbd_source(const Nbdkit& n);
// Small, fast options for tests.
CopyOptions test_options();
// Overwrites [offset, offset+length) of an existing file with zero bytes (allocated).
void write_zeros(const std::string& path, uint64_t offset, uint64_t length);
// Runs ferry-copy with `args` (after the binary) and SIGKILLs it once its
// checkpoint `cp` claims at least `claimed` bytes; throws if that does not
// happen within 20 s or the process does not die of the signal.
void copy_until_checkpoint_then_kill(const ferry::test::TempDir& dir,
                                     const std::vector<std::string>& args, const std::string& cp,
                                     uint64_t claimed);
// Value of "key":NUMBER in ferry-copy's JSON stats line.
uint64_t json_u64(const std::string& json, const std::string& key);
// A GnuTLS PSK file DIR/name holding "user:hexkey", 32 random bytes.
std::string psk_file(const ferry::test::TempDir& dir, const std::string& name,
                     const std::string& user);

}  // namespace ferry::agent::transfer::testing
