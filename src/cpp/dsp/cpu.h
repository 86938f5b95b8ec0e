// lmcodec dsp: CPU feature detection and run-time kernel dispatch.
//
// Pattern (after libwebp's dsp/): every kernel has a portable C++ reference
// implementation (compiled without SIMD flags) and SIMD versions in files
// named *_avx2.cc / *_avx512.cc that are the only ones compiled with those
// ISA flags. The best implementation is picked at run time from cpuid/xgetbv:
//
//   * cpu_features()        what this CPU + OS support (cached on first use);
//   * paths, best first: avx512 (F+BW+DQ+VL), avx2 (AVX2+FMA), simd128
//     (WebAssembly SIMD128, conv_wasm.cc: built in, and then always
//     available, only when the whole build targets it, em++ -msimd128),
//     scalar;
//   * set_max_isa(isa) caps the choice (the best available path not above
//     it); in the environment, read once on first use:
//       LMCODEC_KERNELS=scalar|avx2|avx512|auto   the same cap,
//       LMCODEC_FORCE_SCALAR=1                    the cap scalar (wins);
//     set_force_scalar(true / false) = set_max_isa(Scalar / the best);
//   * active_isa() / active_isa_name() tell which path the kernels use now.
//
// Every kernel, integer and float, gives bit-identical results on every path:
// the portable float kernels perform the SIMD ones' exact sequence of IEEE
// operations (std::fma where AVX2 / AVX-512 use FMA, same summation order,
// true divisions), so the path changes speed, never a stream or a decoded
// pixel.
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
  bool avx512bw = false;
  bool avx512dq = false;
  bool avx512vl = false;
};

// Detected once (thread-safe), then cached.
const CpuFeatures& cpu_features();

// In rank order (a cap admits the paths not above it). Simd128 only exists in
// WebAssembly builds and the x86 paths only in native ones, so on each target
// the order is the usual "vector width": scalar < simd128 / avx2 < avx512.
enum class Isa : int { Scalar = 0, Simd128 = 1, Avx2 = 2, Avx512 = 3 };
constexpr Isa kBestIsa = Isa::Avx512;

// Whether a path can run here: built into this library and supported by this
// CPU and OS. Scalar always can.
bool isa_available(Isa isa);

// Cap the kernel path (process-wide, thread-safe; takes effect for kernel
// calls that start afterwards): the best available path not above cap.
// set_max_isa(kBestIsa) is the automatic choice (it also overrides the
// environment variables).
void set_max_isa(Isa cap);
Isa max_isa();

// set_max_isa(Isa::Scalar) (true) or set_max_isa(kBestIsa) (false).
void set_force_scalar(bool force);
bool force_scalar();  // max_isa() == Isa::Scalar

// The implementation the kernels use now.
Isa active_isa();
const char* isa_name(Isa isa);       // "scalar", "simd128", "avx2", "avx512"
const char* active_isa_name();       // isa_name(active_isa())
// Parses a path name ("scalar", "simd128", "avx2", "avx512"; "auto" = kBestIsa). False
// for anything else.
bool parse_isa(const char* name, Isa* out);

}  // namespace dsp
}  // namespace lmc
