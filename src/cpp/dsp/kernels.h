// lmcodec dsp, internal: the interface between the drivers in conv_run.cc (plans,
// packing, padding, threads; compiled without SIMD flags) and the per-ISA
// kernel tables (conv_scalar.cc: portable reference, conv_avx2.cc: AVX2+FMA,
// conv_avx512.cc: AVX-512 F/BW/DQ/VL, conv_wasm.cc: WebAssembly SIMD128).
//
// Every table computes bit-identical floats: the order of the sums is fixed
// below (it does not depend on nr or the vector width), and each multiply-add
// is a fused one (hardware FMA on AVX2, std::fma in the portable table);
// every other step (bias add, +-1 Winograd output transform as add/sub, ReLU
// as max, |x|, GDN division / IGDN product) is the same single IEEE operation
// on every path. A new table must keep that: no reciprocal or rsqrt
// approximations, no reassociation.
//
// Only plain structs, constants and function declarations live here: no
// inline functions or templates with external linkage, so that nothing
// compiled with -mavx2 can be picked by the linker for use on the portable
// path (the classic ODR trap of per-file SIMD flags).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lmc {
namespace dsp {
namespace detail {

// Output channels per packed weight block; shared by every ISA so that one
// packing serves all paths (and set_force_scalar can switch at any time).
constexpr int kMR = 4;
// Output pixels per tile (one task / one scratch tile). Every table's nr
// divides it. Results do not depend on it (each output's sum order is fixed).
constexpr int kTile = 96;
constexpr int kMaxGroups = 4;

enum PostCode : int { kPostNone = 0, kPostRelu = 1, kPostGdn = 2, kPostIgdn = 3 };

// One convolution, described as a "flattened stride-1 multi-tap" product.
//
// The input has been copied into a zero-padded planar buffer (conv_geometry.cc). For
// output group g (the 4 sub-pixel phases of a transposed conv, else one
// group) and grid pixel p:
//     acc[g][co][p] = bias[co] + sum_ci sum_t  w[g][co][ci][t] * in[ci*in_cstride + p + taps[g][t]]
// Grid pixel p stands for output (y, x) = (p / grid_w, p % grid_w) and is kept
// when y < valid_h and x < valid_w; the other grid pixels are computed and
// dropped (padding columns). Float: one element = one float. Int16: one
// element = an int16 pair (channels 2i, 2i+1), nci counts pairs.
struct ConvJob {
  const void* in;
  int64_t in_cstride;  // elements between channels (pairs for int16)
  int nci;             // channels (float) or channel pairs (int16)
  int kc;             // input channels (pairs) per cache chunk
  int ngroups;        // 1 (conv) or 4 (transposed conv phases, g = 2*ry + rx)
  const int* taps[kMaxGroups];
  int ntaps[kMaxGroups];
  int ntaps_total;    // sum of ntaps[g]
  // distinct input row segments (offsets of their first element) the taps of
  // all groups read per channel; a tile prefetches those of the next chunk
  int nrows;
  int rows[32];
  // Packed weights, in the order the tiles read them (one sequential stream):
  // for each chunk q of nc = min(kc, nci - q*kc) input channels, for each
  // group g, for each block of kMR output channels: [nc][ntaps[g]][kMR]
  // floats (int16: [nc][ntaps[g]][kMR][2], channel pairs).
  const void* w;
  int cout;
  int mr;            // output channels per weight block: kMR, or 3 (float only, cout a multiple of 3)
  int coutp;         // cout rounded up to mr
  const void* bias;  // [coutp] float or int32
  // float post-op
  int post;
  // (the GDN is padded to kMR channels whatever mr is)
  const float* gdn_beta;   // [round_up(cout, kMR)] (padded with 1)
  const float* gdn_gamma;  // packed [round_up(cout, kMR)/kMR][cout][1][kMR]
  const float* gdn_diag;   // [cout]: diagonal gamma (then gdn_gamma is unused), or null
  // int16 requantisation
  int shift;
  int32_t lo, hi;
  // output mapping
  int grid_w, valid_h, valid_w;
  int deconv;  // 0: out[co][y][x]; 1: out[co][2y+ry][2x+rx] for group 2*ry+rx
  void* out;   // float or int32
  int64_t out_w;        // output row stride
  int64_t out_cstride;  // output channel stride
  // deconv only, float: when phase_out[0] is set, group g's pixel (y, x) goes
  // to row (y even ? phase_out[g] : phase_odd[g]) + (y/2)*phase_row2, element
  // co*out_cstride + x, instead (the polyphase planes of the next layer's
  // padded input: no interleaving; a 4-row split puts even and odd rows of a
  // phase in different planes)
  float* phase_out[kMaxGroups];
  float* phase_odd[kMaxGroups];
  int64_t phase_row2;
};

// Stand-alone GDN / IGDN over a CHW tensor, tile of kTile pixels.
struct GdnJob {
  const float* in;
  float* out;
  int c;
  int cp;  // c rounded up to kMR
  int64_t hw;
  const float* beta;   // [cp]
  const float* gamma;  // packed [cp/kMR][c][1][kMR]
  const float* diag;   // [c]: diagonal gamma (then gamma is unused), or null
  int inverse;
};

// Winograd F(bh x 2, a x b), a, b in {2, 3}, bh in {2, 4}: a conv made of
// nsub "sub-convs" (the 4 polyphase planes of a stride-2 conv, whose outputs
// add up; the 4 output phases of a transposed conv; or a single 3x3 stride-1
// conv), each with an a x b kernel. Output bh x 2 blocks live on a flattened
// block grid (block p = (Y, X) = (p / grid_w, p % grid_w)); a tile is
// kWinoBlocks blocks. For each sub-conv and each of its (a+bh-1)(b+1)
// components:
//   V[ci][t]  = sum_k sign[k] * in[ci*in_cstride + b0 + t + off[k]]   (input transform)
//   M[co][t]  = sum_ci U[co][ci] * V[ci][t]                           (GEMM)
//   y[co][o][t] += coef[o] * M[co][t],  o = 2u + v                    (output transform)
// then bias, post-op, and the store of pixel (bh*Y+u, 2X+v) (transposed conv:
// (2(bh*Y+u)+ry, 2(2X+v)+rx) for sub-conv 2*ry+rx). F(2, .) has +-1 signs
// and coefficients; F(4, .) (transposed convs) has small integers (2, 4, 5, 8)
// and its weights U fractions: 154 instead of 196 multiplications per 4x4
// output block of the four phases of a 5x5 transposed conv.
constexpr int kWinoBlocks = kTile / 4;  // 24 blocks = 96 (bh 2) or 192 (bh 4) output pixels per sub-conv
constexpr int kWinoMaxComps = 24;       // (3 + 4 - 1) x (3 + 1)
constexpr int kWinoMaxTerms = 8;        // 4 x 2 input rows per component

struct WinoComp {
  int nterms;  // <= kWinoMaxTerms
  int off[kWinoMaxTerms];
  float sign[kWinoMaxTerms];  // the input transform's factor of each term
  float coef[8];              // output transform: o = 2u + v, u < bh (0 past bh)
};

// The separable input transform of an F(4x2, a x b) sub-conv (bh 4, the
// transposed convs): input segment (row i < a + 3, column j < b + 1) of the
// block window at in + off[i][j]; V[xi*(b+1) + eta] = BTx (BTy d)^T with the
// row transform BTy of F(4, a) and the column transform BTx of F(2, b), each
// computed with the shared subexpressions spelled out in conv_tile.h
// (wino_input_sep): ~2.3x fewer operations than the sum of terms.
struct WinoSep {
  int a, b;
  int off[6][4];
};

struct WinoJob {
  const float* in;
  int64_t in_cstride;
  int nci;
  int nsub;
  int ncomp[kMaxGroups];
  const WinoComp* comps[kMaxGroups];
  // distinct input row segments (offsets) each sub-conv reads per channel,
  // for software prefetching of the next channels
  int nrows[kMaxGroups];
  int rows[kMaxGroups][16];
  WinoSep seps[kMaxGroups];   // bh 4: the input transform is wino_input_sep over these, not comps' terms
  // packed transformed weights: for each sub-conv, component, block of kMR
  // output channels: [nci][kMR]
  const float* w;
  int cout, coutp;
  const float* bias;
  int post;
  const float* gdn_beta;
  const float* gdn_gamma;
  const float* gdn_diag;
  int deconv;            // 0: sub-conv outputs add up; 1: sub-conv = output phase
  int bh;                // block height: 2 or 4 output rows
  int grid_w;            // block grid row width
  int blocks_h, blocks_w;  // blocks that hold kept pixels
  int row_shift;         // block row Y covers pixel rows bh*Y - row_shift ... (rows < 0 dropped)
  int valid_h, valid_w;  // sub-conv output size (pixels)
  float* out;
  int64_t out_w, out_cstride;
  float* phase_out[kMaxGroups];  // deconv: as in ConvJob
  float* phase_odd[kMaxGroups];
  int64_t phase_row2;
};

// Dense product with bias, for the block transforms (dsp/block_transform.h):
//   C[i][j] = (accumulate ? C[i][j] : 0) + (bias[i] + sum_k A[i][k] * B[k][j])
// for i < m, j < n: acc = bias[i], then acc = fma(A[i][k], B[k][j], acc) in
// increasing k, then C = C + acc when accumulating. A is row-major with
// stride lda, B with stride ldb, C with stride ldc.
struct GemmJob {
  const float* a;
  int64_t lda;
  const float* b;
  int64_t ldb;
  const float* bias;  // [m]
  float* c;
  int64_t ldc;
  int m, n, k;
  int accumulate;
};

// Per-thread scratch of one tile (conv_run.cc allocates it):
//   conv f32: acc [ngroups][coutp][kTile], plus |x| and norm [coutp][kTile]
//             each when the post-op is GDN/IGDN;
//   conv i16: acc [ngroups][coutp][kTile] (uint32, wrap-around);
//   gdn:      x, |x|, norm, each [cp][kTile];
//   winograd: y [nsub or 1][bh/2][coutp][4][kWinoBlocks] (output rows u of a
//             block in half u/2), V [kWinoMaxComps][nci][kWinoBlocks], plus
//             |x| and norm [coutp][kTile] for GDN/IGDN.
struct KernelTable {
  const char* name;
  int nr;  // pixels per micro tile (divides kTile)
  void (*conv_f32_tile)(const ConvJob& job, int64_t p0, float* scratch);
  // [ob0, ob1): the blocks of kMR output channels to compute (a few tiles
  // split over threads by output channels; the whole range otherwise)
  void (*conv_i16_tile)(const ConvJob& job, int64_t p0, uint32_t* scratch, int ob0, int ob1);
  void (*gdn_tile)(const GdnJob& job, int64_t p0, float* scratch);
  void (*wino_f32_tile)(const WinoJob& job, int64_t b0, float* scratch, int ob0, int ob1);
  void (*relu)(float* x, int64_t n);
  void (*scale)(float* x, int64_t n, float g);
  void (*gemm_f32)(const GemmJob& job);
};

// The portable path's exact fused multiply-add (conv_scalar.cc), for the tests.
float portable_fma(float a, float b, float c);

const KernelTable& scalar_kernels();
const KernelTable* avx2_kernels();    // nullptr when not built for x86 AVX2
const KernelTable* avx512_kernels();  // nullptr when not built for x86 AVX-512
const KernelTable* simd128_kernels(); // nullptr when not built for WebAssembly SIMD128
bool avx512_emulated();               // the AVX-512 table runs on SIMDe (test builds)
const KernelTable& active_kernels();

}  // namespace detail
}  // namespace dsp
}  // namespace lmc
