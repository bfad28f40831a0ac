// The console's HTTP API on the coordinator's HTTP port, against a real
// coordinator, agent, nats-server and the vSphere simulator, driven with
// curl: ferryctl's verbs with a Bearer token, refusals that store nothing,
// and the Migrations' status as server-sent events while one runs.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>

#include "tests/integration/migration/console_http.h"

using namespace ferry::test;
using namespace std::chrono_literals;

namespace {

Json apply_body(const std::string& file) {
  return {{"files", {{{"name", file}, {"text", read_file(file)}}}}};
}

}  // namespace

TEST_CASE("console API: ferryctl's verbs over HTTP with a Bearer token, progress as events",
          "[e2e][console]") {
  Cluster c({{.name = "con-01", .disk_mib = 32, .data_mib = 4}});
  std::string token_file = c.dir().file("console.token");
  // A stand-in for the built app (console/ builds the real one): the server's
  // file handling is what this test is about.
  std::string app = c.dir().file("app");
  std::filesystem::create_directories(app + "/assets");
  write_file(app + "/index.html", "<!doctype html><title>console</title>");
  write_file(app + "/assets/index-abc123.js", "console.log(1)");
  write_file(app + "/.hidden", "hidden file");
  write_file(app + "/assets/.hidden", "hidden file");
  write_file(c.dir().file("secret.txt"), "not for the web");
  c.start_coordinator({"--console-token-file", token_file, "--console-dir", app});
  c.start_agent("node-1", {"--bandwidth", std::to_string(1 << 20)});
  std::string token = first_line(token_file);
  CHECK(token.size() == 64);
  struct stat st {};
  REQUIRE(::stat(token_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(read_file(c.dir().file("coordinator.stdout")).find("token: " + token) != std::string::npos);
  const std::string auth = "Authorization: Bearer " + token;
  std::string plan = apply_body(c.write_manifests("p", {"con-01"})).dump();

  SECTION("refusals name what is wrong and store nothing") {
    ConsoleHttp none = console_request(c, "POST", "/api/v1/apply", {}, plan);
    CHECK(none.status == 401);
    CHECK(none.json()["error"].get<std::string>().find("a Bearer token is required") !=
          std::string::npos);
    ConsoleHttp wrong = console_request(c, "POST", "/api/v1/apply",
                                        {"Authorization: Bearer " + std::string(64, 'a')}, plan);
    CHECK(wrong.status == 401);
    CHECK(wrong.json()["error"] == "Authorization: the token is not this coordinator's");
    // A page on another site, even with the token (it cannot have it, but
    // a rebound DNS name could): refused by its Origin.
    ConsoleHttp foreign =
        console_request(c, "POST", "/api/v1/apply", {auth, "Origin: http://evil.example"}, plan);
    CHECK(foreign.status == 403);
    CHECK(foreign.json()["code"] == "permission_denied");
    CHECK(c.listed("plan") == 0);
    CHECK(c.listed("provider") == 0);
    // Bad requests: the verb's field, as ferryctl gets it.
    ConsoleHttp bad = console_request(c, "POST", "/api/v1/get", {auth}, R"({"kind":"spaceship"})");
    CHECK(bad.status == 400);
    CHECK(bad.json()["field"] == "kind");
    ConsoleHttp garbage = console_request(c, "POST", "/api/v1/apply", {auth}, "{not json");
    CHECK(garbage.status == 400);
    ConsoleHttp verb = console_request(c, "POST", "/api/v1/launch", {auth}, "{}");
    CHECK(verb.status == 400);
    CHECK(verb.json()["error"].get<std::string>().find("launch") != std::string::npos);
    CHECK(console_request(c, "GET", "/api/v1/status", {auth}).status == 405);
    CHECK(
        console_request(c, "POST", "/api/v1/part", {auth}, R"({"replyId":"x","part":0})").status ==
        404);
    CHECK(c.listed("plan") == 0);
  }

  SECTION("a dry run checks as apply does and stores nothing") {
    Json dry = Json::parse(plan);
    dry["dryRun"] = true;
    ConsoleHttp ok = console_request(c, "POST", "/api/v1/apply", {auth}, dry.dump());
    INFO(ok.body);
    REQUIRE(ok.status == 200);
    CHECK(ok.json()["dryRun"] == true);
    CHECK(ok.json()["applied"].size() == 6);  // Secret, 2 Providers, 2 maps, Plan
    CHECK(c.listed("plan") == 0);
    CHECK(c.listed("provider") == 0);
    // The same refusal an apply gets: here the vCenter password is wrong.
    Json bad = Json::parse(apply_body(c.write_manifests("p", {"con-01"})).dump());
    std::string text = bad["files"][0]["text"];
    text.replace(text.find("ferry-sim-pass"), 14, "wrong-password");
    bad["files"][0]["text"] = text;
    bad["dryRun"] = true;
    ConsoleHttp refused = console_request(c, "POST", "/api/v1/apply", {auth}, bad.dump());
    CHECK(refused.status == 400);
    CHECK(refused.json()["error"].get<std::string>().find("password") != std::string::npos);
    bad["dryRun"] = false;
    ConsoleHttp applied = console_request(c, "POST", "/api/v1/apply", {auth}, bad.dump());
    CHECK(applied.json()["error"] == refused.json()["error"]);
    CHECK(c.listed("provider") == 0);
  }

  SECTION("the console app's files are served without a token, and only they") {
    ConsoleHttp index = console_request(c, "GET", "/console/", {});
    CHECK(index.status == 200);
    CHECK(index.body.find("<title>console</title>") != std::string::npos);
    CHECK(console_request(c, "GET", "/console/assets/index-abc123.js", {}).body ==
          "console.log(1)");
    // The app's own routes get its index.html.
    CHECK(console_request(c, "GET", "/console/plans/openshift-mtv/p", {}).body == index.body);
    // Nothing outside its folder, however the path is spelt.
    for (const char* p : {"/console/../secret.txt", "/console/%2e%2e/secret.txt",
                          "/console/assets/../../secret.txt", "/console/..%2fsecret.txt"}) {
      ConsoleHttp h = console_request(c, "GET", p, {});
      INFO(p);
      CHECK(h.status != 0);  // answered
      CHECK(h.body.find("not for the web") == std::string::npos);
    }
    // A hidden file in the app's folder is not served either: the app's
    // index.html comes instead.
    for (const char* p : {"/console/.hidden", "/console/assets/.hidden"}) {
      ConsoleHttp h = console_request(c, "GET", p, {});
      INFO(p);
      CHECK(h.status == 200);
      CHECK(h.body == index.body);
    }
    CHECK(console_request(c, "POST", "/console/", {}, "{}").status == 405);
  }

  SECTION("at most four event streams at once, so the HTTP port keeps threads for the rest") {
    std::string port = first_line(c.dir().file("coordinator.port"));
    std::vector<std::unique_ptr<Subprocess>> open;
    for (int i = 0; i < 4; i++)
      open.push_back(std::make_unique<Subprocess>(
          std::vector<std::string>{require_program("curl"), "-s", "-N", "--max-time", "8", "-H",
                                   auth, "http://127.0.0.1:" + port + "/api/v1/events"},
          SubprocessOptions{.log_dir = c.dir().path(), .name = "stream-" + std::to_string(i)}));
    // Each stream's first event says it is open.
    REQUIRE(eventually(5s, [&] {
      for (auto& p : open)
        if (p->stdout_text().find("event: migrations") == std::string::npos) return false;
      return true;
    }));
    ConsoleHttp fifth = console_request(c, "GET", "/api/v1/events", {auth}, "", 2);
    CHECK(fifth.status == 503);
    CHECK(fifth.error().find("4 event streams are open already") != std::string::npos);
    CHECK(console_request(c, "POST", "/api/v1/status", {auth}, "{}").status == 200);
    CHECK(c.http_get("coordinator", "/healthz").find("ok") != std::string::npos);
    // Closed streams are noticed at the next write (5 s at most) and free their slot.
    for (auto& p : open) p->kill();
    CHECK(eventually(
        15s,
        [&] { return console_request(c, "GET", "/api/v1/events", {auth}, "", 1).status == 200; },
        500ms));
  }

  SECTION("apply, get and a migration followed on the event stream") {
    ConsoleHttp applied = console_request(c, "POST", "/api/v1/apply", {auth}, plan);
    INFO(applied.body);
    REQUIRE(applied.status == 200);
    CHECK(applied.json()["ok"] == true);
    ConsoleHttp plans = console_request(c, "POST", "/api/v1/get", {auth}, R"({"kind":"plan"})");
    REQUIRE(plans.status == 200);
    CHECK(plans.body.find("\"name\":\"p\"") != std::string::npos);
    // The same resource through ferryctl: one API.
    CHECK(c.listed("plan") == 1);
    REQUIRE(console_request(c, "POST", "/api/v1/apply", {auth},
                            apply_body(c.write_migration("m", "p")).dump())
                .status == 200);
    // Read the stream for a while as the copy (1 MiB/s) goes on: the
    // Migration's status comes at once, and again each time it changes.
    ConsoleHttp events = console_request(c, "GET", "/api/v1/events", {auth}, "", 6);
    CHECK(events.status == 200);
    const std::string head = "event: migrations\ndata: ";
    std::vector<Json> seen;
    for (size_t at = events.body.find(head); at != std::string::npos;
         at = events.body.find(head, at + 1)) {
      size_t from = at + head.size();
      seen.push_back(Json::parse(events.body.substr(from, events.body.find('\n', from) - from),
                                 nullptr, false));
    }
    INFO(events.body.substr(0, 2000));
    REQUIRE(seen.size() >= 2);
    CHECK(seen[0]["ok"] == true);
    CHECK(seen[0].dump().find("\"name\":\"m\"") != std::string::npos);
    CHECK(seen.front() != seen.back());
    REQUIRE(wait_migration(c, "m", 120) == "Succeeded");
    ConsoleHttp after = console_request(c, "GET", "/api/v1/events", {auth}, "", 2);
    CHECK(after.body.find("Succeeded") != std::string::npos);
    // Without the token, no stream.
    CHECK(console_request(c, "GET", "/api/v1/events", {}, "", 3).status == 401);
  }
}
