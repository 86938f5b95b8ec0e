// lmcodec dsp: AVX2 + FMA kernels (this file alone is compiled with
// -mavx2 -mfma -mf16c; it is only called after cpu_features() said yes).
//
// The micro-kernel keeps a kMR (4) output channels x NR (8*NV) pixels block
// of accumulators in registers: per (input channel, tap) it loads NV pixel
// vectors (unaligned, contiguous thanks to the padded/polyphase layout),
// broadcasts kMR weights and issues kMR*NV FMAs. The int16 version works on
// channel pairs with vpmaddwd (two int16 products summed exactly in int32)
// and vpaddd (wrap-around), which is exactly the mod-2^32 reference sum.
//
// The portable kernels in conv_scalar.cc mirror every float operation here, op for
// op and in the same order (std::fma for each FMA), so the two paths give
// bit-identical floats: change both together, and keep exact instructions
// (vdivps, not rcp/rsqrt approximations).
//
// Do not include headers with inline functions that portable code also uses
// (std::vector, std::string, util/error.h, ...): the linker could pick the
// AVX2-compiled copy for everyone. conv_tile.h is in an anonymous namespace.
#include "dsp/kernels.h"

#if defined(LMC_HAVE_X86) && defined(__AVX2__) && defined(__FMA__)

#include <immintrin.h>

#include <cstring>

#include "dsp/conv_tile.h"

namespace lmc {
namespace dsp {
namespace detail {
namespace {

template <int NV>
struct Avx2Micro {
  static constexpr int NR = 8 * NV;

  // The direct kernels run their (channel, tap) loops through for_taps
  // (conv_tile.h: fully unrolled for the codec's tap counts).
  static void f32(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                  int64_t as) {
    __m256 c[kMR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[m][v] = _mm256_loadu_ps(acc + m * as + 8 * v);
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const float* x = in + ci * cs + offs[t];
      __m256 xv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) xv[v] = _mm256_loadu_ps(x + 8 * v);
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m) {
        const __m256 b = _mm256_broadcast_ss(w + m);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) c[m][v] = _mm256_fmadd_ps(b, xv[v], c[m][v]);
      }
      w += kMR;
    });
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm256_storeu_ps(acc + m * as + 8 * v, c[m][v]);
  }

  // 3 output channels x 32 pixels (a 3-channel layer, e.g. the codec's last:
  // no accumulator row wasted on padding). Weights [nc][nt][3]. The three
  // broadcasts stay in registers while the 4 pixel vectors stream through
  // (12 accumulators + 3 weights + 1 input = 16 registers).
  static constexpr int NR3 = 32;
  static void f32_mr3(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                      int64_t as) {
    __m256 c[3][4];
#pragma GCC unroll 3
    for (int m = 0; m < 3; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) c[m][v] = _mm256_loadu_ps(acc + m * as + 8 * v);
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const float* x = in + ci * cs + offs[t];
      const __m256 b0 = _mm256_broadcast_ss(w), b1 = _mm256_broadcast_ss(w + 1), b2 = _mm256_broadcast_ss(w + 2);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        const __m256 xv = _mm256_loadu_ps(x + 8 * v);
        c[0][v] = _mm256_fmadd_ps(b0, xv, c[0][v]);
        c[1][v] = _mm256_fmadd_ps(b1, xv, c[1][v]);
        c[2][v] = _mm256_fmadd_ps(b2, xv, c[2][v]);
      }
      w += 3;
    });
#pragma GCC unroll 3
    for (int m = 0; m < 3; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) _mm256_storeu_ps(acc + m * as + 8 * v, c[m][v]);
  }

  static void i16(const int16_t* in, int64_t cs, const int* offs, int nt, int nc, const int16_t* w, uint32_t* acc,
                  int64_t as) {
    __m256i c[kMR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v)
        c[m][v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + m * as + 8 * v));
    for (int ci = 0; ci < nc; ++ci) {
      const int16_t* ip = in + 2 * ci * cs;
      for (int t = 0; t < nt; ++t) {
        const int16_t* x = ip + 2 * (int64_t)offs[t];
        __m256i xv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) xv[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 16 * v));
