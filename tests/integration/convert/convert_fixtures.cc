#include "tests/integration/convert/convert_fixtures.h"

#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "common/process/process.h"
#include "tests/support/test_support.h"

namespace ferry::test::convert {

std::string ToolRun::text() const {
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

ToolRun run_tool(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                 std::chrono::seconds limit) {
  process::ProcessSpec ps;
  ps.argv = argv;
  ps.env = env;
  ps.time_limit = limit;
  ToolRun out;
  ps.on_line = [&](const std::string& l) { out.lines.push_back(l); };
  auto r = process::run_process(ps);
  if (!r.ok()) throw std::runtime_error(argv[0] + ": " + r.error().to_string());
  if (r->timed_out)
    throw std::runtime_error(argv[0] + " did not finish within " + std::to_string(limit.count()) +
                             " s:\n" + out.text());
  out.exit_code = r->exited ? r->exit_code : -1;
  return out;
}

std::vector<std::string> libguestfs_env() {
  const char* backend = getenv("FERRY_TEST_LIBGUESTFS_BACKEND");
  const char* settings = getenv("FERRY_TEST_LIBGUESTFS_BACKEND_SETTINGS");
  return {std::string("LIBGUESTFS_BACKEND=") + (backend ? backend : "direct"),
          std::string("LIBGUESTFS_BACKEND_SETTINGS=") + (settings ? settings : "force_tcg")};
}

GuestImage guest_image() {
  GuestImage g;
  if (const char* img = getenv("FERRY_GUEST_IMAGE"); img && *img) {
    g.path = img;
  } else {
    const char* cache = getenv("FERRY_GUEST_CACHE");
    std::string dir = (cache && *cache) ? cache : FERRY_GUEST_CACHE_DIR;
    auto run = run_tool({std::string(FERRY_SOURCE_DIR) + "/tools/build-guest-image", dir}, {},
                        std::chrono::seconds(1800));
    if (run.exit_code != 0 || run.lines.empty())
      throw std::runtime_error("tools/build-guest-image failed:\n" + run.text());
    g.path = run.lines.back();  // the image path is its last line
  }
  if (!path_exists(g.path)) throw std::runtime_error("guest image " + g.path + " does not exist");
  std::string sha_file = g.path.substr(0, g.path.size() - 4) + ".data.sha256";
  std::istringstream in(read_file(sha_file));
  in >> g.data_sha256;
  if (g.data_sha256.size() != 64) throw std::runtime_error("bad checksum file " + sha_file);
  return g;
}

std::vector<std::string> processes_mentioning(const std::string& needle) {
  std::vector<std::string> out;
  DIR* dir = opendir("/proc");
  if (!dir) return out;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    long pid = strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == getpid()) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find(needle) != std::string::npos) out.push_back(std::to_string(pid) + ": " + cmd);
  }
  closedir(dir);
  return out;
}

std::vector<std::string> tmp_entries(const std::string& prefix) {
  std::vector<std::string> out;
  DIR* dir = opendir("/tmp");
  if (!dir) return out;
  while (dirent* e = readdir(dir))
    if (std::string(e->d_name).rfind(prefix, 0) == 0) out.push_back(e->d_name);
  closedir(dir);
  return out;
}

}  // namespace ferry::test::convert
