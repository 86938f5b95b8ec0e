// lmcodec WebAssembly glue: the per-stage profiler (src/cpp/util/profile.h) for
// benchmarks/wasm_decode.py --profile (web/lmcodec.mjs: profile()). Built by tools/build_wasm.sh.
#include <emscripten/emscripten.h>

#include <cstdio>
#include <string>

#include "util/profile.h"

extern "C" {

// Turns recording on (1) or off (0).
EMSCRIPTEN_KEEPALIVE void lmcw_profile_enable(int on) { lmc::profile::enable(on != 0); }

// The totals since the last call as lines "seconds<TAB>calls<TAB>name", then
// clears them. The string stays valid until the next call.
EMSCRIPTEN_KEEPALIVE const char* lmcw_profile_take(void) {
  static std::string out;
  out.clear();
  char buf[64];
  for (const lmc::profile::Entry& e : lmc::profile::take()) {
    std::snprintf(buf, sizeof buf, "%.6f\t%lld\t", e.seconds, static_cast<long long>(e.calls));
    out += buf;
    out += e.name;
    out += '\n';
  }
  return out.c_str();
}
}
