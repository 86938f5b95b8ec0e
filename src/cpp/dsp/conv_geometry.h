// lmcodec dsp: the geometry of a convolution (padded, polyphase-split
// input planes and the offsets each tap reads), padding, weight packing and
// argument checks: what the drivers (dsp/conv_run.*) and layer classes
// (dsp/conv.*) share. Winograd plans: dsp/winograd.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dsp/conv.h"
#include "dsp/kernels.h"
#include "util/threadpool.h"

namespace lmc {
namespace dsp {
namespace detail {

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
inline int round_up(int v, int m) { return (v + m - 1) / m * m; }
inline int64_t round_up64(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

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

void check_channels(int cin, int cout);

void check_run_args(const void* in, const void* out, int h, int w);

// Taps (ky, kx) of a transposed conv (stride 2, padding k/2) that reach
// output phase (ry, rx): ky = ry + k/2 (mod 2), kx = rx + k/2 (mod 2).
std::vector<int> deconv_phase_taps(int k, int ry, int rx);

// Elements (4 bytes: a float or an int16 pair) between the channels of a
// padded buffer: at least `used`, a multiple of 16 (64-byte lines), and an
// odd number of lines modulo 4 KiB, so that the same row of consecutive
// channels falls in different L1 sets (kernels read several channels' rows
// at once; planes a multiple of 4 KiB apart would share a few sets).
int64_t channel_stride(int64_t used);

Geometry conv_geometry(int h, int w, int k, int s);

Geometry deconv_geometry(int h, int w, int k);

// in == nullptr: only the zeros (the interior is left as it is; fused padding).
void pad_input_f32(const float* in, int cin, int h, int w, const Geometry& g, float* buf, ThreadPool* pool);

// int16 pairs: element (cp, pixel) = (in[2cp][pixel], in[2cp+1][pixel]).
void pad_input_i16(const int16_t* in, int cin, int h, int w, const Geometry& g, int16_t* buf, ThreadPool* pool);

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
int chunk_channels(bool transposed, int stride, bool is_float);

std::vector<std::vector<int>> conv_taps(int k);

std::vector<std::vector<int>> deconv_taps(int k);

int post_code(PostOp p);

int64_t f32_scratch_elems(int ngroups, int coutp, int post);

// Output channels per weight block of a direct float conv: 3 for a layer of
// 3, 6, 9, ... channels that kMR does not divide (the codec's 64 -> 3 last
// layer: a quarter of the multiply-adds would go to a padding channel).
int direct_mr(int cout);

// pdiag gets gamma's diagonal (and pgamma stays empty) when every
// off-diagonal entry is exactly zero and allow_diagonal is set.
void pack_gdn(int c, const float* beta, const float* gamma, bool allow_diagonal, std::vector<float>& pbeta,
              std::vector<float>& pgamma, std::vector<float>& pdiag);

void check_requant(const Requant& rq);

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

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
