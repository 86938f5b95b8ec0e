// lmcodec dsp: convolution drivers (see conv_run.h).
#include "dsp/conv_run.h"

#include <algorithm>
#include <cstring>
#include <optional>

#include "dsp/conv_tile.h"
#include "dsp/kernels.h"

namespace lmc {
namespace dsp {
namespace detail {

ScratchCache& scratch_cache() {
  static ScratchCache cache;
  return cache;
}

int channel_parts(ThreadPool* pool, int64_t ntiles, int nblk, int64_t tasks_per_thread) {
  const int nthreads = pool ? pool->size() : 1;
  int parts = 1;
  while (nthreads > 1 && parts * 2 <= nblk && ntiles * parts < tasks_per_thread * nthreads) parts *= 2;
  return parts;
}

namespace {

// A direct-convolution job's geometry, weights and output (float and int16
// alike); the caller adds the post-op (float) or the requantisation (int16).
ConvJob conv_job(const Geometry& g, const void* padded_in, int nci, int kc, const void* wpk, int cout, int mr, int coutp,
                 const void* bias, void* out, int64_t out_w, int64_t out_plane) {
  ConvJob j{};
  j.in = padded_in;
  j.in_cstride = g.cs;
  j.nci = nci;
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
  j.grid_w = g.grid_w;
  j.valid_h = g.valid_h;
  j.valid_w = g.valid_w;
  j.deconv = g.ngroups == 4;
  j.out = out;
  j.out_w = out_w;
  j.out_cstride = out_plane;
  return j;
}

// The float input laid out as the geometry wants it: prepadded if the caller
// has it (then in is unused), else in padded into a buffer leased into
// holder (kept for the call).
const float* padded_f32(const Geometry& g, const float* in, const float* prepadded, int cin, int h, int w,
                        std::optional<Lease>& holder, ScratchCache* cache, ThreadPool* pool) {
  if (prepadded) return prepadded;
  holder.emplace(cache, sizeof(float) * g.buffer_elems(cin));
  pad_input_f32(in, cin, h, w, g, holder->as<float>(), pool);
  return holder->as<float>();
}

}  // namespace

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
  const float* x = padded_f32(g, in, prepadded, cin, h, w, padded, cache, pool);

  ConvJob j = conv_job(g, x, cin, kc, wpk, cout, mr, coutp, bias, out, out_w,
                       out_plane);
  j.post = post_code(post);
  j.gdn_beta = gbeta;
  j.gdn_gamma = ggamma;
  j.gdn_diag = gdiag;
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
  const float* x = padded_f32(g, in, prepadded, cin, h, w, padded, cache, pool);

  WinoJob j{};
  j.in = x;
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

namespace {
inline void prefetch_read(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 0, 3);
#else
  (void)p;
#endif
}
}  // namespace

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
  const float* x = padded_f32(g, in, prepadded, cin, h, w, padded, cache, pool);
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

  ConvJob j = conv_job(g, padded.as<int16_t>(), ncp, kc, wpk, cout, kMR, coutp, bias, out, out_w, out_plane);
  j.shift = rq.shift;
  j.lo = rq.lo;
  j.hi = rq.hi;
  const int nblk = coutp / kMR;
  run_tiles_split<uint32_t>(cache, pool, g.ntiles, (int64_t)g.ngroups * coutp * kTile, nblk,
                            channel_parts(pool, g.ntiles, nblk, 4),
                            [&](int64_t t, uint32_t* s, int ob0, int ob1) { kt.conv_i16_tile(j, t * kTile, s, ob0, ob1); });
}

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
