#include "core/hyperprior.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "util/buffers.h"
#include "util/error.h"
#include "util/profile.h"
#include "util/progress.h"
#include "core/context_model.h"
#include "core/pixels.h"
#include "dsp/block_transform.h"

namespace lmc {
namespace {

enum Opcode : int64_t { kConv = 1, kDeconv = 2, kGdn = 3, kIgdn = 4, kRelu = 5, kBlock = 6, kUnblock = 7 };

struct Op {
  int64_t code;
  int cin = 0, cout = 0, k = 0, s = 0;
  int c = 0;
};

[[noreturn]] void bad_model(const std::string& m) { fail(Status::InvalidArgument, "weights file: " + m); }

std::vector<Op> parse_ops(const std::vector<int64_t>& a, const std::string& net) {
  std::vector<Op> ops;
  size_t i = 0;
  auto need = [&](size_t n) {
    if (a.size() - i < n) bad_model("truncated architecture of " + net);
  };
  auto dim = [&](int64_t v) -> int {
    if (v < 1 || v > 4096) bad_model("bad width in " + net);
    return int(v);
  };
  while (i < a.size()) {
    Op op;
    op.code = a[i++];
    switch (op.code) {
      case kConv:
      case kDeconv:
        need(4);
        op.cin = dim(a[i]);
        op.cout = dim(a[i + 1]);
        op.k = int(a[i + 2]);
        op.s = int(a[i + 3]);
        i += 4;
        if ((op.k != 3 && op.k != 5) || (op.s != 1 && op.s != 2) || (op.code == kDeconv && op.s != 2))
          bad_model("unsupported kernel/stride in " + net);
        break;
      case kGdn:
      case kIgdn:
        need(1);
        op.c = dim(a[i++]);
        break;
      case kRelu: break;
      default: bad_model("unknown layer type in " + net);
    }
    ops.push_back(op);
  }
  if (ops.empty() || (ops[0].code != kConv && ops[0].code != kDeconv)) bad_model(net + " must start with a convolution");
  return ops;
}

// The shortcut nets: exactly one ["block"|"unblock", cin, cout, b] op.
Op parse_block_op(const std::vector<int64_t>& a, const std::string& net, int64_t code, int cin, int cout, int b) {
  if (a.size() != 4 || a[0] != code || a[1] != cin || a[2] != cout || a[3] != b)
    bad_model("unsupported architecture of " + net);
  Op op;
  op.code = code;
  op.cin = cin;
  op.cout = cout;
  op.k = op.s = b;
  return op;
}

// Checks channel chaining; returns (cin, cout, total upsampling(+)/downsampling(-) factor).
void check_chain(const std::vector<Op>& ops, const std::string& net, int cin, int cout, int down, int up) {
  int c = cin, d = 1, u = 1;
  for (const Op& op : ops) {
    if (op.code == kConv || op.code == kDeconv) {
      if (op.cin != c) bad_model("channel mismatch in " + net);
      c = op.cout;
      if (op.code == kConv) d *= op.s;
      else u *= op.s;
    } else if (op.code == kGdn || op.code == kIgdn) {
      if (op.c != c) bad_model("GDN width mismatch in " + net);
    }
  }
  if (c != cout || d != down || u != up) bad_model("unexpected shape of " + net);
}

// "<tag>.<i> conv|deconv <cin>-><cout> k<k>s<s>": a layer's name in profiles.
std::string stage_label(const char* tag, size_t i, bool deconv, int cin, int cout, int k, int s) {
  return std::string(tag) + "." + std::to_string(i) + (deconv ? " deconv " : " conv ") + std::to_string(cin) + "->" +
         std::to_string(cout) + " k" + std::to_string(k) + "s" + std::to_string(s);
}

}  // namespace

// ------------------------------------------------------------- tables ---

OwnedTables load_tables(const Weights& w, const std::string& prefix) {
  const TensorRef& lt = w.tensor(prefix + ".lengths");
  const TensorRef& ot = w.tensor(prefix + ".offsets");
  const TensorRef& ft = w.tensor(prefix + ".freqs");
  if (lt.dtype != DType::I32 || ot.dtype != DType::I32 || ft.dtype != DType::U16 || lt.count() != ot.count() ||
      lt.count() == 0 || lt.count() > 65536)
    bad_model("bad " + prefix + " tables");
  size_t T = lt.count();
  const int32_t* len = reinterpret_cast<const int32_t*>(lt.data);
  const int32_t* off = reinterpret_cast<const int32_t*>(ot.data);
  const uint16_t* fr = reinterpret_cast<const uint16_t*>(ft.data);
  size_t total = 0;
  for (size_t t = 0; t < T; ++t) {
    if (len[t] < 2 || len[t] > kMaxCdfLength - 1) bad_model("bad " + prefix + " table length");
    total += size_t(len[t]);
  }
  if (total != ft.count()) bad_model(prefix + " frequency count mismatch");
  return cdf_tables_from_freqs(fr, len, off, T);  // validated: every frequency >= 1 and total 2^16
}

// ---------------------------------------------------------- float net ---

class FloatNet {
 public:
  FloatNet(const Weights& w, const std::string& name, int64_t& params) {
    std::vector<Op> ops = parse_ops(w.get_i64_array("arch." + name), name);
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      std::string p = name + "." + std::to_string(i);
      if (op.code == kConv || op.code == kDeconv) {
        size_t wc = size_t(op.cin) * op.cout * op.k * op.k;
        std::vector<float> wt = w.floats(p + ".weight", wc, op.code == kConv ? 0 : 1);
        std::vector<float> b = w.floats(p + ".bias", size_t(op.cout));
        params += int64_t(wc + op.cout);
        Stage st;
        st.deconv = op.code == kDeconv;
        st.cin = op.cin;
        st.cout = op.cout;
        st.stride = op.s;
        st.k = op.k;
        if (st.deconv) st.tconv = std::make_unique<dsp::ConvTranspose2d>(op.cin, op.cout, op.k, op.s, wt.data(), b.data());
        else st.conv = std::make_unique<dsp::Conv2d>(op.cin, op.cout, op.k, op.s, wt.data(), b.data());
        stages_.push_back(std::move(st));
      } else if (op.code == kGdn || op.code == kIgdn) {
        if (stages_.empty() || stages_.back().fused) bad_model("GDN must follow a convolution in " + name);
        std::vector<float> beta = w.floats(p + ".beta", size_t(op.c));
        std::vector<float> gamma = w.floats(p + ".gamma", size_t(op.c) * op.c);
        params += int64_t(op.c) * (op.c + 1);
        for (float v : beta)
          if (!(v > 0) || !std::isfinite(v)) bad_model("GDN beta must be positive and finite in " + p);
        for (float v : gamma)
          if (!(v >= 0) || !std::isfinite(v)) bad_model("GDN gamma must be non-negative and finite in " + p);
        dsp::Gdn g(op.c, beta.data(), gamma.data(), op.code == kIgdn);
        Stage& st = stages_.back();
        if (st.deconv) st.tconv->set_gdn(g);
        else st.conv->set_gdn(g);
        st.fused = true;
        st.gdn = true;
      } else if (op.code == kRelu) {
        if (stages_.empty() || stages_.back().fused) bad_model("ReLU must follow a convolution in " + name);
        Stage& st = stages_.back();
        if (st.deconv) st.tconv->set_relu(true);
        else st.conv->set_relu(true);
        st.fused = true;
      }
    }
    ops_ = std::move(ops);
  }
  const std::vector<Op>& ops() const { return ops_; }

