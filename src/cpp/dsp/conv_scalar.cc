// lmcodec dsp: the portable reference kernel table (scalar_kernels()),
// bit-identical to the AVX2 / AVX-512 ones.
#include <cmath>
#include <cstring>

#include "dsp/conv_tile.h"
#include "dsp/kernels.h"

namespace lmc {
namespace dsp {

// ---------------------------------------------------------------------------
// Portable reference micro-kernels (plain loops; the compiler may use SSE2).
//
// They are bit-identical to the AVX2 kernels (conv_avx2.cc): every float
// element goes through the same sequence of IEEE operations, in the same
// order. Where AVX2 issues a fused multiply-add, these call fma_exact() with
// the same operands (correctly rounded, so equal to the hardware FMA; see
// there how it stays fast without an FMA instruction); where
// AVX2 multiplies, adds, subtracts, divides, takes max or abs separately, so do
// these. The build compiles this file with -ffp-contract=off so the compiler
// cannot fuse a separate a * b + c on its own (targets with FMA by default).
// Each output element's accumulation is independent of the vector width, so
// NR = 8 here and 24 on AVX2 give the same bits.
// ---------------------------------------------------------------------------
namespace detail {
namespace {

// fma_exact(a, b, c) = a * b + c rounded once, i.e. exactly what an FMA
// instruction computes. Where the compile target has FMA (aarch64, -mfma)
// it is std::fma, one instruction. Otherwise -- the portable x86-64 build,
// where std::fma is a libm call that is slow with hardware FMA and very slow
// without it -- it is computed in double: the product of two floats is exact
// in double; the sum is rounded to odd (TwoSum gives the rounding error; an
// inexact even result moves one ulp towards the exact value), and a value
// rounded to odd with 53 >= 2 * 24 + 2 bits rounds correctly to float
// (Boldo & Melquiond, "Emulation of FMA and correctly rounded sums", 2008).
// tests/cpp/test_dsp.cc compares it with std::fma on edge cases and random
// inputs.
#if defined(__FMA__) || defined(__ARM_FEATURE_FMA) || defined(_M_ARM64)
inline float fma_exact(float a, float b, float c) { return std::fma(a, b, c); }
#else
inline float fma_exact(float a, float b, float c) {
  const double p = double(a) * double(b);  // exact
  const double s = p + double(c);
  const double v = s - p;
  const double e = (p - (s - v)) + (double(c) - v);  // (p + c) - s, exactly (TwoSum)
  uint64_t bits;
  std::memcpy(&bits, &s, sizeof bits);
  if ((e > 0.0 || e < 0.0) && (bits & 1u) == 0) {  // inexact and even (e is NaN for inf/NaN: no change)
    bits += ((e > 0.0) == (s > 0.0)) ? 1 : uint64_t(-1);  // one ulp towards the exact value
    double odd;
    std::memcpy(&odd, &bits, sizeof odd);
    return float(odd);
  }
  return float(s);
}
#endif

inline int32_t u32_to_i32(uint32_t u) {  // two's complement, without relying on implementation-defined casts
  return u < 0x80000000u ? static_cast<int32_t>(u) : -static_cast<int32_t>(~u) - 1;
}
inline int32_t asr32(int32_t v, int s) {  // arithmetic (flooring) shift right
  return v >= 0 ? (v >> s) : ~((~v) >> s);
}

// Hides the weight pointer's progression from the optimiser, which keeps GCC
// from vectorising the tap loop as a reduction (slow gathers) instead of the
// pixel loop; no effect on the arithmetic.
#if defined(__GNUC__)
#define LMC_SCALAR_BARRIER(p) __asm__("" : "+r"(p))
#else
#define LMC_SCALAR_BARRIER(p) ((void)0)
#endif

struct ScalarMicro {
  static constexpr int NR = 8;
  static constexpr int NR3 = 8;

