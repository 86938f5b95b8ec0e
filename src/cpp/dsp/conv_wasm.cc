// lmcodec dsp: WebAssembly SIMD128 kernels (compiled in only when the target
// has SIMD128, i.e. em++ -msimd128: tools/build_wasm.sh; a native build gets
// the "not built" stub at the end).
//
// Bit-identical to the portable reference (conv_scalar.cc) and so to AVX2 /
// AVX-512: every float element goes through the same IEEE operations in the
// same order. WebAssembly has no fused multiply-add (relaxed-simd's madd may
// or may not fuse, so it cannot be used), so each FMA is emulated exactly, two
// lanes at a time in f64x2:
//
//   * the accumulators live as f64x2 pairs holding float values (a float
//     converts to double exactly);
//   * s = a*b + c in double: the product of two floats is exact in double,
//     so s is the exact sum rounded once to 53 bits;
//   * float(s) (f32x4.demote_f64x2_zero, round to nearest even) is then the
//     correctly rounded fma(a, b, c) unless s is exactly a midpoint between
//     two adjacent floats (double rounding can only go wrong there: the float
//     grid and its midpoints are representable in double, and rounding is
//     monotone). A midpoint has at most 25 significant bits, so its low 28
//     mantissa bits are zero, and it is not a float itself. The check
//     "low 28 bits of s zero and s != float(s)" is a superset of the
//     midpoints (normal, subnormal and at the overflow threshold). The hot
//     loops check 4 lanes at once in two steps (fma2x2): a cheap filter on
//     the low 28 bits alone (it passes exact floats and midpoints only),
//     then the full check;
//   * lanes that pass the check (rare: an exact 25-bit sum or a true
//     rounding tie) are recomputed by the exact emulation conv_scalar.cc
//     uses, vectorised: TwoSum gives the rounding error of s, an inexact even
//     s moves one ulp towards the exact value (round to odd), and a double
//     rounded to odd rounds correctly to float (Boldo & Melquiond 2008).
//
// Everything else (add, subtract, multiply, divide, |x|, ReLU as max(x, +0)
// with NaN -> +0) is one SIMD128 IEEE operation per lane, as in the
// reference. The int16 convolutions use i32x4.dot_i16x8_s (pmaddwd: two
// products summed in int32, wrapping) and i32x4.add (wrapping): the
// reference's mod-2^32 sums.
//
// tests/cpp/test_dsp.cc, built with em++ and run in Node
// (tools/test_wasm_kernels.sh), compares this table with the scalar one on
// every kernel; tests/test_wasm.py compares decoded pixels with the native
// decoder.
#include "dsp/kernels.h"

#if defined(__wasm_simd128__)

#include <wasm_simd128.h>

#include <cstring>

#include "dsp/conv_tile.h"

