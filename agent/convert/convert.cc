#include "agent/convert/convert.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "common/process/process.h"

namespace ferry::agent::convert {
namespace {

namespace fs = std::filesystem;
using process::ProcessOutcome;
using process::ProcessSpec;
using process::run_process;

// A private temp dir for one virt-v2v run, removed on scope exit. virt-v2v and libguestfs put
// their sockets, overlays and nbdkit dirs under TMPDIR; a killed run cannot clean up after
// itself, so the whole dir goes. Kept short (/tmp/...): unix socket paths are limited to 108.
class RunTmpDir {
 public:
  RunTmpDir() {
    char tmpl[] = "/tmp/ferry-v2v-XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
  }
  ~RunTmpDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  RunTmpDir(const RunTmpDir&) = delete;
  RunTmpDir& operator=(const RunTmpDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Our defaults for the child's environment, then the caller's entries (the caller wins).
std::vector<std::string> child_env(const std::string& tmpdir, const std::vector<std::string>& env) {
  std::map<std::string, std::string> kv;
  std::vector<std::string> order;
  auto set = [&](const std::string& entry) {
    std::string key = entry.substr(0, entry.find('='));
    if (!kv.count(key)) order.push_back(key);
    kv[key] = entry;
  };
  // The appliance cache (~30 s to build) must stay where every run finds it: libguestfs would
  // otherwise take it from TMPDIR, which is per run here.
  const char* cachedir = getenv("LIBGUESTFS_CACHEDIR");
  const char* agent_tmp = getenv("TMPDIR");
  set(std::string("LIBGUESTFS_CACHEDIR=") +
      (cachedir ? cachedir : (agent_tmp ? agent_tmp : "/var/tmp")));
  set("TMPDIR=" + tmpdir);
  set("VIRT_V2V_TMPDIR=" + tmpdir);
  for (const auto& e : env)
    if (e.find('=') != std::string::npos) set(e);
  std::vector<std::string> out;
  for (const auto& k : order) out.push_back(kv[k]);
  return out;
}

bool is_nbd_uri(const std::string& p) {
  return p.rfind("nbd://", 0) == 0 || p.rfind("nbd+unix://", 0) == 0;
}

Status check_disks(const std::vector<GuestDisk>& disks) {
  for (size_t i = 0; i < disks.size(); ++i) {
    if (is_nbd_uri(disks[i].path)) continue;  // an NBD view of a remote source
    struct stat st;
    if (stat(disks[i].path.c_str(), &st) != 0)
      return make_error(ErrorCode::kNotFound, "disks[" + std::to_string(i) + "] " + disks[i].path +
                                                  ": " + strerror(errno));
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
      return make_error(
          ErrorCode::kInvalidArgument,
          "disks[" + std::to_string(i) + "] " + disks[i].path + " is not a file or block device");
  }
  return {};
}

std::string safe_file_name(const std::string& name) {
  std::string out;
  for (char c : name)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_') ? c : '_';
  return out.empty() ? "vm" : out;
}

Status write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return make_error(ErrorCode::kIo, "cannot write " + path);
  return {};
}

// Maps an ended run that did not succeed to an Error; nullopt when it succeeded.
std::optional<Error> run_failure(const std::string& what, const ProcessOutcome& o,
                                 const std::vector<std::string>& lines,
                                 std::chrono::milliseconds limit) {
  if (o.canceled)
    return Error(ErrorCode::kCanceled,
                 what + " canceled after " + std::to_string(static_cast<int>(o.seconds)) + " s");
  if (o.timed_out)
    return Error(
        ErrorCode::kTimeout,
        what + " exceeded its time limit of " +
            std::to_string(std::chrono::duration_cast<std::chrono::seconds>(limit).count()) + " s");
  if (o.exited && o.exit_code == 0) return std::nullopt;
  std::string status = o.exited ? "exit status " + std::to_string(o.exit_code)
                                : "killed by signal " + std::to_string(o.term_signal);
  std::string tail = meaningful_tail(lines);
  return Error(ErrorCode::kFailedPrecondition,
               what + " failed (" + status + ")" + (tail.empty() ? "" : ": " + tail));
}

// Collects the output of one run: every line (for parsing; bounded), status lines to a callback.
struct OutputCollector {
  static constexpr size_t kMaxLines = 200000;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> on_status;
  void operator()(const std::string& line) {
    if (lines.size() < kMaxLines) lines.push_back(line);
    if (on_status && is_status_line(line)) on_status(line);
  }
};

}  // namespace

Result<ConversionReport> convert_in_place(const ConvertSpec& spec) {
  FERRY_TRY(validate_spec(spec));
  if (spec.work_dir.empty())
    return make_error(ErrorCode::kInvalidArgument,
                      "conversion of VM " + spec.name + ": no work_dir");
  FERRY_TRY(check_disks(spec.disks));
  std::error_code ec;
  fs::create_directories(spec.work_dir, ec);
  if (ec) return make_error(ErrorCode::kIo, "work_dir " + spec.work_dir + ": " + ec.message());
  std::string xml_path = spec.work_dir + "/" + safe_file_name(spec.name) + ".xml";
  FERRY_TRY(write_file(xml_path, libvirt_domain_xml(spec)));
  std::string log_path = spec.work_dir + "/virt-v2v.log";

  RunTmpDir tmp;
  if (tmp.path().empty()) return make_error(ErrorCode::kIo, "cannot create a temp dir in /tmp");

  // -v: the inspection and guest capabilities this report is read from are debug output in 2.2.
  ProcessSpec ps;
  ps.argv = {"virt-v2v-in-place", "-v", "--machine-readable", "-i", "libvirtxml", xml_path};
  for (const auto& [mac, ip] : spec.mac_ips) {
    ps.argv.push_back("--mac");
    ps.argv.push_back(mac + ":ip:" + ip);
  }
  ps.env = child_env(tmp.path(), spec.env);
  ps.time_limit = spec.time_limit;
  ps.cancel = spec.cancel;
  ps.log_path = log_path;
  OutputCollector out;
  out.on_status = spec.on_output;
  ps.on_line = std::ref(out);

  auto run = run_process(ps);
  if (!run.ok()) return run.error().wrap("conversion of VM " + spec.name);
  std::string what = "conversion of VM " + spec.name + " (virt-v2v-in-place)";
  if (auto err = run_failure(what, *run, out.lines, ps.time_limit)) return *err;

  ConversionReport report = parse_conversion_output(out.lines);
  if (report.firmware.empty()) report.firmware = spec.firmware;
  report.seconds = run->seconds;
  report.log_tail = meaningful_tail(out.lines);
  report.log_path = log_path;
  if (run->strays_killed > 0)
    report.warnings.push_back(std::to_string(run->strays_killed) +
                              " processes left by virt-v2v were killed after it exited");
  return report;
}

Result<Inspection> inspect(const std::vector<GuestDisk>& disks, const std::vector<std::string>& env,
                           std::chrono::seconds limit, const std::atomic<bool>* cancel) {
  if (disks.empty()) return make_error(ErrorCode::kInvalidArgument, "inspection: no disks");
  for (size_t i = 0; i < disks.size(); ++i)
    if (disks[i].path.empty())
      return make_error(ErrorCode::kInvalidArgument,
                        "inspection: disks[" + std::to_string(i) + "].path is empty");
  FERRY_TRY(check_disks(disks));

  RunTmpDir tmp;
  if (tmp.path().empty()) return make_error(ErrorCode::kIo, "cannot create a temp dir in /tmp");

  // virt-inspector, not virt-v2v-inspector: the latter runs a whole conversion on an overlay
  // (update-initramfs included: ~3.5 min under TCG, reading much of a remote source), while
  // plain inspection is what "find the bad guest before copying" needs. Read-only; -a per disk.
  ProcessSpec ps;
  ps.argv = {"virt-inspector", "--no-applications", "--no-icon"};
  for (const auto& d : disks) {
    ps.argv.push_back("--format=" + d.format);
    ps.argv.push_back("-a");
    ps.argv.push_back(d.path);
  }
  ps.env = child_env(tmp.path(), env);
  ps.time_limit = limit;
  ps.cancel = cancel;
  OutputCollector out;
  ps.on_line = std::ref(out);
  auto run = run_process(ps);
  if (!run.ok()) return run.error().wrap("inspection");

  if (run->canceled || run->timed_out || !run->exited || run->exit_code != 0) {
    std::string tail = meaningful_tail(out.lines);
    // virt-inspector's verdict on a disk without an OS is a finding about the guest, not an
    // error of ours: the plan gets a concern.
    if (run->exited && (tail.find("no operating system") != std::string::npos ||
                        tail.find("No root device") != std::string::npos)) {
      Inspection none;
      none.found_os = false;
      none.concerns.push_back("no operating system was found on the disks (" + tail + ")");
      return none;
    }
    if (auto err = run_failure("inspection (virt-inspector)", *run, out.lines, ps.time_limit))
      return *err;
  }
  // virt-inspector prints its XML on stdout; stderr (same pipe) holds only messages, which come
  // before or after the document.
  std::string joined;
  bool in_doc = false;
  for (const auto& line : out.lines) {
    if (!in_doc && (line.rfind("<?xml", 0) == 0 || line.rfind("<operatingsystems", 0) == 0))
      in_doc = true;
    if (in_doc) joined += line + "\n";
    if (in_doc && line.rfind("</operatingsystems>", 0) == 0) break;
  }
  if (joined.empty())
    return make_error(ErrorCode::kInternal,
                      "inspection: virt-inspector printed no XML: " + meaningful_tail(out.lines));
  return parse_inspector_xml(joined);
}

}  // namespace ferry::agent::convert