  static void f32(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                  int64_t as) {
    f32_mr<kMR>(in, cs, offs, nt, nc, w, acc, as);
  }
  // 3 output channels (weights [nc][nt][3]): same per-element operations.
  static void f32_mr3(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                      int64_t as) {
    f32_mr<3>(in, cs, offs, nt, nc, w, acc, as);
  }
  template <int MR>
  static void f32_mr(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                     int64_t as) {
    float c[MR][NR];
    for (int m = 0; m < MR; ++m)
      for (int j = 0; j < NR; ++j) c[m][j] = acc[m * as + j];
    for (int ci = 0; ci < nc; ++ci) {
      const float* ip = in + ci * cs;
      for (int t = 0; t < nt; ++t) {
        float x[NR];
        for (int j = 0; j < NR; ++j) x[j] = ip[offs[t] + j];
        for (int m = 0; m < MR; ++m) {
          const float wv = w[m];
          // AVX2: c = fmadd(broadcast(w[m]), x, c)
          for (int j = 0; j < NR; ++j) c[m][j] = fma_exact(wv, x[j], c[m][j]);
        }
        w += MR;
        LMC_SCALAR_BARRIER(w);
      }
    }
    for (int m = 0; m < MR; ++m)
      for (int j = 0; j < NR; ++j) acc[m * as + j] = c[m][j];
  }

  // in: int16 pairs (element e = in[2e], in[2e+1]); w: [nc][nt][kMR][2].
  static void i16(const int16_t* in, int64_t cs, const int* offs, int nt, int nc, const int16_t* w, uint32_t* acc,
                  int64_t as) {
    uint32_t c[kMR][NR];
    for (int m = 0; m < kMR; ++m)
      for (int j = 0; j < NR; ++j) c[m][j] = acc[m * as + j];
    for (int ci = 0; ci < nc; ++ci) {
      const int16_t* ip = in + 2 * ci * cs;
      for (int t = 0; t < nt; ++t) {
        const int16_t* x = ip + 2 * (int64_t)offs[t];
        for (int m = 0; m < kMR; ++m) {
          const int32_t w0 = w[2 * m], w1 = w[2 * m + 1];
          for (int j = 0; j < NR; ++j) {
            // int16 * int16 always fits int32; the sum wraps modulo 2^32.
            c[m][j] += static_cast<uint32_t>(x[2 * j] * w0) + static_cast<uint32_t>(x[2 * j + 1] * w1);
          }
        }
        w += 2 * kMR;
        LMC_SCALAR_BARRIER(w);
      }
    }
    for (int m = 0; m < kMR; ++m)
      for (int j = 0; j < NR; ++j) acc[m * as + j] = c[m][j];
  }

  // Winograd input transform of every component for nc channels: the sum of
  // <= 8 shifted input rows times their factors (+-1 for F(2, .); small
  // integers for F(4, .)), in the AVX2 op order: a multiply for the first
  // term, then fused multiply-adds in term order.
  static void wino_input(float* v, const float* in, int64_t cs, int nc, const WinoComp* comps, int ncomp,
                         const int* /*rows*/, int /*nrows*/) {
    constexpr int T = kWinoBlocks;
    for (int ci = 0; ci < nc; ++ci) {
      const float* ip = in + ci * cs;
      for (int cc = 0; cc < ncomp; ++cc) {
        const WinoComp& c = comps[cc];
        float* vc = v + ((int64_t)cc * nc + ci) * T;
        for (int t = 0; t < T; ++t) vc[t] = c.sign[0] * ip[c.off[0] + t];
        for (int k = 1; k < c.nterms; ++k)
          for (int t = 0; t < T; ++t) vc[t] = fma_exact(c.sign[k], ip[c.off[k] + t], vc[t]);
      }
    }
  }