  // in: [cin][h][w]; returns [cout][oh][ow] in out (resized).
  // first_row: row of the full image (at this net's input resolution) where
  // `in` starts; it lets the Winograd kernels tile strips exactly as they
  // tile the whole image (so strip runs equal whole-image runs).
  // tag names the call in profiles (e.g. "decode g_s").
  void run(const float* in, int h, int w, Buf<float>& out, int& oh, int& ow, dsp::ThreadPool* pool,
           int first_row = 0, const char* tag = "") const {
    Buf<float> a, b;
    const float* src = in;
    bool src_padded = false;  // src is the zero-bordered input buffer of stage i
    int ch = h, cw = w;
    int row = first_row;
    for (size_t i = 0; i < stages_.size(); ++i) {
      const Stage& st = stages_[i];
      int nh = st.deconv ? ch * 2 : (ch - 1) / st.stride + 1;
      int nw = st.deconv ? cw * 2 : (cw - 1) / st.stride + 1;
      const int next_row = st.deconv ? row * 2 : row / st.stride;
      Buf<float>& dst = (i + 1 == stages_.size()) ? out : (i % 2 ? b : a);
      // Fused padding: a transposed conv followed by another writes its
      // output straight into that one's zero-bordered input buffer (saves
      // the copy the next layer would make of its whole input; same bits).
      const bool fuse = st.deconv && i + 1 < stages_.size() && stages_[i + 1].deconv;
      {
        const double macs = double(st.cin) * st.cout * st.k * st.k * (st.deconv ? double(ch) * cw : double(nh) * nw) +
                            (st.gdn ? double(st.cout) * st.cout * nh * nw : 0.0);
        profile::Scope prof(true, [&] { return stage_name(tag, i, st, row); }, macs);
        dsp::TensorLayout lay = dsp::TensorLayout::dense(nh, nw);
        if (fuse) {
          const dsp::ConvTranspose2d::PaddedInput pin = stages_[i + 1].tconv->padded_input(nh, nw, next_row);
          dst.resize(size_t(pin.total));
          stages_[i + 1].tconv->zero_padding(dst.data(), nh, nw, next_row, pool);
          lay = pin.layout;
        } else {
          dst.resize(size_t(st.cout) * nh * nw);
        }
        if (st.deconv && src_padded) st.tconv->run_padded(src, ch, cw, dst.data(), lay, pool, row);
        else if (st.deconv) st.tconv->run(src, ch, cw, dst.data(), lay, pool, row);
        else st.conv->run(src, ch, cw, dst.data(), pool, row);
      }
      row = next_row;
      src = dst.data();
      src_padded = fuse;
      ch = nh;
      cw = nw;
    }
    oh = ch;
    ow = cw;
  }

 private:
  struct Stage {
    bool deconv = false, fused = false, gdn = false;
    int cin = 0, cout = 0, stride = 1, k = 0;
    std::unique_ptr<dsp::Conv2d> conv;
    std::unique_ptr<dsp::ConvTranspose2d> tconv;
  };
  static std::string stage_name(const char* tag, size_t i, const Stage& st, int row) {
    dsp::ConvAlgo a = st.deconv ? st.tconv->algorithm() : st.conv->algorithm();
    if (row < 0) a = dsp::ConvAlgo::Direct;
    dsp::PostOp p = st.deconv ? st.tconv->post_op() : st.conv->post_op();
    std::string s = stage_label(tag, i, st.deconv, st.cin, st.cout, st.k, st.stride);
    if (p == dsp::PostOp::Gdn) s += "+gdn";
    if (p == dsp::PostOp::Igdn) s += "+igdn";
    if (p == dsp::PostOp::Relu) s += "+relu";
    return s + (a == dsp::ConvAlgo::Winograd ? " (winograd)" : a == dsp::ConvAlgo::TapGemm ? " (tap gemm)" : " (direct)");
  }
  std::vector<Stage> stages_;
  std::vector<Op> ops_;
};

