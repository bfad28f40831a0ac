#pragma once
// Reads a daemon's command line: "--name value" and "--name=value" (the form
// Kubernetes manifests use, e.g. --connections=$(FERRY_AGENT_CONNECTIONS)).
//
//   ArgReader args(argc, argv);
//   while (args.next()) {
//     if (args.name() == "--node") o.node = args.value().value_or("");
//     ...
//   }
// value() is nullopt when a flag has none (no '=' and it is the last argument).
#include <optional>
#include <string>

namespace ferry {

class ArgReader {
 public:
  ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Advances to the next argument; false at the end.
  bool next() {
    if (++i_ >= argc_) return false;
    name_ = argv_[i_];
    inline_.reset();
    if (name_.rfind("--", 0) == 0) {
      auto eq = name_.find('=');
      if (eq != std::string::npos) {
        inline_ = name_.substr(eq + 1);
        name_.resize(eq);
      }
    }
    return true;
  }
  const std::string& name() const { return name_; }

  // The flag's value: after '=' or the next argument.
  std::optional<std::string> value() {
    if (inline_) {
      std::string v = *inline_;
      inline_.reset();
      return v;
    }
    if (i_ + 1 >= argc_) return std::nullopt;
    return std::string(argv_[++i_]);
  }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string name_;
  std::optional<std::string> inline_;
};

}  // namespace ferry
