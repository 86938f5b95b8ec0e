#include "dsp/cpu.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "dsp/kernels.h"

#if defined(LMC_HAVE_X86) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#define LMC_CPUID_GNU 1
#endif

namespace lmc {
namespace dsp {
namespace {

#if defined(LMC_CPUID_GNU)
unsigned long long read_xcr0() {
  unsigned int eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(LMC_CPUID_GNU)
  unsigned int eax, ebx, ecx, edx;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return f;
  const unsigned int max_leaf = eax;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return f;
  f.sse2 = (edx >> 26) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  const bool cpu_avx = (ecx >> 28) & 1;
  const bool cpu_fma = (ecx >> 12) & 1;
  const bool cpu_f16c = (ecx >> 29) & 1;
  unsigned long long xcr0 = 0;
  if (osxsave) xcr0 = read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE + AVX state
  const bool os_zmm = os_ymm && (xcr0 & 0xe0) == 0xe0;  // opmask, ZMM_Hi256, Hi16_ZMM
  f.avx = cpu_avx && os_ymm;
  f.fma = f.avx && cpu_fma;
  f.f16c = f.avx && cpu_f16c;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.avx2 = f.avx && ((ebx >> 5) & 1);
    f.avx512f = os_zmm && ((ebx >> 16) & 1);
    f.avx512dq = f.avx512f && ((ebx >> 17) & 1);
    f.avx512bw = f.avx512f && ((ebx >> 30) & 1);
    f.avx512vl = f.avx512f && ((ebx >> 31) & 1);
  }
#endif
  return f;
}

// The cap the environment asks for (kBestIsa when it asks nothing valid).
int env_cap() {
  const char* v = std::getenv("LMCODEC_FORCE_SCALAR");
  if (v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0) return static_cast<int>(Isa::Scalar);
  Isa isa = kBestIsa;
  const char* k = std::getenv("LMCODEC_KERNELS");
  if (k != nullptr && k[0] != '\0' && !parse_isa(k, &isa)) isa = kBestIsa;
  return static_cast<int>(isa);
}

std::atomic<int>& cap_flag() {
  // -1: not initialised yet (read the environment on first use).
  static std::atomic<int> flag{-1};
  return flag;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

bool parse_isa(const char* name, Isa* out) {
  if (name == nullptr) return false;
  Isa isa;
  if (std::strcmp(name, "scalar") == 0) {
    isa = Isa::Scalar;
  } else if (std::strcmp(name, "simd128") == 0) {
    isa = Isa::Simd128;
  } else if (std::strcmp(name, "avx2") == 0) {
    isa = Isa::Avx2;
  } else if (std::strcmp(name, "avx512") == 0 || std::strcmp(name, "auto") == 0) {
    isa = Isa::Avx512;
  } else {
    return false;
  }
  if (out) *out = isa;
  return true;
}

bool isa_available(Isa isa) {
  static const bool avx2_ok = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.fma && detail::avx2_kernels() != nullptr;
  }();
  static const bool avx512_ok = [] {
    const CpuFeatures& f = cpu_features();
    if (detail::avx512_kernels() == nullptr || !(f.avx2 && f.fma)) return false;
    // test builds (LMCODEC_AVX512_SIMDE): the table emulates AVX-512 on AVX2
    if (detail::avx512_emulated()) return true;
    return f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl;
  }();
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Simd128: return detail::simd128_kernels() != nullptr;  // compiled for it = runs (validated at load)
    case Isa::Avx2: return avx2_ok;
    case Isa::Avx512: return avx512_ok;
  }
  return false;
}

void set_max_isa(Isa cap) { cap_flag().store(static_cast<int>(cap)); }

Isa max_isa() {
  int v = cap_flag().load(std::memory_order_relaxed);
  if (v < 0) {
    int expected = -1;
    cap_flag().compare_exchange_strong(expected, env_cap());
    v = cap_flag().load();
  }
  return static_cast<Isa>(v);
}

void set_force_scalar(bool force) { set_max_isa(force ? Isa::Scalar : kBestIsa); }

bool force_scalar() { return max_isa() == Isa::Scalar; }

Isa active_isa() {
  const int cap = static_cast<int>(max_isa());
  for (int i = cap; i > 0; --i)
    if (isa_available(static_cast<Isa>(i))) return static_cast<Isa>(i);
  return Isa::Scalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Simd128: return "simd128";
    case Isa::Scalar: break;
  }
  return "scalar";
}

const char* active_isa_name() { return isa_name(active_isa()); }

namespace detail {
const KernelTable& active_kernels() {
  switch (active_isa()) {
    case Isa::Avx512: return *avx512_kernels();
    case Isa::Avx2: return *avx2_kernels();
    case Isa::Simd128: return *simd128_kernels();
    case Isa::Scalar: break;
  }
  return scalar_kernels();
}
}  // namespace detail

}  // namespace dsp
}  // namespace lmc