// ------------------------------------------------------------ int net ---

class IntNet {
 public:
  IntNet(const Weights& w, const std::string& name, int64_t& params) {
    std::vector<Op> ops = parse_ops(w.get_i64_array("arch." + name), name);
    for (size_t i = 0; i < ops.size(); ++i) {
      const Op& op = ops[i];
      if (op.code == kGdn || op.code == kIgdn) bad_model("GDN is not allowed in the integer " + name);
      if (op.code == kRelu) continue;  // folded into lo by the export
      std::string p = name + "." + std::to_string(i);
      size_t wc = size_t(op.cin) * op.cout * op.k * op.k;
      const int16_t* wt = w.as<int16_t>(p + ".weight", DType::I16, wc);
      const int32_t* b = w.as<int32_t>(p + ".bias", DType::I32, size_t(op.cout));
      for (size_t j = 0; j < wc; ++j)
        if (wt[j] == INT16_MIN) bad_model("integer weight out of range in " + p);
      params += int64_t(wc + op.cout);
      std::string si = std::to_string(i);
      dsp::Requant rq;
      int64_t shift = w.get_i64("hs.shift." + si), lo = w.get_i64("hs.lo." + si), hi = w.get_i64("hs.hi." + si);
      if (shift < 0 || shift > 31 || lo > hi || lo < INT32_MIN || hi > INT32_MAX) bad_model("bad requantization of " + p);
      bool last = true;
      for (size_t j = i + 1; j < ops.size(); ++j)
        if (ops[j].code == kConv || ops[j].code == kDeconv) last = false;
      if (!last && (lo < -32767 || hi > 32767)) bad_model("intermediate clamp outside int16 in " + p);
      if (i + 1 < ops.size() && ops[i + 1].code == kRelu && lo < 0) bad_model("relu not folded in " + p);
      rq.shift = int(shift);
      rq.lo = int32_t(lo);
      rq.hi = int32_t(hi);
      Stage st;
      st.deconv = op.code == kDeconv;
      st.cout = op.cout;
      st.stride = op.s;
      st.k = op.k;
      if (st.deconv) st.tconv = std::make_unique<dsp::ConvTranspose2dI16>(op.cin, op.cout, op.k, op.s, wt, b, rq);
      else st.conv = std::make_unique<dsp::Conv2dI16>(op.cin, op.cout, op.k, op.s, wt, b, rq);
      stages_.push_back(std::move(st));
    }
    ops_ = std::move(ops);
  }
  const std::vector<Op>& ops() const { return ops_; }

  void run(const int16_t* in, int h, int w, Buf<int32_t>& out, int& oh, int& ow, dsp::ThreadPool* pool,
           const char* tag = "") const {
    Buf<int16_t> cur;
    const int16_t* src = in;
    int ch = h, cw = w;
    Buf<int32_t> tmp;
    for (size_t i = 0; i < stages_.size(); ++i) {
      const Stage& st = stages_[i];
      int nh = st.deconv ? ch * 2 : (ch - 1) / st.stride + 1;
      int nw = st.deconv ? cw * 2 : (cw - 1) / st.stride + 1;
      Buf<int32_t>& dst = (i + 1 == stages_.size()) ? out : tmp;
      dst.resize(size_t(st.cout) * nh * nw);
      {
        const int cin = st.deconv ? st.tconv->cin() : st.conv->cin();
        const double macs = double(cin) * st.cout * st.k * st.k * (st.deconv ? double(ch) * cw : double(nh) * nw);
        profile::Scope prof(true, [&] { return stage_label(tag, i, st.deconv, cin, st.cout, st.k, st.stride) + " (int16)"; },
                            macs);
        if (st.deconv) st.tconv->run(src, ch, cw, dst.data(), pool);
        else st.conv->run(src, ch, cw, dst.data(), pool);
      }
      if (i + 1 < stages_.size()) {
        cur.resize(dst.size());
        for (size_t j = 0; j < dst.size(); ++j) cur[j] = int16_t(dst[j]);  // clamped to int16 by the requant
        src = cur.data();
      }
      ch = nh;
      cw = nw;
    }
    oh = ch;
    ow = cw;
  }

  // The input rows [i0, i1) (unclamped) that output rows [o0, o1) depend on,
  // through every layer: Conv2d(k, s, padding k/2) reads input rows
  // o*s - k/2 .. o*s + k/2; ConvTranspose2d(k, 2, padding k/2, output 2h)
  // makes output row o from input rows i with o = 2i - k/2 + t, t in [0, k).
  // Integer arithmetic, so a run over those input rows computes rows
  // [o0, o1) exactly as a whole-image run does (zero padding outside the
  // image either way).
  void input_rows(int o0, int o1, int& i0, int& i1) const {
    auto floor_div2 = [](int v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); };
    int a = o0, b = o1;  // [a, b) at the current stage's output
    for (size_t i = stages_.size(); i-- > 0;) {
      const Stage& st = stages_[i];
      const int p = st.k / 2;
      if (st.deconv) {
        a = -floor_div2(-(a + p - st.k + 1));  // ceil((a + p - k + 1) / 2)
        b = floor_div2(b - 1 + p) + 1;
      } else {
        a = a * st.stride - p;
        b = (b - 1) * st.stride + p + 1;
      }
    }
    i0 = a;
    i1 = b;
  }

 private:
  struct Stage {
    bool deconv = false;
    int cout = 0, stride = 1, k = 0;
    std::unique_ptr<dsp::Conv2dI16> conv;
    std::unique_ptr<dsp::ConvTranspose2dI16> tconv;
  };
  std::vector<Stage> stages_;
  std::vector<Op> ops_;
};

