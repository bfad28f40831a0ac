#pragma once
// Guest conversion on the node that holds a VM's volumes: virt-v2v-in-place (virt-v2v 2.2) on
// the copied disks, and a preflight inspection (virt-v2v-inspector) before any copy.
//
// Every call here blocks for minutes (a conversion under TCG takes ~5 min): run it on an agent
// worker thread, never the event loop, and post the result back. A call owns the processes it
// starts; when it returns, none of them is left (see process.h).
//
// libguestfs settings (LIBGUESTFS_BACKEND=direct, LIBGUESTFS_BACKEND_SETTINGS=force_tcg on
// machines where QEMU cannot use KVM) come from the caller's `env`, i.e. from agent config:
// nothing here hard-codes them.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/base/result.h"

namespace ferry::agent::convert {

struct GuestDisk {
  // A local file or block device; for inspect() also an NBD URI
  // as libguestfs spells them (nbd://HOST:PORT, nbd://?socket=PATH).
  std::string path;
  std::string format = "raw";
};

struct ConvertSpec {
  std::string name;               // domain name
  std::vector<GuestDisk> disks;   // in order, first = boot
  std::string firmware = "bios";  // bios | efi
  int cpus = 1;
  int memory_mb = 1024;
  std::vector<std::string> macs;  // NICs, in order
  // preserveStaticIPs: MAC -> "IP[,GW[,PREFIXLEN[,NS,...]]]", passed as --mac MAC:ip:VALUE.
  // virt-v2v 2.2 applies these to Windows guests only; Linux guests keep their own config.
  std::vector<std::pair<std::string, std::string>> mac_ips;
  std::vector<std::string> env;  // KEY=VALUE for virt-v2v, from agent config
  std::chrono::seconds time_limit{3600};
  const std::atomic<bool>* cancel = nullptr;
  // virt-v2v's status, progress, warning and error lines as they come (on the calling thread);
  // the libguestfs debug output goes only to work_dir/virt-v2v.log.
  std::function<void(const std::string& line)> on_output;
  std::string work_dir;  // created if missing: the generated domain XML and virt-v2v.log
  // <domain type=...> of the source; virt-v2v only records it. Ferry's sources are VMware.
  std::string source_hypervisor = "vmware";
};

struct ConversionReport {
  std::string os_name;     // inspection: "linux" | "windows" ...
  std::string os_version;  // "12.11" (major.minor)
  std::string os_distro;   // "debian"
  std::string os_product;  // "Debian GNU/Linux 12 (bookworm)"
  std::string firmware;    // bios | efi: what the guest was converted for
  // Linux: the virtio kernel modules virt-v2v found for the guest kernel (its initramfs is rebuilt
  // with them); Windows: drivers virt-v2v installed.
  std::vector<std::string> drivers_installed;
  std::vector<std::string> warnings;
  bool virtio_disk = false;  // the converted guest boots from virtio-blk (else: SATA/IDE)
  bool virtio_net = false;   // virtio-net NICs (else: e1000)
  std::string machine;       // q35 | pc | virt ...
  double seconds = 0;
  std::string log_tail;  // last meaningful lines of virt-v2v's output
  std::string log_path;  // the full debug log in work_dir
};

// Runs virt-v2v-in-place -v -i libvirtxml WORK_DIR/NAME.xml on the disks, in place.
// Errors: kInvalidArgument (spec), kNotFound (missing disk or program), kInternal with
// virt-v2v's own last meaningful lines on a non-zero exit, kTimeout, kCanceled.
Result<ConversionReport> convert_in_place(const ConvertSpec& spec);

struct Inspection {
  bool found_os = false;
  std::string os_name, distro, version, arch, product;
  std::string osinfo;                 // libosinfo short id, e.g. "debian12"
  std::string firmware;               // bios | efi | "" (as inspected)
  std::vector<std::string> concerns;  // why the guest cannot or may not be converted
};

// Preflight: virt-v2v-inspector -i libvirtxml on the disks (read-only; a qcow2 overlay takes the
// writes). A disk without an OS gives found_os=false with a concern, not an error; errors are
// for a missing program or disk (kNotFound), kTimeout, kCanceled, or an inspector failure
// (kInternal, with its message).
Result<Inspection> inspect(const std::vector<GuestDisk>& disks, const std::vector<std::string>& env,
                           std::chrono::seconds limit, const std::atomic<bool>* cancel);

// The libvirt domain XML that describes the source VM to virt-v2v (-i libvirtxml). Pure.
std::string libvirt_domain_xml(const ConvertSpec& spec);

// ---- parsing, exposed for unit tests ----

// Status lines (streamed to on_output): "[  12.3] ...", "virt-v2v...: warning: ...", progress
// "N/M", and the tool's own messages; not the libguestfs debug output.
bool is_status_line(const std::string& line);
// Fills the report from virt-v2v -v output (inspection block, kernel info, guest capabilities,
// warnings). Fields not found keep their defaults.
ConversionReport parse_conversion_output(const std::vector<std::string>& lines);
// The last meaningful lines: the last "error:" message and what follows it, else the last few
// lines that are not blank, progress or libguestfs debug.
std::string meaningful_tail(const std::vector<std::string>& lines, size_t max_lines = 8);
// Parses virt-v2v-inspector's -O XML (<v2v-inspection>).
Result<Inspection> parse_inspector_xml(const std::string& xml);
// Checks a spec before anything runs: names, disks, firmware, MACs.
Status validate_spec(const ConvertSpec& spec);

}  // namespace ferry::agent::convert