#pragma GCC unroll 4
        for (int m = 0; m < kMR; ++m) {
          int32_t pair;
          std::memcpy(&pair, w + 2 * m, sizeof(pair));
          const __m256i b = _mm256_set1_epi32(pair);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) c[m][v] = _mm256_add_epi32(c[m][v], _mm256_madd_epi16(xv[v], b));
        }
        w += 2 * kMR;
      }
    }
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + m * as + 8 * v), c[m][v]);
  }

  static void wino_input(float* v, const float* in, int64_t cs, int nc, const WinoComp* comps, int ncomp,
                         const int* rows, int nrows) {
    static_assert(kWinoBlocks == 24, "3 vectors per channel");
    constexpr int kAhead = 2;  // channels: the rows of a channel are far apart (planes)
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
      // 4 components at a time: 12 independent accumulation chains (one
      // component's 3 chains alone are latency-bound). Each component still
      // gets a multiply, then fused multiply-adds in term order; products by
      // +-1 are exact, so fma == mul + add here (the portable path mirrors
      // the sequence anyway: mul, then fmas).
      int cc = 0;
      for (; cc + 4 <= ncomp; cc += 4) {
        const WinoComp* c = comps + cc;
        __m256 a[4][3];
        int kmax = 0;
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const __m256 s0 = _mm256_set1_ps(c[q].sign[0]);
          const float* p0 = ip + c[q].off[0];
          a[q][0] = _mm256_mul_ps(s0, _mm256_loadu_ps(p0));
          a[q][1] = _mm256_mul_ps(s0, _mm256_loadu_ps(p0 + 8));
          a[q][2] = _mm256_mul_ps(s0, _mm256_loadu_ps(p0 + 16));
          kmax = c[q].nterms > kmax ? c[q].nterms : kmax;
        }
        for (int k = 1; k < kmax; ++k) {
#pragma GCC unroll 4
          for (int q = 0; q < 4; ++q) {
            if (k >= c[q].nterms) continue;
            const __m256 sk = _mm256_set1_ps(c[q].sign[k]);
            const float* pk = ip + c[q].off[k];
            a[q][0] = _mm256_fmadd_ps(sk, _mm256_loadu_ps(pk), a[q][0]);
            a[q][1] = _mm256_fmadd_ps(sk, _mm256_loadu_ps(pk + 8), a[q][1]);
            a[q][2] = _mm256_fmadd_ps(sk, _mm256_loadu_ps(pk + 16), a[q][2]);
          }
        }
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          float* vc = v + ((int64_t)(cc + q) * nc + ci) * kWinoBlocks;
          _mm256_store_ps(vc, a[q][0]);
          _mm256_store_ps(vc + 8, a[q][1]);
          _mm256_store_ps(vc + 16, a[q][2]);
        }
      }
      for (; cc < ncomp; ++cc) {
        const WinoComp& c = comps[cc];
        float* vc = v + ((int64_t)cc * nc + ci) * kWinoBlocks;
        const __m256 s0 = _mm256_set1_ps(c.sign[0]);
        const float* p0 = ip + c.off[0];
        __m256 a0 = _mm256_mul_ps(s0, _mm256_loadu_ps(p0));
        __m256 a1 = _mm256_mul_ps(s0, _mm256_loadu_ps(p0 + 8));
        __m256 a2 = _mm256_mul_ps(s0, _mm256_loadu_ps(p0 + 16));
        for (int k = 1; k < c.nterms; ++k) {
          const __m256 sk = _mm256_set1_ps(c.sign[k]);
          const float* pk = ip + c.off[k];
          a0 = _mm256_fmadd_ps(sk, _mm256_loadu_ps(pk), a0);
          a1 = _mm256_fmadd_ps(sk, _mm256_loadu_ps(pk + 8), a1);
          a2 = _mm256_fmadd_ps(sk, _mm256_loadu_ps(pk + 16), a2);
        }
        _mm256_store_ps(vc, a0);
        _mm256_store_ps(vc + 8, a1);
        _mm256_store_ps(vc + 16, a2);
      }
    }
  }

  // nb: the blocks of the tile that exist (the last tile of a small grid has
  // fewer than kWinoBlocks); the micro tiles past them are skipped, and a
  // partial one runs W = ceil(rest / 8) vectors wide. Each block is one lane
  // whatever the width, so the bits do not depend on it.
  static void wino_gemm(const float* v, int nc, const float* u0, float* y, const float* coef, int64_t hs, int nb) {
    int t0 = 0;
    for (; t0 + NR <= nb; t0 += NR) wino_gemm_w<NV>(v + t0, nc, u0, y + t0, coef, hs);
    const int rest = nb - t0;
    if (rest <= 0) return;
    if (rest <= 8) {
      wino_gemm_w<1>(v + t0, nc, u0, y + t0, coef, hs);
    } else if (NV >= 3 && rest <= 16) {
      wino_gemm_w<(NV >= 3 ? 2 : 1)>(v + t0, nc, u0, y + t0, coef, hs);
    } else {
      wino_gemm_w<NV>(v + t0, nc, u0, y + t0, coef, hs);
    }
  }

  template <int W>
  static void wino_gemm_w(const float* v, int nc, const float* u0, float* y, const float* coef, int64_t hs) {
    constexpr int T = kWinoBlocks;
    {
      __m256 c[kMR][W];
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
        for (int q = 0; q < W; ++q) c[m][q] = _mm256_setzero_ps();
      const float* vp = v;
      const float* u = u0;
      for (int ci = 0; ci < nc; ++ci, vp += T, u += kMR) {
        __m256 xv[W];
#pragma GCC unroll 4
        for (int q = 0; q < W; ++q) xv[q] = _mm256_load_ps(vp + 8 * q);
#pragma GCC unroll 4
        for (int m = 0; m < kMR; ++m) {
          const __m256 b = _mm256_broadcast_ss(u + m);
#pragma GCC unroll 4
          for (int q = 0; q < W; ++q) c[m][q] = _mm256_fmadd_ps(b, xv[q], c[m][q]);
        }
      }
      for (int o = 0; o < 8; ++o) {
        const float k = coef[o];
        if (k == 0.0f) continue;
        float* yo = y + (o >> 2) * hs + (o & 3) * T;
        if (k == 1.0f) {
#pragma GCC unroll 4
          for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
            for (int q = 0; q < W; ++q) {
              float* p = yo + m * kTile + 8 * q;
              _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), c[m][q]));
            }
        } else if (k == -1.0f) {
#pragma GCC unroll 4
          for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
            for (int q = 0; q < W; ++q) {
              float* p = yo + m * kTile + 8 * q;
              _mm256_storeu_ps(p, _mm256_sub_ps(_mm256_loadu_ps(p), c[m][q]));
            }
        } else {
          const __m256 kv = _mm256_set1_ps(k);
#pragma GCC unroll 4
          for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
            for (int q = 0; q < W; ++q) {
              float* p = yo + m * kTile + 8 * q;
              _mm256_storeu_ps(p, _mm256_fmadd_ps(kv, c[m][q], _mm256_loadu_ps(p)));
            }
        }
      }
    }
  }

  // kWinoBlocks (24) floats as three vectors, for wino_input_sep.
  struct Vec {
    __m256 a, b, c;
  };
  static inline __attribute__((always_inline)) Vec vload(const float* p) {
    return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8), _mm256_loadu_ps(p + 16)};
  }
  static inline __attribute__((always_inline)) void vstore(float* p, const Vec& x) {
    _mm256_store_ps(p, x.a);
    _mm256_store_ps(p + 8, x.b);
    _mm256_store_ps(p + 16, x.c);
  }
  static inline __attribute__((always_inline)) Vec vadd(const Vec& x, const Vec& y) {
    return {_mm256_add_ps(x.a, y.a), _mm256_add_ps(x.b, y.b), _mm256_add_ps(x.c, y.c)};
  }
  static inline __attribute__((always_inline)) Vec vsub(const Vec& x, const Vec& y) {
    return {_mm256_sub_ps(x.a, y.a), _mm256_sub_ps(x.b, y.b), _mm256_sub_ps(x.c, y.c)};
  }
  static inline __attribute__((always_inline)) Vec vfma(float k, const Vec& x, const Vec& y) {
    const __m256 kv = _mm256_set1_ps(k);
    return {_mm256_fmadd_ps(kv, x.a, y.a), _mm256_fmadd_ps(kv, x.b, y.b), _mm256_fmadd_ps(kv, x.c, y.c)};
  }

  // n is a multiple of 8 for the helpers below except copy / interleave.
  static void fill(float* x, float v, int n) {
    const __m256 vv = _mm256_set1_ps(v);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, vv);
    for (; i < n; ++i) x[i] = v;
  }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }
  static void add_scalar(float* x, float v, int n) {
    const __m256 vv = _mm256_set1_ps(v);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_add_ps(_mm256_loadu_ps(x + i), vv));
    for (; i < n; ++i) x[i] += v;
  }
  static void fill_u32(uint32_t* x, uint32_t v, int n) {
    const __m256i vv = _mm256_set1_epi32(static_cast<int>(v));
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + i), vv);
    for (; i < n; ++i) x[i] = v;
  }
  static void relu(float* x, int n) {
    const __m256 z = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z));
    for (; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
  }
  static void abs_copy(float* dst, const float* src, int n) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_and_ps(_mm256_loadu_ps(src + i), mask));
    for (; i < n; ++i) {  // clear the sign bit, as the mask does (|-0| = +0)
      uint32_t u;
      std::memcpy(&u, src + i, sizeof(u));
      u &= 0x7fffffffu;
      std::memcpy(dst + i, &u, sizeof(u));
    }
  }
  static void gdn_apply(float* x, const float* norm, int n, bool inverse) {
    int i = 0;
    if (inverse) {
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(norm + i)));
      for (; i < n; ++i) x[i] *= norm[i];
    } else {
      for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_div_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(norm + i)));
      for (; i < n; ++i) x[i] /= norm[i];
    }
  }
  static void gdn_diag(float* x, float beta, float g, int n, bool inverse) {
    const __m256 mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256 vb = _mm256_set1_ps(beta), vg = _mm256_set1_ps(g);
    int i = 0;
    if (inverse) {
      for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_mul_ps(v, _mm256_fmadd_ps(vg, _mm256_and_ps(v, mask), vb)));
      }
    } else {
      for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_fmadd_ps(vg, _mm256_and_ps(v, mask), vb)));
      }
    }
    for (; i < n; ++i) {  // n is kTile: never taken; same operations anyway
      uint32_t u;
      std::memcpy(&u, x + i, sizeof(u));
      u &= 0x7fffffffu;
      float a;
      std::memcpy(&a, &u, sizeof(a));
      const float norm = __builtin_fmaf(g, a, beta);  // a builtin: no shared inline std::fma
      x[i] = inverse ? x[i] * norm : x[i] / norm;
    }
  }
  static void requant(uint32_t* acc, int n, int shift, int32_t lo, int32_t hi) {
    const int rnd = shift > 0 ? static_cast<int>(1u << (shift - 1)) : 0;
    const __m256i vr = _mm256_set1_epi32(rnd);
    const __m128i cnt = _mm_cvtsi32_si128(shift);
    const __m256i vlo = _mm256_set1_epi32(lo), vhi = _mm256_set1_epi32(hi);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i));
      v = _mm256_sra_epi32(_mm256_add_epi32(v, vr), cnt);
      v = _mm256_min_epi32(_mm256_max_epi32(v, vlo), vhi);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + i), v);
    }
    // Tails never occur (n == kTile), kept for completeness: same integer math.
    for (; i < n; ++i) {
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
  static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  static __m256 load8(const uint32_t* p) {
    return _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store8(float* p, __m256 v) { _mm256_storeu_ps(p, v); }
  static void store8(uint32_t* p, __m256 v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm256_castps_si256(v));
  }
  // dst[2i] = a[i], dst[2i+1] = b[i]; shuffles only, so bit-exact for any T.
  template <class T>
  static void interleave(T* dst, const T* a, const T* b, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 va = load8(a + i), vb = load8(b + i);
      const __m256 lo = _mm256_unpacklo_ps(va, vb);  // a0 b0 a1 b1 | a4 b4 a5 b5
      const __m256 hi = _mm256_unpackhi_ps(va, vb);  // a2 b2 a3 b3 | a6 b6 a7 b7
      store8(dst + 2 * i, _mm256_permute2f128_ps(lo, hi, 0x20));
      store8(dst + 2 * i + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
    }
    for (; i < n; ++i) {
      dst[2 * i] = a[i];
      dst[2 * i + 1] = b[i];
    }
  }
  // dst[4i..4i+3] = a[i], b[i], c[i], d[i] (a 4 x 8 transpose per step).
  static void interleave4(float* dst, const float* a, const float* b, const float* c, const float* d, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 va = _mm256_loadu_ps(a + i), vb = _mm256_loadu_ps(b + i);
      const __m256 vc = _mm256_loadu_ps(c + i), vd = _mm256_loadu_ps(d + i);
      const __m256 ab0 = _mm256_unpacklo_ps(va, vb);  // a0 b0 a1 b1 | a4 b4 a5 b5
      const __m256 ab1 = _mm256_unpackhi_ps(va, vb);  // a2 b2 a3 b3 | a6 b6 a7 b7
      const __m256 cd0 = _mm256_unpacklo_ps(vc, vd);
      const __m256 cd1 = _mm256_unpackhi_ps(vc, vd);
      const __m256 q0 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(ab0), _mm256_castps_pd(cd0)));  // 0 | 4
      const __m256 q1 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(ab0), _mm256_castps_pd(cd0)));  // 1 | 5
      const __m256 q2 = _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(ab1), _mm256_castps_pd(cd1)));  // 2 | 6
      const __m256 q3 = _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(ab1), _mm256_castps_pd(cd1)));  // 3 | 7
      float* o = dst + 4 * i;
      _mm256_storeu_ps(o, _mm256_permute2f128_ps(q0, q1, 0x20));       // 0 1
      _mm256_storeu_ps(o + 8, _mm256_permute2f128_ps(q2, q3, 0x20));   // 2 3
      _mm256_storeu_ps(o + 16, _mm256_permute2f128_ps(q0, q1, 0x31));  // 4 5
      _mm256_storeu_ps(o + 24, _mm256_permute2f128_ps(q2, q3, 0x31));  // 6 7
    }
    for (; i < n; ++i) {
      dst[4 * i] = a[i];
      dst[4 * i + 1] = b[i];
      dst[4 * i + 2] = c[i];
      dst[4 * i + 3] = d[i];
    }
  }
};

