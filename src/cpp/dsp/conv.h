// lmcodec dsp: convolution, GDN and element-wise kernels of the codec
// networks (batch 1, planar CHW, row-major).
//
// Semantics follow PyTorch exactly (the model is trained there):
//   Conv2d           nn.Conv2d(cin, cout, k, stride=s, padding=k//2), k in {3,5},
//                    s in {1,2}; weight [cout][cin][k][k]; output
//                    ho = (h - 1) / s + 1, wo = (w - 1) / s + 1.
//   ConvTranspose2d  nn.ConvTranspose2d(cin, cout, k, stride=2, padding=k//2,
//                    output_padding=1), k in {3,5} (the codec uses 5);
//                    weight [cin][cout][k][k]; output exactly 2h x 2w.
//   Gdn              simplified GDN (Johnston et al. 2019):
//                    norm_i = beta_i + sum_j gamma[i][j] |x_j|;
//                    GDN y_i = x_i / norm_i, IGDN y_i = x_i * norm_i.
//   Conv2dI16 / ConvTranspose2dI16
//                    same geometry on int16 activations/weights, int32 bias:
//                    acc = bias + sum in*w (mod 2^32), v = int32(acc + round) >> shift
//                    (round = shift ? 1 << (shift-1) : 0, arithmetic shift),
//                    out = clamp(v, lo, hi) as int32. Bit-identical on every
//                    CPU, code path and thread count.
//
// Weights are repacked once by the constructors; run() is const and may be
// called concurrently from several threads. Scratch memory (the padded input
// and per-thread tiles) comes from a small process-wide, thread-safe cache of
// buffers, so that repeated runs neither allocate nor fault in fresh pages;
// release_scratch_buffers() returns the idle ones to the system.
// run(): `out` may alias `in` (the input is copied into a padded buffer before
// anything is written). Float results are bit-identical for any thread count
// and on both kernel paths: the portable one performs the AVX2 path's exact
// sequence of float operations (std::fma where AVX2 uses FMA, the same
// summation order), and ConvAlgo::Auto picks the same algorithm on both.
// Bad arguments throw lmc::Error(InvalidArgument); images whose buffers would
// exceed internal limits throw lmc::Error(LimitExceeded).
#pragma once

#include <cstdint>
#include <vector>

#include "util/threadpool.h"

namespace lmc {
namespace dsp {

// Generalized divisive normalisation over the channels of each pixel.
class Gdn {
 public:
  // beta [c] (> 0 in a trained model), gamma [c][c] (row i = output channel i).
  // A gamma whose off-diagonal entries are all exactly zero (what training
  // produces: training/layers.py squares a parameter initialised to a
  // diagonal, whose zero entries get zero gradients) runs as a per-channel
  // fma(gamma_ii, |x_i|, beta_i) instead of a c x c matrix product per pixel.
  // For finite inputs that is bit-identical to the dense sum, whose zero
  // terms fma(0, |x_j|, acc) = acc are exact (tested); allow_diagonal = false
  // forces the dense path.
  Gdn(int channels, const float* beta, const float* gamma, bool inverse, bool allow_diagonal = true);
  int channels() const { return c_; }
  bool inverse() const { return inverse_; }
  bool diagonal() const { return !diag_.empty(); }
  // in, out: [c][h][w]; out may equal in (in place).
  void run(const float* in, int h, int w, float* out, ThreadPool* pool = nullptr) const;