// -------------------------------------------------------------- model ---

HyperpriorModel::HyperpriorModel(const Weights& w) {
  if (w.get_str("model") != "hyperprior") bad_model("not a hyperprior model");
  N_ = int(w.get_i64("N"));
  M_ = int(w.get_i64("M"));
  anchors_ = int(w.get_i64("anchors"));
  if (N_ < 1 || N_ > 4096 || M_ < 1 || M_ > 4096 || anchors_ < 1 || anchors_ > 1024) bad_model("bad widths");
  if (w.get_str("quality_map") != "linear") fail(Status::Unsupported, "unknown quality map");
  g_a_ = std::make_unique<FloatNet>(w, "g_a", params_);
  g_s_ = std::make_unique<FloatNet>(w, "g_s", params_);
  h_a_ = std::make_unique<FloatNet>(w, "h_a", params_);
  h_s_ = std::make_unique<IntNet>(w, "h_s", params_);
  check_chain(g_a_->ops(), "g_a", 3, M_, 16, 1);
  check_chain(g_s_->ops(), "g_s", M_, 3, 1, 16);
  check_chain(h_a_->ops(), "h_a", M_, N_, 4, 1);
  check_chain(h_s_->ops(), "h_s", N_, 2 * M_, 1, 4);
  const bool lin_a = w.has("arch.g_a_lin"), lin_s = w.has("arch.g_s_lin");
  if (lin_a != lin_s) bad_model("the linear shortcut needs both g_a_lin and g_s_lin");
  if (lin_a) {
    parse_block_op(w.get_i64_array("arch.g_a_lin"), "g_a_lin", kBlock, 3, M_, 16);
    parse_block_op(w.get_i64_array("arch.g_s_lin"), "g_s_lin", kUnblock, M_, 3, 16);
    const size_t wc = size_t(3) * M_ * 16 * 16;
    std::vector<float> wa = w.floats("g_a_lin.0.weight", wc, 0), ba = w.floats("g_a_lin.0.bias", size_t(M_));
    std::vector<float> ws = w.floats("g_s_lin.0.weight", wc, 1), bs = w.floats("g_s_lin.0.bias", 3);
    g_a_lin_ = std::make_unique<dsp::BlockAnalysis>(3, M_, 16, wa.data(), ba.data());
    g_s_lin_ = std::make_unique<dsp::BlockSynthesis>(M_, 3, 16, ws.data(), bs.data());
    params_ += int64_t(2 * wc + M_ + 3);
  }
  frac_ = int(w.get_i64("hs.frac_out"));
  if (frac_ < 0 || frac_ > 24) bad_model("bad hs.frac_out");
  idx_base_ = w.get_i64("scale_index.base");
  idx_step_ = w.get_i64("scale_index.step");
  scale_count_ = int(w.get_i64("scale.count"));
  if (idx_step_ < 1 || scale_count_ < 1 || scale_count_ > 4096) bad_model("bad scale index parameters");
  scale_index_ = ScaleIndexRule{idx_base_, idx_step_, scale_count_};
  if (ContextModel::declared(w)) ctx_ = std::make_unique<ContextModel>(w, M_, frac_, scale_index_, params_);
  std::vector<float> g = w.floats("gain", size_t(anchors_) * M_);
  std::vector<float> ig = w.floats("inv_gain", size_t(anchors_) * M_);
  for (size_t i = 0; i < g.size(); ++i) {
    if (!(g[i] > 0) || !(ig[i] > 0)) bad_model("gains must be positive");
    log_gain_.push_back(std::log(g[i]));
    log_inv_gain_.push_back(std::log(ig[i]));
  }
  params_ += int64_t(2 * g.size());
  z_tables_ = load_tables(w, "z");
  y_tables_ = load_tables(w, "y");
  if (z_tables_.lengths.size() != size_t(N_)) bad_model("need one z table per channel");
  if (y_tables_.lengths.size() != size_t(scale_count_)) bad_model("need one y table per scale");
  // least bits a symbol of each table can take (rans.h): a decoder refuses a
  // payload too short for the symbols its header implies before allocating
  for (size_t t = 0; t < z_tables_.lengths.size(); ++t)
    z_min_bits_.push_back(rans_min_symbol_bits(rans_max_frequency(z_tables_.view(), t)));
  y_min_bits_all_ = 1e300;
  for (size_t t = 0; t < y_tables_.lengths.size(); ++t) {
    y_min_bits_.push_back(rans_min_symbol_bits(rans_max_frequency(y_tables_.view(), t)));
    y_min_bits_all_ = std::min(y_min_bits_all_, y_min_bits_.back());
  }
  // code lengths of every regular and escape symbol, for the RDO quantiser
  y_bits_.assign(y_tables_.lengths.size() * y_tables_.stride, 0.f);
  for (size_t t = 0; t < y_tables_.lengths.size(); ++t) {
    const uint32_t* c = &y_tables_.cdfs[t * y_tables_.stride];
    for (int s = 0; s + 1 < y_tables_.lengths[t]; ++s)
      y_bits_[t * y_tables_.stride + s] = float(kCdfPrecision - std::log2(double(c[s + 1] - c[s])));
  }
  if (w.has_tensor("rdo.cost")) {
    std::vector<float> k = w.floats("rdo.cost", size_t(anchors_) * M_);
    for (float v : k) {
      if (!(v > 0) || !std::isfinite(v)) bad_model("rdo.cost must be positive and finite");
      log_rdo_.push_back(std::log(double(v)));
    }
    if (w.has("rdo.scale_power")) {
      rdo_scale_power_ = w.get_f64("rdo.scale_power");
      if (!(rdo_scale_power_ >= 0.0 && rdo_scale_power_ <= 4.0)) bad_model("rdo.scale_power must be in [0, 4]");
      const double smin = w.get_f64("scale.min"), smax = w.get_f64("scale.max");
      if (!(smin > 0 && smax > smin) || scale_count_ < 2) bad_model("bad scale table for rdo.scale_power");
      log_scale_step_ = std::log(smax / smin) / double(scale_count_ - 1);
    }
  }
}