namespace lmc {
namespace dsp {
namespace detail {
namespace {

#define LMC_WI inline __attribute__((always_inline))

// ---------------------------------------------------------------------------
// Exact fused multiply-add, two lanes of f64x2 (each holding a float value).
// ---------------------------------------------------------------------------

// The slow, always exact path: conv_scalar.cc's fma_exact on both lanes.
__attribute__((noinline)) v128_t fma2_exact(v128_t a, v128_t b, v128_t c) {
  const v128_t p = wasm_f64x2_mul(a, b);  // exact
  const v128_t s = wasm_f64x2_add(p, c);
  const v128_t v = wasm_f64x2_sub(s, p);
  const v128_t e = wasm_f64x2_add(wasm_f64x2_sub(p, wasm_f64x2_sub(s, v)), wasm_f64x2_sub(c, v));  // TwoSum
  const v128_t zero = wasm_f64x2_const_splat(0.0);
  const v128_t one = wasm_i64x2_const_splat(1);
  const v128_t epos = wasm_f64x2_gt(e, zero);
  // inexact (e != 0; NaN e: no change) and even
  const v128_t fix = wasm_v128_and(wasm_v128_or(epos, wasm_f64x2_lt(e, zero)),
                                   wasm_i64x2_eq(wasm_v128_and(s, one), wasm_i64x2_const_splat(0)));
  // +1 ulp (of |s|) when e and s have the same sign, else -1: towards the exact value
  const v128_t delta = wasm_v128_or(wasm_v128_xor(epos, wasm_f64x2_gt(s, zero)), one);
  const v128_t odd = wasm_i64x2_add(s, wasm_v128_and(delta, fix));
  return wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(odd));
}

// fma(a, b, c) rounded to float, as a float-valued f64x2.
LMC_WI v128_t fma2(v128_t a, v128_t b, v128_t c) {
  const v128_t s = wasm_f64x2_add(wasm_f64x2_mul(a, b), c);
  const v128_t r = wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s));
  const v128_t maybe_tie = wasm_v128_and(wasm_i64x2_eq(wasm_v128_and(s, wasm_i64x2_const_splat(0x0fffffff)),
                                                       wasm_i64x2_const_splat(0)),
                                         wasm_f64x2_ne(s, r));
  if (__builtin_expect(wasm_v128_any_true(maybe_tie), 0)) return fma2_exact(a, b, c);
  return r;
}

// Two fma2 sharing a (the two halves of 4 lanes), checked together: first
// the cheap filter "some lane has its low 28 bits zero" (i32x4.all_true of
// the masked low words of the four sums; rare with real data: exact floats
// and midpoints), then the full check of fma2 only when it passes.
LMC_WI void fma2x2(v128_t a, v128_t b0, v128_t b1, v128_t& c0, v128_t& c1) {
  const v128_t s0 = wasm_f64x2_add(wasm_f64x2_mul(a, b0), c0);
  const v128_t s1 = wasm_f64x2_add(wasm_f64x2_mul(a, b1), c1);
  const v128_t r0 = wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s0));
  const v128_t r1 = wasm_f64x2_promote_low_f32x4(wasm_f32x4_demote_f64x2_zero(s1));
  // the low 32-bit words of the 4 doubles (the low 28 bits live there)
  const v128_t lw = wasm_v128_and(wasm_i32x4_shuffle(s0, s1, 0, 2, 4, 6), wasm_i32x4_const_splat(0x0fffffff));
  if (__builtin_expect(!wasm_i32x4_all_true(lw), 0)) {
    const v128_t m28 = wasm_i64x2_const_splat(0x0fffffff), z = wasm_i64x2_const_splat(0);
    const v128_t t0 = wasm_v128_and(wasm_i64x2_eq(wasm_v128_and(s0, m28), z), wasm_f64x2_ne(s0, r0));
    const v128_t t1 = wasm_v128_and(wasm_i64x2_eq(wasm_v128_and(s1, m28), z), wasm_f64x2_ne(s1, r1));
    if (wasm_v128_any_true(wasm_v128_or(t0, t1))) {
      c0 = fma2_exact(a, b0, c0);
      c1 = fma2_exact(a, b1, c1);
      return;
    }
  }
  c0 = r0;
  c1 = r1;
}

// 4 floats <-> two float-valued f64x2.
LMC_WI v128_t lo2(v128_t f) { return wasm_f64x2_promote_low_f32x4(f); }
LMC_WI v128_t hi2(v128_t f) { return wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(f, f, 2, 3, 2, 3)); }
LMC_WI v128_t join4(v128_t lo, v128_t hi) {
  return wasm_i32x4_shuffle(wasm_f32x4_demote_f64x2_zero(lo), wasm_f32x4_demote_f64x2_zero(hi), 0, 1, 4, 5);
}
LMC_WI v128_t splat2(float w) { return wasm_f64x2_splat(static_cast<double>(w)); }
LMC_WI v128_t splat2p(const float* p) { return wasm_f64x2_promote_low_f32x4(wasm_v128_load32_splat(p)); }
LMC_WI v128_t ld(const float* p) { return wasm_v128_load(p); }
LMC_WI void st(float* p, v128_t v) { wasm_v128_store(p, v); }

