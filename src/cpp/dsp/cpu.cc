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
  }
#endif
  return f;
}

bool env_force_scalar() {
  const char* v = std::getenv("LMCODEC_FORCE_SCALAR");
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

std::atomic<int>& force_flag() {
  // -1: not initialised yet (read the environment on first use).
  static std::atomic<int> flag{-1};
  return flag;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

void set_force_scalar(bool force) { force_flag().store(force ? 1 : 0); }

bool force_scalar() {
  int v = force_flag().load(std::memory_order_relaxed);
  if (v < 0) {
    int expected = -1;
    force_flag().compare_exchange_strong(expected, env_force_scalar() ? 1 : 0);
    v = force_flag().load();
  }
  return v == 1;
}

Isa active_isa() {
  static const bool avx2_ok = [] {
    const CpuFeatures& f = cpu_features();
    return f.avx2 && f.fma && detail::avx2_kernels() != nullptr;
  }();
  return (avx2_ok && !force_scalar()) ? Isa::Avx2 : Isa::Scalar;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2: return "avx2";
    case Isa::Scalar: break;
  }
  return "scalar";
}

const char* active_isa_name() { return isa_name(active_isa()); }

namespace detail {
const KernelTable& active_kernels() {
  return active_isa() == Isa::Avx2 ? *avx2_kernels() : scalar_kernels();
}
}  // namespace detail

}  // namespace dsp
}  // namespace lmc