using Micro = Avx2Micro<3>;
// The int16 kernel runs 4 x 16 blocks: vpmaddwd cannot accumulate in place,
// so 4 x 24 needs 12 accumulators + 3 inputs + 1 broadcast + 1 product =
// 17 registers, and GCC spills an accumulator through the stack on every
// iteration (a store-forwarding chain). 4 x 16 uses 12 registers. Measured
// on h_s.2 (conv 128->384 3x3, Kodak size) alone: 1.51x faster at 1 thread,
// 2.68 -> 4.04 G vpmaddwd/s (Zen 4, which issues two a cycle). The sums are
// exact integers, so the blocking cannot change a bit.
using MicroI16 = Avx2Micro<2>;

void avx2_conv_f32_tile(const ConvJob& j, int64_t p0, float* s) { conv_f32_tile_impl<Micro>(j, p0, s); }
void avx2_conv_i16_tile(const ConvJob& j, int64_t p0, uint32_t* s, int ob0, int ob1) {
  conv_i16_tile_impl<MicroI16>(j, p0, s, ob0, ob1);
}
void avx2_gdn_tile(const GdnJob& j, int64_t p0, float* s) { gdn_tile_impl<Micro>(j, p0, s); }
void avx2_wino_tile(const WinoJob& j, int64_t b0, float* s, int ob0, int ob1) { wino_tile_impl<Micro>(j, b0, s, ob0, ob1); }

