// lmcodec dsp, internal: the parts of the SIMD kernel tables that are the
// same but for the register width: the direct-conv micro-kernels
// (SimdDirect) and the dense GEMM (GemmJob, gemm_impl), written once over a
// vector type and compiled by each per-ISA file
// (conv_avx2.cc, conv_avx512.cc) with its own flags. Like conv_tile.h it is
// included ONLY by those files and lives in an anonymous namespace, so each
// compiled copy stays private to its file.
//
// V (one per ISA file) provides, all always_inline:
//   kLanes                      floats per register
//   Vec, Mask                   a register, the lanes of a narrow block
//   mask<kV>(n)                 the first clamp(n, 0, kLanes) lanes (in a
//                               block of kV registers)
//   load(p), store(p, x)        unaligned, all lanes
//   load_masked(m, p)           the masked lanes, 0 elsewhere (no fault there)
//   store_masked(p, m, x)       the masked lanes only
//   broadcast(p), set1(x)       *p, x in every lane
//   fmadd(a, b, c), add(a, b)   a * b + c (one rounding), a + b
//   IVec, loadi(p), storei(p, x) int32 lanes (kLanes of them), unaligned
//   set1i(x), madd_add(c, x, b)  c + vpmaddwd(x, b) (wrap-around adds)
// Each ISA's own tile parts (Winograd, GDN, stores) stay in its file.
#pragma once

#include <cstring>

#include "dsp/conv_tile.h"
#include "dsp/kernels.h"

namespace lmc {
namespace dsp {
namespace detail {
namespace {

// The register-blocked micro-kernels of the direct convolutions (conv_tile.h
// calls M::f32, M::f32_mr3, M::i16): NV registers of pixels per output
// channel; a per-ISA Micro derives from this and adds the rest.
template <class V, int NV, int NV3>
struct SimdDirect {
  static constexpr int NR = V::kLanes * NV;

  // kMR output channels x NR pixels of accumulators in registers: per (input
  // channel, tap) NV pixel vectors are loaded (unaligned, contiguous thanks
  // to the padded/polyphase layout), kMR weights broadcast, kMR*NV FMAs. The
  // (channel, tap) loops run through for_taps (conv_tile.h: fully unrolled
  // for the codec's tap counts).
  static void f32(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                  int64_t as) {
    typename V::Vec c[kMR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[m][v] = V::load(acc + m * as + V::kLanes * v);
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const float* x = in + ci * cs + offs[t];
      typename V::Vec xv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) xv[v] = V::load(x + V::kLanes * v);
#pragma GCC unroll 4
      for (int m = 0; m < kMR; ++m) {
        const typename V::Vec b = V::broadcast(w + m);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) c[m][v] = V::fmadd(b, xv[v], c[m][v]);
      }
      w += kMR;
    });
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::store(acc + m * as + V::kLanes * v, c[m][v]);
  }

  // 3 output channels x NR3 pixels (a 3-channel layer, e.g. the codec's
  // last: no accumulator row wasted on padding). Weights [nc][nt][3]. The
  // three broadcasts stay in registers while the NV3 pixel vectors stream
  // through (AVX2: 4, 12 accumulators + 3 weights + 1 input = 16 registers).
  static constexpr int NR3 = V::kLanes * NV3;
  static void f32_mr3(const float* in, int64_t cs, const int* offs, int nt, int nc, const float* w, float* acc,
                      int64_t as) {
    typename V::Vec c[3][NV3];
#pragma GCC unroll 3
    for (int m = 0; m < 3; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV3; ++v) c[m][v] = V::load(acc + m * as + V::kLanes * v);
    for_taps(nt, nc, [&](int ci, int t) __attribute__((always_inline)) {
      const float* x = in + ci * cs + offs[t];
      const typename V::Vec b0 = V::broadcast(w), b1 = V::broadcast(w + 1), b2 = V::broadcast(w + 2);
#pragma GCC unroll 4
      for (int v = 0; v < NV3; ++v) {
        const typename V::Vec xv = V::load(x + V::kLanes * v);
        c[0][v] = V::fmadd(b0, xv, c[0][v]);
        c[1][v] = V::fmadd(b1, xv, c[1][v]);
        c[2][v] = V::fmadd(b2, xv, c[2][v]);
      }
      w += 3;
    });
#pragma GCC unroll 3
    for (int m = 0; m < 3; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV3; ++v) V::store(acc + m * as + V::kLanes * v, c[m][v]);
  }

