// lmcodec dsp: AVX-512 kernels (F + BW + DQ + VL, the "x86-64-v4" set; this
// file alone is compiled with those flags and is only called after
// cpu_features() said yes).
//
// Same structure as conv_avx2.cc, twice the lanes and twice the registers:
//   * direct float conv: kMR (4) output channels x 48 pixels (3 zmm per
//     channel: 12 accumulators + 3 inputs + 1 broadcast of 32 registers);
//     the 3-channel variant runs 3 x 48;
//   * int16 conv: 4 x 48 pixels with vpmaddwd + vpaddd (wrap-around, the
//     exact mod-2^32 sum of the reference); 17 registers, no spills with 32;
//   * Winograd: a tile's 24 blocks are one zmm + one ymm (the VL forms);
//   * dense GEMM (block transforms): 4 rows x 48 columns, masked tails (AVX-512
//     masked loads suppress faults on the lanes they skip).
// Every float operation is the one the portable reference (conv.cc) performs
// for that element, in the same order (fused multiply-adds as FMA, true
// divisions), so the bits equal the scalar and AVX2 paths'. Only unaligned
// load/store forms are used: nothing here may fault on a 64-byte boundary
// the buffers do not promise (tests/test_cpp_units.py checks the source).
//
// Verification: no machine this project runs on exposes AVX-512, so the
// C++ tests also build this file against SIMDe's portable AVX-512
// implementation (CMake option LMCODEC_AVX512_SIMDE; LMC_AVX512_SIMDE below)
// and run every scalar == SIMD check on it. That proves the lane logic
// (indices, masks, tails, widths); it does not measure speed.
//
// As in conv_avx2.cc: no headers with inline functions shared with portable
// code; conv_tile.h is in an anonymous namespace.
#include "dsp/kernels.h"

#if defined(LMC_HAVE_X86) &&                                                                                     \
    ((defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) &&       \
      defined(__FMA__)) ||                                                                                       \
     (defined(LMC_AVX512_SIMDE) && defined(__AVX2__) && defined(__FMA__)))

#if defined(__GNUC__) && !defined(__clang__)
// GCC 12's avx512fintrin.h trips its own -Wmaybe-uninitialized (the
// _mm512_undefined_* idiom; GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#if defined(LMC_AVX512_SIMDE)
// Test builds only: the AVX-512 intrinsics emulated on AVX2 by SIMDe (exact
// per-lane semantics; its FMAs are the native fused ones under -mfma).
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
// SIMDe 0.7.4's alias for this one takes the masked form's 4 arguments
#undef _mm512_madd_epi16
#define _mm512_madd_epi16(a, b) simde_mm512_madd_epi16(a, b)
#endif
#include <immintrin.h>

#include <cstring>

#if defined(LMC_AVX512_SIMDE)
// ... and it has no masked unaligned loads / stores: these follow the
// instructions' definition lane by lane (a clear bit: lane neither read nor
// written; zero-masked loads give 0 there).
namespace {
inline simde__m512 lmc_emu_maskz_loadu_ps(simde__mmask16 k, const void* p) {
  float t[16];
  for (int i = 0; i < 16; ++i) t[i] = ((k >> i) & 1) ? static_cast<const float*>(p)[i] : 0.0f;
  return simde_mm512_loadu_ps(t);
}
inline void lmc_emu_mask_storeu_ps(void* p, simde__mmask16 k, simde__m512 v) {
  float t[16];
  simde_mm512_storeu_ps(t, v);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) static_cast<float*>(p)[i] = t[i];
}
inline void lmc_emu_mask_storeu_epi32(void* p, simde__mmask16 k, simde__m512i v) {
  int32_t t[16];
  simde_mm512_storeu_si512(t, v);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) static_cast<int32_t*>(p)[i] = t[i];
}
// (and no 32-bit arithmetic shifts by a register count)
inline simde__m512i lmc_emu_sra_epi32(simde__m512i a, __m128i count) {
  const long long c64 = _mm_cvtsi128_si64(count);
  const int c = c64 < 0 || c64 > 31 ? 31 : static_cast<int>(c64);  // larger counts fill with the sign
  int32_t t[16];
  simde_mm512_storeu_si512(t, a);
  for (int i = 0; i < 16; ++i) t[i] = t[i] >= 0 ? (t[i] >> c) : ~((~t[i]) >> c);
  return simde_mm512_loadu_si512(t);
}
}  // namespace
#define _mm512_sra_epi32 lmc_emu_sra_epi32
#define _mm512_maskz_loadu_ps lmc_emu_maskz_loadu_ps
#define _mm512_mask_storeu_ps lmc_emu_mask_storeu_ps
#define _mm512_mask_storeu_epi32 lmc_emu_mask_storeu_epi32
#endif

