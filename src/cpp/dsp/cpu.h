// lmcodec dsp: CPU feature detection and run-time kernel dispatch.
//
// Pattern (after libwebp's dsp/): every kernel has a portable C++ reference
// implementation (compiled without SIMD flags) and optional SIMD versions in
// files named *_avx2.cc that are the only ones compiled with -mavx2 -mfma.
// The best implementation is picked at run time from cpuid/xgetbv:
//
//   * cpu_features()        what this CPU + OS support (cached on first use);
//   * LMCODEC_FORCE_SCALAR=1 in the environment (read once, on first use) or
//     set_force_scalar(true) forces the portable reference path;
//   * active_isa() / active_isa_name() tell which path the kernels use now.
//
// Every kernel, integer and float, gives bit-identical results on every path:
// the portable float kernels perform the AVX2 ones' exact sequence of IEEE
// operations (std::fma where AVX2 uses FMA, same summation order, true
// divisions), so forcing the scalar path changes speed, never a stream or a
// decoded pixel.
#pragma once

namespace lmc {
namespace dsp {

struct CpuFeatures {
  bool sse2 = false;
  bool avx = false;      // CPU + OS (XSAVE of YMM state)
  bool avx2 = false;
  bool fma = false;
  bool f16c = false;
  bool avx512f = false;  // CPU + OS (XSAVE of ZMM/opmask state)
};

// Detected once (thread-safe), then cached.
const CpuFeatures& cpu_features();

enum class Isa : int { Scalar = 0, Avx2 = 1 };

// Force the portable scalar path (true), or select automatically (false; this
// also overrides LMCODEC_FORCE_SCALAR). Thread-safe; takes effect for kernel
// calls that start afterwards.
void set_force_scalar(bool force);
bool force_scalar();

// The implementation the kernels will use now: Avx2 when the library was
// built with the AVX2 kernels, the CPU/OS support AVX2+FMA and scalar is not
// forced; Scalar otherwise.
Isa active_isa();
const char* isa_name(Isa isa);       // "scalar", "avx2"
const char* active_isa_name();       // isa_name(active_isa())

}  // namespace dsp
}  // namespace lmc