  // int16 channel pairs: vpmaddwd (two int16 products summed exactly in
  // int32) and vpaddd (wrap-around): exactly the mod-2^32 reference sum. Plain
  // loops (unrolled, the tap loop got slower: register pressure).
  static void i16(const int16_t* in, int64_t cs, const int* offs, int nt, int nc, const int16_t* w, uint32_t* acc,
                  int64_t as) {
    typename V::IVec c[kMR][NV];
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) c[m][v] = V::loadi(acc + m * as + V::kLanes * v);
    for (int ci = 0; ci < nc; ++ci) {
      const int16_t* ip = in + 2 * ci * cs;
      for (int t = 0; t < nt; ++t) {
        const int16_t* x = ip + 2 * (int64_t)offs[t];
        typename V::IVec xv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) xv[v] = V::loadi(x + 2 * V::kLanes * v);
#pragma GCC unroll 4
        for (int m = 0; m < kMR; ++m) {
          int32_t pair;
          std::memcpy(&pair, w + 2 * m, sizeof(pair));
          const typename V::IVec b = V::set1i(pair);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) c[m][v] = V::madd_add(c[m][v], xv[v], b);
        }
        w += 2 * kMR;
      }
    }
#pragma GCC unroll 4
    for (int m = 0; m < kMR; ++m)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) V::storei(acc + m * as + V::kLanes * v, c[m][v]);
  }
};

// One kR x (kLanes kV) block of C at column j0 (nc <= kLanes kV columns
// exist; the lanes past them are masked). kV < 3 serves the last, narrow
// block of a small product (a thumbnail's block transform has 2-4 columns:
// computing 3 registers of lanes for 2 columns cost ~10x on AVX2). Each
// element gets the same operations whatever the block width, so the bits do
// not depend on it.
template <class V, int kR, int kV>
inline __attribute__((always_inline)) void gemm_block(const GemmJob& j, const float* const* arow, int i0, int j0,
                                                      int nc) {
  constexpr int kN = V::kLanes * kV;
  typename V::Mask mask[kV];
#pragma GCC unroll 4
  for (int v = 0; v < kV; ++v) mask[v] = V::template mask<kV>(nc - V::kLanes * v);
  typename V::Vec acc[kR][kV];
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) acc[r][v] = V::set1(j.bias[i0 + r]);
  const float* b = j.b + j0;
  if (nc == kN) {
    for (int k = 0; k < j.k; ++k, b += j.ldb) {
      typename V::Vec bv[kV];
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) bv[v] = V::load(b + V::kLanes * v);
#pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const typename V::Vec w = V::broadcast(arow[r] + k);
#pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = V::fmadd(w, bv[v], acc[r][v]);
      }
    }
  } else {
    for (int k = 0; k < j.k; ++k, b += j.ldb) {
      typename V::Vec bv[kV];
#pragma GCC unroll 4
      for (int v = 0; v < kV; ++v) bv[v] = V::load_masked(mask[v], b + V::kLanes * v);
#pragma GCC unroll 4
      for (int r = 0; r < kR; ++r) {
        const typename V::Vec w = V::broadcast(arow[r] + k);
#pragma GCC unroll 4
        for (int v = 0; v < kV; ++v) acc[r][v] = V::fmadd(w, bv[v], acc[r][v]);
      }
    }
  }
  // full blocks: plain loads and stores (AVX2's vmaskmovps stores are slow
  // on AMD cores: microcoded, they cost more than the block's FMAs here)
#pragma GCC unroll 4
  for (int r = 0; r < kR; ++r) {
    float* c = j.c + int64_t(i0 + r) * j.ldc + j0;
#pragma GCC unroll 4
    for (int v = 0; v < kV; ++v) {
      typename V::Vec x = acc[r][v];
      if (nc == kN) {
        if (j.accumulate) x = V::add(V::load(c + V::kLanes * v), x);
        V::store(c + V::kLanes * v, x);
      } else {
        if (j.accumulate) x = V::add(V::load_masked(mask[v], c + V::kLanes * v), x);
        V::store_masked(c + V::kLanes * v, mask[v], x);
      }
    }
  }
}

// Rows i0 .. i0 + kR - 1 of C, in blocks of 3 registers of columns (4 rows:
// 12 independent FMA chains, enough to hide the FMA latency).
template <class V, int kR>
void gemm_rows(const GemmJob& j, int i0) {
  constexpr int kN = 3 * V::kLanes;
  const float* arow[kR];
  for (int r = 0; r < kR; ++r) arow[r] = j.a + int64_t(i0 + r) * j.lda;
  for (int j0 = 0; j0 < j.n; j0 += kN) {
    const int nc = j.n - j0 < kN ? j.n - j0 : kN;
    if (nc > 2 * V::kLanes) {
      gemm_block<V, kR, 3>(j, arow, i0, j0, nc);
    } else if (nc > V::kLanes) {
      gemm_block<V, kR, 2>(j, arow, i0, j0, nc);
    } else {
      gemm_block<V, kR, 1>(j, arow, i0, j0, nc);
    }
  }
}

// The kernel table's gemm_f32.
template <class V>
void gemm_impl(const GemmJob& j) {
  int i = 0;
  for (; i + 4 <= j.m; i += 4) gemm_rows<V, 4>(j, i);
  for (; i < j.m; ++i) gemm_rows<V, 1>(j, i);
}

}  // namespace
}  // namespace detail
}  // namespace dsp
}  // namespace lmc
