#include "tests/integration/migration/console_http.h"

namespace ferry::test {

std::string ConsoleHttp::error() const {
  Json j = json();
  return j.is_object() && j.contains("error") && j["error"].is_string()
             ? j["error"].get<std::string>()
             : "";
}

std::string first_line(const std::string& path) {
  std::string s = read_file(path);
  s = s.substr(0, s.find('\n'));
  while (!s.empty() && (s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

ConsoleHttp console_request(Cluster& c, const std::string& method, const std::string& path,
                            const std::vector<std::string>& headers, const std::string& body,
                            int seconds) {
  std::string port = first_line(c.dir().file("coordinator.port"));
  std::vector<std::string> argv = {require_program("curl"),
                                   "-s",
                                   "-N",
                                   "--path-as-is",
                                   "-X",
                                   method,
                                   "-w",
                                   "\n%{http_code}",
                                   "--max-time",
                                   std::to_string(seconds)};
  for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
  if (!body.empty()) {
    std::string f = c.dir().file("console-request.json");
    write_file(f, body);
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", "@" + f});
  }
  argv.push_back("http://127.0.0.1:" + port + path);
  Subprocess p(argv, {.log_dir = c.dir().path(), .name = "curl-console"});
  p.wait(std::chrono::seconds(seconds + 10));
  std::string out = p.stdout_text();
  size_t nl = out.rfind('\n');
  ConsoleHttp h;
  if (nl == std::string::npos) return h;
  h.status = std::atoi(out.c_str() + nl + 1);
  h.body = out.substr(0, nl);
  return h;
}

}  // namespace ferry::test
