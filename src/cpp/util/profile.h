// lmcodec core: an opt-in per-stage timer for benchmarks (not part of the C API).
//
// When enabled (profile::enable(true)), the codec records, for every stage
// it runs (each layer of g_a / g_s / h_a / h_s, the entropy coder, the
// shortcut, colour conversion), the wall time and the multiply-adds a direct
// convolution would need. take() returns and clears the totals. Disabled (the
// default), a Scope costs one relaxed atomic load. Recording is meant for the
// calling thread of one encode/decode at a time; totals of concurrent calls
// are merged under a mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace lmc {
namespace profile {

struct Entry {
  std::string name;   // e.g. "decode g_s.2 deconv 128->128 k5 (winograd)"
  int64_t calls = 0;
  double seconds = 0;
  double macs = 0;    // direct-convolution multiply-adds (0 when not a conv)
  int order = 0;      // first-seen order
};

void enable(bool on);
bool enabled();
// The totals since the last take(), in first-seen order; clears them.
std::vector<Entry> take();
void add(const std::string& name, double seconds, double macs);

class Scope {
 public:
  // name is only built when enabled: pass a callable returning std::string.
  template <typename NameFn>
  Scope(bool on, NameFn&& fn, double macs = 0) : on_(on && enabled()) {
    if (on_) {
      name_ = fn();
      macs_ = macs;
      t0_ = std::chrono::steady_clock::now();
    }
  }
  ~Scope() { stop(); }
  // Ends the measurement early (idempotent).
  void stop() {
    if (on_) add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(), macs_);
    on_ = false;
  }
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  bool on_;
  std::string name_;
  double macs_ = 0;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace profile
}  // namespace lmc