HyperpriorModel::~HyperpriorModel() = default;

namespace {

inline uint32_t pad64(uint32_t v) { return (v + 63) / 64 * 64; }

}  // namespace

void HyperpriorModel::hs_output(const int16_t* zi, int zh, int zw, dsp::ThreadPool* pool, Buf<int32_t>& out,
                                const char* tag) const {
  int oh = 0, ow = 0;
  h_s_->run(zi, zh, zw, out, oh, ow, pool, tag);
  if (oh != 4 * zh || ow != 4 * zw) fail(Status::Internal, "h_s shape");
}

void HyperpriorModel::hs_rows(const int16_t* zi, int zh, int zw, int r0, int r1, dsp::ThreadPool* pool,
                              Buf<int32_t>& out, Buf<int16_t>& zs, Buf<int32_t>& full, const char* tag) const {
  int za = 0, zb = 0;
  h_s_->input_rows(r0, r1, za, zb);
  za = std::max(0, za);
  zb = std::min(zh, zb);
  const int rows = zb - za, yw = 4 * zw;
  plane_rows(zi, N_, zh, zw, za, rows, zs);
  int oh = 0, ow = 0;
  h_s_->run(zs.data(), rows, zw, full, oh, ow, pool, tag);
  if (ow != yw || oh != 4 * rows) fail(Status::Internal, "h_s strip shape");
  plane_rows(full.data(), 2 * M_, oh, ow, r0 - 4 * za, r1 - r0, out);
}

void HyperpriorModel::decode_z(const uint8_t* side, size_t side_size, int zh, int zw, Buf<int16_t>& zi) const {
  constexpr size_t kPiece = size_t(1) << 14;  // symbols per incremental rANS call
  const size_t per_z = size_t(zh) * zw, nz = size_t(N_) * per_z;
  zi.resize(nz);
  profile::Scope prof(true, [] { return std::string("decode rans z"); });
  RansDecoder dec(side, side_size, nz, z_tables_.view());
  std::vector<int32_t> ib(std::min(kPiece, per_z)), sb(ib.size());
  for (int c = 0; c < N_; ++c) {
    std::fill(ib.begin(), ib.end(), c);
    for (size_t off = 0; off < per_z; off += kPiece) {
      const size_t m = std::min(kPiece, per_z - off);
      dec.decode(ib.data(), m, sb.data());
      int16_t* dst = &zi[size_t(c) * per_z + off];
      for (size_t i = 0; i < m; ++i) dst[i] = int16_t(std::max(-32767, std::min(32767, sb[i])));
    }
  }
  dec.finish();
}

void HyperpriorModel::entropy_params(const int32_t* z, int zh, int zw, dsp::ThreadPool* pool, Buf<float>& mu,
                                     std::vector<int32_t>& idx, bool decoding) const {
  const char* tag = decoding ? "decode h_s" : "encode h_s";
  Buf<int16_t> zi;
  z_to_i16(z, size_t(N_) * zh * zw, zi);
  Buf<int32_t> out;
  hs_output(zi.data(), zh, zw, pool, out, tag);
  size_t n = size_t(M_) * 16 * zh * zw;
  profile::Scope prof(true, [&] { return std::string(tag) + " -> means, scale indices"; });
  mu.resize(n);
  idx.resize(n);
  const float inv = 1.0f / float(int64_t(1) << frac_);
  constexpr size_t kChunk = size_t(1) << 14;  // elementwise (exact integer division): any split gives the same
  dsp::parallel_for(pool, int64_t((n + kChunk - 1) / kChunk), [&](int64_t t, int) {
    const size_t i1 = std::min(n, size_t(t + 1) * kChunk);
    for (size_t i = size_t(t) * kChunk; i < i1; ++i) {
      mu[i] = float(out[i]) * inv;
      idx[i] = scale_index_(out[n + i]);
    }
  });
}

namespace {
// Latent rows per strip. The default keeps strip area (rows x padded width)
// at or below kStripLatentRows x kStripWidth: images up to kStripWidth wide
// use strips of at least 512 rows (up to kMaxStripLatentRows latent rows for
// narrow images, so that e.g. a 512 x 768 portrait is one strip with no halo
// to recompute), wider ones proportionally shorter strips (at least 8 latent
// rows), so peak memory grows with the latent arrays (~12 bytes per pixel)
// but not with the width times the strip height.
// multiple: the strip height must be a multiple of it (the decoder's 4).
int strip_latent_rows(int strip_rows, uint32_t padded_width, int multiple = 1) {
  if (strip_rows > 0) return std::max(1, strip_rows / 16 / multiple) * multiple;
  constexpr int64_t kStripWidth = 4096;
  const int64_t fit = int64_t(HyperpriorModel::kStripLatentRows) * kStripWidth / std::max<int64_t>(1, padded_width);
  return int(std::max<int64_t>(8, std::min<int64_t>(HyperpriorModel::kMaxStripLatentRows, fit)) / multiple * multiple);
}
}  // namespace

