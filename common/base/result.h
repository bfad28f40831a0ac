#pragma once
// Result<T>: a value or an Error. Expected failures (network, provider, NBD I/O,
// bad messages, bad manifests) travel as Result; exceptions are only used at
// start-up and config parsing.
#include <string>
#include <utility>
#include <variant>

namespace ferry {

// Stable error codes: they cross the wire (protocol and API), so never renumber.
enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // bad input from a user or a peer
  kNotFound = 2,
  kAlreadyExists = 3,
  kFailedPrecondition = 4,  // e.g. a second Migration of a running Plan
  kUnavailable = 5,         // peer unreachable; retrying may help
  kPermissionDenied = 6,    // wrong password, wrong thumbprint
  kIo = 7,                  // disk or NBD I/O
  kNoSpace = 8,             // ENOSPC on a target
  kCanceled = 9,
  kTimeout = 10,
  kDataMismatch = 11,  // verification failed
  kInternal = 12,
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;  // human readable; names the resource and field where one applies

  Error() = default;
  Error(ErrorCode c, std::string m) : code(c), message(std::move(m)) {}
  // Prefixes context ("reading disk 2: ") to the message.
  Error wrap(const std::string& context) const { return Error(code, context + ": " + message); }
  std::string to_string() const { return std::string(error_code_name(code)) + ": " + message; }
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}
  Result(Error error) : v_(std::move(error)) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

inline Error make_error(ErrorCode code, std::string message) {
  return Error(code, std::move(message));
}

}  // namespace ferry

// Returns the error of a failed Result from the enclosing function.
#define FERRY_TRY(expr)                                  \
  do {                                                   \
    auto&& ferry_try_r_ = (expr);                        \
    if (!ferry_try_r_.ok()) return ferry_try_r_.error(); \
  } while (0)