#include "dsp/conv_tile.h"

namespace lmc {
namespace dsp {
namespace detail {
namespace {

inline __attribute__((always_inline)) __mmask16 lane_mask(int n) {
  return n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (n < 0 ? 0 : n)) - 1u);
}

template <int NV>
struct Avx512Micro {
  static constexpr int NR = 16 * NV;

  // (channel, tap) loops: for_taps (conv_tile.h), as in conv_avx2.cc
  static void f32(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                  int64_t as) {
    __m512 c[kMR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[m][v] = _mm512_loadu_ps(acc + m * as + 16 * v);
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const float* x = in + ci * cs + offs[t];
      __m512 xv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) xv[v] = _mm512_loadu_ps(x + 16 * v);
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m) {
        const __m512 b = _mm512_set1_ps(w[m]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) c[m][v] = _mm512_fmadd_ps(b, xv[v], c[m][v]);
      }
      w += kMR;
    });
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm512_storeu_ps(acc + m * as + 16 * v, c[m][v]);
  }

  // 3 output channels x 48 pixels (the codec's last layer): 9 accumulators.
  static constexpr int NR3 = 48;
  static void f32_mr3(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                      int64_t as) {
    __m512 c[3][3];
#pragma GCC unroll 3
    for (int m = 0; m < 3; ++m)
#pragma GCC unroll 3
      for (int v = 0; v < 3; ++v) c[m][v] = _mm512_loadu_ps(acc + m * as + 16 * v);
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const float* x = in + ci * cs + offs[t];
      const __m512 b0 = _mm512_set1_ps(w[0]), b1 = _mm512_set1_ps(w[1]), b2 = _mm512_set1_ps(w[2]);
#pragma GCC unroll 3
      for (int v = 0; v < 3; ++v) {
        const __m512 xv = _mm512_loadu_ps(x + 16 * v);
        c[0][v] = _mm512_fmadd_ps(b0, xv, c[0][v]);
        c[1][v] = _mm512_fmadd_ps(b1, xv, c[1][v]);
        c[2][v] = _mm512_fmadd_ps(b2, xv, c[2][v]);
      }
      w += 3;
    });
#pragma GCC unroll 3
    for (int m = 0; m < 3; ++m)