Latents HyperpriorModel::analyse(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, size_t ch, uint16_t qx,
                                 dsp::ThreadPool* pool, int strip_rows, bool rdo, const QualityMap* qmap) const {
  const int S = strip_latent_rows(strip_rows, pad64(w));
  Latents L;
  L.M = M_;
  L.N = N_;
  uint32_t wp = pad64(w), hp = pad64(h);
  Buf<float> y, z;
  int yh = int(hp / 16), yw = int(wp / 16), zh, zw;
  {
    // g_a in horizontal strips of kStripLatentRows latent rows with a halo of
    // kEncodeHaloRows latent rows (16 pixels each) on both sides: the halo
    // absorbs the strip edges' influence (2 latent rows for 4 stride-2 5x5
    // convolutions), so every strip computes exactly what the whole image
    // would, with peak memory bounded by the strip size.
    y.resize(size_t(M_) * yh * yw);  // every row is written by its strip
    Buf<float> xs, ys;
    const uint32_t strips = uint32_t((yh + S - 1) / S);
    progress(0, strips);
    for (int r0 = 0; r0 < yh; r0 += S) {
      int r1 = std::min(yh, r0 + S);
      int a = std::max(0, r0 - kEncodeHaloRows), b = std::min(yh, r1 + kEncodeHaloRows);
      {
        profile::Scope prof(true, [] { return std::string("encode rgb -> planar"); });
        to_planar_rows(px, w, h, stride, ch, wp, uint32_t(16 * a), uint32_t(16 * b), xs);
      }
      int oh, ow;
      g_a_->run(xs.data(), 16 * (b - a), int(wp), ys, oh, ow, pool, 16 * a, "encode g_a");
      if (oh != b - a || ow != yw) fail(Status::Internal, "g_a strip shape");
      for (int c = 0; c < M_; ++c)
        std::memcpy(&y[(size_t(c) * yh + r0) * yw], &ys[(size_t(c) * oh + (r0 - a)) * ow], sizeof(float) * size_t(r1 - r0) * yw);
      profile::Scope prof(g_a_lin_ != nullptr, [] { return std::string("encode g_a shortcut (block 16x16 3->M)"); },
                          double(M_) * 3 * 16 * 16 * (r1 - r0) * yw);
      if (g_a_lin_)
        g_a_lin_->run(&xs[size_t(16 * (r0 - a)) * wp], int64_t(16) * (b - a) * wp, 16 * (r1 - r0), int(wp),
                      &y[size_t(r0) * yw], int64_t(yh) * yw, true, pool);
      progress(uint32_t(r0 / S + 1), strips);
    }
    xs.release();  // not needed again in this call: free rather than keep idle
    ys.release();
  }
  apply_gains(y.data(), yh, yw, qx, qmap, false, pool);
  h_a_->run(y.data(), yh, yw, z, zh, zw, pool, 0, "encode h_a");
  L.yh = yh;
  L.yw = yw;
  L.zh = zh;
  L.zw = zw;
  L.z.resize(z.size());
  for (size_t i = 0; i < z.size(); ++i) {
    float v = std::nearbyint(z[i]);
    v = std::max(-2147483520.0f, std::min(2147483520.0f, v));
    L.z[i] = int32_t(v);
  }
  if (ctx_) {
    analyse_context(y.data(), L, qx, rdo, qmap, pool);
    return L;
  }
  Buf<float> mu;
  entropy_params(L.z.data(), zh, zw, pool, mu, L.idx, false);
  L.r.resize(y.size());
  if (mu.size() != y.size() || L.idx.size() != y.size()) fail(Status::Internal, "latent shape mismatch");
  {
    profile::Scope prof(true, [] { return std::string("encode quantise y"); });
    quantize_latents(y.data(), mu.data(), L.idx.data(), yh, yw, qx, rdo, qmap, pool, L.r.data());
  }
  return L;
}

void HyperpriorModel::encode(const uint8_t* px, uint32_t w, uint32_t h, size_t stride, size_t ch, uint16_t qx,
                             dsp::ThreadPool* pool, std::vector<uint8_t>& side, std::vector<uint8_t>& latents,
                             int strip_rows, bool rdo, const QualityMap* qmap) const {
  Latents L = analyse(px, w, h, stride, ch, qx, pool, strip_rows, rdo, qmap);
  profile::Scope prof(true, [] { return std::string("encode rans (z, y)"); });
  std::vector<int32_t> zidx(L.z.size());
  size_t per = size_t(L.zh) * L.zw;
  for (size_t i = 0; i < zidx.size(); ++i) zidx[i] = int32_t(i / per);
  side.clear();
  rans_encode(L.z.data(), zidx.data(), L.z.size(), z_tables_.view(), side);
  latents.clear();
  if (ctx_) encode_context_latents(L, latents);
  else rans_encode(L.r.data(), L.idx.data(), L.r.size(), y_tables_.view(), latents);
}

