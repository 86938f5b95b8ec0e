// lmcodec dsp, internal: the per-tile drivers shared by every ISA.
//
// Included ONLY by the kernel-table files (conv.cc for the portable reference,
// conv_avx2.cc for AVX2). Everything is in an anonymous namespace, so each of
// those files gets its own copy compiled with its own flags (no ODR sharing).
//
// A "micro-kernel policy" M supplies the ISA-specific pieces:
//   M::NR                               pixels per micro tile
//   M::f32(in, cs, offs, nt, nc, w, acc, as)
//       acc[m*as + j] += sum_{ci<nc} sum_{t<nt} w[(ci*nt + t)*kMR + m] * in[ci*cs + offs[t] + j]
//       for m < kMR, j < NR, in the order ci, then t (fixed => deterministic)
//   M::i16(in, cs, offs, nt, nc, w, acc, as)   same on int16 pairs, mod 2^32
//   M::fill, M::relu, M::abs_copy, M::gdn_apply, M::requant, M::copy, M::interleave
#pragma once

#include <cstdint>

#include "dsp/kernels.h"

namespace lmc {
namespace dsp {
namespace detail {
namespace {

inline int64_t tile_min64(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t tile_max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Copies the kept grid pixels of one tile from the scratch accumulators
// (acc[g][coutp][kTile]) to the output tensor.
template <class M, class T>
void store_tile(const ConvJob& j, int64_t p0, const T* acc, T* out) {
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
      for (int co = 0; co < j.cout; ++co)
        M::copy(out + co * j.out_cstride + y * j.out_w + xa, acc + co * kTile + off, n);
    } else {
      for (int ry = 0; ry < 2; ++ry) {
        const T* a0 = acc + (int64_t)(2 * ry) * j.coutp * kTile + off;
        const T* a1 = acc + (int64_t)(2 * ry + 1) * j.coutp * kTile + off;
        for (int co = 0; co < j.cout; ++co)
          M::interleave(out + co * j.out_cstride + (2 * y + ry) * j.out_w + 2 * xa, a0 + co * kTile, a1 + co * kTile, n);
      }
    }
  }
}

// x[c][kTile] <- GDN/IGDN(x): norm = beta + gamma |x|, x *= norm or x /= norm.
// ax and nm are scratch [cp][kTile].
template <class M>
void gdn_on_tile(int c, int cp, const float* beta, const float* gamma, bool inverse, float* x, float* ax,
                 float* nm) {
  static const int kZeroOffset[1] = {0};
  for (int i = 0; i < c; ++i) M::abs_copy(ax + i * kTile, x + i * kTile, kTile);
  for (int i = 0; i < cp; ++i) M::fill(nm + i * kTile, beta[i], kTile);
  for (int ob = 0; ob < cp / kMR; ++ob) {
    const float* w = gamma + (int64_t)ob * c * kMR;
    float* acc = nm + (int64_t)ob * kMR * kTile;
    for (int m = 0; m < kTile; m += M::NR) M::f32(ax + m, kTile, kZeroOffset, 1, c, w, acc + m, kTile);
  }
  for (int i = 0; i < c; ++i) M::gdn_apply(x + i * kTile, nm + i * kTile, kTile, inverse);
}

template <class M>
void conv_f32_tile_impl(const ConvJob& j, int64_t p0, float* scratch) {
  const int coutp = j.coutp;
  const int nblk = coutp / kMR;
  const float* bias = static_cast<const float*>(j.bias);
  float* acc = scratch;
  for (int g = 0; g < j.ngroups; ++g)
    for (int co = 0; co < coutp; ++co) M::fill(acc + ((int64_t)g * coutp + co) * kTile, bias[co], kTile);

  const float* in = static_cast<const float*>(j.in) + p0;
  const float* w = static_cast<const float*>(j.w);
  for (int c0 = 0; c0 < j.nci; c0 += j.kc) {
    const int nc = (j.nci - c0 < j.kc) ? j.nci - c0 : j.kc;
    const float* inc = in + (int64_t)c0 * j.in_cstride;
    for (int g = 0; g < j.ngroups; ++g) {
      const int nt = j.ntaps[g];
      const int64_t wblk = (int64_t)nc * nt * kMR;
      for (int ob = 0; ob < nblk; ++ob, w += wblk) {
        float* a = acc + ((int64_t)g * coutp + (int64_t)ob * kMR) * kTile;
        for (int m = 0; m < kTile; m += M::NR) M::f32(inc + m, j.in_cstride, j.taps[g], nt, nc, w, a + m, kTile);
      }
    }
  }

  if (j.post == kPostRelu) {
    for (int g = 0; g < j.ngroups; ++g)
      for (int co = 0; co < j.cout; ++co) M::relu(acc + ((int64_t)g * coutp + co) * kTile, kTile);
  } else if (j.post == kPostGdn || j.post == kPostIgdn) {
    float* ax = acc + (int64_t)j.ngroups * coutp * kTile;
    float* nm = ax + (int64_t)coutp * kTile;
    for (int g = 0; g < j.ngroups; ++g)
      gdn_on_tile<M>(j.cout, coutp, j.gdn_beta, j.gdn_gamma, j.post == kPostIgdn, acc + (int64_t)g * coutp * kTile,
                     ax, nm);
  }
  store_tile<M, float>(j, p0, acc, static_cast<float*>(j.out));
}

template <class M>
void conv_i16_tile_impl(const ConvJob& j, int64_t p0, uint32_t* scratch) {
  const int coutp = j.coutp;
  const int nblk = coutp / kMR;
  const int32_t* bias = static_cast<const int32_t*>(j.bias);
  uint32_t* acc = scratch;
  for (int g = 0; g < j.ngroups; ++g)
    for (int co = 0; co < coutp; ++co)
      M::fill_u32(acc + ((int64_t)g * coutp + co) * kTile, static_cast<uint32_t>(bias[co]), kTile);

  // One element = one int16 pair = 2 int16.
  const int16_t* in = static_cast<const int16_t*>(j.in) + 2 * p0;
  const int16_t* w = static_cast<const int16_t*>(j.w);
  for (int c0 = 0; c0 < j.nci; c0 += j.kc) {
    const int nc = (j.nci - c0 < j.kc) ? j.nci - c0 : j.kc;
    const int16_t* inc = in + 2 * (int64_t)c0 * j.in_cstride;
    for (int g = 0; g < j.ngroups; ++g) {
      const int nt = j.ntaps[g];
      const int64_t wblk = (int64_t)nc * nt * kMR * 2;
      for (int ob = 0; ob < nblk; ++ob, w += wblk) {
        uint32_t* a = acc + ((int64_t)g * coutp + (int64_t)ob * kMR) * kTile;
        for (int m = 0; m < kTile; m += M::NR)
          M::i16(inc + 2 * m, j.in_cstride, j.taps[g], nt, nc, w, a + m, kTile);
      }
    }
  }
  for (int g = 0; g < j.ngroups; ++g)
    for (int co = 0; co < j.cout; ++co)
      M::requant(acc + ((int64_t)g * coutp + co) * kTile, kTile, j.shift, j.lo, j.hi);
  store_tile<M, uint32_t>(j, p0, acc, static_cast<uint32_t*>(j.out));
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
  gdn_on_tile<M>(j.c, j.cp, j.beta, j.gamma, j.inverse != 0, x, ax, nm);
  for (int i = 0; i < j.c; ++i) M::copy(j.out + i * j.hw + p0, x + i * kTile, n);
}

}  // namespace
}  // namespace detail
}  // namespace dsp
}  // namespace lmc