// 4 lanes: fma(k, x, c) with k a splat double.
LMC_WI v128_t fma4(v128_t k2, v128_t x, v128_t c) {
  return join4(fma2(k2, lo2(x), lo2(c)), fma2(k2, hi2(x), hi2(c)));
}

inline int32_t u32_to_i32(uint32_t u) { return u < 0x80000000u ? static_cast<int32_t>(u) : -static_cast<int32_t>(~u) - 1; }
inline int32_t asr32(int32_t v, int s) { return v >= 0 ? (v >> s) : ~((~v) >> s); }

struct WasmMicro {
  // kMR (4) output channels x 4 pixels: 8 f64x2 accumulators (V8 has 16
  // vector registers on x86-64).
  static constexpr int NR = 4;
  static constexpr int NR3 = 4;

  template <int MR>
  static LMC_WI void f32_mr(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                            int64_t as) {
    v128_t c[MR][2];
    for (int m = 0; m < MR; ++m) {
      const v128_t a = ld(acc + m * as);
      c[m][0] = lo2(a);
      c[m][1] = hi2(a);
    }
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const v128_t x = ld(in + ci * cs + offs[t]);
      const v128_t x0 = lo2(x), x1 = hi2(x);
#pragma GCC unroll 4
      for (int m = 0; m < MR; ++m) {
        fma2x2(splat2p(w + m), x0, x1, c[m][0], c[m][1]);
      }
      w += MR;
    });
    for (int m = 0; m < MR; ++m) st(acc + m * as, join4(c[m][0], c[m][1]));
  }
  static void f32(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                  int64_t as) {
    f32_mr<kMR>(in, cs, offs, nt, nc, w, acc, as);
  }
  static void f32_mr3(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                      int64_t as) {
    f32_mr<3>(in, cs, offs, nt, nc, w, acc, as);
  }

  // int16 pairs; 4 output channels x 8 pixels (2 vectors of 4 pairs).
  static constexpr int NRI = 8;
  static void i16(const int16_t* in, int64_t cs, const int* offs, int nt, int nc, const int16_t* w, uint32_t* acc,
                  int64_t as) {
    v128_t c[kMR][2];
    for (int m = 0; m < kMR; ++m) {
      c[m][0] = wasm_v128_load(acc + m * as);
      c[m][1] = wasm_v128_load(acc + m * as + 4);
    }
    for (int ci = 0; ci < nc; ++ci) {
      const int16_t* ip = in + 2 * ci * cs;
      for (int t = 0; t < nt; ++t) {
        const int16_t* x = ip + 2 * (int64_t)offs[t];
        const v128_t x0 = wasm_v128_load(x), x1 = wasm_v128_load(x + 8);
#pragma GCC unroll 4
        for (int m = 0; m < kMR; ++m) {
          const v128_t b = wasm_v128_load32_splat(w + 2 * m);
          c[m][0] = wasm_i32x4_add(c[m][0], wasm_i32x4_dot_i16x8(x0, b));
          c[m][1] = wasm_i32x4_add(c[m][1], wasm_i32x4_dot_i16x8(x1, b));
        }
        w += 2 * kMR;
      }
    }
    for (int m = 0; m < kMR; ++m) {
      wasm_v128_store(acc + m * as, c[m][0]);
      wasm_v128_store(acc + m * as + 4, c[m][1]);
    }
  }

  // Winograd input transform: a multiply for the first term, then fused
  // multiply-adds in term order (the reference's sequence).
  static void wino_input(float* v, const float* in, int64_t cs, int nc, const WinoComp* comps, int ncomp,
                         const int* /*rows*/, int /*nrows*/) {
    constexpr int T = kWinoBlocks;
    for (int ci = 0; ci < nc; ++ci) {
      const float* ip = in + ci * cs;
      for (int cc = 0; cc < ncomp; ++cc) {
        const WinoComp& c = comps[cc];
        float* vc = v + ((int64_t)cc * nc + ci) * T;
        const v128_t s0 = wasm_f32x4_splat(c.sign[0]);
        const float* p0 = ip + c.off[0];
        v128_t a[T / 4][2];
#pragma GCC unroll 6
        for (int q = 0; q < T / 4; ++q) {
          const v128_t m = wasm_f32x4_mul(s0, ld(p0 + 4 * q));
          a[q][0] = lo2(m);
          a[q][1] = hi2(m);
        }
        for (int k = 1; k < c.nterms; ++k) {
          const v128_t sk = splat2(c.sign[k]);
          const float* pk = ip + c.off[k];
#pragma GCC unroll 6
          for (int q = 0; q < T / 4; ++q) {
            const v128_t x = ld(pk + 4 * q);
            a[q][0] = fma2(sk, lo2(x), a[q][0]);
            a[q][1] = fma2(sk, hi2(x), a[q][1]);
          }
        }
#pragma GCC unroll 6
        for (int q = 0; q < T / 4; ++q) st(vc + 4 * q, join4(a[q][0], a[q][1]));
      }
    }
  }

  // One Winograd component for kMR output channels, nb blocks (rounded up to
  // 4): M = U^T V by fused multiply-adds from 0, then y[o] += coef[o] * M
  // (add for +1, subtract for -1, fma otherwise, skip 0).
  static void wino_gemm(const float* v, int nc, const float* u, float* y, const float* coef, int64_t hs, int nb) {
    for (int t0 = 0; t0 < nb; t0 += NR) wino_gemm_micro(v + t0, nc, u, y + t0, coef, hs);
  }
  static void wino_gemm_micro(const float* v, int nc, const float* u, float* y, const float* coef, int64_t hs) {
    constexpr int T = kWinoBlocks;
    const v128_t z = wasm_f64x2_const_splat(0.0);
    v128_t c[kMR][2];
    for (int m = 0; m < kMR; ++m) c[m][0] = c[m][1] = z;
    const float* vp = v;
    const float* w = u;
    for (int ci = 0; ci < nc; ++ci, vp += T, w += kMR) {
      const v128_t x = ld(vp);
      const v128_t x0 = lo2(x), x1 = hi2(x);
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m) {
        fma2x2(splat2p(w + m), x0, x1, c[m][0], c[m][1]);
      }
    }
    v128_t cf[kMR];
    for (int m = 0; m < kMR; ++m) cf[m] = join4(c[m][0], c[m][1]);
    for (int o = 0; o < 8; ++o) {
      const float k = coef[o];
      if (k == 0.0f) continue;
      float* yo = y + (o >> 2) * hs + (o & 3) * T;
      if (k == 1.0f) {
        for (int m = 0; m < kMR; ++m) st(yo + m * kTile, wasm_f32x4_add(ld(yo + m * kTile), cf[m]));
      } else if (k == -1.0f) {
        for (int m = 0; m < kMR; ++m) st(yo + m * kTile, wasm_f32x4_sub(ld(yo + m * kTile), cf[m]));
      } else {
        const v128_t k2 = splat2(k);
        for (int m = 0; m < kMR; ++m) st(yo + m * kTile, fma4(k2, cf[m], ld(yo + m * kTile)));
      }
    }
  }

  // kWinoBlocks (24) floats, for wino_input_sep.
  struct Vec {
    v128_t x[kWinoBlocks / 4];
  };
  static LMC_WI Vec vload(const float* p) {
    Vec r;
    for (int i = 0; i < kWinoBlocks / 4; ++i) r.x[i] = ld(p + 4 * i);
    return r;
  }
  static LMC_WI void vstore(float* p, const Vec& a) {
    for (int i = 0; i < kWinoBlocks / 4; ++i) st(p + 4 * i, a.x[i]);
  }
  static LMC_WI Vec vadd(const Vec& a, const Vec& b) {
    Vec r;
    for (int i = 0; i < kWinoBlocks / 4; ++i) r.x[i] = wasm_f32x4_add(a.x[i], b.x[i]);
    return r;
  }
  static LMC_WI Vec vsub(const Vec& a, const Vec& b) {
    Vec r;
    for (int i = 0; i < kWinoBlocks / 4; ++i) r.x[i] = wasm_f32x4_sub(a.x[i], b.x[i]);
    return r;
  }
  static LMC_WI Vec vfma(float k, const Vec& a, const Vec& b) {
    const v128_t k2 = splat2(k);
    Vec r;
    for (int i = 0; i < kWinoBlocks / 4; ++i) r.x[i] = fma4(k2, a.x[i], b.x[i]);
    return r;
  }

  static void prefetch(const void*) {}
  // n is a multiple of 4 except for copy / interleave (kTile or a part of a tile row).
  static void fill(float* x, float v, int n) {
    const v128_t vv = wasm_f32x4_splat(v);
    int i = 0;
    for (; i + 4 <= n; i += 4) st(x + i, vv);
    for (; i < n; ++i) x[i] = v;
  }
  static void add_scalar(float* x, float v, int n) {
    const v128_t vv = wasm_f32x4_splat(v);
    int i = 0;
    for (; i + 4 <= n; i += 4) st(x + i, wasm_f32x4_add(ld(x + i), vv));
    for (; i < n; ++i) x[i] += v;
  }
  static void fill_u32(uint32_t* x, uint32_t v, int n) {
    const v128_t vv = wasm_i32x4_splat(static_cast<int32_t>(v));
    int i = 0;
    for (; i + 4 <= n; i += 4) wasm_v128_store(x + i, vv);
    for (; i < n; ++i) x[i] = v;
  }
  // max(x, +0) with -0 and NaN giving +0 (the reference's x > 0 ? x : 0):
  // pmax(0, x) = 0 < x ? x : 0.
  static void relu(float* x, int n) {
    const v128_t z = wasm_f32x4_const_splat(0.0f);
    int i = 0;
    for (; i + 4 <= n; i += 4) st(x + i, wasm_f32x4_pmax(z, ld(x + i)));
    for (; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
  }
  static void abs_copy(float* dst, const float* src, int n) {  // clears the sign bit
    int i = 0;
    for (; i + 4 <= n; i += 4) st(dst + i, wasm_f32x4_abs(ld(src + i)));
    for (; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, src + i, sizeof(u));
      u &= 0x7fffffffu;
      std::memcpy(dst + i, &u, sizeof(u));
    }
  }
  static void gdn_apply(float* x, const float* norm, int n, bool inverse) {
    int i = 0;
    if (inverse) {
      for (; i + 4 <= n; i += 4) st(x + i, wasm_f32x4_mul(ld(x + i), ld(norm + i)));
      for (; i < n; ++i) x[i] *= norm[i];
    } else {
      for (; i + 4 <= n; i += 4) st(x + i, wasm_f32x4_div(ld(x + i), ld(norm + i)));
      for (; i < n; ++i) x[i] /= norm[i];
    }
  }
  // norm = fma(g, |x|, beta); x *= norm (IGDN) or x /= norm (GDN). n is kTile.
  static void gdn_diag(float* x, float beta, float g, int n, bool inverse) {
    const v128_t g2 = splat2(g), b2 = splat2(beta);
    for (int i = 0; i < n; i += 4) {
      const v128_t v = ld(x + i);
      const v128_t a = wasm_f32x4_abs(v);
      const v128_t norm = join4(fma2(g2, lo2(a), b2), fma2(g2, hi2(a), b2));
      st(x + i, inverse ? wasm_f32x4_mul(v, norm) : wasm_f32x4_div(v, norm));
    }
  }
  static void requant(uint32_t* acc, int n, int shift, int32_t lo, int32_t hi) {
    const int32_t rnd = shift > 0 ? static_cast<int32_t>(1u << (shift - 1)) : 0;
    const v128_t vr = wasm_i32x4_splat(rnd), vlo = wasm_i32x4_splat(lo), vhi = wasm_i32x4_splat(hi);
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      v128_t v = wasm_i32x4_shr(wasm_i32x4_add(wasm_v128_load(acc + i), vr), shift);  // wrapping add, arithmetic shift
      v = wasm_i32x4_min(wasm_i32x4_max(v, vlo), vhi);
      wasm_v128_store(acc + i, v);
    }
    for (; i < n; ++i) {
      int32_t v = asr32(u32_to_i32(acc[i] + static_cast<uint32_t>(rnd)), shift);
      v = v < lo ? lo : (v > hi ? hi : v);
      acc[i] = static_cast<uint32_t>(v);
    }
  }
  template <class T>
  static void copy(T* dst, const T* src, int n) {
    std::memcpy(dst, src, sizeof(T) * n);
  }
  // dst[2i] = a[i], dst[2i+1] = b[i] (4-byte elements; shuffles only).
  template <class T>
  static void interleave(T* dst, const T* a, const T* b, int n) {
    static_assert(sizeof(T) == 4, "4-byte elements");
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      const v128_t va = wasm_v128_load(a + i), vb = wasm_v128_load(b + i);
      wasm_v128_store(dst + 2 * i, wasm_i32x4_shuffle(va, vb, 0, 4, 1, 5));
      wasm_v128_store(dst + 2 * i + 4, wasm_i32x4_shuffle(va, vb, 2, 6, 3, 7));
    }
    for (; i < n; ++i) {
      dst[2 * i] = a[i];
      dst[2 * i + 1] = b[i];
    }
  }
  static void interleave4(float* dst, const float* a, const float* b, const float* c, const float* d, int n) {
    int i = 0;
    for (; i + 4 <= n; i += 4) {
      const v128_t va = ld(a + i), vb = ld(b + i), vc = ld(c + i), vd = ld(d + i);
      const v128_t ab0 = wasm_i32x4_shuffle(va, vb, 0, 4, 1, 5), ab1 = wasm_i32x4_shuffle(va, vb, 2, 6, 3, 7);
      const v128_t cd0 = wasm_i32x4_shuffle(vc, vd, 0, 4, 1, 5), cd1 = wasm_i32x4_shuffle(vc, vd, 2, 6, 3, 7);
      float* o = dst + 4 * i;
      st(o, wasm_i64x2_shuffle(ab0, cd0, 0, 2));
      st(o + 4, wasm_i64x2_shuffle(ab0, cd0, 1, 3));
      st(o + 8, wasm_i64x2_shuffle(ab1, cd1, 0, 2));
      st(o + 12, wasm_i64x2_shuffle(ab1, cd1, 1, 3));
    }
    for (; i < n; ++i) {
      dst[4 * i] = a[i];
      dst[4 * i + 1] = b[i];
      dst[4 * i + 2] = c[i];
      dst[4 * i + 3] = d[i];
    }
  }
};

