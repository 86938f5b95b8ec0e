// lmcodec dsp, internal: the per-tile drivers shared by every ISA.
//
// Included ONLY by the kernel-table files (conv_scalar.cc for the portable
// reference, conv_avx2.cc, conv_avx512.cc). Everything is in an anonymous
// namespace, so each of those files gets its own copy compiled with its own
// flags (no ODR sharing).
//
// A "micro-kernel policy" M supplies the ISA-specific pieces:
//   M::NR                               pixels per micro tile
//   M::f32(in, cs, offs, nt, nc, w, acc, as)
//       acc[m*as + j] += sum_{ci<nc} sum_{t<nt} w[(ci*nt + t)*kMR + m] * in[ci*cs + offs[t] + j]
//       for m < kMR, j < NR, in the order ci, then t (fixed => deterministic)
//   M::i16(in, cs, offs, nt, nc, w, acc, as)   same on int16 pairs, mod 2^32
//   M::wino_input(V, in, cs, nc, comps, n, rows, nrows)
//                                           V[c][ci][t] = sum_k sign_ck in[ci*cs + off_ck + t]
//                                           (rows: what to prefetch for later channels)
//   M::wino_gemm(V, nc, U, y, coef, hs, nb) y[(o/4)*hs + m*kTile + (o%4)*T + t] += coef[o] * sum_ci U[ci][m] V[ci][t]
//                                           for o < 8 (skipped where coef[o] == 0; +-1 as add / subtract,
//                                           other factors as one fused multiply-add), for t < nb at least
//                                           (rounded up to the kernel's vector width; the rest is not touched)
//   M::Vec, vload(p), vstore(p, x), vadd, vsub, vfma(k, a, b) = k*a + b fused
//                                           kWinoBlocks floats at a time (wino_input_sep)
//   M::prefetch(p)                          prefetch hint for address p
//   M::gdn_diag(x, beta, g, n, inverse)  x *= or /= fma(g, |x|, beta)
//   M::fill, M::add_scalar, M::relu, M::abs_copy, M::gdn_apply, M::requant,
//   M::copy, M::interleave (2-way), M::interleave4
#pragma once

#include <cstdint>

#include "dsp/kernels.h"