 private:
  friend class Conv2d;
  friend class ConvTranspose2d;
  int c_, cp_;
  bool inverse_;
  std::vector<float> beta_;   // [cp]
  std::vector<float> gamma_;  // packed [cp/4][c][4] (empty when diagonal)
  std::vector<float> diag_;   // [c] gamma_ii when gamma is diagonal, else empty
};

// What a convolution applies to its output before storing it.
enum class PostOp { None, Relu, Gdn, Igdn };

// How a float convolution is computed.
//   Direct:   register-blocked direct convolution (the reference);
//   Winograd: F(2x2, 3x3)-family Winograd on the polyphase / sub-pixel
//             sub-kernels (3x3, 3x2, 2x3, 2x2); convs (k=5 stride 2, k=3
//             stride 1): F(2x2, .), 49 instead of 100 multiplications per 2x2
//             block of each of the 4 sub-convs, about 2x fewer; k=5
//             transposed convs: F(4x2, .) (4 rows by 2 columns per block),
//             154 instead of 400 per 4x4 block of the 4 output phases, 2.6x
//             fewer. Agrees with Direct to ~1e-6 (F(2x2)) / ~1e-5 (F(4x2))
//             relative (float rounding of the transforms);
//   TapGemm:  transposed convs only, without a fused GDN: for each input
//             pixel, the k*k*cout tap products as one GEMM over the input
//             channels (the gemm_f32 kernel, near the FMA peak), then each
//             output pixel adds its k*k/4 taps' products (in tap order) to
//             the bias. Same multiplications as Direct; meant for layers with
//             few output channels (the codec's 64 -> 3 last layer), where a
//             direct kernel's register block is mostly spent on loads.
//             Agrees with Direct to ~1e-6 relative (another summation order);
//   Auto:     when run() is told the first row (strip position, see
//             Conv2d::run): Winograd where available with cin, cout >= 16;
//             else, for a transposed conv with cout < 16 and no fused GDN,
//             TapGemm; else Direct. With first_row = -1, Direct. The choice is
//             the same on every kernel path (scalar or AVX2), so that both
//             give the same bits.
// The integer convolutions are always direct (exact).
enum class ConvAlgo { Auto, Direct, Winograd, TapGemm };

// Where element (c, y, x) of a tensor lives in a buffer:
//   split 1: c * cstride + (y + top) * row + (x + left)
//   split 2: c * cstride + (((y + top) % sy) * 2 + (x + left) % 2) * plane
//                        + ((y + top) / sy) * row + (x + left) / 2
// (split 2: the sy x 2 polyphase planes of a padded tensor, sy = split_y or
// 2; a transposed conv's Winograd input has sy = 4).
struct TensorLayout {
  int split = 1;    // 1: plain; 2: polyphase planes (row phase, column phase)
  int split_y = 0;  // row phases when they differ from split (4 with split 2), else 0
  int top = 0, left = 0;
  int64_t plane = 0, row = 0, cstride = 0;
  int rows_split() const { return split_y ? split_y : split; }
  int64_t offset(int64_t c, int64_t y, int64_t x) const {
    const int64_t r = y + top, q = x + left;
    if (split == 1) return c * cstride + r * row + q;
    const int sy = rows_split();
    return c * cstride + ((r % sy) * split + q % split) * plane + (r / sy) * row + q / split;
  }
  // the plain layout of a [c][h][w] tensor
  static TensorLayout dense(int h, int w) {
    TensorLayout l;
    l.row = w;
    l.cstride = (int64_t)h * w;
    return l;
  }
};

class Conv2d {
 public:
  // weight [cout][cin][k][k]; bias [cout] or nullptr for zeros.
  Conv2d(int cin, int cout, int k, int stride, const float* weight, const float* bias);
  void set_relu(bool on);             // fuse max(0, x)
  void set_gdn(const Gdn& gdn);       // fuse GDN/IGDN (gdn.channels() == cout)
  void clear_post_op();
  PostOp post_op() const { return post_; }
  // Winograd when unsupported throws lmc::Error(InvalidArgument).
  void set_algorithm(ConvAlgo algo);
  // The one run() uses (Direct or Winograd) when given first_row >= 0;
  // with first_row = -1, Auto means Direct.
  ConvAlgo algorithm() const;
  bool winograd_supported() const { return !wino_w_.empty(); }