void avx2_relu(float* x, int64_t n) {
  const __m256 z = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_max_ps(_mm256_loadu_ps(x + i), z));
  for (; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void avx2_scale(float* x, int64_t n, float g) {
  const __m256 vg = _mm256_set1_ps(g);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), vg));
  for (; i < n; ++i) x[i] *= g;
}

static_assert(kTile % Micro::NR == 0 && kTile % Micro::NR3 == 0 && kWinoBlocks % Micro::NR == 0,
              "tiles must be multiples of the micro tile");

// kR rows x 24 columns of accumulators (3 vectors per row: 12 independent
// FMA chains for kR = 4, enough to hide the FMA latency); masked loads and
// stores for the last columns. Same per-element sequence as the scalar kernel
// (bias, then fused multiply-adds in ascending k, then + C), so same bits.
// One kR x (8 kV) block of C at column j0 (nc <= 8 kV columns exist; the
// lanes past them are masked). kV < 3 serves the last, narrow block of a
// small product (a thumbnail's block transform has 2-4 columns): computing
// 24 lanes for 2 cost ~10x. Each element gets the same operations whatever
// the block width, so the bits do not depend on it.
template <int kR, int kV>
inline __attribute__((always_inline)) void avx2_gemm_block(const GemmJob& j, const float* const* arow, int i0, int j0,
                                                           int nc) {
  alignas(32) static const int32_t kMaskSrc[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
  constexpr int kN = 8 * kV;
  __m256i mask[kV];
  #pragma GCC unroll 4
  for (int v = 0; v < kV; ++v) {
    int nv = nc - 8 * v;
    nv = nv < 0 ? 0 : (nv > 8 ? 8 : nv);
    mask[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kMaskSrc + 8 - nv));
  }
  __m256 acc[kR][kV];
  #pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
    #pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) acc[r][v] = _mm256_set1_ps(j.bias[i0 + r]);
  const float* b = j.b + j0;
  if (nc == kN) {
    for (int k = 0; k < j.k; ++k, b += j.ldb) {
      __m256 bv[kV];
      #pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
      #pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const __m256 w = _mm256_broadcast_ss(arow[r] + k);
        #pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = _mm256_fmadd_ps(w, bv[v], acc[r][v]);
      }
    }
  } else {
    for (int k = 0; k < j.k; ++k, b += j.ldb) {
      __m256 bv[kV];
      #pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) bv[v] = _mm256_maskload_ps(b + 8 * v, mask[v]);
      #pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const __m256 w = _mm256_broadcast_ss(arow[r] + k);
        #pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = _mm256_fmadd_ps(w, bv[v], acc[r][v]);
      }
    }
  }
  // full blocks: plain loads and stores (vmaskmovps stores are slow on
  // AMD cores: microcoded, they cost more than the block's FMAs here)
  #pragma GCC unroll 4
  for (int r = 0; r < kR; ++r) {
    float* c = j.c + int64_t(i0 + r) * j.ldc + j0;
    #pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) {
      __m256 x = acc[r][v];
      if (nc == kN) {
        if (j.accumulate) x = _mm256_add_ps(_mm256_loadu_ps(c + 8 * v), x);
        _mm256_storeu_ps(c + 8 * v, x);
      } else {
        if (j.accumulate) x = _mm256_add_ps(_mm256_maskload_ps(c + 8 * v, mask[v]), x);
        _mm256_maskstore_ps(c + 8 * v, mask[v], x);
      }
    }
  }
}