#pragma GCC unroll 3
      for (int v = 0; v < 3; ++v) _mm512_storeu_ps(acc + m * as + 16 * v, c[m][v]);
  }

  static void i16(const int16_t* in, int64_t cs, const int* offs, int nt, int nc, const int16_t* w, uint32_t* acc,
                  int64_t as) {
    __m512i c[kMR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[m][v] = _mm512_loadu_si512(acc + m * as + 16 * v);
    for (int ci = 0; ci < nc; ++ci) {
      const int16_t* ip = in + 2 * ci * cs;
      for (int t = 0; t < nt; ++t) {
        const int16_t* x = ip + 2 * (int64_t)offs[t];
        __m512i xv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) xv[v] = _mm512_loadu_si512(x + 32 * v);
#pragma GCC unroll 4
        for (int m = 0; m < kMR; ++m) {
          int32_t pair;
          std::memcpy(&pair, w + 2 * m, sizeof(pair));
          const __m512i b = _mm512_set1_epi32(pair);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) c[m][v] = _mm512_add_epi32(c[m][v], _mm512_madd_epi16(xv[v], b));
        }
        w += 2 * kMR;
      }
    }
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm512_storeu_si512(acc + m * as + 16 * v, c[m][v]);
  }

  // One channel's kWinoBlocks (24) floats: a zmm (0..15) and a ymm (16..23).
  static void wino_input(float* v, const float* in, int64_t cs, int nc, const WinoComp* comps, int ncomp,
                         const int* rows, int nrows) {
    static_assert(kWinoBlocks == 24, "one zmm + one ymm per channel");
    constexpr int kAhead = 2;
    for (int ci = 0; ci < nc; ++ci) {
      const float* ip = in + ci * cs;
      if (ci + kAhead < nc) {
        const char* pf = reinterpret_cast<const char*>(ip + kAhead * cs);
        for (int r = 0; r < nrows; ++r) {
          const char* rp = pf + 4 * (int64_t)rows[r];
          _mm_prefetch(rp, _MM_HINT_T0);
          _mm_prefetch(rp + 64, _MM_HINT_T0);
          _mm_prefetch(rp + 4 * kWinoBlocks, _MM_HINT_T0);
        }
      }
      // 4 components at a time (8 chains); per component a multiply, then
      // fused multiply-adds in term order, as the portable path.
      int cc = 0;
      for (; cc + 4 <= ncomp; cc += 4) {
        const WinoComp* c = comps + cc;
        __m512 a[4];
        __m256 b[4];
        int kmax = 0;
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const float* p0 = ip + c[q].off[0];
          a[q] = _mm512_mul_ps(_mm512_set1_ps(c[q].sign[0]), _mm512_loadu_ps(p0));
          b[q] = _mm256_mul_ps(_mm256_set1_ps(c[q].sign[0]), _mm256_loadu_ps(p0 + 16));
          kmax = c[q].nterms > kmax ? c[q].nterms : kmax;
        }
        for (int k = 1; k < kmax; ++k) {
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            if (k >= c[q].nterms) continue;
            const float* pk = ip + c[q].off[k];
            a[q] = _mm512_fmadd_ps(_mm512_set1_ps(c[q].sign[k]), _mm512_loadu_ps(pk), a[q]);
            b[q] = _mm256_fmadd_ps(_mm256_set1_ps(c[q].sign[k]), _mm256_loadu_ps(pk + 16), b[q]);
          }
        }
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          float* vc = v + ((int64_t)(cc + q) * nc + ci) * kWinoBlocks;
          _mm512_storeu_ps(vc, a[q]);
          _mm256_storeu_ps(vc + 16, b[q]);
        }
      }
      for (; cc < ncomp; ++cc) {
        const WinoComp& c = comps[cc];
        float* vc = v + ((int64_t)cc * nc + ci) * kWinoBlocks;
        const float* p0 = ip + c.off[0];
        __m512 a = _mm512_mul_ps(_mm512_set1_ps(c.sign[0]), _mm512_loadu_ps(p0));
        __m256 b = _mm256_mul_ps(_mm256_set1_ps(c.sign[0]), _mm256_loadu_ps(p0 + 16));
        for (int k = 1; k < c.nterms; ++k) {
          const float* pk = ip + c.off[k];
          a = _mm512_fmadd_ps(_mm512_set1_ps(c.sign[k]), _mm512_loadu_ps(pk), a);
          b = _mm256_fmadd_ps(_mm256_set1_ps(c.sign[k]), _mm256_loadu_ps(pk + 16), b);
        }
        _mm512_storeu_ps(vc, a);
        _mm256_storeu_ps(vc + 16, b);
      }
    }
  }

  // nb blocks exist (the last tile of a small grid has fewer than 24): lanes
  // 0..15 as a zmm when nb > 8, lanes 16..23 (or 0..7) as a ymm when needed.
  static void wino_gemm(const float* v, int nc, const float* u0, float* y, const float* coef, int64_t hs, int nb) {
    if (nb <= 0) return;
    if (nb > 16) {
      wino_gemm_w<1, 1>(v, nc, u0, y, coef, hs);
    } else if (nb > 8) {
      wino_gemm_w<1, 0>(v, nc, u0, y, coef, hs);
    } else {
      wino_gemm_w<0, 1>(v, nc, u0, y, coef, hs);
    }
  }

  // Z: a zmm at lane 0; Y: a ymm right after it (lane 16 with Z, else 0).
  template <int Z, int Y>
  static void wino_gemm_w(const float* v, int nc, const float* u0, float* y, const float* coef, int64_t hs) {
    constexpr int T = kWinoBlocks;
    constexpr int kY = Z ? 16 : 0;
    __m512 cz[kMR];
    __m256 cy[kMR];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m) {
      cz[m] = _mm512_setzero_ps();
      cy[m] = _mm256_setzero_ps();
    }
    const float* vp = v;
    const float* u = u0;
    for (int ci = 0; ci < nc; ++ci, vp += T, u += kMR) {
      __m512 xz = _mm512_setzero_ps();
      __m256 xy = _mm256_setzero_ps();
      if (Z) xz = _mm512_loadu_ps(vp);
      if (Y) xy = _mm256_loadu_ps(vp + kY);
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m) {
        if (Z) {
          const __m512 bz = _mm512_set1_ps(u[m]);
          cz[m] = _mm512_fmadd_ps(bz, xz, cz[m]);
          if (Y) cy[m] = _mm256_fmadd_ps(_mm512_castps512_ps256(bz), xy, cy[m]);
        } else {
          cy[m] = _mm256_fmadd_ps(_mm256_set1_ps(u[m]), xy, cy[m]);
        }
      }
    }
    for (int o = 0; o < 8; ++o) {
      const float k = coef[o];
      if (k == 0.0f) continue;
      float* yo = y + (o >> 2) * hs + (o & 3) * T;
      const __m512 kz = _mm512_set1_ps(k);
      const __m256 ky = _mm256_set1_ps(k);
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m) {
        float* p = yo + m * kTile;
        if (Z) {
          const __m512 old = _mm512_loadu_ps(p);
          __m512 r;
          if (k == 1.0f) {
            r = _mm512_add_ps(old, cz[m]);
          } else if (k == -1.0f) {
            r = _mm512_sub_ps(old, cz[m]);
          } else {
            r = _mm512_fmadd_ps(kz, cz[m], old);
          }
          _mm512_storeu_ps(p, r);
        }
        if (Y) {
          const __m256 old = _mm256_loadu_ps(p + kY);
          __m256 r;
          if (k == 1.0f) {
            r = _mm256_add_ps(old, cy[m]);
          } else if (k == -1.0f) {
            r = _mm256_sub_ps(old, cy[m]);
          } else {
            r = _mm256_fmadd_ps(ky, cy[m], old);
          }
          _mm256_storeu_ps(p + kY, r);
        }
      }
    }
  }

  // kWinoBlocks (24) floats, for wino_input_sep.
  struct Vec {
    __m512 a;
    __m256 b;
  };
  static inline __attribute__((always_inline)) Vec vload(const float* p) {
    return {_mm512_loadu_ps(p), _mm256_loadu_ps(p + 16)};
  }
  static inline __attribute__((always_inline)) void vstore(float* p, const Vec& x) {
    _mm512_storeu_ps(p, x.a);
    _mm256_storeu_ps(p + 16, x.b);
  }
  static inline __attribute__((always_inline)) Vec vadd(const Vec& x, const Vec& y) {
    return {_mm512_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b)};
  }
  static inline __attribute__((always_inline)) Vec vsub(const Vec& x, const Vec& y) {
    return {_mm512_sub_ps(x.a, y.a), _mm256_sub_ps(x.b, y.b)};
  }
  static inline __attribute__((always_inline)) Vec vfma(float k, const Vec& x, const Vec& y) {
    return {_mm512_fmadd_ps(_mm512_set1_ps(k), x.a, y.a), _mm256_fmadd_ps(_mm256_set1_ps(k), x.b, y.b)};
  }

  // Element-wise helpers: 16 lanes, then a masked last vector (n is kTile,
  // a multiple of 16, for all but copy / interleave; the tails are exact
  // anyway: masked lanes are neither read nor written).
  static void fill(float* x, float v, int n) {
    const __m512 vv = _mm512_set1_ps(v);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, vv);
    if (i < n) _mm512_mask_storeu_ps(x + i, lane_mask(n - i), vv);
  }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static void add_scalar(float* x, float v, int n) {
    const __m512 vv = _mm512_set1_ps(v);
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_add_ps(_mm512_loadu_ps(x + i), vv));
    if (i < n) {
      const __mmask16 k = lane_mask(n - i);
      _mm512_mask_storeu_ps(x + i, k, _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + i), vv));
    }
  }
  static void fill_u32(uint32_t* x, uint32_t v, int n) {
    const __m512i vv = _mm512_set1_epi32(static_cast<int>(v));
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_si512(x + i, vv);
    if (i < n) _mm512_mask_storeu_epi32(x + i, lane_mask(n - i), vv);
  }
  static void relu(float* x, int n) {
    const __m512 z = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_max_ps(_mm512_loadu_ps(x + i), z));
    if (i < n) {
      const __mmask16 k = lane_mask(n - i);
      _mm512_mask_storeu_ps(x + i, k, _mm512_max_ps(_mm512_maskz_loadu_ps(k, x + i), z));
    }
  }
  static inline __attribute__((always_inline)) __m512 vabs(__m512 v) {
    // clear the sign bit (|-0| = +0, as the portable path)
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), _mm512_set1_epi32(0x7fffffff)));
  }
  static void abs_copy(float* dst, const float* src, int n) {
    int i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, vabs(_mm512_loadu_ps(src + i)));
    if (i < n) {
      const __mmask16 k = lane_mask(n - i);
      _mm512_mask_storeu_ps(dst + i, k, vabs(_mm512_maskz_loadu_ps(k, src + i)));
    }
  }
  static void gdn_apply(float* x, const float* norm, int n, bool inverse) {
    int i = 0;
    if (inverse) {
      for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(norm + i)));
    } else {
      for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(x + i, _mm512_div_ps(_mm512_loadu_ps(x + i), _mm512_loadu_ps(norm + i)));
    }
    for (; i < n; ++i) x[i] = inverse ? x[i] * norm[i] : x[i] / norm[i];
  }
  static void gdn_diag(float* x, float beta, float g, int n, bool inverse) {
    const __m512 vb = _mm512_set1_ps(beta), vg = _mm512_set1_ps(g);
    int i = 0;
    if (inverse) {
      for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(x + i, _mm512_mul_ps(v, _mm512_fmadd_ps(vg, vabs(v), vb)));
      }
    } else {
      for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        _mm512_storeu_ps(x + i, _mm512_div_ps(v, _mm512_fmadd_ps(vg, vabs(v), vb)));
      }
    }
    for (; i < n; ++i) {  // n is kTile: never taken; same operations anyway
      uint32_t u;
      std::memcpy(&u, x + i, sizeof(u));
      u &= 0x7fffffffu;
      float a;
      std::memcpy(&a, &u, sizeof(a));
      const float norm = __builtin_fmaf(g, a, beta);
      x[i] = inverse ? x[i] * norm : x[i] / norm;
    }
  }
  static void requant(uint32_t* acc, int n, int shift, int32_t lo, int32_t hi) {
    const int rnd = shift > 0 ? static_cast<int>(1u << (shift - 1)) : 0;
    const __m512i vr = _mm512_set1_epi32(rnd);
    const __m128i cnt = _mm_cvtsi32_si128(shift);
    const __m512i vlo = _mm512_set1_epi32(lo), vhi = _mm512_set1_epi32(hi);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      __m512i v = _mm512_loadu_si512(acc + i);
      v = _mm512_sra_epi32(_mm512_add_epi32(v, vr), cnt);
      v = _mm512_min_epi32(_mm512_max_epi32(v, vlo), vhi);
      _mm512_storeu_si512(acc + i, v);
    }
    for (; i < n; ++i) {  // n is kTile: never taken; same integer math
      const uint32_t u = acc[i] + static_cast<uint32_t>(rnd);
      const int32_t s = u < 0x80000000u ? static_cast<int32_t>(u) : -static_cast<int32_t>(~u) - 1;
      int32_t v = s >= 0 ? (s >> shift) : ~((~s) >> shift);
      v = v < lo ? lo : (v > hi ? hi : v);
      acc[i] = static_cast<uint32_t>(v);
    }
  }
  template <class T>
  static void copy(T* dst, const T* src, int n) {
    std::memcpy(dst, src, sizeof(T) * n);
  }
  // dst[2i] = a[i], dst[2i+1] = b[i]: one two-source permute per 16 outputs
  // (moves only, so exact for any 32-bit T).
  template <class T>
  static void interleave(T* dst, const T* a, const T* b, int n) {
    static_assert(sizeof(T) == 4, "32-bit elements");
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512i va = _mm512_loadu_si512(a + i), vb = _mm512_loadu_si512(b + i);
      _mm512_storeu_si512(dst + 2 * i, _mm512_permutex2var_epi32(va, lo, vb));
      _mm512_storeu_si512(dst + 2 * i + 16, _mm512_permutex2var_epi32(va, hi, vb));
    }
    for (; i < n; ++i) {
      dst[2 * i] = a[i];
      dst[2 * i + 1] = b[i];
    }
  }
  // dst[4i..4i+3] = a[i], b[i], c[i], d[i]: interleave (a, c) and (b, d),
  // then those two.
  static void interleave4(float* dst, const float* a, const float* b, const float* c, const float* d, int n) {
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512 va = _mm512_loadu_ps(a + i), vb = _mm512_loadu_ps(b + i);
      const __m512 vc = _mm512_loadu_ps(c + i), vd = _mm512_loadu_ps(d + i);
      const __m512 ac0 = _mm512_permutex2var_ps(va, lo, vc);  // a0 c0 a1 c1 ... a7 c7
      const __m512 ac1 = _mm512_permutex2var_ps(va, hi, vc);  // a8 c8 ... a15 c15
      const __m512 bd0 = _mm512_permutex2var_ps(vb, lo, vd);
      const __m512 bd1 = _mm512_permutex2var_ps(vb, hi, vd);
      float* o = dst + 4 * i;
      _mm512_storeu_ps(o, _mm512_permutex2var_ps(ac0, lo, bd0));       // a0 b0 c0 d0 ... a3 b3 c3 d3
      _mm512_storeu_ps(o + 16, _mm512_permutex2var_ps(ac0, hi, bd0));  // a4 .. d7
      _mm512_storeu_ps(o + 32, _mm512_permutex2var_ps(ac1, lo, bd1));  // a8 .. d11
      _mm512_storeu_ps(o + 48, _mm512_permutex2var_ps(ac1, hi, bd1));  // a12 .. d15
    }
    for (; i < n; ++i) {
      dst[4 * i] = a[i];
      dst[4 * i + 1] = b[i];
      dst[4 * i + 2] = c[i];
      dst[4 * i + 3] = d[i];
    }
  }
};