void HyperpriorModel::check_payload(size_t side_size, size_t lat_size, uint32_t w, uint32_t h) const {
  const uint32_t wp = pad64(w), hp = pad64(h);
  const size_t per_z = size_t(hp / 64) * (wp / 64), per_y = size_t(hp / 16) * (wp / 16);
  const size_t nz = size_t(N_) * per_z, ny = size_t(M_) * per_y;
  // Work and memory in proportion to the evidence: refuse payloads that
  // cannot hold the symbols the header implies before allocating for them
  // (a 16384 x 16384 header with a few kilobytes of payload must not cost
  // gigabytes and seconds of h_s). rans.h derives the bound.
  double zbits = 0.0;
  for (size_t c = 0; c < z_min_bits_.size() && c < size_t(N_); ++c) zbits += double(per_z) * z_min_bits_[c];
  if (zbits > rans_capacity_bits(side_size))
    fail(Status::CorruptStream, "side information of " + std::to_string(side_size) + " bytes cannot hold the " +
                                    std::to_string(nz) + " hyper-latents of a " + std::to_string(w) + "x" +
                                    std::to_string(h) + " image");
  if (double(ny) * y_min_bits_all_ > rans_capacity_bits(lat_size))
    fail(Status::CorruptStream, "latents chunk of " + std::to_string(lat_size) + " bytes cannot hold the " +
                                    std::to_string(ny) + " latents of a " + std::to_string(w) + "x" +
                                    std::to_string(h) + " image");
}

void HyperpriorModel::decode(const uint8_t* side, size_t side_size, const uint8_t* lat, size_t lat_size, uint32_t w,
                             uint32_t h, uint16_t qx, dsp::ThreadPool* pool, uint8_t* rgb, int strip_rows,
                             const QualityMap* qmap) const {
  const int S = strip_latent_rows(strip_rows, pad64(w), kDecodeStripMultiple);
  uint32_t wp = pad64(w), hp = pad64(h);
  int zh = int(hp / 64), zw = int(wp / 64), yh = int(hp / 16), yw = int(wp / 16);
  const size_t per_y = size_t(yh) * yw, ny = size_t(M_) * per_y;
  check_payload(side_size, lat_size, w, h);
  constexpr size_t kPiece = size_t(1) << 14;  // symbols per incremental rANS call
  // z, decoded channel by channel straight into h_s's int16 input (values
  // clamped as h_s takes them)
  Buf<int16_t> zi;
  decode_z(side, side_size, zh, zw, zi);
  if (ctx_) {  // band by band (hyperprior_context.cc): h_s strip, context passes, rANS
    Buf<float> y;
    y.resize(ny);
    const float inv = 1.0f / float(int64_t(1) << frac_);
    decode_context(zi.data(), zh, zw, lat, lat_size, pool,
                   [&](int r0, int r1, const int32_t* m, const uint16_t*, const int32_t* r) {
                     const size_t bp = size_t(r1 - r0) * yw;
                     dsp::parallel_for(pool, M_, [&](int64_t c, int) {
                       float* dst = &y[size_t(c) * per_y + size_t(r0) * yw];
                       const int32_t* mc = m + size_t(c) * bp;
                       const int32_t* rc = r + size_t(c) * bp;
                       for (size_t o = 0; o < bp; ++o) dst[o] = float(mc[o]) * inv + float(rc[o]);  // as below
                     });
                   });
    zi.release();
    profile::Scope prof_y(true, [] { return std::string("decode y = (r + mu) * inv_gain"); });
    apply_inv_gains(y.data(), yh, yw, qx, qmap, pool);
    prof_y.stop();
    synthesize(y.data(), yh, yw, w, h, pool, rgb, strip_rows);
    return;
  }
  // h_s in strips of latent rows: means (float) and scale indices (uint16),
  // with no full-size int32 h_s output. The least bits the latents' tables
  // allow are added up strip by strip: a latents chunk too short for them
  // fails at the first strip that shows it.
  Buf<float> mu;
  mu.resize(ny);
  Buf<uint16_t> idx;
  idx.resize(ny);
  {
    const int HS = strip_rows > 0
                       ? S
                       : std::min(std::max(S, int((16384 / std::max(1, yw) + 3) / 4 * 4)), (yh + 3) / 4 * 4);
    const float inv = 1.0f / float(int64_t(1) << frac_);
    const double cap = rans_capacity_bits(lat_size);
    double need = 0.0;
    std::vector<double> part(static_cast<size_t>(M_));
    Buf<int16_t> zs;
    Buf<int32_t> out;
    // The first strips of a wide image are small (~8192 latent positions,
    // then doubling up to HS), so that a payload its side information shows
    // to be too short is refused after a few megabytes of h_s work.
    int step = std::min(HS, std::max(4, (8192 / std::max(1, yw) + 3) / 4 * 4));
    for (int r0 = 0; r0 < yh; r0 += step, step = std::min(HS, 2 * step)) {
      const int r1 = std::min(yh, r0 + step);
      int za = 0, zb = 0;
      h_s_->input_rows(r0, r1, za, zb);
      za = std::max(0, za);
      zb = std::min(zh, zb);
      const int rows = zb - za;
      const int16_t* src = zi.data();
      if (rows != zh) {
        zs.resize(size_t(N_) * rows * zw);
        for (int c = 0; c < N_; ++c)
          std::memcpy(&zs[size_t(c) * rows * zw], &zi[(size_t(c) * zh + za) * zw], sizeof(int16_t) * size_t(rows) * zw);
        src = zs.data();
      }
      int oh = 0, ow = 0;
      h_s_->run(src, rows, zw, out, oh, ow, pool, "decode h_s");
      if (ow != yw || oh != 4 * rows) fail(Status::Internal, "h_s strip shape");
      profile::Scope prof(true, [] { return std::string("decode h_s -> means, scale indices"); });
      const int first = r0 - 4 * za;  // row r0 in the strip's output
      const size_t plane = size_t(oh) * ow, n_out = size_t(M_) * plane;
      dsp::parallel_for(pool, M_, [&](int64_t c, int) {
        double bits = 0.0;
        for (int row = r0; row < r1; ++row) {
          const int32_t* m_src = &out[size_t(c) * plane + size_t(row - r0 + first) * ow];
          const int32_t* s_src = m_src + n_out;
          float* m_dst = &mu[(size_t(c) * yh + row) * yw];
          uint16_t* i_dst = &idx[(size_t(c) * yh + row) * yw];
          for (int x = 0; x < yw; ++x) {
            m_dst[x] = float(m_src[x]) * inv;
            const uint16_t k = scale_index_(s_src[x]);
            i_dst[x] = k;
            bits += y_min_bits_[size_t(k)];
          }
        }
        part[size_t(c)] = bits;
      });
      for (int c = 0; c < M_; ++c) need += part[size_t(c)];
      if (need > cap)
        fail(Status::CorruptStream, "latents chunk of " + std::to_string(lat_size) +
                                        " bytes cannot hold the latents its side information implies (found after " +
                                        std::to_string(r1) + " of " + std::to_string(yh) + " latent rows)");
    }
    // not needed again in this call: free rather than keep idle beside g_s's buffers
    out.release();
    zs.release();
  }
  // y = r + mu, in mu's storage, decoded in pieces (no full-size r or int32
  // index arrays)
  {
    profile::Scope prof(true, [] { return std::string("decode rans y"); });
    RansDecoder dec(lat, lat_size, ny, y_tables_.view());
    std::vector<int32_t> ib(std::min(kPiece, ny)), rb(ib.size());
    for (size_t off = 0; off < ny; off += kPiece) {
      const size_t m = std::min(kPiece, ny - off);
      for (size_t i = 0; i < m; ++i) ib[i] = idx[off + i];
      dec.decode(ib.data(), m, rb.data());
      float* yv = &mu[off];
      for (size_t i = 0; i < m; ++i) yv[i] += float(rb[i]);
    }
    dec.finish();
  }
  idx.release();  // freed, not kept idle: g_s's strips come next
  zi.release();
  profile::Scope prof_y(true, [] { return std::string("decode y = (r + mu) * inv_gain"); });
  Buf<float> y = std::move(mu);
  apply_inv_gains(y.data(), yh, yw, qx, qmap, pool);
  prof_y.stop();
  synthesize(y.data(), yh, yw, w, h, pool, rgb, strip_rows);
}