template <int kR>
void avx2_gemm_rows(const GemmJob& j, int i0) {
  constexpr int kN = 24;
  const float* arow[kR];
  for (int r = 0; r < kR; ++r) arow[r] = j.a + int64_t(i0 + r) * j.lda;
  for (int j0 = 0; j0 < j.n; j0 += kN) {
    const int nc = j.n - j0 < kN ? j.n - j0 : kN;
    if (nc > 16) {
      avx2_gemm_block<kR, 3>(j, arow, i0, j0, nc);
    } else if (nc > 8) {
      avx2_gemm_block<kR, 2>(j, arow, i0, j0, nc);
    } else {
      avx2_gemm_block<kR, 1>(j, arow, i0, j0, nc);
    }
  }
}

void avx2_gemm(const GemmJob& j) {
  int i = 0;
  for (; i + 4 <= j.m; i += 4) avx2_gemm_rows<4>(j, i);
  for (; i < j.m; ++i) avx2_gemm_rows<1>(j, i);
}

const KernelTable kAvx2Table = {"avx2",        Micro::NR,      avx2_conv_f32_tile, avx2_conv_i16_tile,
                                avx2_gdn_tile, avx2_wino_tile, avx2_relu,          avx2_scale,
                                avx2_gemm};
}  // namespace

const KernelTable* avx2_kernels() { return &kAvx2Table; }

}  // namespace detail
}  // namespace dsp
}  // namespace lmc

#else  // no AVX2 build

namespace lmc {
namespace dsp {
namespace detail {
const KernelTable* avx2_kernels() { return nullptr; }
}  // namespace detail
}  // namespace dsp
}  // namespace lmc

#endif
