#include "util/error.h"

namespace lmc {

const char* status_name(Status s) noexcept {
  switch (s) {
    case Status::Ok: return "ok";
    case Status::InvalidArgument: return "invalid argument";
    case Status::CorruptStream: return "corrupt stream";
    case Status::Unsupported: return "unsupported";
    case Status::LimitExceeded: return "limit exceeded";
    case Status::ModelMismatch: return "model mismatch";
    case Status::OutOfMemory: return "out of memory";
    case Status::Internal: return "internal error";
    case Status::Cancelled: return "cancelled";
  }
  return "unknown";
}

}  // namespace lmc
