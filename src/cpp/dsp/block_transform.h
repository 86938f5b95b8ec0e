// lmcodec dsp: block transforms -- the linear shortcut of the hyperprior
// codec (a learned 16x16 block transform beside the nonlinear g_a / g_s).
//
//   BlockAnalysis   ["block", cin, cout, b]: nn.Conv2d(cin, cout, b, stride=b)
//                   with no padding: each b x b patch of every input channel
//                   -> cout values. weight [cout][cin][b][b], bias [cout].
//   BlockSynthesis  ["unblock", cin, cout, b]: nn.ConvTranspose2d(cin, cout,
//                   b, stride=b): each input position -> a b x b patch of
//                   every output channel. weight [cin][cout][b][b], bias [cout].
//
// Both are one dense product per row of blocks (kernels.h, GemmJob), threaded
// over those rows; each output's sum runs in a fixed order of fused
// multiply-adds, so results do not depend on the thread count or the kernel
// path (AVX2 or portable: bit-identical, like the convolutions).
// Tensors are planar with an explicit channel stride so that strips of a
// larger tensor can be read and written in place; rows are contiguous.
#pragma once

#include <cstdint>
#include <vector>

#include "util/threadpool.h"

namespace lmc {
namespace dsp {

// What both directions hold: the shapes, the weights (packed for the
// product) and the bias.
class BlockLinear {
 public:
  int cin() const { return cin_; }
  int cout() const { return cout_; }
  int block() const { return b_; }

 protected:
  BlockLinear(int cin, int cout, int b) : cin_(cin), cout_(cout), b_(b) {}
  int cin_, cout_, b_;
  std::vector<float> w_;
  std::vector<float> bias_;
};

// The analysis transform: w_ is [cout][cin*b*b], bias_ [cout].
class BlockAnalysis : public BlockLinear {
 public:
  BlockAnalysis(int cin, int cout, int b, const float* weight, const float* bias);
  // in [cin][h][w] (channel stride in_cstride, h and w multiples of b) ->
  // out [cout][h/b][w/b] (channel stride out_cstride); with accumulate the
  // result is added to what out holds.
  void run(const float* in, int64_t in_cstride, int h, int w, float* out, int64_t out_cstride, bool accumulate,
           ThreadPool* pool = nullptr) const;
};

// The synthesis transform: w_ is [cout*b*b][cin] (transposed for the
// product), bias_ [cout*b*b] (each output channel's bias, repeated).
class BlockSynthesis : public BlockLinear {
 public:
  BlockSynthesis(int cin, int cout, int b, const float* weight, const float* bias);
  // in [cin][h][w] (channel stride in_cstride) -> out [cout][h*b][w*b]
  // (channel stride out_cstride); with accumulate the result is added.
  void run(const float* in, int64_t in_cstride, int h, int w, float* out, int64_t out_cstride, bool accumulate,
           ThreadPool* pool = nullptr) const;
};

}  // namespace dsp
}  // namespace lmc