  // One Winograd component for kMR output channels: M = U^T V (K = nc, fused
  // multiply-adds from 0 in increasing ci), then the output transform
  // y[o] += coef[o] * M for the (up to 8) output positions o: like AVX2,
  // skip 0, add M for +1, subtract it for -1, and fma(coef, M, y) otherwise
  // (F(4, .)'s 2, 4, 8; powers of two, but the fma mirrors AVX2 literally).
  // nb: the blocks of the tile that exist; micro tiles past them are skipped
  // (each block is one lane: the bits do not depend on the grouping).
  static void wino_gemm(const float* v, int nc, const float* u, float* y, const float* coef, int64_t hs, int nb) {
    for (int t0 = 0; t0 < nb; t0 += NR) wino_gemm_micro(v + t0, nc, u, y + t0, coef, hs);
  }
  static void wino_gemm_micro(const float* v, int nc, const float* u, float* y, const float* coef, int64_t hs) {
    constexpr int T = kWinoBlocks;
    float c[kMR][NR];
    for (int m = 0; m < kMR; ++m)
      for (int j = 0; j < NR; ++j) c[m][j] = 0.0f;
    const float* vp = v;
    const float* w = u;
    for (int ci = 0; ci < nc; ++ci) {
      float x[NR];
      for (int j = 0; j < NR; ++j) x[j] = vp[j];
      for (int m = 0; m < kMR; ++m) {
        const float wv = w[m];
        for (int j = 0; j < NR; ++j) c[m][j] = fma_exact(wv, x[j], c[m][j]);
      }
      vp += T;
      w += kMR;
      LMC_SCALAR_BARRIER(w);
    }
    for (int o = 0; o < 8; ++o) {
      const float k = coef[o];
      if (k == 0.0f) continue;
      float* yo = y + (o >> 2) * hs + (o & 3) * T;
      if (k == 1.0f) {
        for (int m = 0; m < kMR; ++m)
          for (int j = 0; j < NR; ++j) yo[m * kTile + j] = yo[m * kTile + j] + c[m][j];
      } else if (k == -1.0f) {
        for (int m = 0; m < kMR; ++m)
          for (int j = 0; j < NR; ++j) yo[m * kTile + j] = yo[m * kTile + j] - c[m][j];
      } else {
        for (int m = 0; m < kMR; ++m)
          for (int j = 0; j < NR; ++j) yo[m * kTile + j] = fma_exact(k, c[m][j], yo[m * kTile + j]);
      }
    }
  }

  // kWinoBlocks floats as one value, for wino_input_sep; each op is one IEEE
  // operation per element, like the AVX2 version's.
  struct Vec {
    float x[kWinoBlocks];
  };
  static Vec vload(const float* p) {
    Vec r;
    for (int i = 0; i < kWinoBlocks; ++i) r.x[i] = p[i];
    return r;
  }
  static void vstore(float* p, const Vec& a) {
    for (int i = 0; i < kWinoBlocks; ++i) p[i] = a.x[i];
  }
  static Vec vadd(const Vec& a, const Vec& b) {
    Vec r;
    for (int i = 0; i < kWinoBlocks; ++i) r.x[i] = a.x[i] + b.x[i];
    return r;
  }
  static Vec vsub(const Vec& a, const Vec& b) {
    Vec r;
    for (int i = 0; i < kWinoBlocks; ++i) r.x[i] = a.x[i] - b.x[i];
    return r;
  }
  static Vec vfma(float k, const Vec& a, const Vec& b) {
    Vec r;
    for (int i = 0; i < kWinoBlocks; ++i) r.x[i] = fma_exact(k, a.x[i], b.x[i]);
    return r;
  }

