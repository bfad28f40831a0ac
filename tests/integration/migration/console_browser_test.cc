// The web console in a real browser: console/tests/console.test.mjs drives
// Debian's Chromium (playwright-core) through MTV's pages against the real
// coordinator, agent, nats-server and vSphere simulator this test starts;
// then this test checks what the clicks did behind the page: the resources
// stored, the migrations' outcome, and the copied volumes byte for byte.
#include <catch2/catch.hpp>

#include <filesystem>

#include "tests/integration/migration/console_http.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

// Every Migration the console created for `plan` (it names them itself).
std::vector<Json> migrations_of(Cluster& c, const std::string& plan) {
  auto r = c.ctl({"get", "migrations", "-o", "json"});
  std::vector<Json> out;
  if (r.rc != 0) return out;
  Json j = Json::parse(r.out, nullptr, false);
  Json items = j.is_object() ? j.value("items", Json::array()) : j;
  if (!items.is_array()) return out;
  for (const auto& m : items)
    if (m["spec"]["plan"].value("name", "") == plan) out.push_back(m);
  return out;
}

Json vm_named(const Json& migration, const std::string& name) {
  for (const auto& v : migration["status"].value("vms", Json::array()))
    if (v.value("name", "") == name) return v;
  return Json();
}

}  // namespace

TEST_CASE("the web console in Chromium: provider, maps, wizard, start, cancel, cutover",
          "[e2e][console][browser]") {
  std::string chromium = require_program("/usr/bin/chromium");
  std::string node = require_program("node");
  std::string app = std::string(FERRY_BUILD_DIR) + "/console";
  REQUIRE(std::filesystem::exists(app + "/index.html"));
  std::string console_src = std::string(FERRY_SOURCE_DIR) + "/console";
  REQUIRE(std::filesystem::exists(console_src + "/node_modules/playwright-core/package.json"));

  Cluster c({{.name = "web-01", .disk_mib = 32, .data_mib = 4, .macs = {"00:50:56:aa:d0:01"}},
             {.name = "two-01",
              .base = "DC0_H0_VM1",
              .disk_mib = 32,
              .data_mib = 4,
              .macs = {"00:50:56:aa:d0:02"}},
             {.name = "two-02",
              .base = "DC0_C0_RP0_VM0",
              .disk_mib = 96,
              .data_mib = 80,
              .macs = {"00:50:56:aa:d0:03"}},
             {.name = "warm-01",
              .base = "DC0_C0_RP0_VM1",
              .disk_mib = 32,
              .data_mib = 4,
              .macs = {"00:50:56:aa:d0:04"},
              .cbt = true}});
  std::string token_file = c.dir().file("console.token");
  c.start_coordinator({"--console-token-file", token_file, "--console-dir", app});
  // 8 MiB/s: two-02's 80 MiB take ten seconds, time to cancel it mid-copy.
  c.start_agent("node-1", {"--bandwidth", std::to_string(8 << 20)});
  std::string token = first_line(token_file);
  std::string port = first_line(c.dir().file("coordinator.port"));
  // The coordinator says where the console is, with its token.
  CHECK(read_file(c.dir().file("coordinator.stdout"))
            .find("Ferry console: http://127.0.0.1:" + port + "/console/#token=" + token) !=
        std::string::npos);

  std::string shots = std::getenv("FERRY_CONSOLE_SHOTS") ? std::getenv("FERRY_CONSOLE_SHOTS") : "";
  Subprocess browser(
      {node, "--test", "--test-reporter=spec", "tests/console.test.mjs"},
      {.env = {"FERRY_CONSOLE_URL=http://127.0.0.1:" + port + "/console/",
               "FERRY_CONSOLE_TOKEN=" + token,
               "FERRY_SIM_URL=" + c.sim_state()["url"].get<std::string>(),
               "FERRY_SIM_THUMBPRINT=" + c.sim_state()["thumbprint"].get<std::string>(),
               "FERRY_SHOTS=" + shots, "FERRY_DEBUG_DIR=" + c.dir().path()},
       .log_dir = c.dir().path(),
       .name = "browser",
       .cwd = console_src});
  auto rc = browser.wait(std::chrono::minutes(12));
  INFO("browser test output:\n" << browser.stdout_text() << browser.stderr_text());
  REQUIRE(rc.has_value());
  REQUIRE(*rc == 0);

  // What the clicks stored: the providers, maps and plans, as ferryctl sees them.
  CHECK(c.get_json("provider", "vcenter")["spec"]["url"] == c.sim_state()["url"]);
  CHECK(c.get_json("networkmap", "web-net")["spec"]["map"][0]["source"]["name"] == "VM Network");
  CHECK(c.get_json("storagemap", "web-storage")["spec"]["map"][0]["destination"]["storageClass"] ==
        "local");
  Json plan = c.get_json("plan", "web-plan");
  REQUIRE(plan["spec"]["vms"].size() == 1);
  CHECK(plan["spec"]["vms"][0]["id"] == c.vm_id("web-01"));

  // The wizard's plan ran to the end; its volume is the source disk, byte for byte.
  auto web = migrations_of(c, "web-plan");
  REQUIRE(web.size() == 1);
  CHECK(web[0]["status"]["phase"] == "Succeeded");
  Json vm = vm_named(web[0], "web-01");
  std::string volume = vm["disks"][0]["path"];
  CHECK(file_size(volume) == file_size(c.flat_path("web-01")));
  CHECK_FALSE(first_difference(c.flat_path("web-01"), volume).has_value());

  // One VM of two canceled, the other migrated.
  auto two = migrations_of(c, "two-plan");
  REQUIRE(two.size() == 1);
  CHECK(vm_named(two[0], "two-02")["phase"] == "Canceled");
  CHECK(vm_named(two[0], "two-01")["phase"] == "Completed");
  CHECK_FALSE(
      first_difference(c.flat_path("two-01"), vm_named(two[0], "two-01")["disks"][0]["path"])
          .has_value());

  // The warm plan cut over when the button was pressed.
  auto warm = migrations_of(c, "warm-plan");
  REQUIRE(warm.size() == 1);
  CHECK(warm[0]["status"]["phase"] == "Succeeded");
  Json wvm = vm_named(warm[0], "warm-01");
  CHECK_FALSE(warm[0]["spec"].value("cutover", "").empty());
  CHECK(wvm["warm"]["precopies"].size() >= 2);  // the initial copy and the final one

  // The invalid plan was never started.
  CHECK(migrations_of(c, "bad-plan").empty());
}
