#pragma once
// Reads a command line: "--name value" and "--name=value" (the form
// Kubernetes manifests use, e.g. --connections=$(FERRY_AGENT_CONNECTIONS)).
//
//   ArgReader args(argc, argv);
//   try {
//     while (args.next()) {
//       if (args.name() == "--node") o.node = args.value();
//       else if (args.name() == "--max-tasks") o.max_tasks = args.number<int>();
//       ...
//     }
//   } catch (const ArgError& e) { std::cerr << "prog: " << e.what() << "\n"; return 2; }
//
// value() and number() throw ArgError naming the flag: "--node needs a value",
// "--max-tasks: not a valid number".
#include <charconv>
#include <optional>
#include <stdexcept>
#include <string>

namespace ferry {

class ArgError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

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
  std::string value() {
    if (inline_) {
      std::string v = *inline_;
      inline_.reset();
      return v;
    }
    if (i_ + 1 >= argc_) throw ArgError(name_ + " needs a value");
    return std::string(argv_[++i_]);
  }

  // The flag's value as a whole decimal number that fits T (no sign for unsigned T).
  template <typename T>
  T number() {
    std::string v = value();
    T out{};
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size())
      throw ArgError(name_ + ": not a valid number");
    return out;
  }

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string name_;
  std::optional<std::string> inline_;
};

}  // namespace ferry