  static void prefetch(const void* p) {
#if defined(__GNUC__)
    __builtin_prefetch(p);
#else
    (void)p;
#endif
  }
  static void fill(float* x, float v, int n) {
    for (int i = 0; i < n; ++i) x[i] = v;
  }
  static void add_scalar(float* x, float v, int n) {
    for (int i = 0; i < n; ++i) x[i] += v;
  }
  static void fill_u32(uint32_t* x, uint32_t v, int n) {
    for (int i = 0; i < n; ++i) x[i] = v;
  }
  // max(x, +0) like vmaxps(x, 0): -0 and NaN give +0.
  static void relu(float* x, int n) {
    for (int i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
  }
  // Clears the sign bit, like the AVX2 and-mask (also for -0).
  static void abs_copy(float* dst, const float* src, int n) {
    for (int i = 0; i < n; ++i) dst[i] = std::fabs(src[i]);
  }
  // A true division for GDN (as vdivps; no reciprocal approximation).
  static void gdn_apply(float* x, const float* norm, int n, bool inverse) {
    if (inverse) {
      for (int i = 0; i < n; ++i) x[i] *= norm[i];
    } else {
      for (int i = 0; i < n; ++i) x[i] /= norm[i];
    }
  }
  // Diagonal GDN: the one non-zero term of the matrix product, as one fma.
  static void gdn_diag(float* x, float beta, float g, int n, bool inverse) {
    for (int i = 0; i < n; ++i) {
      const float norm = fma_exact(g, std::fabs(x[i]), beta);
      x[i] = inverse ? x[i] * norm : x[i] / norm;
    }
  }
  static void requant(uint32_t* acc, int n, int shift, int32_t lo, int32_t hi) {
    const uint32_t rnd = shift > 0 ? (1u << (shift - 1)) : 0u;
    for (int i = 0; i < n; ++i) {
      int32_t v = asr32(u32_to_i32(acc[i] + rnd), shift);
      v = v < lo ? lo : (v > hi ? hi : v);
      acc[i] = static_cast<uint32_t>(v);
    }
  }
  template <class T>
  static void copy(T* dst, const T* src, int n) {
    for (int i = 0; i < n; ++i) dst[i] = src[i];
  }
  template <class T>
  static void interleave(T* dst, const T* a, const T* b, int n) {
    for (int i = 0; i < n; ++i) {
      dst[2 * i] = a[i];
      dst[2 * i + 1] = b[i];
    }
  }
  static void interleave4(float* dst, const float* a, const float* b, const float* c, const float* d, int n) {
    for (int i = 0; i < n; ++i) {
      dst[4 * i] = a[i];
      dst[4 * i + 1] = b[i];
      dst[4 * i + 2] = c[i];
      dst[4 * i + 3] = d[i];
    }
  }
};

void scalar_conv_f32_tile(const ConvJob& j, int64_t p0, float* s) { conv_f32_tile_impl<ScalarMicro>(j, p0, s); }
void scalar_conv_i16_tile(const ConvJob& j, int64_t p0, uint32_t* s, int ob0, int ob1) {
  conv_i16_tile_impl<ScalarMicro>(j, p0, s, ob0, ob1);
}
void scalar_gdn_tile(const GdnJob& j, int64_t p0, float* s) { gdn_tile_impl<ScalarMicro>(j, p0, s); }
void scalar_wino_tile(const WinoJob& j, int64_t b0, float* s, int ob0, int ob1) {
  wino_tile_impl<ScalarMicro>(j, b0, s, ob0, ob1);
}
void scalar_relu(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void scalar_scale(float* x, int64_t n, float g) {
  for (int64_t i = 0; i < n; ++i) x[i] *= g;
}

// Row by row, 64 columns at a time; every element's sum starts from the bias
// and runs over k in order with fused multiply-adds, then (accumulate) is
// added to C: the AVX2 kernel's sequence, so the same bits.
void scalar_gemm(const GemmJob& j) {
  constexpr int kCols = 64;
  float acc[kCols];
  for (int i = 0; i < j.m; ++i) {
    const float* a = j.a + int64_t(i) * j.lda;
    float* c = j.c + int64_t(i) * j.ldc;
    for (int j0 = 0; j0 < j.n; j0 += kCols) {
      const int nc = j.n - j0 < kCols ? j.n - j0 : kCols;
      for (int x = 0; x < nc; ++x) acc[x] = j.bias[i];
      for (int k = 0; k < j.k; ++k) {
        const float w = a[k];
        const float* b = j.b + int64_t(k) * j.ldb + j0;
        for (int x = 0; x < nc; ++x) acc[x] = fma_exact(w, b[x], acc[x]);
      }
      for (int x = 0; x < nc; ++x) c[j0 + x] = j.accumulate ? c[j0 + x] + acc[x] : acc[x];
    }
  }
}

}  // namespace

float portable_fma(float a, float b, float c) { return fma_exact(a, b, c); }

const KernelTable& scalar_kernels() {
  static_assert(kTile % ScalarMicro::NR == 0 && kTile % ScalarMicro::NR3 == 0 && kWinoBlocks % ScalarMicro::NR == 0,
                "tile sizes");
  static const KernelTable t = {"scalar",        ScalarMicro::NR,  scalar_conv_f32_tile, scalar_conv_i16_tile,
                                scalar_gdn_tile, scalar_wino_tile, scalar_relu,          scalar_scale,
                                scalar_gemm};
  return t;
}
}  // namespace detail
}  // namespace dsp
}  // namespace lmc