// The int16 kernel's own micro tile width (8 pixels: two i32x4 per row).
struct WasmMicroI16 : WasmMicro {
  static constexpr int NR = WasmMicro::NRI;
};

void wasm_conv_f32_tile(const ConvJob& j, int64_t p0, float* s) { conv_f32_tile_impl<WasmMicro>(j, p0, s); }
void wasm_conv_i16_tile(const ConvJob& j, int64_t p0, uint32_t* s, int ob0, int ob1) {
  conv_i16_tile_impl<WasmMicroI16>(j, p0, s, ob0, ob1);
}
void wasm_gdn_tile(const GdnJob& j, int64_t p0, float* s) { gdn_tile_impl<WasmMicro>(j, p0, s); }
void wasm_wino_tile(const WinoJob& j, int64_t b0, float* s, int ob0, int ob1) {
  wino_tile_impl<WasmMicro>(j, b0, s, ob0, ob1);
}
void wasm_relu(float* x, int64_t n) {
  const v128_t z = wasm_f32x4_const_splat(0.0f);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) st(x + i, wasm_f32x4_pmax(z, ld(x + i)));
  for (; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
void wasm_scale(float* x, int64_t n, float g) {
  const v128_t vg = wasm_f32x4_splat(g);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) st(x + i, wasm_f32x4_mul(ld(x + i), vg));
  for (; i < n; ++i) x[i] *= g;
}