void HyperpriorModel::synthesize(const float* y, int yh, int yw, uint32_t w, uint32_t h, dsp::ThreadPool* pool,
                                 uint8_t* rgb, int strip_rows) const {
  const int S = strip_latent_rows(strip_rows, pad64(w), kDecodeStripMultiple);
  LMC_CHECK(yh == int(pad64(h) / 16) && yw == int(pad64(w) / 16), Status::InvalidArgument,
            "latent grid does not match the image size");
  // g_s in strips (see analyse). A strip edge influences 30 output rows
  // through the receptive field, and a few more through the F(4x2) Winograd
  // blocks of g_s.0-2, whose outputs depend (in their rounding) on input rows
  // of their block outside their own receptive field. With the blocks' phase
  // (dsp/conv_geometry.h, kDeconvWinoPhase) and strips of a multiple of 4 latent
  // rows, a halo of kDecodeHaloRows latent rows on both sides still makes
  // every kept row equal the whole image's (test_dsp's synthesis chain test
  // checks it in float, and that one row less would not).
  Buf<float> ys, x;
  const uint32_t strips = uint32_t((std::min(yh, int((h + 15) / 16)) + S - 1) / S);
  progress(0, strips);
  for (int r0 = 0; r0 < yh && uint32_t(16 * r0) < h; r0 += S) {
    int r1 = std::min(yh, r0 + S);
    int a = std::max(0, r0 - kDecodeHaloRows), b = std::min(yh, r1 + kDecodeHaloRows);
    ys.resize(size_t(M_) * (b - a) * yw);
    for (int c = 0; c < M_; ++c)
      std::memcpy(&ys[size_t(c) * (b - a) * yw], &y[(size_t(c) * yh + a) * yw], sizeof(float) * size_t(b - a) * yw);
    int oh, ow;
    g_s_->run(ys.data(), b - a, yw, x, oh, ow, pool, a, "decode g_s");
    if (g_s_lin_) {
      profile::Scope prof(true, [] { return std::string("decode g_s shortcut (unblock 16x16 M->3)"); },
                          double(M_) * 3 * 16 * 16 * (r1 - r0) * yw);
      g_s_lin_->run(&ys[size_t(r0 - a) * yw], int64_t(b - a) * yw, r1 - r0, yw, &x[size_t(16 * (r0 - a)) * ow],
                    int64_t(oh) * ow, true, pool);
    }
    profile::Scope prof(true, [] { return std::string("decode planar -> rgb"); });
    const uint32_t out0 = uint32_t(16 * r0), out1 = std::min(h, uint32_t(16 * r1));
    constexpr uint32_t kRowsPerTask = 16;
    dsp::parallel_for(pool, (out1 - out0 + kRowsPerTask - 1) / kRowsPerTask, [&](int64_t t, int) {
      const uint32_t y0 = out0 + uint32_t(t) * kRowsPerTask, y1 = std::min(out1, y0 + kRowsPerTask);
      for (uint32_t yy = y0; yy < y1; ++yy) {
        const size_t row = yy - uint32_t(16 * a);
        planar_row_to_rgb(&x[row * ow], &x[(size_t(oh) + row) * ow], &x[(2 * size_t(oh) + row) * ow], w,
                          rgb + size_t(yy) * w * 3);
      }
    });
    progress(uint32_t(r0 / S + 1), strips);
  }
}

}  // namespace lmc