using Micro = Avx512Micro<3>;
// int16: 4 x 48 as well (12 accumulators + 3 inputs + broadcast + product =
// 17 of 32 registers: the spill that made AVX2 use 4 x 16 does not happen).
using MicroI16 = Avx512Micro<3>;

static_assert(kTile % Micro::NR == 0 && kTile % Micro::NR3 == 0 && kTile % MicroI16::NR == 0,
              "tiles must be multiples of the micro tile");

void avx512_conv_f32_tile(const ConvJob& j, int64_t p0, float* s) { conv_f32_tile_impl<Micro>(j, p0, s); }
void avx512_conv_i16_tile(const ConvJob& j, int64_t p0, uint32_t* s, int ob0, int ob1) {
  conv_i16_tile_impl<MicroI16>(j, p0, s, ob0, ob1);
}
void avx512_gdn_tile(const GdnJob& j, int64_t p0, float* s) { gdn_tile_impl<Micro>(j, p0, s); }
void avx512_wino_tile(const WinoJob& j, int64_t b0, float* s, int ob0, int ob1) {
  wino_tile_impl<Micro>(j, b0, s, ob0, ob1);
}

void avx512_relu(float* x, int64_t n) {
  const __m512 z = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_max_ps(_mm512_loadu_ps(x + i), z));
  if (i < n) {
    const __mmask16 k = lane_mask(static_cast<int>(n - i));
    _mm512_mask_storeu_ps(x + i, k, _mm512_max_ps(_mm512_maskz_loadu_ps(k, x + i), z));
  }
}
void avx512_scale(float* x, int64_t n, float g) {
  const __m512 vg = _mm512_set1_ps(g);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), vg));
  if (i < n) {
    const __mmask16 k = lane_mask(static_cast<int>(n - i));
    _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vg));
  }
}