namespace lmc {
namespace dsp {
namespace detail {
namespace {

// The (input channel, tap) loop of the SIMD direct kernels, with the tap
// loop fully unrolled for the tap counts the codec's layers have (9 = 3x3;
// 6 and 4 = the phases of a 5x5 transposed conv and the polyphase planes of a
// 5x5 stride-2 conv) and a run-time loop for any other count. A short
// run-time tap loop nested in the channel loop mispredicts its exit every few
// iterations (trip counts 9, 6, 6, 4 alternate between calls). Measured on
// AVX2: the kernel alone ~20 % faster, the decoder's last layer (64 -> 3)
// 3-6 % (A/B in alternating processes); the int16 kernel got slower unrolled
// (register pressure), so it keeps its loops. Same operations in the same
// order either way, so the same bits (test_dsp).
template <int NT, class Body>
inline __attribute__((always_inline)) void for_taps_n(int nc, Body& body) {
  for (int ci = 0; ci < nc; ++ci)
#pragma GCC unroll 9
    for (int t = 0; t < NT; ++t) body(ci, t);
}
template <class Body>
inline __attribute__((always_inline)) void for_taps(int nt, int nc, Body&& body) {
  switch (nt) {
    case 4: for_taps_n<4>(nc, body); break;
    case 6: for_taps_n<6>(nc, body); break;
    case 9: for_taps_n<9>(nc, body); break;
    default:
      for (int ci = 0; ci < nc; ++ci)
        for (int t = 0; t < nt; ++t) body(ci, t);
  }
}

inline int64_t tile_min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t tile_max64(int64_t a, int64_t b) { return a > b ? a : b; }

// How much of a tile starting at grid element p0 the kernels compute: the
// elements before the end of the grid (total), rounded up to the micro
// kernel's width nr, at most span. Tiles are span long, so only the last
// tile of a grid is partial; on a small image (a thumbnail, or the hyper
// networks' few latent rows) that tile is most of the work, and computing
// its missing part cost up to ~10x (a 32 x 32 decode spent 6 ms in it).
// Every element is computed by the same operations whatever the micro tile it
// falls in, so the bits do not depend on this.
inline int tile_active(int64_t total, int64_t p0, int span, int nr) {
  const int64_t left = total - p0;
  if (left >= span) return span;
  const int64_t r = (left + nr - 1) / nr * nr;
  return static_cast<int>(r < span ? r : span);
}

// Row y of phase g in a polyphase output (ConvJob / WinoJob::phase_out).
template <class J>
inline float* phase_row(const J& j, int g, int64_t y) {
  return ((y & 1) ? j.phase_odd[g] : j.phase_out[g]) + (y >> 1) * j.phase_row2;
}

// Copies the kept grid pixels of one tile from the scratch accumulators
// (acc[g][coutp][kTile]) to the output tensor.
// Channels [co0, co1) only.
template <class M, class T>
void store_tile(const ConvJob& j, int64_t p0, const T* acc, T* out, int co0, int co1) {
  const int64_t gw = j.grid_w;
  const int64_t pend = p0 + kTile;
  for (int64_t y = p0 / gw; y * gw < pend && y < j.valid_h; ++y) {
    const int64_t row0 = y * gw;
    const int64_t xa = tile_max64(p0 - row0, 0);
    const int64_t xb = tile_min64(pend - row0, j.valid_w);
    if (xa >= xb) continue;
    const int64_t off = row0 + xa - p0;
    const int n = static_cast<int>(xb - xa);
    if (!j.deconv) {
      for (int co = co0; co < co1; ++co)
        M::copy(out + co * j.out_cstride + y * j.out_w + xa, acc + co * kTile + off, n);
    } else if (j.phase_out[0]) {  // float only: each phase to its own plane
      for (int g = 0; g < 4; ++g) {
        const T* ag = acc + (int64_t)g * j.coutp * kTile + off;
        T* dg = reinterpret_cast<T*>(phase_row(j, g, y));
        for (int co = co0; co < co1; ++co) M::copy(dg + co * j.out_cstride + xa, ag + co * kTile, n);
      }
    } else {
      for (int ry = 0; ry < 2; ++ry) {
        const T* a0 = acc + (int64_t)(2 * ry) * j.coutp * kTile + off;
        const T* a1 = acc + (int64_t)(2 * ry + 1) * j.coutp * kTile + off;
        for (int co = co0; co < co1; ++co)
          M::interleave(out + co * j.out_cstride + (2 * y + ry) * j.out_w + 2 * xa, a0 + co * kTile, a1 + co * kTile, n);
      }
    }
  }
}

// x[c][kTile] <- GDN/IGDN(x): norm = beta + gamma |x|, x *= norm or x /= norm.
// ax and nm are scratch [cp][kTile]. diag (non-null: gamma is diagonal) takes
// the per-channel path: the same bits as the matrix product, whose zero terms
// add exact zeros.
template <class M>
void gdn_on_tile(int c, int cp, const float* beta, const float* gamma, const float* diag, bool inverse, float* x,
                 float* ax, float* nm) {
  if (diag) {
    for (int i = 0; i < c; ++i) M::gdn_diag(x + i * kTile, beta[i], diag[i], kTile, inverse);
    return;
  }
  static const int kZeroOffset[1] = {0};
  for (int i = 0; i < c; ++i) M::abs_copy(ax + i * kTile, x + i * kTile, kTile);
  for (int i = 0; i < cp; ++i) M::fill(nm + i * kTile, beta[i], kTile);
  // micro tile outer: its slice of |x| (c x NR) stays in L1 while gamma streams
  for (int m = 0; m < kTile; m += M::NR)
    for (int ob = 0; ob < cp / kMR; ++ob)
      M::f32(ax + m, kTile, kZeroOffset, 1, c, gamma + (int64_t)ob * c * kMR, nm + (int64_t)ob * kMR * kTile + m,
             kTile);
  for (int i = 0; i < c; ++i) M::gdn_apply(x + i * kTile, nm + i * kTile, kTile, inverse);
}

// Prefetches the input rows the next chunk of nc channels will read: the
// channels are far apart in memory (one plane set each), which defeats the
// hardware prefetchers when few output channels reuse each input row.
template <class M>
void prefetch_chunk(const ConvJob& j, const char* base, int elem_bytes, int nc) {
  const int64_t seg = (int64_t)(kTile + 8) * elem_bytes;  // tile + horizontal taps
  for (int ci = 0; ci < nc; ++ci) {
    const char* cb = base + (int64_t)ci * j.in_cstride * elem_bytes;
    for (int r = 0; r < j.nrows; ++r) {
      const char* rp = cb + (int64_t)j.rows[r] * elem_bytes;
      for (int64_t b = 0; b < seg; b += 64) M::prefetch(rp + b);
    }
  }
}

template <class M>
void conv_f32_tile_impl(const ConvJob& j, int64_t p0, float* scratch) {
  const int coutp = j.coutp;
  const int mr = j.mr;
  const int nblk = coutp / mr;
  const float* bias = static_cast<const float*>(j.bias);
  float* acc = scratch;
  for (int g = 0; g < j.ngroups; ++g)
    for (int co = 0; co < coutp; ++co) M::fill(acc + ((int64_t)g * coutp + co) * kTile, bias[co], kTile);

  const float* in = static_cast<const float*>(j.in) + p0;
  const float* w = static_cast<const float*>(j.w);
  const int64_t total = (int64_t)j.valid_h * j.grid_w;
  const int np = tile_active(total, p0, kTile, M::NR), np3 = tile_active(total, p0, kTile, M::NR3);
  for (int c0 = 0; c0 < j.nci; c0 += j.kc) {
    const int nc = (j.nci - c0 < j.kc) ? j.nci - c0 : j.kc;
    const float* inc = in + (int64_t)c0 * j.in_cstride;
    prefetch_chunk<M>(j, reinterpret_cast<const char*>(inc + (int64_t)nc * j.in_cstride), 4,
                      (j.nci - c0 - nc < j.kc) ? j.nci - c0 - nc : j.kc);
    for (int g = 0; g < j.ngroups; ++g) {
      const int nt = j.ntaps[g];
      const int64_t wblk = (int64_t)nc * nt * mr;
      for (int ob = 0; ob < nblk; ++ob, w += wblk) {
        float* a = acc + ((int64_t)g * coutp + (int64_t)ob * mr) * kTile;
        if (mr == 3) {
          for (int m = 0; m < np3; m += M::NR3)
            M::f32_mr3(inc + m, j.in_cstride, j.taps[g], nt, nc, w, a + m, kTile);
        } else {
          for (int m = 0; m < np; m += M::NR) M::f32(inc + m, j.in_cstride, j.taps[g], nt, nc, w, a + m, kTile);
        }
      }
    }
  }

  if (j.post == kPostRelu) {
    for (int g = 0; g < j.ngroups; ++g)
      for (int co = 0; co < j.cout; ++co) M::relu(acc + ((int64_t)g * coutp + co) * kTile, kTile);
  } else if (j.post == kPostGdn || j.post == kPostIgdn) {
    const int cp = (j.cout + kMR - 1) / kMR * kMR;  // the GDN's own padding (kMR blocks)
    float* ax = acc + (int64_t)j.ngroups * coutp * kTile;
    float* nm = ax + (int64_t)cp * kTile;
    for (int g = 0; g < j.ngroups; ++g)
      gdn_on_tile<M>(j.cout, cp, j.gdn_beta, j.gdn_gamma, j.gdn_diag, j.post == kPostIgdn,
                     acc + (int64_t)g * coutp * kTile, ax, nm);
  }
  store_tile<M, float>(j, p0, acc, static_cast<float*>(j.out), 0, j.cout);
}

template <class M>
void conv_i16_tile_impl(const ConvJob& j, int64_t p0, uint32_t* scratch, int ob0, int ob1) {
  const int coutp = j.coutp;
  const int nblk = coutp / kMR;
  const int co0 = ob0 * kMR, co1 = ob1 * kMR < j.cout ? ob1 * kMR : j.cout;
  const int32_t* bias = static_cast<const int32_t*>(j.bias);
  uint32_t* acc = scratch;
  for (int g = 0; g < j.ngroups; ++g)
    for (int co = co0; co < ob1 * kMR; ++co)
      M::fill_u32(acc + ((int64_t)g * coutp + co) * kTile, static_cast<uint32_t>(bias[co]), kTile);

  // One element = one int16 pair = 2 int16.
  const int16_t* in = static_cast<const int16_t*>(j.in) + 2 * p0;
  const int16_t* w = static_cast<const int16_t*>(j.w);
  const int np = tile_active((int64_t)j.valid_h * j.grid_w, p0, kTile, M::NR);
  for (int c0 = 0; c0 < j.nci; c0 += j.kc) {
    const int nc = (j.nci - c0 < j.kc) ? j.nci - c0 : j.kc;
    const int16_t* inc = in + 2 * (int64_t)c0 * j.in_cstride;
    prefetch_chunk<M>(j, reinterpret_cast<const char*>(inc + 2 * (int64_t)nc * j.in_cstride), 4,
                      (j.nci - c0 - nc < j.kc) ? j.nci - c0 - nc : j.kc);
    for (int g = 0; g < j.ngroups; ++g) {
      const int nt = j.ntaps[g];
      const int64_t wblk = (int64_t)nc * nt * kMR * 2;
      for (int ob = ob0; ob < ob1; ++ob) {
        uint32_t* a = acc + ((int64_t)g * coutp + (int64_t)ob * kMR) * kTile;
        for (int m = 0; m < np; m += M::NR)
          M::i16(inc + 2 * m, j.in_cstride, j.taps[g], nt, nc, w + ob * wblk, a + m, kTile);
      }
      w += nblk * wblk;
    }
  }
  for (int g = 0; g < j.ngroups; ++g)
    for (int co = co0; co < co1; ++co)
      M::requant(acc + ((int64_t)g * coutp + co) * kTile, kTile, j.shift, j.lo, j.hi);
  store_tile<M, uint32_t>(j, p0, acc, static_cast<uint32_t*>(j.out), co0, co1);
}

template <class M>
void gdn_tile_impl(const GdnJob& j, int64_t p0, float* scratch) {
  float* x = scratch;
  float* ax = x + (int64_t)j.cp * kTile;
  float* nm = ax + (int64_t)j.cp * kTile;
  const int n = static_cast<int>(tile_min64(kTile, j.hw - p0));
  for (int i = 0; i < j.c; ++i) {
    M::copy(x + i * kTile, j.in + i * j.hw + p0, n);
    if (n < kTile) M::fill(x + i * kTile + n, 0.0f, kTile - n);
  }
  gdn_on_tile<M>(j.c, j.cp, j.beta, j.gamma, j.diag, j.inverse != 0, x, ax, nm);
  for (int i = 0; i < j.c; ++i) M::copy(j.out + i * j.hw + p0, x + i * kTile, n);
}

// ---------------------------------------------------------------------------
// Winograd F(bh x 2, a x b)
// ---------------------------------------------------------------------------

// Stores the kept pixels of a Winograd tile: y[sub][u/2][co][2(u%2)+v][t].
// Channels [co0, co1) only.
template <class M>
void wino_store(const WinoJob& j, int64_t b0, const float* y, int co0, int co1) {
  constexpr int T = kWinoBlocks;
  const int64_t gw = j.grid_w;
  const int64_t bend = b0 + T;
  const int64_t full_w = j.valid_w / 2;  // blocks whose two columns are both kept
  const int64_t hs = (int64_t)j.coutp * kTile;  // one half (2 rows of every block)
  const int64_t sub = (int64_t)(j.bh / 2) * hs;  // one sub-conv
  float* out = j.out;
  for (int64_t by = b0 / gw; by * gw < bend && by < j.blocks_h; ++by) {
    const int64_t row0 = by * gw;
    const int64_t xa = tile_max64(b0 - row0, 0);
    const int64_t xb = tile_min64(bend - row0, j.blocks_w);
    if (xa >= xb) continue;
    const int64_t off = row0 + xa - b0;
    const int n = static_cast<int>(xb - xa);
    const int nfull = static_cast<int>(tile_max64(0, tile_min64(xb, full_w) - xa));
    for (int u = 0; u < j.bh; ++u) {
      const int64_t py = j.bh * by + u - j.row_shift;
      if (py < 0 || py >= j.valid_h) continue;
      const float* yu = y + (u / 2) * hs + (2 * (u % 2)) * T + off;  // sub-conv 0, channel 0, v = 0
      if (!j.deconv || j.phase_out[0]) {
        // one plane per sub-conv output (conv: the only one; deconv with
        // phase_out: phase g to its own plane)
        const int nplanes = j.deconv ? 4 : 1;
        for (int g = 0; g < nplanes; ++g) {
          const float* yg = yu + g * sub;
          float* base = j.deconv ? phase_row(j, g, py) : out + py * j.out_w;
          for (int co = co0; co < co1; ++co) {
            const float* s0 = yg + (int64_t)co * kTile;
            const float* s1 = s0 + T;
            float* d = base + co * j.out_cstride + 2 * xa;
            M::interleave(d, s0, s1, nfull);
            for (int i = nfull; i < n; ++i) {
              d[2 * i] = s0[i];
              if (2 * (xa + i) + 1 < j.valid_w) d[2 * i + 1] = s1[i];
            }
          }
        }
      } else {
        for (int ry = 0; ry < 2; ++ry) {
          const int64_t orow = 2 * py + ry;
          const float* ya = yu + (2 * ry) * sub;  // phase (ry, 0)
          const float* yb = ya + sub;             // phase (ry, 1)
          for (int co = co0; co < co1; ++co) {
            const float* a = ya + (int64_t)co * kTile;  // v = 0, rx = 0
            const float* b = yb + (int64_t)co * kTile;  // v = 0, rx = 1
            const float* c = a + T;                     // v = 1, rx = 0
            const float* d = b + T;                     // v = 1, rx = 1
            float* o = out + co * j.out_cstride + orow * j.out_w + 4 * xa;
            M::interleave4(o, a, b, c, d, nfull);
            for (int i = nfull; i < n; ++i) {
              o[4 * i] = a[i];
              o[4 * i + 1] = b[i];
              if (2 * (xa + i) + 1 < j.valid_w) {
                o[4 * i + 2] = c[i];
                o[4 * i + 3] = d[i];
              }
            }
          }
        }
      }
    }
  }
}

// The input transform of an F(4x2, a x b) sub-conv, separably: for each
// column j of the window, the row transform of F(4, 3) or F(4, 2) (the rows
// of kBT43 / kBT42 in winograd.cc, with their common subexpressions), then for
// each row xi of that, the column transform of F(2, 3) or F(2, 2). One op
// sequence for every ISA (M::Vec ops are single IEEE operations per lane),
// so the paths stay bit-identical.
template <class M>
void wino_input_sep(float* v, const float* in, int64_t cs, int nc, const WinoSep& sp, const int* rows, int nrows) {
  using Vec = typename M::Vec;
  constexpr int T = kWinoBlocks;
  constexpr int kAhead = 2;  // channels: the rows of a channel are far apart (planes)
  const int nx = sp.a + 3, ne = sp.b + 1;
  alignas(64) float tmp[6][4][T];
  for (int ci = 0; ci < nc; ++ci) {
    const float* ip = in + ci * cs;
    if (ci + kAhead < nc) {
      const float* pf = ip + kAhead * cs;
      for (int r = 0; r < nrows; ++r) {
        M::prefetch(pf + rows[r]);
        M::prefetch(pf + rows[r] + 16);
        M::prefetch(pf + rows[r] + T);
      }
    }
    for (int jc = 0; jc < ne; ++jc) {
      const Vec d0 = M::vload(ip + sp.off[0][jc]), d1 = M::vload(ip + sp.off[1][jc]),
                d2 = M::vload(ip + sp.off[2][jc]), d3 = M::vload(ip + sp.off[3][jc]),
                d4 = M::vload(ip + sp.off[4][jc]);
      if (sp.a == 3) {
        // BT43: 4d0-5d2+d4, -4d1-4d2+d3+d4, 4d1-4d2-d3+d4, -2d1-d2+2d3+d4, 2d1-d2-2d3+d4, 4d1-5d3+d5
        const Vec d5 = M::vload(ip + sp.off[5][jc]);
        const Vec c = M::vsub(d4, d2), e = M::vsub(d3, d1);
        const Vec p = M::vfma(-4.0f, d2, d4), q = M::vfma(-4.0f, d1, d3);
        M::vstore(tmp[0][jc], M::vfma(4.0f, M::vsub(d0, d2), c));
        M::vstore(tmp[1][jc], M::vadd(p, q));
        M::vstore(tmp[2][jc], M::vsub(p, q));
        M::vstore(tmp[3][jc], M::vfma(2.0f, e, c));
        M::vstore(tmp[4][jc], M::vfma(-2.0f, e, c));
        M::vstore(tmp[5][jc], M::vfma(-4.0f, e, M::vsub(d5, d3)));
      } else {
        // BT42: 2d0-d1-2d2+d3, -2d1-d2+d3, 2d1-3d2+d3, d3-d1, 2d1-d2-2d3+d4
        const Vec e = M::vsub(d3, d1), f = M::vsub(d3, d2);
        M::vstore(tmp[0][jc], M::vfma(2.0f, M::vsub(d0, d2), e));
        M::vstore(tmp[1][jc], M::vfma(-2.0f, d1, f));
        M::vstore(tmp[2][jc], M::vfma(2.0f, M::vsub(d1, d2), f));
        M::vstore(tmp[3][jc], e);
        M::vstore(tmp[4][jc], M::vfma(-2.0f, e, M::vsub(d4, d2)));
      }
    }
    for (int xi = 0; xi < nx; ++xi) {
      float* vo = v + ((int64_t)xi * ne * nc + ci) * T;  // component xi*ne + eta at vo + eta*nc*T
      const int64_t es = (int64_t)nc * T;
      const Vec t0 = M::vload(tmp[xi][0]), t1 = M::vload(tmp[xi][1]), t2 = M::vload(tmp[xi][2]);
      if (sp.b == 3) {  // BT3: t0-t2, t1+t2, t2-t1, t1-t3
        const Vec t3 = M::vload(tmp[xi][3]);
        M::vstore(vo, M::vsub(t0, t2));
        M::vstore(vo + es, M::vadd(t1, t2));
        M::vstore(vo + 2 * es, M::vsub(t2, t1));
        M::vstore(vo + 3 * es, M::vsub(t1, t3));
      } else {  // BT2: t0-t1, t1, t2-t1
        M::vstore(vo, M::vsub(t0, t1));
        M::vstore(vo + es, t1);
        M::vstore(vo + 2 * es, M::vsub(t2, t1));
      }
    }
  }
}

// Output channel blocks [ob0, ob1) of one tile; a dense (non-diagonal)
// GDN needs every channel, so the caller passes the whole range then.
template <class M>
void wino_tile_impl(const WinoJob& j, int64_t b0, float* scratch, int ob0, int ob1) {
  constexpr int T = kWinoBlocks;
  const int coutp = j.coutp;
  const int nblk = coutp / kMR;
  const int co0 = ob0 * kMR, co1 = ob1 * kMR < j.cout ? ob1 * kMR : j.cout;
  const int nout = j.deconv ? j.nsub : 1;
  const int nhalf = j.bh / 2;
  const int64_t hs = (int64_t)coutp * kTile;
  float* y = scratch;                                   // [nout][nhalf][coutp][4][T]
  float* v = y + (int64_t)nout * nhalf * hs;            // [kWinoMaxComps][nci][T]
  float* ax = v + (int64_t)kWinoMaxComps * j.nci * T;   // [coutp][kTile] (GDN)
  float* nm = ax + (int64_t)coutp * kTile;              // [coutp][kTile] (GDN)
  for (int64_t o = 0; o < (int64_t)nout * nhalf; ++o)
    for (int co = co0; co < ob1 * kMR; ++co) M::fill(y + o * hs + (int64_t)co * kTile, 0.0f, kTile);

  const float* in = j.in + b0;
  const float* w = j.w;
  const int nb = tile_active((int64_t)j.blocks_h * j.grid_w, b0, T, 1);
  for (int s = 0; s < j.nsub; ++s) {
    float* ys = y + (j.deconv ? (int64_t)s * nhalf * hs : 0);
    // all components of the sub-conv at once: each channel's input rows are
    // read once (then from L1) instead of once per component
    if (j.bh == 4) {
      wino_input_sep<M>(v, in, j.in_cstride, j.nci, j.seps[s], j.rows[s], j.nrows[s]);
    } else {
      M::wino_input(v, in, j.in_cstride, j.nci, j.comps[s], j.ncomp[s], j.rows[s], j.nrows[s]);
    }
    const int64_t wob = (int64_t)j.nci * kMR;  // one block's weights of one component
    for (int c = 0; c < j.ncomp[s]; ++c, w += nblk * wob) {
      const float* vc = v + (int64_t)c * j.nci * T;
      for (int ob = ob0; ob < ob1; ++ob)
        M::wino_gemm(vc, j.nci, w + ob * wob, ys + (int64_t)ob * kMR * kTile, j.comps[s][c].coef, hs, nb);
    }
  }

  for (int o = 0; o < nout * nhalf; ++o) {
    float* yo = y + (int64_t)o * hs;
    for (int co = co0; co < co1; ++co) M::add_scalar(yo + (int64_t)co * kTile, j.bias[co], kTile);
    if (j.post == kPostRelu) {
      for (int co = co0; co < co1; ++co) M::relu(yo + (int64_t)co * kTile, kTile);
    } else if ((j.post == kPostGdn || j.post == kPostIgdn) && j.gdn_diag) {
      for (int co = co0; co < co1; ++co)
        M::gdn_diag(yo + (int64_t)co * kTile, j.gdn_beta[co], j.gdn_diag[co], kTile, j.post == kPostIgdn);
    } else if (j.post == kPostGdn || j.post == kPostIgdn) {
      gdn_on_tile<M>(j.cout, coutp, j.gdn_beta, j.gdn_gamma, j.gdn_diag, j.post == kPostIgdn, yo, ax, nm);
    }
  }
  wino_store<M>(j, b0, y, co0, co1);
}

}  // namespace
}  // namespace detail
}  // namespace dsp
}  // namespace lmc
