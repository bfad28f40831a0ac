#include <catch2/catch.hpp>

#include <vector>

#include "common/base/args.h"

using ferry::ArgReader;

namespace {
std::vector<std::pair<std::string, std::string>> read_all(std::vector<std::string> argv) {
  std::vector<char*> ptrs;
  for (auto& a : argv) ptrs.push_back(a.data());
  ArgReader args(static_cast<int>(ptrs.size()), ptrs.data());
  std::vector<std::pair<std::string, std::string>> out;
  while (args.next()) {
    std::string name = args.name();
    if (name == "--help") {
      out.emplace_back(name, "");
      continue;
    }
    try {
      out.emplace_back(name, args.value());
    } catch (const ferry::ArgError& e) {
      CHECK(std::string(e.what()) == name + " needs a value");
      out.emplace_back(name, "<none>");
    }
  }
  return out;
}
}  // namespace

TEST_CASE("ArgReader: --name value and --name=value read the same", "[args]") {
  using P = std::vector<std::pair<std::string, std::string>>;
  CHECK(
      read_all({"ferry-agent", "--node", "n1", "--connections=4", "--help", "--max-tasks", "2"}) ==
      P{{"--node", "n1"}, {"--connections", "4"}, {"--help", ""}, {"--max-tasks", "2"}});
  // Only the first '=' splits; an empty value stays a value; a value may start with "--".
  CHECK(read_all({"x", "--conversion-env=A=B", "--bandwidth=", "--nats", "--x=y"}) ==
        P{{"--conversion-env", "A=B"}, {"--bandwidth", ""}, {"--nats", "--x=y"}});
  // A single-dash or positional argument is not split.
  CHECK(read_all({"x", "-v=1", "copy"}) == P{{"-v=1", "copy"}});
  // Missing value at the end.
  CHECK(read_all({"x", "--node"}) == P{{"--node", "<none>"}});
}