// kR rows x (16 kV) columns of C at column j0 (nc of them exist; the lanes
// past them are masked, which AVX-512 does at full speed). Per element: bias,
// fused multiply-adds in ascending k, then + C: the scalar kernel's sequence.
template <int kR, int kV>
inline __attribute__((always_inline)) void avx512_gemm_block(const GemmJob& j, const float* const* arow, int i0,
                                                             int j0, int nc) {
  constexpr int kN = 16 * kV;
  __mmask16 mask[kV];
#pragma GCC unroll 4
  for (int v = 0; v < kV; ++v) mask[v] = lane_mask(nc - 16 * v);
  __m512 acc[kR][kV];
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) acc[r][v] = _mm512_set1_ps(j.bias[i0 + r]);
  const float* b = j.b + j0;
  if (nc == kN) {
    for (int k = 0; k < j.k; ++k, b += j.ldb) {
      __m512 bv[kV];
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const __m512 w = _mm512_set1_ps(arow[r][k]);
#pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = _mm512_fmadd_ps(w, bv[v], acc[r][v]);
      }
    }
  } else {
    for (int k = 0; k < j.k; ++k, b += j.ldb) {
      __m512 bv[kV];
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) bv[v] = _mm512_maskz_loadu_ps(mask[v], b + 16 * v);
#pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const __m512 w = _mm512_set1_ps(arow[r][k]);
#pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = _mm512_fmadd_ps(w, bv[v], acc[r][v]);
      }
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r) {
    float* c = j.c + int64_t(i0 + r) * j.ldc + j0;
#pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) {
      __m512 x = acc[r][v];
      if (nc == kN) {
        if (j.accumulate) x = _mm512_add_ps(_mm512_loadu_ps(c + 16 * v), x);
        _mm512_storeu_ps(c + 16 * v, x);
      } else {
        if (j.accumulate) x = _mm512_add_ps(_mm512_maskz_loadu_ps(mask[v], c + 16 * v), x);
        _mm512_mask_storeu_ps(c + 16 * v, mask[v], x);
      }
    }
  }
}

