// Status and Result<T>: errors as values.
//
// A Status is either OK or a (code, message) pair. Messages are for people and
// logs: they must never contain a key, plaintext, an address or an identifier.
// Thread-safety: immutable after construction; safe to share between threads.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace haven {

class [[nodiscard]] Status {
 public:
  // Stable: values are logged and mapped to wire/C ABI codes elsewhere.
  enum class Code : int {
    kOk = 0,
    kInvalidArgument = 1,     // the caller passed something malformed
    kNotFound = 2,            // a file or record does not exist
    kPermissionDenied = 3,    // file modes, roles
    kFailedPrecondition = 4,  // called in the wrong state
    kDataLoss = 5,            // authentication failed, data corrupt
    kResourceExhausted = 6,   // a bound was reached
    kUnavailable = 7,         // peer or I/O failure, may succeed later
    kDeadlineExceeded = 8,
    kInternal = 9,
    kCancelled = 10,
  };

  Status() = default;  // OK

  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view msg) { return {Code::kInvalidArgument, msg}; }
  static Status NotFound(std::string_view msg) { return {Code::kNotFound, msg}; }
  static Status PermissionDenied(std::string_view msg) { return {Code::kPermissionDenied, msg}; }
  static Status FailedPrecondition(std::string_view msg) { return {Code::kFailedPrecondition, msg}; }
  static Status DataLoss(std::string_view msg) { return {Code::kDataLoss, msg}; }
  static Status ResourceExhausted(std::string_view msg) { return {Code::kResourceExhausted, msg}; }
  static Status Unavailable(std::string_view msg) { return {Code::kUnavailable, msg}; }
  static Status DeadlineExceeded(std::string_view msg) { return {Code::kDeadlineExceeded, msg}; }
  static Status Internal(std::string_view msg) { return {Code::kInternal, msg}; }
  static Status Cancelled(std::string_view msg) { return {Code::kCancelled, msg}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "InvalidArgument: <message>", or "OK".
  std::string ToString() const;

  // Returns a copy whose message is "<context>: <message>".
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}

  Code code_ = Code::kOk;
  std::string message_;
};

std::string_view CodeName(Status::Code code);

// Result<T> holds a T or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(v_).ok() && "Result built from an OK Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace haven

// Propagates a non-OK Status from an expression returning Status.
#define HAVEN_RETURN_IF_ERROR(expr)              \
  do {                                           \
    ::haven::Status haven_status_ = (expr);      \
    if (!haven_status_.ok()) return haven_status_; \
  } while (0)

#define HAVEN_CONCAT_INNER(a, b) a##b
#define HAVEN_CONCAT(a, b) HAVEN_CONCAT_INNER(a, b)
// Declares `lhs` from a Result-returning expression or returns its Status.
#define HAVEN_ASSIGN_OR_RETURN(lhs, expr)                              \
  auto HAVEN_CONCAT(haven_result_, __LINE__) = (expr);                 \
  if (!HAVEN_CONCAT(haven_result_, __LINE__).ok())                     \
    return HAVEN_CONCAT(haven_result_, __LINE__).status();             \
  lhs = std::move(HAVEN_CONCAT(haven_result_, __LINE__)).value()
