// lmcodec core: error type shared by every component.
//
// Every failure inside the core is reported by throwing lmc::Error with one
// of the Status codes below. The C API (include/lmcodec.h) turns it into an
// error code + message; the Python binding turns it into lmcodec.LmcError.
// Nothing else may escape the core: std::bad_alloc is caught at the API
// boundary and reported as Status::OutOfMemory.
#pragma once

#include <stdexcept>
#include <string>

namespace lmc {

enum class Status : int {
  Ok = 0,
  InvalidArgument = 1,   // misuse by the caller (bad shape, bad quality, ...)
  CorruptStream = 2,     // malformed, truncated or bit-flipped input
  Unsupported = 3,       // valid but not supported by this build/version
  LimitExceeded = 4,     // image or chunk larger than the configured limits
  ModelMismatch = 5,     // stream made with other weights
  OutOfMemory = 6,
  Internal = 7,
  Cancelled = 8,         // a progress callback asked to stop
};

const char* status_name(Status s) noexcept;

class Error : public std::runtime_error {
 public:
  Error(Status code, const std::string& msg) : std::runtime_error(msg), code_(code) {}
  Status code() const noexcept { return code_; }

 private:
  Status code_;
};

[[noreturn]] inline void fail(Status code, const std::string& msg) { throw Error(code, msg); }

#define LMC_CHECK(cond, code, msg)           \
  do {                                       \
    if (!(cond)) ::lmc::fail((code), (msg)); \
  } while (0)

}  // namespace lmc