  int cin() const { return cin_; }
  int cout() const { return cout_; }
  int out_h(int h) const { return (h - 1) / s_ + 1; }
  int out_w(int w) const { return (w - 1) / s_ + 1; }
  // in [cin][h][w] -> out [cout][out_h(h)][out_w(w)].
  // first_row: row of in[0] in the full image (0 for a whole image; a
  // multiple of the stride when the image is processed in horizontal
  // strips), or -1 = unknown. Direct gives the same output rows whatever the
  // strip. Winograd computes 2x2 output blocks and keeps them on the full
  // image's even rows, which needs first_row; so ConvAlgo::Auto uses Winograd
  // only when first_row >= 0 (an explicit Winograd with -1 assumes 0).
  void run(const float* in, int h, int w, float* out, ThreadPool* pool = nullptr, int64_t first_row = -1) const;

 private:
  int cin_, cout_, coutp_, k_, s_;
  int mr_ = 4, dcoutp_ = 0;  // direct path: output channels per weight block, cout rounded up to it
  int kc_ = 0;                 // input channels per cache chunk (packing)
  std::vector<float> w_;     // packed per chunk (see dsp/kernels.h)
  std::vector<float> bias_;  // [coutp]
  PostOp post_ = PostOp::None;
  std::vector<float> gdn_beta_, gdn_gamma_, gdn_diag_;
  const float* gdiag() const { return gdn_diag_.empty() ? nullptr : gdn_diag_.data(); }
  ConvAlgo algo_ = ConvAlgo::Auto;
  std::vector<float> wino_w_;  // Winograd-transformed weights (empty: unsupported)
};

class ConvTranspose2d {
 public:
  // weight [cin][cout][k][k]; bias [cout] or nullptr. stride must be 2.
  ConvTranspose2d(int cin, int cout, int k, int stride, const float* weight, const float* bias);
  void set_relu(bool on);
  void set_gdn(const Gdn& gdn);
  void clear_post_op();
  PostOp post_op() const { return post_; }
  // Winograd when unsupported, or TapGemm with a fused GDN, throws
  // lmc::Error(InvalidArgument) (so does set_gdn() after TapGemm).
  void set_algorithm(ConvAlgo algo);
  // The one run() uses when given first_row >= 0 (with -1, Auto = Direct).
  ConvAlgo algorithm() const;
  bool winograd_supported() const { return !wino_w_.empty(); }

  int cin() const { return cin_; }
  int cout() const { return cout_; }
  int out_h(int h) const { return 2 * h; }
  int out_w(int w) const { return 2 * w; }
  // in [cin][h][w] -> out [cout][2h][2w]. first_row: row of in[0] in the full
  // input image, or -1 = unknown; see Conv2d::run. Winograd here computes
  // blocks of 4 input rows (8 output rows) starting on the full image's
  // input rows 2 (mod 4); an output row of a strip equals the whole image's
  // when every input row its block reads (from one row above the block to
  // one row below it) is (a sufficient condition, wider than the receptive
  // field; see kDeconvWinoPhase in conv_geometry.h for the exact one).
  void run(const float* in, int h, int w, float* out, ThreadPool* pool = nullptr, int64_t first_row = -1) const;
  // The same, writing output (co, y, x) where `out` (a layout over buf) says;
  // nothing else in buf is touched. Split-2 layouts (the polyphase planes of
  // another transposed conv's padded input) write each output phase as
  // plain rows, with no interleaving.
  void run(const float* in, int h, int w, float* buf, const TensorLayout& out, ThreadPool* pool,
           int64_t first_row) const;

  // Fused padding. run() first copies its input into a zero-bordered buffer
  // (split into 4 x 2 polyphase planes for the Winograd algorithm); a caller
  // that produces the input itself (the previous layer) can write it there
  // directly and save that copy:
  //   PaddedInput p = conv.padded_input(h, w, first_row);
  //   float* buf = <p.total floats>;
  //   conv.zero_padding(buf, h, w, first_row, pool);      // all but the interior
  //   <write input (c, y, x) at p.layout.offset(c, y, x)>  // e.g. producer.run(..., buf, p.layout, ...)
  //   conv.run_padded(buf, h, w, out, pool, first_row);   // == run() bit for bit
  // first_row must be the same in all of them (it selects the algorithm and,
  // for Winograd, the layout). out must not overlap buf.
  struct PaddedInput {
    TensorLayout layout;
    int64_t total = 0;  // floats in the buffer
  };
  PaddedInput padded_input(int h, int w, int64_t first_row = -1) const;
  void zero_padding(float* buf, int h, int w, int64_t first_row = -1, ThreadPool* pool = nullptr) const;
  void run_padded(const float* buf, int h, int w, float* out, ThreadPool* pool = nullptr,
                  int64_t first_row = -1) const;
  // ... writing where a layout says (chains of fused layers)
  void run_padded(const float* buf, int h, int w, float* obuf, const TensorLayout& out, ThreadPool* pool,
                  int64_t first_row) const;

