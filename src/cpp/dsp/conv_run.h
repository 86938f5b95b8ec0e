// lmcodec dsp: the drivers that run one convolution over the thread pool:
// pad the input, fill a ConvJob / WinoJob / GemmJob, and call the active
// kernel table's tile functions (dsp/kernels.h) on every tile.
#pragma once

#include "dsp/conv_geometry.h"
#include "util/scratch.h"

namespace lmc {
namespace dsp {
namespace detail {

// The process-wide scratch cache of every conv and GDN run.
ScratchCache& scratch_cache();

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
int channel_parts(ThreadPool* pool, int64_t ntiles, int nblk, int64_t tasks_per_thread);

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

// Shared float driver for Conv2d / ConvTranspose2d.
// prepadded: the input already laid out as pad_input_f32 would (then in is
// unused), or nullptr.
// phase_out: see ConvJob (nullptr: plain output).
void run_conv_f32(const Geometry& g, const float* in, const float* prepadded, int cin, int h, int w,
                  const float* wpk, int kc, int cout, int mr, int coutp, const float* bias, PostOp post, const float* gbeta,
                  const float* ggamma, const float* gdiag, float* out, int64_t out_w, int64_t out_plane, const PhaseOut* phase_out,
                  ScratchCache* cache, ThreadPool* pool);

void run_wino_f32(const Geometry& g, bool transposed, const float* in, const float* prepadded, int cin, int h, int w,
                  const float* wpk, int cout, int coutp, const float* bias, PostOp post, const float* gbeta,
                  const float* ggamma, const float* gdiag, float* out, int64_t out_w, int64_t out_plane, const PhaseOut* phase_out,
                  ScratchCache* cache, ThreadPool* pool);

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
                     int64_t out_plane, const PhaseOut* phase_out, ScratchCache* cache, ThreadPool* pool);

void run_conv_i16(const Geometry& g, const int16_t* in, int cin, int h, int w, const int16_t* wpk, int kc, int cout,
                  int coutp, const int32_t* bias, const Requant& rq, int32_t* out, int64_t out_w, int64_t out_plane,
                  ScratchCache* cache, ThreadPool* pool);

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
