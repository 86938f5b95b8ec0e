#include "dsp/block_transform.h"

#include <algorithm>
#include <cstring>

#include "util/error.h"
#include "dsp/kernels.h"

namespace lmc {
namespace dsp {
namespace {

constexpr int kSynthRows = 4;  // BlockSynthesis: block rows per product (results do not depend on it)
constexpr int kMaxBlockDim = 4096;  // values per patch (channels * b * b) and channels on the other side

// patch: the side made of b x b patches (analysis input, synthesis output);
// plain: the other side (one value per block and channel).
void check_dims(int patch_channels, int plain_channels, int b, const float* weight) {
  LMC_CHECK(patch_channels >= 1 && plain_channels >= 1 && b >= 1 && b <= 64, Status::InvalidArgument,
            "block transform: bad shape");
  LMC_CHECK(int64_t(patch_channels) * b * b <= kMaxBlockDim && plain_channels <= kMaxBlockDim,
            Status::InvalidArgument, "block transform: too wide");
  LMC_CHECK(weight != nullptr, Status::InvalidArgument, "block transform: null weight");
}

void check_run(const float* in, float* out, int h, int w) {
  LMC_CHECK(in != nullptr && out != nullptr, Status::InvalidArgument, "block transform: null tensor");
  LMC_CHECK(h >= 1 && w >= 1, Status::InvalidArgument, "block transform: empty input");
}

}  // namespace

BlockAnalysis::BlockAnalysis(int cin, int cout, int b, const float* weight, const float* bias)
    : BlockLinear(cin, cout, b) {
  check_dims(cin, cout, b, weight);  // patches in
  w_.assign(weight, weight + size_t(cout) * cin * b * b);
  bias_.assign(size_t(cout), 0.f);
  if (bias) std::copy(bias, bias + cout, bias_.begin());
}

void BlockAnalysis::run(const float* in, int64_t in_cstride, int h, int w, float* out, int64_t out_cstride,
                        bool accumulate, ThreadPool* pool) const {
  check_run(in, out, h, w);
  LMC_CHECK(h % b_ == 0 && w % b_ == 0, Status::InvalidArgument, "block transform: size not a multiple of the block");
  const int bh = h / b_, bw = w / b_, K = cin_ * b_ * b_;
  const detail::KernelTable& kt = detail::active_kernels();
  const int nthreads = pool ? pool->size() : 1;
  std::vector<std::vector<float>> scratch(static_cast<size_t>(nthreads));
  parallel_for(pool, bh, [&](int64_t row, int thread) {
    // P[(c*b + i)*b + j][x] = in[c][row*b + i][x*b + j]: the patches as columns.
    std::vector<float>& p = scratch[size_t(thread)];
    p.resize(size_t(K) * bw);
    for (int c = 0; c < cin_; ++c)
      for (int i = 0; i < b_; ++i) {
        const float* src = in + c * in_cstride + (row * b_ + i) * int64_t(w);
        float* dst = &p[size_t((c * b_ + i) * b_) * bw];
        for (int x = 0; x < bw; ++x)
          for (int j = 0; j < b_; ++j) dst[size_t(j) * bw + x] = src[x * b_ + j];
      }
    detail::GemmJob g{};
    g.a = w_.data();
    g.lda = K;
    g.b = p.data();
    g.ldb = bw;
    g.bias = bias_.data();
    g.c = out + row * bw;
    g.ldc = out_cstride;
    g.m = cout_;
    g.n = bw;
    g.k = K;
    g.accumulate = accumulate ? 1 : 0;
    kt.gemm_f32(g);
  });
}

BlockSynthesis::BlockSynthesis(int cin, int cout, int b, const float* weight, const float* bias)
    : BlockLinear(cin, cout, b) {
  check_dims(cout, cin, b, weight);  // patches out
  const int R = cout * b * b;
  w_.resize(size_t(R) * cin);
  for (int ci = 0; ci < cin; ++ci)
    for (int r = 0; r < R; ++r) w_[size_t(r) * cin + ci] = weight[size_t(ci) * R + r];
  bias_.resize(size_t(R));
  for (int r = 0; r < R; ++r) bias_[size_t(r)] = bias ? bias[r / (b * b)] : 0.f;
}

void BlockSynthesis::run(const float* in, int64_t in_cstride, int h, int w, float* out, int64_t out_cstride,
                         bool accumulate, ThreadPool* pool) const {
  check_run(in, out, h, w);
  const int R = cout_ * b_ * b_;
  const int64_t ow = int64_t(w) * b_;
  const detail::KernelTable& kt = detail::active_kernels();
  const int nthreads = pool ? pool->size() : 1;
  std::vector<std::vector<float>> scratch(static_cast<size_t>(nthreads));
  // kSynthRows block rows per product: the weights (R x cin, ~0.6 MB for the
  // codec) stream from the cache once per group instead of once per row
  const int rows_per = std::max(1, std::min(kSynthRows, h / std::max(1, 2 * nthreads)));
  const int64_t ngroups = (h + rows_per - 1) / rows_per;
  parallel_for(pool, ngroups, [&](int64_t grp, int thread) {
    const int row0 = int(grp) * rows_per, nr = std::min(rows_per, h - row0);
    const int64_t n = int64_t(nr) * w;  // product columns: nr rows of w blocks
    std::vector<float>& q = scratch[size_t(thread)];
    q.resize(size_t(R) * n + size_t(cin_) * n);
    // the rows' inputs packed contiguously: read in place, the channels sit a
    // whole plane apart, and planes a multiple of 4 KiB apart share a few L1
    // sets (measured: the product ran at ~45 % of the FMA rate)
    float* bp = q.data() + size_t(R) * n;
    for (int ci = 0; ci < cin_; ++ci)
      std::memcpy(bp + size_t(ci) * n, in + ci * in_cstride + int64_t(row0) * w, sizeof(float) * n);
    detail::GemmJob g{};
    g.a = w_.data();
    g.lda = cin_;
    g.b = bp;
    g.ldb = n;
    g.bias = bias_.data();
    g.c = q.data();
    g.ldc = n;
    g.m = R;
    g.n = int(n);
    g.k = cin_;
    g.accumulate = 0;
    kt.gemm_f32(g);
    // Q[(c*b + i)*b + j][r*w + x] -> out[c][(row0 + r)*b + i][x*b + j]
    for (int r = 0; r < nr; ++r)
      for (int c = 0; c < cout_; ++c)
        for (int i = 0; i < b_; ++i) {
          float* dst = out + c * out_cstride + ((row0 + r) * b_ + i) * ow;
          const float* src = &q[size_t((c * b_ + i) * b_) * n + size_t(r) * w];
          for (int x = 0; x < w; ++x)
            for (int j = 0; j < b_; ++j) {
              const float v = src[size_t(j) * n + x];
              float& d = dst[x * b_ + j];
              d = accumulate ? d + v : v;
            }
        }
  });
}

}  // namespace dsp
}  // namespace lmc