 private:
  int cin_, cout_, coutp_, k_;
  int mr_ = 4, dcoutp_ = 0;  // direct path: output channels per weight block, cout rounded up to it
  int kc_ = 0;
  std::vector<float> w_;  // the 4 output phases (2*ry + rx), packed per chunk
  std::vector<float> bias_;
  PostOp post_ = PostOp::None;
  std::vector<float> gdn_beta_, gdn_gamma_, gdn_diag_;
  const float* gdiag() const { return gdn_diag_.empty() ? nullptr : gdn_diag_.data(); }
  ConvAlgo algo_ = ConvAlgo::Auto;
  std::vector<float> wino_w_;  // Winograd-transformed weights (empty: unsupported)
  std::vector<float> tap_w_;   // TapGemm: [round_up(k*k*cout, 4)][cin], row (ky*k + kx)*cout + co
  bool uses_winograd(int64_t first_row) const;
  ConvAlgo resolve(int64_t first_row) const;  // what run() computes with
  void run_impl(const float* in, const float* padded, int h, int w, float* buf, const TensorLayout& out,
                ThreadPool* pool, int64_t first_row) const;
};

// Requantisation applied to the int32 accumulators of the integer convs.
struct Requant {
  int shift = 0;                 // 0..31
  int32_t lo = INT32_MIN;        // clamp range, lo <= hi
  int32_t hi = INT32_MAX;
};

class Conv2dI16 {
 public:
  // weight [cout][cin][k][k] int16; bias [cout] int32 or nullptr.
  Conv2dI16(int cin, int cout, int k, int stride, const int16_t* weight, const int32_t* bias, Requant rq);
  int cin() const { return cin_; }
  int cout() const { return cout_; }
  int out_h(int h) const { return (h - 1) / s_ + 1; }
  int out_w(int w) const { return (w - 1) / s_ + 1; }
  // in [cin][h][w] int16 -> out [cout][out_h][out_w] int32.
  void run(const int16_t* in, int h, int w, int32_t* out, ThreadPool* pool = nullptr) const;

 private:
  int cin_, cout_, coutp_, k_, s_;
  Requant rq_;
  int kc_ = 0;                  // channel pairs per cache chunk
  std::vector<int16_t> w_;    // packed per chunk, channel pairs interleaved
  std::vector<int32_t> bias_;
};

class ConvTranspose2dI16 {
 public:
  // weight [cin][cout][k][k] int16; bias [cout] int32 or nullptr; stride 2.
  ConvTranspose2dI16(int cin, int cout, int k, int stride, const int16_t* weight, const int32_t* bias, Requant rq);
  int cin() const { return cin_; }
  int cout() const { return cout_; }
  int out_h(int h) const { return 2 * h; }
  int out_w(int w) const { return 2 * w; }
  void run(const int16_t* in, int h, int w, int32_t* out, ThreadPool* pool = nullptr) const;

 private:
  int cin_, cout_, coutp_, k_;
  Requant rq_;
  int kc_ = 0;
  std::vector<int16_t> w_;
  std::vector<int32_t> bias_;
};

// Frees the idle buffers of the scratch cache (they are re-created on demand).
void release_scratch_buffers();

// x = max(x, 0), in place, n elements.
void relu(float* x, int64_t n, ThreadPool* pool = nullptr);
// x[c][i] *= g[c] for i < hw (per-channel gain), in place.
void scale_channels(float* x, int c, int64_t hw, const float* g, ThreadPool* pool = nullptr);

}  // namespace dsp
}  // namespace lmc
