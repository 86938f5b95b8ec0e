// lmcodec dsp: the layer classes (Gdn, Conv2d, ConvTranspose2d, Conv2dI16,
// ConvTranspose2dI16) and element-wise ops. The drivers are in conv_run.*,
// geometry/padding/packing in conv_geometry.*, Winograd plans in winograd.*,
// the portable kernel table in conv_scalar.cc, the tiles in conv_tile.h.
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

#include "dsp/conv_run.h"
#include "dsp/kernels.h"
#include "dsp/winograd.h"
#include "util/error.h"

namespace lmc {
namespace dsp {

using namespace detail;
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
  if (k != 1 || stride != 1) check_conv_kernel(k, stride);  // also 1x1, stride 1 (pointwise)
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
