// lmcodec dsp: convolution drivers (geometry, weight packing, padding,
// threading) and the portable reference kernel table.
//
// How a convolution runs
// ----------------------
// 1. The input is copied into a zero-padded planar buffer. Stride-2 convs
//    also split it into 4 polyphase planes (even/odd rows x even/odd
//    columns), which turns them into sums of stride-1 convs. Transposed convs
//    are padded by one pixel and computed as 4 sub-pixel phase convs (output
//    pixel (2y+ry, 2x+rx) only sees the kernel taps of matching parity), so
//    no zero is ever inserted or multiplied. A transposed conv's buffer can
//    also be filled by its producer (ConvTranspose2d::padded_input and
//    run(..., TensorLayout)): the previous transposed conv then stores each
//    output phase straight into the right plane, and the copy is skipped.
// 2. Every conv is then "flattened": output grid pixel p reads input element
//    p + offset(tap) of each channel, where the grid has the padded row
//    width (a few padding columns per row are computed and dropped). The
//    work is a GEMM  out[co][p] += sum_(ci,tap) w[co][ci,tap] * in[ci][p+off]
//    with no boundary tests in the inner loops.
// 3. The grid is cut into tiles of kTile pixels (the tasks of the thread
//    pool). A tile accumulates all output channels in a scratch buffer,
//    input channels in cache-sized chunks, through a register-blocked
//    micro-kernel (kMR output channels x NR pixels); then applies the post-op
//    (ReLU, or a fused GDN/IGDN, which only needs all channels of the tile's
//    pixels) and stores the kept pixels (interleaving the phases of a
//    transposed conv).
// Each output element is computed by one tile, with a fixed summation order
// (bias, then channel by channel, taps in order), whatever the thread count.
//
// Winograd (ConvAlgo, float only): the 2x2 output blocks of every 3x3 / 3x2 /
// 2x3 / 2x2 sub-kernel (stride-2 polyphase planes, transposed-conv phases, or
// a plain 3x3 conv) are computed as F(2x2, a x b): the padded input is split
// into 2x2 (4x4 for stride 2) polyphase planes so that block rows are
// contiguous, each tile of kWinoBlocks blocks transforms its input rows
// (V = B^T d B, sums of <= 4 signed rows), multiplies each of the (a+1)(b+1)
// components by the pre-transformed weights U = G g G^T (a GEMM over input
// channels, same register-blocked micro-kernel shape) and accumulates
// A^T M A into the output block, then applies bias/post-op/store as above.
// 49 instead of 100 multiplications per 2x2 block of all 4 sub-convs.
// Transposed convs use taller blocks, F(4x2, a x b): 4 x 2 polyphase planes,
// (a+3)(b+1) components, a separable input transform (wino_input_sep in
// conv_tile.h); 154 instead of 196 multiplications per 4x4 block of the four
// output phases (kDeconvWinoRows; see there for what it means for strips).
#include "dsp/conv.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <new>
#include <optional>

#include "core/error.h"
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

// ---------------------------------------------------------------------------
// Scratch buffers
// ---------------------------------------------------------------------------
namespace {

class AlignedBuf {
 public:
  AlignedBuf() = default;
  ~AlignedBuf() { release(); }
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  void* data() const { return p_; }
  size_t bytes() const { return bytes_; }
  void ensure(size_t bytes) {  // throws std::bad_alloc
    if (bytes <= bytes_) return;
    release();
    const size_t rounded = (bytes + 63) / 64 * 64;
    // page-aligned, like the activation buffers (core/buffers.h): the
    // scratch layout relative to pages must not depend on the allocator
    p_ = ::operator new(rounded, std::align_val_t(4096));
    bytes_ = rounded;
  }

 private:
  void* p_ = nullptr;
  size_t bytes_ = 0;

  void release() {
    if (p_) ::operator delete(p_, std::align_val_t(4096));
    p_ = nullptr;
    bytes_ = 0;
  }
};

// A few reusable buffers, so that repeated runs neither allocate nor fault in
// fresh pages. Thread-safe: concurrent runs get different buffers.
struct ScratchCache {
  std::mutex mu;
  std::vector<std::unique_ptr<AlignedBuf>> free_list;
  static constexpr size_t kKeep = 8;
  ScratchCache() { free_list.reserve(kKeep); }  // give() never allocates

  std::unique_ptr<AlignedBuf> take(size_t bytes) {
    std::unique_ptr<AlignedBuf> b;
    {
      std::lock_guard<std::mutex> lk(mu);
      // Prefer the smallest buffer that is large enough, else the largest.
      int best = -1;
      for (int i = 0; i < (int)free_list.size(); ++i) {
        const size_t sz = free_list[i]->bytes();
        if (best < 0) {
          best = i;
          continue;
        }
        const size_t bsz = free_list[best]->bytes();
        const bool fits = sz >= bytes, bfits = bsz >= bytes;
        if ((fits && (!bfits || sz < bsz)) || (!fits && !bfits && sz > bsz)) best = i;
      }
      if (best >= 0) {
        b = std::move(free_list[best]);
        free_list.erase(free_list.begin() + best);
      }
    }
    if (!b) b.reset(new AlignedBuf());
    b->ensure(bytes);
    return b;
  }
  void give(std::unique_ptr<AlignedBuf> b) {
    std::lock_guard<std::mutex> lk(mu);
    if (free_list.size() < kKeep) free_list.push_back(std::move(b));
  }
};

ScratchCache& scratch_cache() {
  static ScratchCache cache;
  return cache;
}

class Lease {
 public:
  Lease(ScratchCache* c, size_t bytes) : c_(c), b_(c->take(bytes)) {}
  ~Lease() { c_->give(std::move(b_)); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(b_->data());
  }

