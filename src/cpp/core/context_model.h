// lmcodec core: the context entropy model of the hyperprior codec (issue 21):
// uneven channel groups, and a checkerboard inside each group, on the integer
// path (bit-exact on every CPU, kernel path and thread count).
//
// A weights file declares it with arch.ctx = [C, hc, hs] per group g (the
// groups cover channels [c0, c0 + C) in order), ctx.s_y / ctx.s_h (fractional
// bits of the int16 activations below) and per net (ch, sp, fa, fn) the int16
// weights / int32 biases and requantisation ctx.<net>.<g>.shift/.lo/.hi
// (docs/weights.md). With hp = the integer h_s output of the group's channels
// (Q12 means, then Q12 log-scales) and to_i16(v, s) = clamp(round_shift(v,
// 12 - s), +-32767) (round half up):
//
//   ch  = conv3x3(to_i16(y_hat[:c0], s_y))              (hc > 0; requant clamp)
//   pa  = clamp(hp + fa(cat(ch, to_i16(hp, s_h))), +-2^30)   (pa = hp if hc = 0)
//   pass 1, the anchors ((i + j) even): mean pa[:C], scale index from pa[C:]
//   sp  = conv3x3(to_i16(y_hat_g at anchors, 0 elsewhere, s_y))      (hs > 0)
//   pn  = clamp(hp + fn(cat(ch, to_i16(hp, s_h), sp)), +-2^30)
//   pass 2, the non-anchors: mean pn[:C], scale index from pn[C:]
//   y_hat = r * 2^12 + mean (Q12, exact)
//
// fa / fn are 1x1 integer convolutions; with hs = 0 a group has one pass
// (every position from pa). training/int_context.py is the reference this
// must match bit for bit (tests/test_context_model.py).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/scale_index.h"
#include "core/weights.h"
#include "util/threadpool.h"

namespace lmc {
namespace dsp {
class Conv2dI16;
}

class ContextModel {
 public:
  static bool declared(const Weights& w) { return w.has("arch.ctx"); }
  // M latent channels; frac: h_s's output fraction (must be 12); the scale
  // index rule of the model. Adds the nets' parameters.
  ContextModel(const Weights& w, int M, int frac, ScaleIndexRule scale_index, int64_t& params);
  ~ContextModel();

  // One coding pass: group g's channels [c0, c0 + C), at the positions of
  // phase (0: anchors, (i + j) even; 1: the others; -1: every position).
  struct Pass {
    int group = 0, c0 = 0, C = 0, phase = -1;
    int h = 0, w = 0;
    bool at(int i, int j) const { return phase < 0 || ((i + j) & 1) == phase; }
  };
  // Given the Q12 means and scale indexes of the pass's channels ([C][h][w];
  // meaningful at the pass's positions), writes the coded integers r there
  // ([C][h][w]; the encoder quantises, the decoder reads the stream).
  using CodeFn = std::function<void(const Pass&, const int32_t* mu, const uint16_t* idx, int32_t* r)>;

  // The passes in decode order (groups in order, anchors before non-anchors).
  std::vector<Pass> passes(int h, int w) const;

  // hs: the integer h_s output [2M][h][w] (Q12 means, then log-scales).
  // Runs every pass in order, calling code once per pass; on return mu
  // [M][h][w] holds the final Q12 means, idx [M][h][w] the scale indexes and
  // r [M][h][w] the coded integers.
  // tag names the nets in profiles ("decode ctx", "encode ctx").
  void run(const int32_t* hs, int h, int w, dsp::ThreadPool* pool, const CodeFn& code, int32_t* mu, uint16_t* idx,
           int32_t* r, const char* tag) const;

  int64_t macs_per_latent() const { return macs_; }

 private:
  struct Group {
    int c0 = 0, C = 0, hc = 0, hs = 0;
    std::unique_ptr<dsp::Conv2dI16> ch, sp, fa, fn;
  };
  std::vector<Group> groups_;
  int M_ = 0, frac_ = 12, s_y_ = 0, s_h_ = 0;
  ScaleIndexRule scale_index_;
  int64_t macs_ = 0;
};

}  // namespace lmc