template <int kR>
void avx512_gemm_rows(const GemmJob& j, int i0) {
  constexpr int kN = 48;
  const float* arow[kR];
  for (int r = 0; r < kR; ++r) arow[r] = j.a + int64_t(i0 + r) * j.lda;
  for (int j0 = 0; j0 < j.n; j0 += kN) {
    const int nc = j.n - j0 < kN ? j.n - j0 : kN;
    if (nc > 32) {
      avx512_gemm_block<kR, 3>(j, arow, i0, j0, nc);
    } else if (nc > 16) {
      avx512_gemm_block<kR, 2>(j, arow, i0, j0, nc);
    } else {
      avx512_gemm_block<kR, 1>(j, arow, i0, j0, nc);
    }
  }
}

void avx512_gemm(const GemmJob& j) {
  int i = 0;
  for (; i + 4 <= j.m; i += 4) avx512_gemm_rows<4>(j, i);
  for (; i < j.m; ++i) avx512_gemm_rows<1>(j, i);
}

#if defined(LMC_AVX512_SIMDE)
constexpr const char* kName = "avx512 (SIMDe emulation)";
#else
constexpr const char* kName = "avx512";
#endif

const KernelTable kAvx512Table = {kName,           Micro::NR,        avx512_conv_f32_tile, avx512_conv_i16_tile,
                                  avx512_gdn_tile, avx512_wino_tile, avx512_relu,          avx512_scale,
                                  avx512_gemm};
}  // namespace

const KernelTable* avx512_kernels() { return &kAvx512Table; }
bool avx512_emulated() {
#if defined(LMC_AVX512_SIMDE)
  return true;
#else
  return false;
#endif
}

}  // namespace detail
}  // namespace dsp
}  // namespace lmc

#else  // no AVX-512 build

namespace lmc {
namespace dsp {
namespace detail {
const KernelTable* avx512_kernels() { return nullptr; }
bool avx512_emulated() { return false; }
}  // namespace detail
}  // namespace dsp
}  // namespace lmc

#endif