 private:
  ScratchCache* c_;
  std::unique_ptr<AlignedBuf> b_;
};

constexpr int64_t kMaxChannels = 1 << 16;
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxPlaneElems = int64_t(1) << 30;  // tap offsets are int
// Winograd block height of transposed convs: F(4x2, a x b) (see WinoJob).
constexpr int kDeconvWinoRows = 4;
// Their blocks start on the input rows r = 2 (mod 4) of the full image (the
// phase grid's rows are the input rows). Unlike F(2, .), an F(4, .) output
// is not computed from its own taps alone: in the transforms, output u of a
// block also mixes (in rounding; the terms cancel exactly) input rows
// outside its taps (F(4, 3): u = 0 rows 3-4 of the 6-row window, u = 1 row
// 4, u = 2 row 1, u = 3 rows 1-2), so a strip reproduces the whole image only
// on rows whose mixed-in inputs lie inside it. With this phase the decoder's
// chain of three such layers keeps its halo of 2 latent rows above and below
// a strip, for strips of a multiple of 4 latent rows (core/hyperprior.h;
// docs/architecture.md has the search over phases and halos).
constexpr int kDeconvWinoPhase = 2;

// Where a transposed conv writes each output phase (ConvJob::phase_out):
// phase g's row y at (y even ? phase_out : phase_odd)[g] + (y/2) * phase_row2.
struct PhaseOut {
  float* phase_out[kMaxGroups] = {nullptr, nullptr, nullptr, nullptr};
  float* phase_odd[kMaxGroups] = {nullptr, nullptr, nullptr, nullptr};
  int64_t phase_row2 = 0;
};

// Copies where each phase goes (nullptr: plain output) into a ConvJob / WinoJob.
template <class J>
void set_phase_out(J& j, const PhaseOut* p) {
  for (int i = 0; i < kMaxGroups; ++i) {
    j.phase_out[i] = p ? p->phase_out[i] : nullptr;
    j.phase_odd[i] = p ? p->phase_odd[i] : nullptr;
  }
  j.phase_row2 = p ? p->phase_row2 : 0;
}

int round_up(int v, int m) { return (v + m - 1) / m * m; }
int64_t round_up64(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

void check_channels(int cin, int cout) {
  LMC_CHECK(cin >= 1 && cin <= kMaxChannels, Status::InvalidArgument, "conv: cin out of range");
  LMC_CHECK(cout >= 1 && cout <= kMaxChannels, Status::InvalidArgument, "conv: cout out of range");
}

void check_run_args(const void* in, const void* out, int h, int w) {
  LMC_CHECK(in != nullptr && out != nullptr, Status::InvalidArgument, "conv: null tensor");
  LMC_CHECK(h >= 1 && w >= 1, Status::InvalidArgument, "conv: height and width must be >= 1");
  LMC_CHECK(h <= kMaxDim && w <= kMaxDim, Status::LimitExceeded, "conv: image too large");
}

// Taps (ky, kx) of a transposed conv (stride 2, padding k/2) that reach
// output phase (ry, rx): ky = ry + k/2 (mod 2), kx = rx + k/2 (mod 2).
std::vector<int> deconv_phase_taps(int k, int ry, int rx) {
  const int p = k / 2;
  std::vector<int> t;
  for (int ky = 0; ky < k; ++ky)
    for (int kx = 0; kx < k; ++kx)
      if (((ry + p - ky) & 1) == 0 && ((rx + p - kx) & 1) == 0) t.push_back(ky * k + kx);
  return t;
}

// Where the padded input lives and which offsets each tap reads.
struct Geometry {
  int split = 1;      // polyphase split factor (2 for stride-2 convs)
  int split_y = 0;    // vertical split factor when it differs (Winograd F(4x2)), else 0
  int bh = 2;         // Winograd block height
  int pad = 0;        // zero border on each side before the split
  int pad_top = -1;   // rows above the input (-1: pad)
  int64_t hq = 0, wq = 0;  // plane size
  int64_t cs = 0;          // elements per channel (all planes)
  int grid_w = 0, valid_h = 0, valid_w = 0;
  int ngroups = 1;
  std::vector<int> taps[kMaxGroups];
  int max_off = 0;
  int64_t ntiles = 0;
  int tile = kTile;  // grid elements per tile (kWinoBlocks for Winograd)
  // Winograd only
  int blocks_h = 0, blocks_w = 0;
  int row_shift = 0;
  std::vector<WinoComp> comps[kMaxGroups];
  std::vector<int> rows[kMaxGroups];

  WinoSep seps[kMaxGroups] = {};  // Winograd bh 4: the separable input transforms' windows

  int rows_split() const { return split_y ? split_y : split; }
  int64_t buffer_elems(int nci) const {
    // every channel's planes, plus what the last channel's taps may read for
    // the dropped pixels of the last tile
    return (int64_t)(nci - 1) * cs + std::max<int64_t>(cs, ntiles * tile + max_off) + 64;
  }
};

// Elements (4 bytes: a float or an int16 pair) between the channels of a
// padded buffer: at least `used`, a multiple of 16 (64-byte lines), and an
// odd number of lines modulo 4 KiB, so that the same row of consecutive
// channels falls in different L1 sets (kernels read several channels' rows
// at once; planes a multiple of 4 KiB apart would share a few sets).
int64_t channel_stride(int64_t used) {
  int64_t cs = round_up64(used, 16);
  if (((cs * 4) % 4096 / 64) % 2 == 0) cs += 16;
  return cs;
}

void finish_geometry(Geometry& g) {
  g.cs = channel_stride((int64_t)g.split * g.split * g.hq * g.wq);
  LMC_CHECK(g.cs <= kMaxPlaneElems, Status::LimitExceeded, "conv: image too large");
  g.max_off = 0;
  for (int i = 0; i < g.ngroups; ++i)
    for (int o : g.taps[i]) {
      g.max_off = std::max(g.max_off, o);
      const int row = o - static_cast<int>(o % g.wq);  // the tap's row segment (dx < wq)
      if (std::find(g.rows[0].begin(), g.rows[0].end(), row) == g.rows[0].end()) g.rows[0].push_back(row);
    }
  g.ntiles = ((int64_t)g.valid_h * g.grid_w + kTile - 1) / kTile;
}

Geometry conv_geometry(int h, int w, int k, int s) {
  Geometry g;
  g.pad = k / 2;
  const int64_t hp = h + 2 * g.pad, wp = w + 2 * g.pad;
  g.split = s;
  g.hq = (hp + s - 1) / s;
  g.wq = (wp + s - 1) / s;
  g.grid_w = static_cast<int>(g.wq);
  g.valid_h = (h - 1) / s + 1;
  g.valid_w = (w - 1) / s + 1;
  const int64_t plane = g.hq * g.wq;
  LMC_CHECK((int64_t)s * s * plane <= kMaxPlaneElems, Status::LimitExceeded, "conv: image too large");
  for (int ky = 0; ky < k; ++ky)
    for (int kx = 0; kx < k; ++kx) {
      const int64_t pl = (int64_t)(ky % s) * s + (kx % s);
      g.taps[0].push_back(static_cast<int>(pl * plane + (ky / s) * g.wq + kx / s));
    }
  finish_geometry(g);
  return g;
}

Geometry deconv_geometry(int h, int w, int k) {
  Geometry g;
  g.pad = 1;
  g.split = 1;
  g.hq = h + 2;
  g.wq = w + 2;
  g.grid_w = static_cast<int>(g.wq);
  g.valid_h = h;
  g.valid_w = w;
  g.ngroups = 4;
  const int p = k / 2;
  for (int r = 0; r < 4; ++r) {
    const int ry = r / 2, rx = r % 2;
    for (int t : deconv_phase_taps(k, ry, rx)) {
      const int ky = t / k, kx = t % k;
      const int dy = (ry + p - ky) / 2 + 1, dx = (rx + p - kx) / 2 + 1;  // exact divisions
      g.taps[r].push_back(static_cast<int>(dy * g.wq + dx));
    }
  }
  finish_geometry(g);
  return g;
}

// ---------------------------------------------------------------------------
// Winograd F(bh x 2, a x b) plans
// ---------------------------------------------------------------------------
// 1-D transforms in correlation form, y_u = sum_i g_i d_{u+i}:
// F(m, r): V = BT d, U = G g, y = AT (U .* V), with m + r - 1 points.
// F(2, 3) and F(2, 2): points 0, +-1 (resp. 0, 1) and infinity; +-1 entries
// in BT and AT. F(4, 3): points 0, +-1, +-2, infinity (the usual choice);
// F(4, 2): 0, +-1, 2, infinity. BT and AT are small integers (exact in
// float), G has the fractions. tools: each table satisfies
// sum_j AT[u][j] G[j][k] BT[j][i] == (i == u + k), which test_dsp checks.
const double kBT3[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
const double kG3[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
const double kAT3[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
const double kBT2[3][3] = {{1, -1, 0}, {0, 1, 0}, {0, -1, 1}};
const double kG2[3][2] = {{1, 0}, {1, 1}, {0, 1}};
const double kAT2[2][3] = {{1, 1, 0}, {0, 1, 1}};
const double kBT43[6][6] = {{4, 0, -5, 0, 1, 0},  {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
                            {0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}};
const double kG43[6][3] = {{1.0 / 4, 0, 0},
                           {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                           {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                           {1.0 / 24, 1.0 / 12, 1.0 / 6},
                           {1.0 / 24, -1.0 / 12, 1.0 / 6},
                           {0, 0, 1}};
const double kAT43[4][6] = {{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}};
const double kBT42[5][5] = {{2, -1, -2, 1, 0}, {0, -2, -1, 1, 0}, {0, 2, -3, 1, 0}, {0, -1, 0, 1, 0}, {0, 2, -1, -2, 1}};
const double kG42[5][2] = {{1.0 / 2, 0}, {-1.0 / 2, -1.0 / 2}, {-1.0 / 6, 1.0 / 6}, {1.0 / 6, 1.0 / 3}, {0, 1}};
const double kAT42[4][5] = {{1, 1, 1, 1, 0}, {0, 1, -1, 2, 0}, {0, 1, 1, 4, 0}, {0, 1, -1, 8, 1}};
// m outputs, r taps: BT[xi][i] (xi, i < m + r - 1), G[xi][i] (i < r), AT[u][xi] (u < m)
double wino_bt(int m, int r, int xi, int i) {
  if (m == 4) return r == 3 ? kBT43[xi][i] : kBT42[xi][i];
  return r == 3 ? kBT3[xi][i] : kBT2[xi][i];
}
double wino_g(int m, int r, int xi, int i) {
  if (m == 4) return r == 3 ? kG43[xi][i] : kG42[xi][i];
  return r == 3 ? kG3[xi][i] : kG2[xi][i];
}
double wino_at(int m, int r, int u, int xi) {
  if (m == 4) return r == 3 ? kAT43[u][xi] : kAT42[u][xi];
  return r == 3 ? kAT3[u][xi] : kAT2[u][xi];
}

// One sub-convolution of a Winograd plan: an a x b kernel (a, b in {2, 3})
// whose tap (i, j) is the layer's kernel tap (ky[i], kx[j]) and reads padded
// input row sst*(y + oy + i) + py, column sst*(x + ox + j) + px for output (y, x).
struct SubConv {
  int a = 0, b = 0, oy = 0, ox = 0, py = 0, px = 0;
  std::vector<int> ky, kx;
};

// The sub-convs of a layer, or none when Winograd does not apply
// (only 2- and 3-tap sub-kernels: k=5 stride 2, k=3 stride 1, k=5 transposed).
std::vector<SubConv> wino_subconvs(bool transposed, int k, int s) {
  std::vector<SubConv> subs;
  if (!transposed && s == 1) {
    if (k != 3) return {};
    SubConv sc;
    sc.a = sc.b = 3;
    sc.ky = sc.kx = {0, 1, 2};
    subs.push_back(sc);
  } else if (!transposed) {  // stride 2: polyphase plane (py, px) holds taps py, py+2, ...
    for (int r = 0; r < 4; ++r) {
      SubConv sc;
      sc.py = r / 2;
      sc.px = r % 2;
      for (int t = sc.py; t < k; t += 2) sc.ky.push_back(t);
      for (int t = sc.px; t < k; t += 2) sc.kx.push_back(t);
      subs.push_back(sc);
    }
  } else {  // output phase (ry, rx) reads padded rows y + dy, dy = (ry + p - ky)/2 + 1
    const int p = k / 2;
    for (int r = 0; r < 4; ++r) {
      const int ry = r / 2, rx = r % 2;
      SubConv sc;
      for (int d = 0; d <= 2; ++d) {  // ascending dy <=> descending ky
        const int ky = ry + p + 2 - 2 * d, kx = rx + p + 2 - 2 * d;
        if (ky >= 0 && ky < k) {
          if (sc.ky.empty()) sc.oy = d;
          sc.ky.push_back(ky);
        }
        if (kx >= 0 && kx < k) {
          if (sc.kx.empty()) sc.ox = d;
          sc.kx.push_back(kx);
        }
      }
      subs.push_back(sc);
    }
  }
  for (SubConv& sc : subs) {
    sc.a = static_cast<int>(sc.ky.size());
    sc.b = static_cast<int>(sc.kx.size());
    if (sc.a < 2 || sc.a > 3 || sc.b < 2 || sc.b > 3) return {};
  }
  return subs;
}

// Packs U = G g G^T for every sub-conv, component and block of kMR output
// channels: [nci][kMR] each, in the order the tiles read them.
// get(co, ci, ky, kx) reads the PyTorch tensor.
template <class Get>
std::vector<float> pack_wino_weights(int cin, int cout, int coutp, const std::vector<SubConv>& subs, int bh, Get get) {
  size_t n = 0;
  for (const SubConv& sc : subs) n += (size_t)(sc.a + bh - 1) * (sc.b + 1) * coutp * cin;
  std::vector<float> pw(n, 0.0f);
  size_t pos = 0;
  const int nob = coutp / kMR;
  std::vector<double> kern;
  for (const SubConv& sc : subs) {
    // the sub-kernels, gathered once in the order the packing loops read them:
    // [ob][ci][m][i * b + j] (reading the layer's tensor once per component
    // made loading a model take ~0.3 s)
    const int ab = sc.a * sc.b;
    kern.assign((size_t)nob * cin * kMR * ab, 0.0);
    for (int ob = 0; ob < nob; ++ob)
      for (int ci = 0; ci < cin; ++ci)
        for (int m = 0; m < kMR; ++m) {
          const int co = ob * kMR + m;
          if (co >= cout) continue;
          double* kp = &kern[(((size_t)ob * cin + ci) * kMR + m) * ab];
          for (int i = 0; i < sc.a; ++i)
            for (int j = 0; j < sc.b; ++j) kp[i * sc.b + j] = get(co, ci, sc.ky[i], sc.kx[j]);
        }
    for (int xi = 0; xi < sc.a + bh - 1; ++xi)
      for (int eta = 0; eta <= sc.b; ++eta) {
        double coef[9];
        for (int i = 0; i < sc.a; ++i)
          for (int j = 0; j < sc.b; ++j) coef[i * sc.b + j] = wino_g(bh, sc.a, xi, i) * wino_g(2, sc.b, eta, j);
        const double* kp = kern.data();
        for (int ob = 0; ob < nob; ++ob)
          for (int ci = 0; ci < cin; ++ci)
            for (int m = 0; m < kMR; ++m, kp += ab) {
              double u = 0.0;  // same products, same order as sum_i sum_j G[xi][i] G[eta][j] g[i][j]
              if (ob * kMR + m < cout)
                for (int t = 0; t < ab; ++t) u += coef[t] * kp[t];
              pw[pos++] = static_cast<float>(u);
            }
      }
  }
  return pw;
}

// Input layout and per-component transforms of a Winograd run. The padded
// input is split into fy x fx polyphase planes (fy = bh * input stride of
// the sub-convs, fx = 2 * that stride), so that the bh x 2 output blocks
// read contiguous rows. shift (0 <= shift < bh) starts the block grid shift
// (sub-conv output) rows above the tensor, so that blocks stay on the rows
// of a larger image that are multiples of bh when the tensor starts at row
// first_row = shift (mod bh) of it (strip-wise processing, see Conv2d::run).
Geometry wino_geometry(bool transposed, int h, int w, int k, int s, const std::vector<SubConv>& subs, int shift,
                       int bh) {
  Geometry g;
  const int sst = transposed ? 1 : s;
  const int fy = bh * sst, fx = 2 * sst;
  g.split = fx;
  g.split_y = fy;
  g.bh = bh;
  g.pad = transposed ? 1 : k / 2;
  g.pad_top = g.pad + sst * shift;
  g.row_shift = shift;
  g.valid_h = transposed ? h : (h - 1) / s + 1;
  g.valid_w = transposed ? w : (w - 1) / s + 1;
  g.blocks_h = (g.valid_h + shift + bh - 1) / bh;
  g.blocks_w = (g.valid_w + 1) / 2;
  g.ngroups = static_cast<int>(subs.size());
  g.tile = kWinoBlocks;
  // block (Y, X) of sub-conv sc reads padded row sst*(bh*Y + oy + i') + py,
  // i' < a + bh - 1, = plane row Y + (sst*(oy + i') + py) / fy of row phase
  // (sst*(oy + i') + py) % fy; columns likewise with 2 and fx.
  int max_r = 0, max_c = 0;
  for (const SubConv& sc : subs) {
    max_r = std::max(max_r, (sst * (sc.oy + sc.a + bh - 2) + sc.py) / fy);
    max_c = std::max(max_c, (sst * (sc.ox + sc.b) + sc.px) / fx);
  }
  g.hq = g.blocks_h + max_r;
  g.wq = g.blocks_w + max_c;
  g.grid_w = static_cast<int>(g.wq);
  const int64_t plane = g.hq * g.wq;
  LMC_CHECK((int64_t)fy * fx * plane <= kMaxPlaneElems, Status::LimitExceeded, "conv: image too large");
  for (int si = 0; si < g.ngroups; ++si) {
    const SubConv& sc = subs[si];
    for (int xi = 0; xi < sc.a + bh - 1; ++xi)
      for (int eta = 0; eta <= sc.b; ++eta) {
        WinoComp c{};
        for (int i = 0; i < sc.a + bh - 1; ++i)
          for (int j = 0; j <= sc.b; ++j) {
            const double sg = wino_bt(bh, sc.a, xi, i) * wino_bt(2, sc.b, eta, j);
            if (sg == 0.0) continue;
            const int r = sst * (sc.oy + i) + sc.py, q = sst * (sc.ox + j) + sc.px;
            c.off[c.nterms] = static_cast<int>((int64_t)((r % fy) * fx + q % fx) * plane + (r / fy) * g.wq + q / fx);
            c.sign[c.nterms] = static_cast<float>(sg);
            ++c.nterms;
          }
        for (int u = 0; u < bh; ++u)
          for (int v = 0; v < 2; ++v)
            c.coef[2 * u + v] = static_cast<float>(wino_at(bh, sc.a, u, xi) * wino_at(2, sc.b, v, eta));
        g.comps[si].push_back(c);
      }
    if (bh == 4) {  // the same window, for the separable transform
      WinoSep& sp = g.seps[si];
      sp.a = sc.a;
      sp.b = sc.b;
      for (int i = 0; i < sc.a + 3; ++i)
        for (int j = 0; j <= sc.b; ++j) {
          const int r = sst * (sc.oy + i) + sc.py, q = sst * (sc.ox + j) + sc.px;
          sp.off[i][j] = static_cast<int>((int64_t)((r % fy) * fx + q % fx) * plane + (r / fy) * g.wq + q / fx);
        }
    }
    // distinct row segments (column offset 0) for prefetching
    for (int i = 0; i < sc.a + bh - 1; ++i)
      for (int q = 0; q < fx; ++q) {
        const int r = sst * (sc.oy + i) + sc.py;
        const int row = static_cast<int>((int64_t)((r % fy) * fx + q) * plane + (r / fy) * g.wq);
        bool seen = false;
        for (int x : g.rows[si]) seen = seen || x == row;
        if (!seen) g.rows[si].push_back(row);
      }
  }
  g.cs = channel_stride((int64_t)fy * fx * plane);
  g.max_off = 0;
  for (int si = 0; si < g.ngroups; ++si)
    for (const WinoComp& c : g.comps[si])
      for (int t = 0; t < c.nterms; ++t) g.max_off = std::max(g.max_off, c.off[t]);
  g.ntiles = ((int64_t)g.blocks_h * g.grid_w + kWinoBlocks - 1) / kWinoBlocks;
  return g;
}

// Fills the padded (and polyphase-split) buffer of one channel: plane
// (py, px) of an s-split holds padded[s*yy + py][s*xx + px], where padded is
// the input with g.pad zero columns (g.pad_top rows) before it, zeros after.
// copy_row(dst, iy, ix0, n, step) copies input row iy, columns ix0 + i*step.
template <class T, class RowFn>
void pad_channel(const Geometry& g, int h, int w, T* dst, RowFn copy_row) {
  const int s = g.split, sy = g.rows_split();
  auto ceil_div = [](int64_t a, int64_t b) { return a <= 0 ? 0 : (a + b - 1) / b; };
  for (int py = 0; py < sy; ++py)
    for (int px = 0; px < s; ++px) {
      T* plane = dst + ((int64_t)py * s + px) * g.hq * g.wq;
      // plane columns xx whose input column xx*s + px - pad lies in [0, w)
      const int64_t x0 = std::min<int64_t>(ceil_div(g.pad - px, s), g.wq);
      const int64_t x1 = std::max<int64_t>(x0, std::min<int64_t>(ceil_div(w + g.pad - px, s), g.wq));
      for (int64_t yy = 0; yy < g.hq; ++yy) {
        T* row = plane + yy * g.wq;
        const int64_t iy = yy * sy + py - (g.pad_top < 0 ? g.pad : g.pad_top);
        if (iy < 0 || iy >= h || x1 == x0) {
          std::memset(row, 0, sizeof(T) * g.wq);
          continue;
        }
        std::memset(row, 0, sizeof(T) * x0);
        copy_row(row + x0, iy, x0 * s + px - g.pad, x1 - x0, s);
        std::memset(row + x1, 0, sizeof(T) * (g.wq - x1));
      }
    }
  const int64_t used = (int64_t)sy * s * g.hq * g.wq;
  std::memset(dst + used, 0, sizeof(T) * (g.cs - used));
}

// in == nullptr: only the zeros (the interior is left as it is; fused padding).
void pad_input_f32(const float* in, int cin, int h, int w, const Geometry& g, float* buf, ThreadPool* pool) {
  parallel_for(pool, cin, [&](int64_t ci, int) {
    const float* src = in ? in + ci * (int64_t)h * w : nullptr;
    pad_channel<float>(g, h, w, buf + ci * g.cs, [&](float* d, int64_t iy, int64_t ix0, int64_t n, int step) {
      if (!src) return;
      const float* sr = src + iy * w + ix0;
      if (step == 1) {
        std::memcpy(d, sr, sizeof(float) * n);
      } else {
        for (int64_t i = 0; i < n; ++i) d[i] = sr[i * step];
      }
    });
  });
  const int64_t tail0 = (int64_t)cin * g.cs, total = g.buffer_elems(cin);
  if (total > tail0) std::memset(buf + tail0, 0, sizeof(float) * (total - tail0));
}

// int16 pairs: element (cp, pixel) = (in[2cp][pixel], in[2cp+1][pixel]).
void pad_input_i16(const int16_t* in, int cin, int h, int w, const Geometry& g, int16_t* buf, ThreadPool* pool) {
  const int ncp = (cin + 1) / 2;
  struct Pair {
    int16_t a, b;
  };
  static_assert(sizeof(Pair) == 4, "int16 pair must be 4 bytes");
  Pair* pbuf = reinterpret_cast<Pair*>(buf);
  parallel_for(pool, ncp, [&](int64_t cp, int) {
    const int16_t* s0 = in + (2 * cp) * (int64_t)h * w;
    const int16_t* s1 = (2 * cp + 1 < cin) ? s0 + (int64_t)h * w : nullptr;
    pad_channel<Pair>(g, h, w, pbuf + cp * g.cs, [&](Pair* d, int64_t iy, int64_t ix0, int64_t n, int step) {
      const int16_t* r0 = s0 + iy * w + ix0;
      const int16_t* r1 = s1 ? s1 + iy * w + ix0 : nullptr;
      for (int64_t i = 0; i < n; ++i) {
        d[i].a = r0[i * step];
        d[i].b = r1 ? r1[i * step] : int16_t(0);
      }
    });
  });
  const int64_t tail0 = (int64_t)ncp * g.cs, total = g.buffer_elems(ncp);
  if (total > tail0) std::memset(pbuf + tail0, 0, sizeof(Pair) * (total - tail0));
}

// Input channels (or int16 channel pairs) per cache chunk, fixed when the
// weights are packed. Per channel (and plane), a tile reads about (rows the
// tile spans + kernel rows) x min(grid width, tile + k) elements, ~1-1.6 KiB.
// The chunk keeps that window in L1 (~16-24 KiB) while the weights stream
// through: 8 for stride-1 convs, 4 for stride-2 convs (4 polyphase planes);
// for transposed convs 16 int16 channel pairs, but only 4 float channels:
// the float accumulators of all 4 output phases (4 x coutp x kTile) share L1
// with the window, and with 16 channels the codec's last layer (64 -> 3)
// thrashed it (measured: that layer 17 % faster with 4 than with 16).
// Measured on Zen 2/3; results do not depend on it.
int chunk_channels(bool transposed, int stride, bool is_float) {
  if (transposed) return is_float ? 4 : 16;
  return stride == 2 ? 4 : 8;
}

// Packs weights in the order the tiles read them (see ConvJob::w).
// group_taps[g]: kernel indices ky*k+kx of group g; pair = 2 packs int16
// channel pairs; get(co, ci, kidx) reads the PyTorch tensor.
template <class T, class Get>
std::vector<T> pack_weights(int cin, int cout, int coutp, int mr, int kc, int pair,
                            const std::vector<std::vector<int>>& group_taps, Get get) {
  const int nunits = (cin + pair - 1) / pair;
  size_t ntot = 0;
  for (const auto& g : group_taps) ntot += g.size();
  std::vector<T> pw((size_t)nunits * ntot * coutp * pair, T(0));
  size_t pos = 0;
  for (int u0 = 0; u0 < nunits; u0 += kc) {
    const int nc = std::min(kc, nunits - u0);
    for (const auto& taps : group_taps)
      for (int ob = 0; ob < coutp / mr; ++ob)
        for (int u = 0; u < nc; ++u)
          for (int kidx : taps)
            for (int m = 0; m < mr; ++m)
              for (int e = 0; e < pair; ++e) {
                const int co = ob * mr + m, ci = (u0 + u) * pair + e;
                pw[pos++] = (co < cout && ci < cin) ? get(co, ci, kidx) : T(0);
              }
  }
  return pw;
}

std::vector<std::vector<int>> conv_taps(int k) {
  std::vector<int> t(k * k);
  for (int i = 0; i < k * k; ++i) t[i] = i;
  return {t};
}
std::vector<std::vector<int>> deconv_taps(int k) {
  std::vector<std::vector<int>> g;
  for (int r = 0; r < 4; ++r) g.push_back(deconv_phase_taps(k, r / 2, r % 2));
  return g;
}

// Runs the tiles of one conv over the pool.
template <class S, class TileFn>
void run_tiles(ScratchCache* cache, ThreadPool* pool, int64_t ntiles, int64_t scratch_elems, TileFn fn) {
  const int nthreads = pool ? pool->size() : 1;
  const int64_t per_thread = round_up64(scratch_elems, 64 / sizeof(S));
  Lease scratch(cache, sizeof(S) * per_thread * nthreads);
  S* base = scratch.as<S>();
  parallel_for(pool, ntiles, [&](int64_t t, int thread) { fn(t * kTile, base + per_thread * thread); });
}

// Few tiles for the threads (a thumbnail; the hyper networks' small grids):
// each tile's output channels are split into `parts` tasks, so that every
// thread has work and the weights are read by both. Same bits: every output
// is computed by the same operations whatever task computes it.
int channel_parts(ThreadPool* pool, int64_t ntiles, int nblk, int64_t tasks_per_thread) {
  const int nthreads = pool ? pool->size() : 1;
  int parts = 1;
  while (nthreads > 1 && parts * 2 <= nblk && ntiles * parts < tasks_per_thread * nthreads) parts *= 2;
  return parts;
}

// Runs the tiles of one conv over the pool, each tile's channel blocks
// [0, nblk) split into `parts` tasks: fn(tile index, scratch, ob0, ob1).
template <class S, class TileFn>
void run_tiles_split(ScratchCache* cache, ThreadPool* pool, int64_t ntiles, int64_t scratch_elems, int nblk, int parts,
                     TileFn fn) {
  const int nthreads = pool ? pool->size() : 1;
  const int64_t per_thread = round_up64(scratch_elems, 64 / sizeof(S));
  Lease scratch(cache, sizeof(S) * per_thread * nthreads);
  S* base = scratch.as<S>();
  parallel_for(pool, ntiles * parts, [&](int64_t t, int thread) {
    const int part = static_cast<int>(t % parts);
    fn(t / parts, base + per_thread * thread, part * nblk / parts, (part + 1) * nblk / parts);
  });
}

int post_code(PostOp p) {
  switch (p) {
    case PostOp::Relu: return kPostRelu;
    case PostOp::Gdn: return kPostGdn;
    case PostOp::Igdn: return kPostIgdn;
    case PostOp::None: break;
  }
  return kPostNone;
}

int64_t f32_scratch_elems(int ngroups, int coutp, int post) {
  const int64_t cp = round_up(coutp, kMR);  // GDN scratch rows: the GDN's own padding
  return (int64_t)ngroups * coutp * kTile + ((post == kPostGdn || post == kPostIgdn) ? 2 * cp * kTile : 0);
}

// Output channels per weight block of a direct float conv: 3 for a layer of
// 3, 6, 9, ... channels that kMR does not divide (the codec's 64 -> 3 last
// layer: a quarter of the multiply-adds would go to a padding channel).
int direct_mr(int cout) { return (cout % kMR != 0 && cout % 3 == 0) ? 3 : kMR; }

// pdiag gets gamma's diagonal (and pgamma stays empty) when every
// off-diagonal entry is exactly zero and allow_diagonal is set.
void pack_gdn(int c, const float* beta, const float* gamma, bool allow_diagonal, std::vector<float>& pbeta,
              std::vector<float>& pgamma, std::vector<float>& pdiag) {
  const int cp = round_up(c, kMR);
  pbeta.assign(cp, 1.0f);
  for (int i = 0; i < c; ++i) pbeta[i] = beta[i];
  bool diagonal = allow_diagonal;
  for (int i = 0; i < c && diagonal; ++i)
    for (int j = 0; j < c; ++j)
      if (i != j && gamma[(size_t)i * c + j] != 0.0f) {
        diagonal = false;
        break;
      }
  pgamma.clear();
  pdiag.clear();
  if (diagonal) {
    pdiag.resize(c);
    for (int i = 0; i < c; ++i) pdiag[i] = gamma[(size_t)i * c + i];
    return;
  }
  pgamma.assign((size_t)cp * c, 0.0f);
  for (int i = 0; i < c; ++i)
    for (int j = 0; j < c; ++j) pgamma[((size_t)(i / kMR) * c + j) * kMR + i % kMR] = gamma[(size_t)i * c + j];
}

// Shared float driver for Conv2d / ConvTranspose2d.
// prepadded: the input already laid out as pad_input_f32 would (then in is
// unused), or nullptr.
// phase_out: see ConvJob (nullptr: plain output).
void run_conv_f32(const Geometry& g, const float* in, const float* prepadded, int cin, int h, int w,
                  const float* wpk, int kc, int cout, int mr, int coutp, const float* bias, PostOp post, const float* gbeta,
                  const float* ggamma, const float* gdiag, float* out, int64_t out_w, int64_t out_plane, const PhaseOut* phase_out,
                  ScratchCache* cache, ThreadPool* pool) {
  const KernelTable& kt = active_kernels();
  std::optional<Lease> padded;
  if (!prepadded) {
    padded.emplace(cache, sizeof(float) * g.buffer_elems(cin));
    pad_input_f32(in, cin, h, w, g, padded->as<float>(), pool);
  }

  ConvJob j{};
  j.in = prepadded ? prepadded : padded->as<float>();
  j.in_cstride = g.cs;
  j.nci = cin;
  j.kc = kc;
  j.ngroups = g.ngroups;
  j.ntaps_total = 0;
  for (int i = 0; i < g.ngroups; ++i) {
    j.taps[i] = g.taps[i].data();
    j.ntaps[i] = static_cast<int>(g.taps[i].size());
    j.ntaps_total += j.ntaps[i];
  }
  j.w = wpk;
  j.nrows = static_cast<int>(std::min<size_t>(g.rows[0].size(), 32));
  for (int r = 0; r < j.nrows; ++r) j.rows[r] = g.rows[0][r];
  j.cout = cout;
  j.mr = mr;
  j.coutp = coutp;
  j.bias = bias;
  j.post = post_code(post);
  j.gdn_beta = gbeta;
  j.gdn_gamma = ggamma;
  j.gdn_diag = gdiag;
  j.grid_w = g.grid_w;
  j.valid_h = g.valid_h;
  j.valid_w = g.valid_w;
  j.deconv = g.ngroups == 4;
  j.out = out;
  j.out_w = out_w;
  j.out_cstride = out_plane;
  set_phase_out(j, phase_out);
  run_tiles<float>(cache, pool, g.ntiles, f32_scratch_elems(g.ngroups, coutp, j.post),
                   [&](int64_t p0, float* s) { kt.conv_f32_tile(j, p0, s); });
}

void run_wino_f32(const Geometry& g, bool transposed, const float* in, const float* prepadded, int cin, int h, int w,
                  const float* wpk, int cout, int coutp, const float* bias, PostOp post, const float* gbeta,
                  const float* ggamma, const float* gdiag, float* out, int64_t out_w, int64_t out_plane, const PhaseOut* phase_out,
                  ScratchCache* cache, ThreadPool* pool) {
  const KernelTable& kt = active_kernels();
  std::optional<Lease> padded;
  if (!prepadded) {
    padded.emplace(cache, sizeof(float) * g.buffer_elems(cin));
    pad_input_f32(in, cin, h, w, g, padded->as<float>(), pool);
  }

  WinoJob j{};
  j.in = prepadded ? prepadded : padded->as<float>();
  j.in_cstride = g.cs;
  j.nci = cin;
  j.nsub = g.ngroups;
  for (int i = 0; i < g.ngroups; ++i) {
    j.ncomp[i] = static_cast<int>(g.comps[i].size());
    j.comps[i] = g.comps[i].data();
    j.nrows[i] = static_cast<int>(std::min<size_t>(g.rows[i].size(), 16));
    for (int r = 0; r < j.nrows[i]; ++r) j.rows[i][r] = g.rows[i][r];
  }
  j.w = wpk;
  j.cout = cout;
  j.coutp = coutp;
  j.bias = bias;
  j.post = post_code(post);
  j.gdn_beta = gbeta;
  j.gdn_gamma = ggamma;
  j.gdn_diag = gdiag;
  j.deconv = transposed;
  j.bh = g.bh;
  for (int i = 0; i < kMaxGroups; ++i) j.seps[i] = g.seps[i];
  j.grid_w = g.grid_w;
  j.blocks_h = g.blocks_h;
  j.blocks_w = g.blocks_w;
  j.row_shift = g.row_shift;
  j.valid_h = g.valid_h;
  j.valid_w = g.valid_w;
  j.out = out;
  j.out_w = out_w;
  j.out_cstride = out_plane;
  set_phase_out(j, phase_out);
  const int nout = transposed ? g.ngroups : 1;
  const int64_t scratch = (int64_t)nout * (g.bh / 2) * coutp * kTile + (int64_t)kWinoMaxComps * cin * kWinoBlocks +
                          ((j.post == kPostGdn || j.post == kPostIgdn) ? 2 * (int64_t)coutp * kTile : 0);
  // split channels only where tiles are too few to share (each part redoes
  // the tile's input transform), and not under a dense GDN (it mixes channels)
  const int nblk = coutp / kMR;
  const bool dense_gdn = (j.post == kPostGdn || j.post == kPostIgdn) && !gdiag;
  run_tiles_split<float>(cache, pool, g.ntiles, scratch, nblk, dense_gdn ? 1 : channel_parts(pool, g.ntiles, nblk, 2),
                         [&](int64_t t, float* s, int ob0, int ob1) { kt.wino_f32_tile(j, t * kWinoBlocks, s, ob0, ob1); });
}

inline void prefetch_read(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}

// TapGemm (transposed convs, see ConvAlgo): for every padded input row,
// G[m][x] = sum_ci wt[m][ci] * in[ci][row][x] over the m = (ky*k + kx)*cout + co
// tap products (rows of wt past k*k*cout are zero), with the gemm_f32
// kernel (fma from 0 in increasing ci: the same bits on every path); then
// output (co, 2y + ry, 2x + rx) = bias[co] + the G values of phase (ry, rx)'s
// taps, added in tap order (plain adds, this one loop on every path). The
// zero border of the padded input gives exact zeros for the taps that fall
// outside the image. Tasks are bands of input rows; a band keeps the G rows
// of three consecutive padded rows (a ring) and computes each once, plus two
// rows of halo per band (so the result does not depend on the banding).
void run_tapgemm_f32(const Geometry& g, const float* in, const float* prepadded, int cin, int h, int w, int k,
                     const float* wt, int cout, const float* bias, PostOp post, float* out, int64_t out_w,
                     int64_t out_plane, const PhaseOut* phase_out, ScratchCache* cache, ThreadPool* pool) {
  const KernelTable& kt = active_kernels();
  std::optional<Lease> padded;
  if (!prepadded) {
    padded.emplace(cache, sizeof(float) * g.buffer_elems(cin));
    pad_input_f32(in, cin, h, w, g, padded->as<float>(), pool);
  }
  const float* x = prepadded ? prepadded : padded->as<float>();
  const int kk = k * k, p = k / 2;
  const int mp = round_up(kk * cout, kMR);
  const int64_t wq = g.wq;                     // padded row: w + 2
  // G columns computed: whole 24-wide blocks of the GEMM kernel (the extra
  // columns read zeros and are never used)
  const int64_t ncols = round_up64(wq, 24);
  // panel / G row stride: not a multiple of 64 floats, and room for the
  // phase sums' last 16-pixel chunk (it reads up to column w + 16)
  const int64_t ld = ncols + 16;
  // the taps of each phase: tap index and the (row, column) offset of its G
  // value relative to padded row y, column x of output pixel (2y+ry, 2x+rx)
  struct Tap {
    int t, dy, dx;
  };
  std::vector<Tap> taps[4];
  for (int r = 0; r < 4; ++r)
    for (int t : deconv_phase_taps(k, r / 2, r % 2)) {
      const int ky = t / k, kx = t % k;
      taps[r].push_back({t, (r / 2 + p - ky) / 2 + 1, (r % 2 + p - kx) / 2 + 1});  // exact divisions
    }
  std::vector<float> zero_bias(size_t(mp), 0.0f);
  const int nthreads = pool ? pool->size() : 1;
  // bands: one per thread would leave a slow thread's band as the tail;
  // ~4 per thread, at least 8 rows each (two halo rows per band)
  const int nb = nthreads == 1 ? 1 : std::max(1, std::min(4 * nthreads, h / 8));
  const int rows_per_band = (h + nb - 1) / nb;
  const int64_t per_thread = round_up64((int64_t)cin * ld + 3 * (int64_t)mp * ld, 16);
  Lease sbuf(cache, sizeof(float) * per_thread * nthreads);
  float* base = sbuf.as<float>();
  const bool relu = post == PostOp::Relu;
  parallel_for(pool, (h + rows_per_band - 1) / rows_per_band, [&](int64_t band, int thread) {
    float* panel = base + per_thread * thread;
    float* ring = panel + (int64_t)cin * ld;
    const int y0 = static_cast<int>(band) * rows_per_band, y1 = std::min(h, y0 + rows_per_band);
    for (int ci = 0; ci < cin; ++ci)
      std::memset(panel + (int64_t)ci * ld + wq, 0, sizeof(float) * (ld - wq));
    for (int r = 0; r < 3 * mp; ++r) std::memset(ring + r * ld + ncols, 0, sizeof(float) * (ld - ncols));
    auto g_row = [&](int yp) {  // G of padded row yp into ring slot yp % 3
      // the panel: row yp of every channel, contiguous (64 rows of different
      // planes would cost the GEMM a TLB miss per k); each channel's next
      // rows are fetched ahead (64 short streams are too many for the
      // hardware prefetcher)
      const int ahead = yp + 2 < g.hq ? yp + 2 : -1;
      for (int ci = 0; ci < cin; ++ci) {
        const float* src = x + (int64_t)ci * g.cs + (int64_t)yp * wq;
        if (ahead >= 0)
          for (int64_t o = 2 * wq; o < 3 * wq; o += 16) prefetch_read(src + o);
        std::memcpy(panel + (int64_t)ci * ld, src, sizeof(float) * wq);
      }
      GemmJob j{};
      j.a = wt;
      j.lda = cin;
      j.b = panel;
      j.ldb = ld;
      j.bias = zero_bias.data();
      j.c = ring + (int64_t)(yp % 3) * mp * ld;
      j.ldc = ld;
      j.m = mp;
      j.n = static_cast<int>(ncols);
      j.k = cin;
      j.accumulate = 0;
      kt.gemm_f32(j);
    };
    g_row(y0);
    g_row(y0 + 1);
    for (int y = y0; y < y1; ++y) {
      g_row(y + 2);
      for (int ry = 0; ry < 2; ++ry)
        for (int co = 0; co < cout; ++co) {
          // the taps' G rows of both phases (ry, 0) and (ry, 1)
          const float* src[2][9];
          int nt[2];
          for (int rx = 0; rx < 2; ++rx) {
            nt[rx] = static_cast<int>(taps[2 * ry + rx].size());
            for (int i = 0; i < nt[rx]; ++i) {
              const Tap& tp = taps[2 * ry + rx][size_t(i)];
              src[rx][i] = ring + ((int64_t)((y + tp.dy) % 3) * mp + (int64_t)tp.t * cout + co) * ld + tp.dx;
            }
          }
          // 16 pixels at a time, held in registers across the taps
          constexpr int kC = 16;
          for (int i0 = 0; i0 < w; i0 += kC) {
            const int n = std::min(kC, w - i0);
            float t[2][kC];
            for (int rx = 0; rx < 2; ++rx) {
              for (int i = 0; i < kC; ++i) t[rx][i] = bias[co];
              for (int q = 0; q < nt[rx]; ++q) {
                const float* gq = src[rx][q] + i0;  // within the row (see ld)
                for (int i = 0; i < kC; ++i) t[rx][i] = t[rx][i] + gq[i];
              }
              if (relu)
                for (int i = 0; i < kC; ++i) t[rx][i] = t[rx][i] > 0.0f ? t[rx][i] : 0.0f;  // as vmaxps(x, 0)
            }
            if (phase_out) {
              for (int rx = 0; rx < 2; ++rx)
                std::memcpy(phase_row(*phase_out, 2 * ry + rx, y) + co * out_plane + i0, t[rx], sizeof(float) * n);
            } else {
              float* d = out + co * out_plane + (int64_t)(2 * y + ry) * out_w + 2 * i0;
              if (n == kC) {
                for (int i = 0; i < kC; ++i) {
                  d[2 * i] = t[0][i];
                  d[2 * i + 1] = t[1][i];
                }
              } else {
                for (int i = 0; i < n; ++i) {
                  d[2 * i] = t[0][i];
                  d[2 * i + 1] = t[1][i];
                }
              }
            }
          }
        }
    }
  });
}

void run_conv_i16(const Geometry& g, const int16_t* in, int cin, int h, int w, const int16_t* wpk, int kc, int cout,
                  int coutp, const int32_t* bias, const Requant& rq, int32_t* out, int64_t out_w, int64_t out_plane,
                  ScratchCache* cache, ThreadPool* pool) {
  const KernelTable& kt = active_kernels();
  const int ncp = (cin + 1) / 2;
  Lease padded(cache, 4 * g.buffer_elems(ncp));
  pad_input_i16(in, cin, h, w, g, padded.as<int16_t>(), pool);

  ConvJob j{};
  j.in = padded.as<int16_t>();
  j.in_cstride = g.cs;
  j.nci = ncp;
  j.kc = kc;
  j.ngroups = g.ngroups;
  j.ntaps_total = 0;
  for (int i = 0; i < g.ngroups; ++i) {
    j.taps[i] = g.taps[i].data();
    j.ntaps[i] = static_cast<int>(g.taps[i].size());
    j.ntaps_total += j.ntaps[i];
  }
  j.w = wpk;
  j.nrows = static_cast<int>(std::min<size_t>(g.rows[0].size(), 32));
  for (int r = 0; r < j.nrows; ++r) j.rows[r] = g.rows[0][r];
  j.cout = cout;
  j.mr = kMR;
  j.coutp = coutp;
  j.bias = bias;
  j.shift = rq.shift;
  j.lo = rq.lo;
  j.hi = rq.hi;
  j.grid_w = g.grid_w;
  j.valid_h = g.valid_h;
  j.valid_w = g.valid_w;
  j.deconv = g.ngroups == 4;
  j.out = out;
  j.out_w = out_w;
  j.out_cstride = out_plane;
  const int nblk = coutp / kMR;
  run_tiles_split<uint32_t>(cache, pool, g.ntiles, (int64_t)g.ngroups * coutp * kTile, nblk,
                            channel_parts(pool, g.ntiles, nblk, 4),
                            [&](int64_t t, uint32_t* s, int ob0, int ob1) { kt.conv_i16_tile(j, t * kTile, s, ob0, ob1); });
}

void check_requant(const Requant& rq) {
  LMC_CHECK(rq.shift >= 0 && rq.shift <= 31, Status::InvalidArgument, "int conv: shift must be in [0, 31]");
  LMC_CHECK(rq.lo <= rq.hi, Status::InvalidArgument, "int conv: clamp range lo > hi");
}

}  // namespace
}  // namespace detail

using namespace detail;

// ---------------------------------------------------------------------------
// Gdn
// ---------------------------------------------------------------------------
Gdn::Gdn(int channels, const float* beta, const float* gamma, bool inverse, bool allow_diagonal)
    : c_(channels), cp_(0), inverse_(inverse) {
  LMC_CHECK(channels >= 1 && channels <= kMaxChannels, Status::InvalidArgument, "gdn: channels out of range");
  LMC_CHECK(beta != nullptr && gamma != nullptr, Status::InvalidArgument, "gdn: null parameters");
  cp_ = round_up(c_, kMR);
  pack_gdn(c_, beta, gamma, allow_diagonal, beta_, gamma_, diag_);
}

void Gdn::run(const float* in, int h, int w, float* out, ThreadPool* pool) const {
  check_run_args(in, out, h, w);
  const KernelTable& kt = active_kernels();
  GdnJob j{};
  j.in = in;
  j.out = out;
  j.c = c_;
  j.cp = cp_;
  j.hw = (int64_t)h * w;
  j.beta = beta_.data();
  j.gamma = gamma_.data();
  j.diag = diag_.empty() ? nullptr : diag_.data();
  j.inverse = inverse_;
  const int64_t ntiles = (j.hw + kTile - 1) / kTile;
  run_tiles<float>(&scratch_cache(), pool, ntiles, 3 * (int64_t)cp_ * kTile,
                   [&](int64_t p0, float* s) { kt.gdn_tile(j, p0, s); });
}

// ---------------------------------------------------------------------------
// Conv2d
// ---------------------------------------------------------------------------
namespace {
void check_conv_kernel(int k, int s) {
  LMC_CHECK(k == 3 || k == 5, Status::InvalidArgument, "conv: kernel size must be 3 or 5");
  LMC_CHECK(s == 1 || s == 2, Status::InvalidArgument, "conv: stride must be 1 or 2");
}
void check_deconv_kernel(int k, int s) {
  LMC_CHECK(k == 3 || k == 5, Status::InvalidArgument, "conv_transpose: kernel size must be 3 or 5");
  LMC_CHECK(s == 2, Status::InvalidArgument, "conv_transpose: stride must be 2");
}
}  // namespace

Conv2d::Conv2d(int cin, int cout, int k, int stride, const float* weight, const float* bias)
    : cin_(cin), cout_(cout), coutp_(0), k_(k), s_(stride) {
  check_channels(cin, cout);
  check_conv_kernel(k, stride);
  LMC_CHECK(weight != nullptr, Status::InvalidArgument, "conv: null weight");
  coutp_ = round_up(cout, kMR);
  mr_ = direct_mr(cout);
  dcoutp_ = round_up(cout, mr_);
  const int kk = k * k;
  kc_ = chunk_channels(false, stride, true);
  w_ = pack_weights<float>(cin, cout, dcoutp_, mr_, kc_, 1, conv_taps(k),
                           [&](int co, int ci, int t) { return weight[((size_t)co * cin + ci) * kk + t]; });
  const std::vector<SubConv> subs = wino_subconvs(false, k, stride);
  if (!subs.empty())
    wino_w_ = pack_wino_weights(cin, cout, coutp_, subs, 2, [&](int co, int ci, int ky, int kx) {
      return (double)weight[((size_t)co * cin + ci) * kk + ky * k + kx];
    });
  bias_.assign(coutp_, 0.0f);
  if (bias)
    for (int co = 0; co < cout; ++co) bias_[co] = bias[co];
}

void Conv2d::set_relu(bool on) {
  post_ = on ? PostOp::Relu : PostOp::None;
  gdn_beta_.clear();
  gdn_gamma_.clear();
  gdn_diag_.clear();
}
void Conv2d::clear_post_op() { set_relu(false); }
void Conv2d::set_gdn(const Gdn& gdn) {
  LMC_CHECK(gdn.channels() == cout_, Status::InvalidArgument, "conv: fused GDN channel count != cout");
  post_ = gdn.inverse() ? PostOp::Igdn : PostOp::Gdn;
  gdn_beta_ = gdn.beta_;
  gdn_gamma_ = gdn.gamma_;
  gdn_diag_ = gdn.diag_;
}

namespace {
// Auto: Winograd pays off with enough channels to amortise its transforms.
// The choice must not depend on the kernel path: the portable kernels
// reproduce the AVX2 ones bit for bit only when both run the same algorithm.
// TapGemm: for transposed convs with fewer output channels than this
// (its G rows hold k*k*cout values per input pixel).
constexpr int kTapGemmMaxCout = 16;
bool auto_winograd(int cin, int cout) {
  constexpr int kWinoMinChannels = 16;
  return cin >= kWinoMinChannels && cout >= kWinoMinChannels;
}
}  // namespace

void Conv2d::set_algorithm(ConvAlgo algo) {
  LMC_CHECK(algo != ConvAlgo::TapGemm, Status::InvalidArgument, "conv: TapGemm is for transposed convs only");
  LMC_CHECK(algo != ConvAlgo::Winograd || winograd_supported(), Status::InvalidArgument,
            "conv: Winograd needs k=5 stride 2 or k=3 stride 1");
  algo_ = algo;
}
ConvAlgo Conv2d::algorithm() const {
  if (!winograd_supported() || algo_ == ConvAlgo::Direct) return ConvAlgo::Direct;
  if (algo_ == ConvAlgo::Winograd) return ConvAlgo::Winograd;
  return auto_winograd(cin_, cout_) ? ConvAlgo::Winograd : ConvAlgo::Direct;
}

void Conv2d::run(const float* in, int h, int w, float* out, ThreadPool* pool, int64_t first_row) const {
  check_run_args(in, out, h, w);
  LMC_CHECK(first_row >= -1, Status::InvalidArgument, "conv: first_row must be >= -1");
  if (algorithm() == ConvAlgo::Winograd && (first_row >= 0 || algo_ == ConvAlgo::Winograd)) {
    const int64_t row = first_row < 0 ? 0 : first_row;
    const int shift = static_cast<int>((row / s_) & 1);  // parity of the first output row
    const Geometry g = wino_geometry(false, h, w, k_, s_, wino_subconvs(false, k_, s_), shift, 2);
    run_wino_f32(g, false, in, nullptr, cin_, h, w, wino_w_.data(), cout_, coutp_, bias_.data(), post_,
                 gdn_beta_.data(), gdn_gamma_.data(), gdiag(), out, out_w(w), (int64_t)out_h(h) * out_w(w), nullptr,
                 &scratch_cache(), pool);
    return;
  }
  const Geometry g = conv_geometry(h, w, k_, s_);
  run_conv_f32(g, in, nullptr, cin_, h, w, w_.data(), kc_, cout_, mr_, dcoutp_, bias_.data(), post_, gdn_beta_.data(),
               gdn_gamma_.data(), gdiag(), out, out_w(w), (int64_t)out_h(h) * out_w(w), nullptr, &scratch_cache(), pool);
}

// ---------------------------------------------------------------------------
// ConvTranspose2d
// ---------------------------------------------------------------------------
ConvTranspose2d::ConvTranspose2d(int cin, int cout, int k, int stride, const float* weight, const float* bias)
    : cin_(cin), cout_(cout), coutp_(0), k_(k) {
  check_channels(cin, cout);
  check_deconv_kernel(k, stride);
  LMC_CHECK(weight != nullptr, Status::InvalidArgument, "conv_transpose: null weight");
  coutp_ = round_up(cout, kMR);
  mr_ = direct_mr(cout);
  dcoutp_ = round_up(cout, mr_);
  const int kk = k * k;
  kc_ = chunk_channels(true, 2, true);
  w_ = pack_weights<float>(cin, cout, dcoutp_, mr_, kc_, 1, deconv_taps(k),
                           [&](int co, int ci, int t) { return weight[((size_t)ci * cout + co) * kk + t]; });
  const std::vector<SubConv> subs = wino_subconvs(true, k, 2);
  if (!subs.empty())
    wino_w_ = pack_wino_weights(cin, cout, coutp_, subs, kDeconvWinoRows, [&](int co, int ci, int ky, int kx) {
      return (double)weight[((size_t)ci * cout + co) * kk + ky * k + kx];
    });
  bias_.assign(coutp_, 0.0f);
  if (bias)
    for (int co = 0; co < cout; ++co) bias_[co] = bias[co];
  if (cout < kTapGemmMaxCout) {  // only worth its memory where Auto may pick it
    tap_w_.assign((size_t)round_up(kk * cout, kMR) * cin, 0.0f);
    for (int t = 0; t < kk; ++t)
      for (int co = 0; co < cout; ++co)
        for (int ci = 0; ci < cin; ++ci)
          tap_w_[((size_t)t * cout + co) * cin + ci] = weight[((size_t)ci * cout + co) * kk + t];
  }
}

void ConvTranspose2d::set_relu(bool on) {
  post_ = on ? PostOp::Relu : PostOp::None;
  gdn_beta_.clear();
  gdn_gamma_.clear();
  gdn_diag_.clear();
}
void ConvTranspose2d::clear_post_op() { set_relu(false); }
void ConvTranspose2d::set_gdn(const Gdn& gdn) {
  LMC_CHECK(gdn.channels() == cout_, Status::InvalidArgument, "conv_transpose: fused GDN channel count != cout");
  LMC_CHECK(algo_ != ConvAlgo::TapGemm, Status::InvalidArgument, "conv_transpose: TapGemm cannot fuse a GDN");
  post_ = gdn.inverse() ? PostOp::Igdn : PostOp::Gdn;
  gdn_beta_ = gdn.beta_;
  gdn_gamma_ = gdn.gamma_;
  gdn_diag_ = gdn.diag_;
}

void ConvTranspose2d::set_algorithm(ConvAlgo algo) {
  LMC_CHECK(algo != ConvAlgo::Winograd || winograd_supported(), Status::InvalidArgument,
            "conv_transpose: Winograd needs k=5");
  LMC_CHECK(algo != ConvAlgo::TapGemm || (post_ != PostOp::Gdn && post_ != PostOp::Igdn), Status::InvalidArgument,
            "conv_transpose: TapGemm cannot fuse a GDN");
  LMC_CHECK(algo != ConvAlgo::TapGemm || !tap_w_.empty(), Status::InvalidArgument,
            "conv_transpose: TapGemm needs cout < 16");
  algo_ = algo;
}
ConvAlgo ConvTranspose2d::algorithm() const { return resolve(0); }

ConvAlgo ConvTranspose2d::resolve(int64_t first_row) const {
  if (algo_ != ConvAlgo::Auto) return algo_;
  if (first_row < 0) return ConvAlgo::Direct;
  if (winograd_supported() && auto_winograd(cin_, cout_)) return ConvAlgo::Winograd;
  if (cout_ < kTapGemmMaxCout && post_ != PostOp::Gdn && post_ != PostOp::Igdn) return ConvAlgo::TapGemm;
  return ConvAlgo::Direct;
}

bool ConvTranspose2d::uses_winograd(int64_t first_row) const { return resolve(first_row) == ConvAlgo::Winograd; }

// The input geometry of a transposed conv (Winograd or direct): the one
// place that decides it, for run() and for the fused-padding layout.
Geometry transposed_geometry(bool wino, int h, int w, int k, int64_t first_row) {
  if (!wino) return deconv_geometry(h, w, k);
  // blocks of the phase grid (= input rows) on rows of the full image that
  // are multiples of the block height
  const int64_t row = first_row < 0 ? 0 : first_row;
  const int shift = static_cast<int>((row - kDeconvWinoPhase + kDeconvWinoRows) % kDeconvWinoRows);
  return wino_geometry(true, h, w, k, 2, wino_subconvs(true, k, 2), shift, kDeconvWinoRows);
}

void check_transposed_args(int h, int w, int64_t first_row) {
  LMC_CHECK(h >= 1 && w >= 1, Status::InvalidArgument, "conv_transpose: height and width must be >= 1");
  LMC_CHECK(h <= kMaxDim / 2 && w <= kMaxDim / 2, Status::LimitExceeded, "conv_transpose: image too large");
  LMC_CHECK(first_row >= -1, Status::InvalidArgument, "conv_transpose: first_row must be >= -1");
}

void ConvTranspose2d::run(const float* in, int h, int w, float* out, ThreadPool* pool, int64_t first_row) const {
  check_run_args(in, out, h, w);
  run_impl(in, nullptr, h, w, out, TensorLayout::dense(2 * h, 2 * w), pool, first_row);
}

// The output layout must hold 2h x 2w pixels per channel without overlaps.
void check_out_layout(const TensorLayout& l, int oh, int ow) {
  LMC_CHECK(l.split == 1 || l.split == 2, Status::InvalidArgument, "conv_transpose: layout split must be 1 or 2");
  const int sy = l.rows_split();
  LMC_CHECK(sy == l.split || (l.split == 2 && sy == 4), Status::InvalidArgument,
            "conv_transpose: layout split_y must be 0, split, or 4 with split 2");
  LMC_CHECK(l.top >= 0 && l.left >= 0 && l.plane >= 0 && l.row >= 0 && l.cstride >= 0, Status::InvalidArgument,
            "conv_transpose: negative layout field");
  const int64_t rows = (l.top + oh + sy - 1) / sy, cols = (l.left + ow + l.split - 1) / l.split;
  const bool ok = l.split == 1 ? l.row >= cols && l.cstride >= rows * l.row
                               : l.row >= cols && l.plane >= rows * l.row && l.cstride >= sy * l.split * l.plane;
  LMC_CHECK(ok, Status::InvalidArgument, "conv_transpose: output layout overlaps itself");
}

void ConvTranspose2d::run(const float* in, int h, int w, float* buf, const TensorLayout& out, ThreadPool* pool,
                          int64_t first_row) const {
  check_run_args(in, buf, h, w);
  check_out_layout(out, 2 * h, 2 * w);
  run_impl(in, nullptr, h, w, buf, out, pool, first_row);
}

void ConvTranspose2d::run_impl(const float* in, const float* padded, int h, int w, float* buf, const TensorLayout& out,
                               ThreadPool* pool, int64_t first_row) const {
  check_transposed_args(h, w, first_row);
  // output phase (ry, rx) pixel (y, x) is output (2y + ry, 2x + rx)
  float* base = buf;
  PhaseOut phase;
  if (out.split == 1) {
    base = buf + out.offset(0, 0, 0);
  } else {
    // phase (ry, rx) pixel (y, x) is output row 2y + ry: with a 2-row split
    // a plain plane (rows `row` apart), with a 4-row split even and odd y
    // alternate between two planes (each phase's rows 2 apart advance a plane
    // row)
    for (int r = 0; r < 4; ++r) {
      phase.phase_out[r] = buf + out.offset(0, r / 2, r % 2);
      phase.phase_odd[r] = buf + out.offset(0, r / 2 + 2, r % 2);
    }
    phase.phase_row2 = out.row * (4 / out.rows_split());
  }
  const PhaseOut* po = out.split == 1 ? nullptr : &phase;
  const ConvAlgo algo = resolve(first_row);
  const bool wino = algo == ConvAlgo::Winograd;
  const Geometry g = transposed_geometry(wino, h, w, k_, first_row);
  if (algo == ConvAlgo::TapGemm) {
    run_tapgemm_f32(g, in, padded, cin_, h, w, k_, tap_w_.data(), cout_, bias_.data(), post_, base, out.row,
                    out.cstride, po, &scratch_cache(), pool);
    return;
  }
  if (wino) {
    run_wino_f32(g, true, in, padded, cin_, h, w, wino_w_.data(), cout_, coutp_, bias_.data(), post_,
                 gdn_beta_.data(), gdn_gamma_.data(), gdiag(), base, out.row, out.cstride, po, &scratch_cache(), pool);
    return;
  }
  run_conv_f32(g, in, padded, cin_, h, w, w_.data(), kc_, cout_, mr_, dcoutp_, bias_.data(), post_, gdn_beta_.data(),
               gdn_gamma_.data(), gdiag(), base, out.row, out.cstride, po, &scratch_cache(), pool);
}

ConvTranspose2d::PaddedInput ConvTranspose2d::padded_input(int h, int w, int64_t first_row) const {
  check_transposed_args(h, w, first_row);
  const Geometry g = transposed_geometry(uses_winograd(first_row), h, w, k_, first_row);
  PaddedInput p;
  p.layout.split = g.split;
  p.layout.split_y = g.split_y;
  p.layout.top = g.pad_top < 0 ? g.pad : g.pad_top;
  p.layout.left = g.pad;
  p.layout.plane = g.hq * g.wq;
  p.layout.row = g.wq;
  p.layout.cstride = g.cs;
  p.total = g.buffer_elems(cin_);
  return p;
}

void ConvTranspose2d::zero_padding(float* buf, int h, int w, int64_t first_row, ThreadPool* pool) const {
  LMC_CHECK(buf != nullptr, Status::InvalidArgument, "conv: null tensor");
  check_transposed_args(h, w, first_row);
  const Geometry g = transposed_geometry(uses_winograd(first_row), h, w, k_, first_row);
  pad_input_f32(nullptr, cin_, h, w, g, buf, pool);  // zeros only
}

void ConvTranspose2d::run_padded(const float* buf, int h, int w, float* out, ThreadPool* pool,
                                 int64_t first_row) const {
  check_run_args(buf, out, h, w);
  run_impl(nullptr, buf, h, w, out, TensorLayout::dense(2 * h, 2 * w), pool, first_row);
}

void ConvTranspose2d::run_padded(const float* buf, int h, int w, float* obuf, const TensorLayout& out,
                                 ThreadPool* pool, int64_t first_row) const {
  check_run_args(buf, obuf, h, w);
  check_out_layout(out, 2 * h, 2 * w);
  run_impl(nullptr, buf, h, w, obuf, out, pool, first_row);
}

// ---------------------------------------------------------------------------
// Integer convolutions
// ---------------------------------------------------------------------------
Conv2dI16::Conv2dI16(int cin, int cout, int k, int stride, const int16_t* weight, const int32_t* bias, Requant rq)
    : cin_(cin), cout_(cout), coutp_(0), k_(k), s_(stride), rq_(rq) {
  check_channels(cin, cout);
  check_conv_kernel(k, stride);
  check_requant(rq);
  LMC_CHECK(weight != nullptr, Status::InvalidArgument, "int conv: null weight");
  coutp_ = round_up(cout, kMR);
  const int kk = k * k;
  kc_ = chunk_channels(false, stride, false);
  w_ = pack_weights<int16_t>(cin, cout, coutp_, kMR, kc_, 2, conv_taps(k),
                             [&](int co, int ci, int t) { return weight[((size_t)co * cin + ci) * kk + t]; });
  bias_.assign(coutp_, 0);
  if (bias)
    for (int co = 0; co < cout; ++co) bias_[co] = bias[co];
}

void Conv2dI16::run(const int16_t* in, int h, int w, int32_t* out, ThreadPool* pool) const {
  check_run_args(in, out, h, w);
  const Geometry g = conv_geometry(h, w, k_, s_);
  run_conv_i16(g, in, cin_, h, w, w_.data(), kc_, cout_, coutp_, bias_.data(), rq_, out, out_w(w),
               (int64_t)out_h(h) * out_w(w), &scratch_cache(), pool);
}

ConvTranspose2dI16::ConvTranspose2dI16(int cin, int cout, int k, int stride, const int16_t* weight,
                                       const int32_t* bias, Requant rq)
    : cin_(cin), cout_(cout), coutp_(0), k_(k), rq_(rq) {
  check_channels(cin, cout);
  check_deconv_kernel(k, stride);
  check_requant(rq);
  LMC_CHECK(weight != nullptr, Status::InvalidArgument, "int conv_transpose: null weight");
  coutp_ = round_up(cout, kMR);
  const int kk = k * k;
  kc_ = chunk_channels(true, 2, false);
  w_ = pack_weights<int16_t>(cin, cout, coutp_, kMR, kc_, 2, deconv_taps(k),
                             [&](int co, int ci, int t) { return weight[((size_t)ci * cout + co) * kk + t]; });
  bias_.assign(coutp_, 0);
  if (bias)
    for (int co = 0; co < cout; ++co) bias_[co] = bias[co];
}

void ConvTranspose2dI16::run(const int16_t* in, int h, int w, int32_t* out, ThreadPool* pool) const {
  check_run_args(in, out, h, w);
  LMC_CHECK(h <= kMaxDim / 2 && w <= kMaxDim / 2, Status::LimitExceeded, "int conv_transpose: image too large");
  const Geometry g = deconv_geometry(h, w, k_);
  run_conv_i16(g, in, cin_, h, w, w_.data(), kc_, cout_, coutp_, bias_.data(), rq_, out, 2 * (int64_t)w,
               4 * (int64_t)h * w, &scratch_cache(), pool);
}

// ---------------------------------------------------------------------------
// Element-wise
// ---------------------------------------------------------------------------
void release_scratch_buffers() {
  ScratchCache& c = scratch_cache();
  std::vector<std::unique_ptr<AlignedBuf>> drop;
  {
    std::lock_guard<std::mutex> lk(c.mu);
    drop.swap(c.free_list);
  }
}

void relu(float* x, int64_t n, ThreadPool* pool) {
  LMC_CHECK(n >= 0 && (x != nullptr || n == 0), Status::InvalidArgument, "relu: bad arguments");
  const KernelTable& kt = active_kernels();
  constexpr int64_t kChunk = 1 << 16;
  parallel_for(pool, (n + kChunk - 1) / kChunk,
               [&](int64_t t, int) { kt.relu(x + t * kChunk, std::min(kChunk, n - t * kChunk)); });
}

void scale_channels(float* x, int c, int64_t hw, const float* g, ThreadPool* pool) {
  LMC_CHECK(c >= 0 && hw >= 0, Status::InvalidArgument, "scale_channels: bad shape");
  LMC_CHECK((x != nullptr && g != nullptr) || c == 0 || hw == 0, Status::InvalidArgument,
            "scale_channels: null tensor");
  const KernelTable& kt = active_kernels();
  parallel_for(pool, c, [&](int64_t i, int) { kt.scale(x + i * hw, hw, g[i]); });
}

}  // namespace dsp
}  // namespace lmc