// The dense product (the block transforms and TapGemm), 8 columns at a time
// (fma2x2), then 2 (fma2): acc = bias, fused multiply-adds in ascending k,
// then + C when accumulating (the reference's sequence). test_dsp's
// test_kernel_fma checks both FMA forms through it.
void wasm_gemm(const GemmJob& j) {
  for (int i = 0; i < j.m; ++i) {
    const float* a = j.a + int64_t(i) * j.lda;
    float* c = j.c + int64_t(i) * j.ldc;
    const v128_t bias = splat2(j.bias[i]);
    int x0 = 0;
    for (; x0 + 8 <= j.n; x0 += 8) {
      v128_t acc[4] = {bias, bias, bias, bias};
      const float* b = j.b + x0;
      for (int k = 0; k < j.k; ++k, b += j.ldb) {
        const v128_t w = splat2(a[k]);
        const v128_t b0 = ld(b), b1 = ld(b + 4);
        fma2x2(w, lo2(b0), hi2(b0), acc[0], acc[1]);
        fma2x2(w, lo2(b1), hi2(b1), acc[2], acc[3]);
      }
      v128_t r0 = join4(acc[0], acc[1]), r1 = join4(acc[2], acc[3]);
      if (j.accumulate) {
        r0 = wasm_f32x4_add(ld(c + x0), r0);
        r1 = wasm_f32x4_add(ld(c + x0 + 4), r1);
      }
      st(c + x0, r0);
      st(c + x0 + 4, r1);
    }
    for (; x0 < j.n; x0 += 2) {  // two columns (one f64x2) at a time
      const bool two = x0 + 1 < j.n;
      v128_t acc = bias;
      const float* b = j.b + x0;
      for (int k = 0; k < j.k; ++k, b += j.ldb) {
        const v128_t bv = wasm_f64x2_make(b[0], two ? b[1] : 0.0f);
        acc = fma2(splat2(a[k]), bv, acc);
      }
      const float r0 = static_cast<float>(wasm_f64x2_extract_lane(acc, 0));
      const float r1 = static_cast<float>(wasm_f64x2_extract_lane(acc, 1));
      c[x0] = j.accumulate ? c[x0] + r0 : r0;
      if (two) c[x0 + 1] = j.accumulate ? c[x0 + 1] + r1 : r1;
    }
  }
}

static_assert(kTile % WasmMicro::NR == 0 && kTile % WasmMicro::NR3 == 0 && kTile % WasmMicroI16::NR == 0 &&
                  kWinoBlocks % WasmMicro::NR == 0,
              "tiles must be multiples of the micro tile");

const KernelTable kWasmTable = {"simd128",     WasmMicro::NR,  wasm_conv_f32_tile, wasm_conv_i16_tile,
                                wasm_gdn_tile, wasm_wino_tile, wasm_relu,          wasm_scale,
                                wasm_gemm};
}  // namespace

const KernelTable* simd128_kernels() { return &kWasmTable; }

}  // namespace detail
}  // namespace dsp
}  // namespace lmc

#else  // not a WebAssembly SIMD128 build

namespace lmc {
namespace dsp {
namespace detail {
const KernelTable* simd128_kernels() { return nullptr; }
}  // namespace detail
}  // namespace dsp
}  // namespace lmc

#endif
