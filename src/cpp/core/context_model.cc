#include "core/context_model.h"

#include <algorithm>
#include <climits>
#include <string>

#include "dsp/conv.h"
#include "util/buffers.h"
#include "util/error.h"
#include "util/profile.h"

namespace lmc {
namespace {

[[noreturn]] void bad_ctx(const std::string& m) { fail(Status::InvalidArgument, "weights file: context model: " + m); }

constexpr int64_t kParamClamp = int64_t(1) << 30;  // |mean|, |log-scale| after a fuse (Q12)

// v / 2^s rounded half up (arithmetic), s may be negative (multiplies).
inline int64_t round_shift(int64_t v, int s) {
  if (s <= 0) return v * (int64_t(1) << -s);
  return (v + (int64_t(1) << (s - 1))) >> s;
}

inline int16_t to_i16(int64_t v, int shift) {
  const int64_t q = round_shift(v, shift);
  return int16_t(std::max<int64_t>(-32767, std::min<int64_t>(32767, q)));
}

std::unique_ptr<dsp::Conv2dI16> load_net(const Weights& w, const std::string& net, int g, int cin, int cout, int k,
                                         bool last, int64_t& params) {
  const std::string p = "ctx." + net + "." + std::to_string(g);
  const size_t wc = size_t(cin) * cout * k * k;
  const int16_t* wt = w.as<int16_t>(p + ".weight", DType::I16, wc);
  const int32_t* b = w.as<int32_t>(p + ".bias", DType::I32, size_t(cout));
  for (size_t j = 0; j < wc; ++j)
    if (wt[j] == INT16_MIN) bad_ctx("integer weight out of range in " + p);
  const int64_t shift = w.get_i64(p + ".shift"), lo = w.get_i64(p + ".lo"), hi = w.get_i64(p + ".hi");
  if (shift < 0 || shift > 31 || lo > hi) bad_ctx("bad requantisation of " + p);
  // the feature nets feed int16 inputs; the fuses' outputs are added to the
  // h_s parameters (|value| <= 2^30 each, so their sum fits in 31 bits + sign)
  if (!last && (lo < 0 || hi > 32767)) bad_ctx("feature clamp outside [0, 32767] in " + p);
  if (last && (lo < -kParamClamp || hi > kParamClamp)) bad_ctx("fuse clamp outside +-2^30 in " + p);
  params += int64_t(wc) + cout;
  dsp::Requant rq;
  rq.shift = int(shift);
  rq.lo = int32_t(lo);
  rq.hi = int32_t(hi);
  return std::make_unique<dsp::Conv2dI16>(cin, cout, k, 1, wt, b, rq);
}

}  // namespace

ContextModel::ContextModel(const Weights& w, int M, int frac, ScaleIndexRule scale_index, int64_t& params)
    : M_(M), frac_(frac), scale_index_(scale_index) {
  const std::vector<int64_t>& a = w.get_i64_array("arch.ctx");
  if (a.empty() || a.size() % 3 != 0 || a.size() / 3 > size_t(M)) bad_ctx("arch.ctx must hold [C, hc, hs] per group");
  if (frac != 12) bad_ctx("needs h_s means in Q12 (hs.frac_out 12)");
  s_y_ = int(w.get_i64("ctx.s_y"));
  s_h_ = int(w.get_i64("ctx.s_h"));
  if (s_y_ < 0 || s_y_ > 14 || s_h_ < 0 || s_h_ > 14) bad_ctx("ctx.s_y / ctx.s_h must be in 0..14");
  int c0 = 0;
  for (size_t gi = 0; gi < a.size() / 3; ++gi) {
    const int64_t C = a[3 * gi], hc = a[3 * gi + 1], hs = a[3 * gi + 2];
    if (C < 1 || C > M - c0 || hc < 0 || hc > 4096 || hs < 0 || hs > 4096) bad_ctx("bad group widths");
    if (hc > 0 && c0 == 0) bad_ctx("the first group has no earlier channels to read");
    Group g;
    g.c0 = c0;
    g.C = int(C);
    g.hc = int(hc);
    g.hs = int(hs);
    const int gg = int(gi);
    if (hc > 0) {
      g.ch = load_net(w, "ch", gg, c0, g.hc, 3, false, params);
      g.fa = load_net(w, "fa", gg, g.hc + 2 * g.C, 2 * g.C, 1, true, params);
      macs_ += int64_t(c0) * hc * 9 + int64_t(hc + 2 * C) * 2 * C;
    }
    if (hs > 0) {
      g.sp = load_net(w, "sp", gg, g.C, g.hs, 3, false, params);
      g.fn = load_net(w, "fn", gg, g.hc + 2 * g.C + g.hs, 2 * g.C, 1, true, params);
      macs_ += int64_t(C) * hs * 9 + int64_t(hc + 2 * C + hs) * 2 * C;
    }
    groups_.push_back(std::move(g));
    c0 += int(C);
  }
  if (c0 != M) bad_ctx("the groups do not cover the " + std::to_string(M) + " latent channels");
}

ContextModel::~ContextModel() = default;

std::vector<ContextModel::Pass> ContextModel::passes(int h, int w) const {
  std::vector<Pass> out;
  for (size_t gi = 0; gi < groups_.size(); ++gi) {
    const Group& g = groups_[gi];
    for (int ph : g.hs > 0 ? std::vector<int>{0, 1} : std::vector<int>{-1}) {
      Pass p;
      p.group = int(gi);
      p.c0 = g.c0;
      p.C = g.C;
      p.phase = ph;
      p.h = h;
      p.w = w;
      out.push_back(p);
    }
  }
  return out;
}

void ContextModel::run(const int32_t* hs, int h, int w, dsp::ThreadPool* pool, const CodeFn& code, int32_t* mu,
                       uint16_t* idx, int32_t* r, const char* tag) const {
  const size_t plane = size_t(h) * w;
  const int sh_y = frac_ - s_y_, sh_h = frac_ - s_h_;
  const int64_t one = int64_t(1) << frac_;
  Buf<int16_t> yq;  // to_i16(y_hat, s_y) of the channels decoded so far
  yq.resize(size_t(M_) * plane);
  Buf<int16_t> fin;  // the fuses' input planes: [ch (hc)][hp16 (2C)][sp (hs)]
  Buf<int32_t> t32, pa, pn;
  Buf<int16_t> ya;
  // p = clamp(hp + f, +-2^30) for the 2C planes of a group (f = null: p = hp)
  auto fuse_sum = [&](const Group& g, const int32_t* f, int32_t* p) {
    dsp::parallel_for(pool, 2 * g.C, [&](int64_t c, int) {
      const int32_t* hp = hs + (c < g.C ? size_t(g.c0 + c) : size_t(M_ + g.c0 + c - g.C)) * plane;
      int32_t* dst = p + size_t(c) * plane;
      const int32_t* fc = f ? f + size_t(c) * plane : nullptr;
      for (size_t i = 0; i < plane; ++i) {
        const int64_t v = int64_t(hp[i]) + (fc ? fc[i] : 0);
        dst[i] = int32_t(std::max(-kParamClamp, std::min(kParamClamp, v)));
      }
    });
  };
  // the pass's means and indexes from p, at its positions
  auto take = [&](const Group& g, const Pass& ps, const int32_t* p) {
    dsp::parallel_for(pool, g.C, [&](int64_t c, int) {
      const int32_t* pm = p + size_t(c) * plane;
      const int32_t* pl = p + size_t(g.C + c) * plane;
      int32_t* m = mu + size_t(g.c0 + c) * plane;
      uint16_t* ix = idx + size_t(g.c0 + c) * plane;
      for (int i = 0; i < h; ++i)
        for (int j = ps.phase < 0 ? 0 : (i + ps.phase) & 1; j < w; j += ps.phase < 0 ? 1 : 2) {
          const size_t o = size_t(i) * w + j;
          m[o] = pm[o];
          ix[o] = scale_index_(pl[o]);
        }
    });
  };
  // one context net, timed under "<tag>.<net>.<g> conv cin->cout k<k> (int16)"
  auto run_net = [&](const dsp::Conv2dI16& net, const char* name, int g, int k, const int16_t* in, int32_t* out) {
    profile::Scope prof(true, [&] {
      return std::string(tag) + "." + name + "." + std::to_string(g) + " conv " + std::to_string(net.cin()) + "->" +
             std::to_string(net.cout()) + " k" + std::to_string(k) + " (int16)";
    }, double(plane) * net.cin() * net.cout() * k * k);
    net.run(in, h, w, out, pool);
  };
  // A fuse (1x1: pointwise) at the positions of one phase only: the fuse's
  // input planes packed to those positions ([cin][h][ceil(w / 2)]; same
  // values, half the work), then p = clamp(hp + fuse) there. phase < 0: every position.
  Buf<int16_t> packed;
  Buf<int32_t> pout;
  auto fuse_at = [&](const Group& g, const dsp::Conv2dI16& net, const char* name, int phase, int32_t* p) {
    if (phase < 0) {
      run_net(net, name, int(&g - groups_.data()), 1, fin.data(), t32.data());
      fuse_sum(g, t32.data(), p);
      return;
    }
    const int wq = (w + 1) / 2, cin = net.cin();
    const size_t pplane = size_t(h) * wq;
    packed.resize(size_t(cin) * pplane);
    dsp::parallel_for(pool, cin, [&](int64_t c, int) {
      const int16_t* src = &fin[size_t(c) * plane];
      int16_t* dst = &packed[size_t(c) * pplane];
      for (int i = 0; i < h; ++i)
        for (int k = 0, j = (i + phase) & 1; k < wq; ++k, j += 2) dst[size_t(i) * wq + k] = j < w ? src[size_t(i) * w + j] : 0;
    });
    pout.resize(size_t(net.cout()) * pplane);
    {
      profile::Scope prof(true, [&] {
        return std::string(tag) + "." + name + "." + std::to_string(&g - groups_.data()) + " conv " +
               std::to_string(cin) + "->" + std::to_string(net.cout()) + " k1 (int16, one phase)";
      }, double(pplane) * cin * net.cout());
      net.run(packed.data(), h, wq, pout.data(), pool);
    }
    dsp::parallel_for(pool, 2 * g.C, [&](int64_t c, int) {
      const int32_t* hp = hs + (c < g.C ? size_t(g.c0 + c) : size_t(M_ + g.c0 + c - g.C)) * plane;
      const int32_t* fc = &pout[size_t(c) * pplane];
      int32_t* dst = p + size_t(c) * plane;
      for (int i = 0; i < h; ++i)
        for (int k = 0, j = (i + phase) & 1; j < w; ++k, j += 2) {
          const size_t o = size_t(i) * w + j;
          const int64_t v = int64_t(hp[o]) + fc[size_t(i) * wq + k];
          dst[o] = int32_t(std::max(-kParamClamp, std::min(kParamClamp, v)));
        }
    });
  };
  for (const Pass& first : passes(h, w)) {
    if (first.phase == 1) continue;  // handled with its anchor pass below
    const Group& g = groups_[size_t(first.group)];
    const int cin_n = g.hc + 2 * g.C + g.hs;
    fin.resize(size_t(cin_n) * plane);
    // hp16
    dsp::parallel_for(pool, 2 * g.C, [&](int64_t c, int) {
      const int32_t* hp = hs + (c < g.C ? size_t(g.c0 + c) : size_t(M_ + g.c0 + c - g.C)) * plane;
      int16_t* dst = &fin[size_t(g.hc + c) * plane];
      for (size_t i = 0; i < plane; ++i) dst[i] = to_i16(hp[i], sh_h);
    });
    pa.resize(size_t(2) * g.C * plane);
    if (g.hc > 0) {
      t32.resize(size_t(std::max(g.hc, 2 * g.C)) * plane);
      run_net(*g.ch, "ch", first.group, 3, yq.data(), t32.data());
      for (size_t i = 0; i < size_t(g.hc) * plane; ++i) fin[i] = int16_t(t32[i]);  // clamped to [0, 32767]
      fuse_at(g, *g.fa, "fa", first.phase, pa.data());  // the anchors only, with spatial context
    } else {
      fuse_sum(g, nullptr, pa.data());
    }
    take(g, first, pa.data());
    code(first, mu + size_t(g.c0) * plane, idx + size_t(g.c0) * plane, r + size_t(g.c0) * plane);
    if (g.hs > 0) {
      // the anchors' y_hat (0 elsewhere) -> sp -> fn -> the non-anchors' parameters
      ya.resize(size_t(g.C) * plane);
      dsp::parallel_for(pool, g.C, [&](int64_t c, int) {
        const size_t base = size_t(g.c0 + c) * plane;
        int16_t* dst = &ya[size_t(c) * plane];
        for (int i = 0; i < h; ++i)
          for (int j = 0; j < w; ++j) {
            const size_t o = size_t(i) * w + j;
            dst[o] = ((i + j) & 1) ? int16_t(0) : to_i16(int64_t(r[base + o]) * one + mu[base + o], sh_y);
          }
      });
      t32.resize(size_t(std::max({g.hc, g.hs, 2 * g.C})) * plane);
      run_net(*g.sp, "sp", first.group, 3, ya.data(), t32.data());
      int16_t* sp_dst = &fin[size_t(g.hc + 2 * g.C) * plane];
      for (size_t i = 0; i < size_t(g.hs) * plane; ++i) sp_dst[i] = int16_t(t32[i]);
      pn.resize(size_t(2) * g.C * plane);
      fuse_at(g, *g.fn, "fn", 1, pn.data());  // the non-anchors only
      Pass second = first;
      second.phase = 1;
      take(g, second, pn.data());
      code(second, mu + size_t(g.c0) * plane, idx + size_t(g.c0) * plane, r + size_t(g.c0) * plane);
    }
    // this group's y_hat for the groups after it
    dsp::parallel_for(pool, g.C, [&](int64_t c, int) {
      const size_t base = size_t(g.c0 + c) * plane;
      for (size_t o = 0; o < plane; ++o) yq[base + o] = to_i16(int64_t(r[base + o]) * one + mu[base + o], sh_y);
    });
  }
}

}  // namespace lmc
