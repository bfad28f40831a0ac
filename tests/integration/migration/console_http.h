#pragma once
// The console API as a test's HTTP client sees it: one request with curl to
// the coordinator's HTTP port (the path sent as written), and the token file
// read back. Shared by the console tests.
#include <string>
#include <vector>

#include "tests/integration/migration/cluster.h"

namespace ferry::test {

struct ConsoleHttp {
  int status = 0;  // 0: no answer within the time allowed
  std::string body;
  Json json() const { return Json::parse(body, nullptr, false); }
  // The refusal's "error" ("" when there is none).
  std::string error() const;
};

// `headers` as "Name: value"; `seconds` bounds the request (an event stream
// is read that long).
ConsoleHttp console_request(Cluster& c, const std::string& method, const std::string& path,
                            const std::vector<std::string>& headers, const std::string& body = "",
                            int seconds = 15);

// A file's first line without its line end (a token file, a port file).
std::string first_line(const std::string& path);

}  // namespace ferry::test
