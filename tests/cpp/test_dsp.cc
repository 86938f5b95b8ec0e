// Tests (and, with --bench, benchmarks) of the lmcodec dsp kernels.
//
//   test_dsp            correctness: every kernel vs a naive reference written
//                       here, scalar vs AVX2 (bit-identical, floats too),
//                       1 vs 2 threads, bad shapes.
//   test_dsp --bench    per-layer timings of the codec's synthesis and
//                       analysis networks (768x512), scalar/AVX2 x 1/2 threads.
#include <algorithm>
#include <atomic>
#include <memory>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "core/hyperprior.h"
#include "dsp/block_transform.h"
#include "dsp/kernels.h"
#include "dsp/conv.h"
#include "dsp/cpu.h"
#include "util/threadpool.h"

using namespace lmc;
using namespace lmc::dsp;

namespace {

std::mt19937& rng() {
  static std::mt19937 r(12345);
  return r;
}
const char* algo_name(ConvAlgo a) {
  switch (a) {
    case ConvAlgo::Auto: return "auto";
    case ConvAlgo::Direct: return "direct";
    case ConvAlgo::Winograd: return "winograd";
    case ConvAlgo::TapGemm: return "tapgemm";
  }
  return "?";
}

std::vector<float> randf(size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng());
  return v;
}
// int16 in [-32767, 32767]; with probability p_extreme a value is +-32767.
std::vector<int16_t> randi16(size_t n, double p_extreme) {
  std::uniform_int_distribution<int> d(-32767, 32767);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int16_t> v(n);
  for (auto& x : v) {
    const double r = u(rng());
    x = static_cast<int16_t>(r < p_extreme / 2 ? 32767 : (r < p_extreme ? -32767 : d(rng())));
  }
  return v;
}

// Which paths can run here (scalar first; then WebAssembly SIMD128 in a
// -msimd128 build (tools/test_wasm_kernels.sh), AVX2, AVX-512 where built and
// supported, the latter also in the SIMDe-emulation test build).
std::vector<Isa> isa_modes() {
  std::vector<Isa> modes = {Isa::Scalar};
  for (Isa isa : {Isa::Simd128, Isa::Avx2, Isa::Avx512})
    if (isa_available(isa)) modes.push_back(isa);
  return modes;
}

// ---------------------------------------------------------------------------
// Naive references (double accumulation; |terms| sum for the tolerance).
// ---------------------------------------------------------------------------
void ref_conv2d(const std::vector<float>& in, int cin, int h, int w, const std::vector<float>& wt,
                const std::vector<float>& bias, int cout, int k, int s, std::vector<double>& out,
                std::vector<double>& mag) {
  const int p = k / 2;
  const int ho = (h + 2 * p - k) / s + 1, wo = (w + 2 * p - k) / s + 1;
  out.assign((size_t)cout * ho * wo, 0.0);
  mag.assign(out.size(), 0.0);
  for (int co = 0; co < cout; ++co)
    for (int oy = 0; oy < ho; ++oy)
      for (int ox = 0; ox < wo; ++ox) {
        double acc = bias[co], m = std::fabs(bias[co]);
        for (int ci = 0; ci < cin; ++ci)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int iy = oy * s - p + ky, ix = ox * s - p + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              const double t = (double)in[((size_t)ci * h + iy) * w + ix] * wt[(((size_t)co * cin + ci) * k + ky) * k + kx];
              acc += t;
              m += std::fabs(t);
            }
        out[((size_t)co * ho + oy) * wo + ox] = acc;
        mag[((size_t)co * ho + oy) * wo + ox] = m;
      }
}

// Scatter form of ConvTranspose2d(k, stride 2, padding k/2, output_padding 1).
void ref_deconv(const std::vector<float>& in, int cin, int h, int w, const std::vector<float>& wt,
                const std::vector<float>& bias, int cout, int k, std::vector<double>& out, std::vector<double>& mag) {
  const int p = k / 2, ho = 2 * h, wo = 2 * w;
  out.assign((size_t)cout * ho * wo, 0.0);
  mag.assign(out.size(), 0.0);
  for (int co = 0; co < cout; ++co)
    for (int i = 0; i < ho * wo; ++i) {
      out[(size_t)co * ho * wo + i] = bias[co];
      mag[(size_t)co * ho * wo + i] = std::fabs(bias[co]);
    }
  for (int ci = 0; ci < cin; ++ci)
    for (int iy = 0; iy < h; ++iy)
      for (int ix = 0; ix < w; ++ix)
        for (int co = 0; co < cout; ++co)
          for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
              const int oy = 2 * iy - p + ky, ox = 2 * ix - p + kx;
              if (oy < 0 || oy >= ho || ox < 0 || ox >= wo) continue;
              const double t = (double)in[((size_t)ci * h + iy) * w + ix] * wt[(((size_t)ci * cout + co) * k + ky) * k + kx];
              out[((size_t)co * ho + oy) * wo + ox] += t;
              mag[((size_t)co * ho + oy) * wo + ox] += std::fabs(t);
            }
}

// GDN on a double tensor, updating the magnitude bound.
void ref_gdn(std::vector<double>& x, std::vector<double>& mag, int c, int64_t hw, const std::vector<float>& beta,
             const std::vector<float>& gamma, bool inverse) {
  std::vector<double> y(x.size());
  std::vector<double> ym(x.size());
  for (int64_t p = 0; p < hw; ++p)
    for (int i = 0; i < c; ++i) {
      double norm = beta[i], nmag = beta[i];
      for (int j = 0; j < c; ++j) {
        norm += (double)gamma[(size_t)i * c + j] * std::fabs(x[(size_t)j * hw + p]);
        nmag += (double)gamma[(size_t)i * c + j] * (std::fabs(x[(size_t)j * hw + p]) + mag[(size_t)j * hw + p] * 1e-6);
      }
      const double v = x[(size_t)i * hw + p];
      y[(size_t)i * hw + p] = inverse ? v * norm : v / norm;
      // relative error budget: input error + norm error
      ym[(size_t)i * hw + p] = inverse ? (mag[(size_t)i * hw + p] * nmag + std::fabs(v) * nmag)
                                       : (mag[(size_t)i * hw + p] / norm + std::fabs(v) * nmag / (norm * norm));
    }
  x.swap(y);
  mag.swap(ym);
}

// |got - ref| <= tol * mag (+ tiny absolute slack)
bool close_to_ref(const std::vector<float>& got, const std::vector<double>& ref, const std::vector<double>& mag,
                  double tol, const char* what) {
  if (got.size() != ref.size()) {
    std::fprintf(stderr, "%s: size mismatch\n", what);
    return false;
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs((double)got[i] - ref[i]);
    if (!(err <= tol * mag[i] + 1e-30)) {
      std::fprintf(stderr, "%s: element %zu got %.9g want %.9g (mag %.3g)\n", what, i, got[i], ref[i], mag[i]);
      return false;
    }
  }
  return true;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

// The scalar and AVX2 results of one computation: the portable kernels
// perform the AVX2 float operations exactly (std::fma for each FMA), so
// they must agree bit for bit (memcmp: also -0 vs +0 and NaN payloads).
bool paths_bit_equal(const std::vector<float>& scalar, const std::vector<float>& avx2, const char* what) {
  if (bit_equal(scalar, avx2)) return true;
  if (scalar.size() != avx2.size()) {
    std::fprintf(stderr, "%s: scalar vs SIMD path size mismatch\n", what);
    return false;
  }
  size_t i = 0;
  while (std::memcmp(&scalar[i], &avx2[i], sizeof(float)) == 0) ++i;
  uint32_t bs, ba;
  std::memcpy(&bs, &scalar[i], sizeof bs);
  std::memcpy(&ba, &avx2[i], sizeof ba);
  std::fprintf(stderr, "%s: scalar vs SIMD path differ at %zu: %.9g (0x%08x) vs %.9g (0x%08x)\n", what, i, scalar[i],
               (unsigned)bs, avx2[i], (unsigned)ba);
  return false;
}

// ---------------------------------------------------------------------------
// Float convolutions
// ---------------------------------------------------------------------------
struct Shape {
  int h, w;
};
const Shape kShapes[] = {{1, 1}, {1, 7}, {7, 1}, {5, 3}, {2, 2}, {17, 9}, {33, 65}, {12, 8}, {6, 13}};
struct Chan {
  int cin, cout;
};
const Chan kChans[] = {{1, 1}, {3, 5}, {7, 9}, {13, 6}, {16, 12}, {9, 3}};  // 6, 3: 3-channel weight blocks

enum class Post { None, Relu, Gdn, Igdn };

void make_gdn_params(int c, std::vector<float>& beta, std::vector<float>& gamma) {
  beta = randf(c, 0.5f, 1.5f);
  gamma = randf((size_t)c * c, 0.0f, 0.2f);
}

void test_float_conv(bool transposed) {
  ThreadPool pool2(2);
  const std::vector<Isa> modes = isa_modes();
  int cases = 0, wino_cases = 0, tap_cases = 0;
  for (int k : {3, 5})
    for (int s : {1, 2}) {
      if (transposed && s == 1) continue;
      for (const Chan& ch : kChans)
        for (const Shape& sh : kShapes) {
          // keep the naive reference cheap: big shapes only with few channels
          if (sh.h * sh.w > 400 && ch.cin * ch.cout > 40) continue;
          const Post posts[] = {Post::None, Post::Relu, Post::Gdn, Post::Igdn};
          const Post post = posts[cases % 4];
          ++cases;
          const int cin = ch.cin, cout = ch.cout;
          const std::vector<float> in = randf((size_t)cin * sh.h * sh.w);
          const std::vector<float> wt = randf((size_t)cin * cout * k * k);
          const std::vector<float> bias = randf(cout, -0.5f, 0.5f);
          std::vector<float> beta, gamma;
          make_gdn_params(cout, beta, gamma);
          std::vector<double> ref, mag;
          if (transposed) {
            ref_deconv(in, cin, sh.h, sh.w, wt, bias, cout, k, ref, mag);
          } else {
            ref_conv2d(in, cin, sh.h, sh.w, wt, bias, cout, k, s, ref, mag);
          }
          const int64_t hw = (int64_t)ref.size() / cout;
          if (post == Post::Relu) {
            for (auto& v : ref) v = v > 0 ? v : 0;
          } else if (post == Post::Gdn || post == Post::Igdn) {
            ref_gdn(ref, mag, cout, hw, beta, gamma, post == Post::Igdn);
          }
          Gdn gdn(cout, beta.data(), gamma.data(), post == Post::Igdn);
          for (ConvAlgo algo : {ConvAlgo::Direct, ConvAlgo::Winograd, ConvAlgo::TapGemm}) {
            if (algo == ConvAlgo::TapGemm && !transposed) {
              Conv2d conv(cin, cout, k, s, wt.data(), bias.data());
              CHECK_THROWS(conv.set_algorithm(algo), Status::InvalidArgument);
              continue;
            }
            std::vector<std::vector<float>> per_mode;
            for (Isa isa : modes) {
              set_max_isa(isa);
              std::vector<float> o1(ref.size(), -7.0f), o2(ref.size(), -9.0f);
              bool ran = true;
              if (transposed) {
                ConvTranspose2d conv(cin, cout, k, s, wt.data(), bias.data());
                if (post == Post::Relu) conv.set_relu(true);
                if (post == Post::Gdn || post == Post::Igdn) conv.set_gdn(gdn);
                CHECK(conv.out_h(sh.h) * conv.out_w(sh.w) == hw);
                CHECK(conv.winograd_supported() == (k == 5));
                const bool gdn_post = post == Post::Gdn || post == Post::Igdn;
                if ((algo == ConvAlgo::Winograd && !conv.winograd_supported()) ||
                    (algo == ConvAlgo::TapGemm && (gdn_post || cout >= 16))) {
                  CHECK_THROWS(conv.set_algorithm(algo), Status::InvalidArgument);
                  ran = false;
                } else {
                  conv.set_algorithm(algo);
                  CHECK(conv.algorithm() == algo);
                  if (algo == ConvAlgo::TapGemm) CHECK_THROWS(conv.set_gdn(gdn), Status::InvalidArgument);
                  conv.run(in.data(), sh.h, sh.w, o1.data(), nullptr);
                  conv.run(in.data(), sh.h, sh.w, o2.data(), &pool2);
                }
              } else {
                Conv2d conv(cin, cout, k, s, wt.data(), bias.data());
                if (post == Post::Relu) conv.set_relu(true);
                if (post == Post::Gdn || post == Post::Igdn) conv.set_gdn(gdn);
                CHECK(conv.out_h(sh.h) * conv.out_w(sh.w) == hw);
                CHECK(conv.winograd_supported() == ((k == 5 && s == 2) || (k == 3 && s == 1)));
                if (algo == ConvAlgo::Winograd && !conv.winograd_supported()) {
                  CHECK_THROWS(conv.set_algorithm(algo), Status::InvalidArgument);
                  ran = false;
                } else {
                  conv.set_algorithm(algo);
                  CHECK(conv.algorithm() == algo);
                  conv.run(in.data(), sh.h, sh.w, o1.data(), nullptr);
                  conv.run(in.data(), sh.h, sh.w, o2.data(), &pool2);
                }
              }
              if (!ran) break;
              char what[160];
              std::snprintf(what, sizeof what, "%s k%d s%d %dx%d %d->%d post%d %s %s", transposed ? "deconv" : "conv",
                            k, s, sh.h, sh.w, cin, cout, (int)post, active_isa_name(), algo_name(algo));
              if (!close_to_ref(o1, ref, mag, 1e-5, what)) CHECK(!"float conv vs reference");
              if (!bit_equal(o1, o2)) {
                std::fprintf(stderr, "%s: 1 vs 2 threads differ\n", what);
                CHECK(!"1 vs 2 threads bit-identical");
              }
              per_mode.push_back(o1);
              if (algo == ConvAlgo::Winograd) ++wino_cases;
              if (algo == ConvAlgo::TapGemm) ++tap_cases;
            }
            for (size_t q = 1; q < per_mode.size(); ++q) {
              char what[160];
              std::snprintf(what, sizeof what, "%s k%d s%d %dx%d %d->%d post%d %s (path %s)",
                            transposed ? "deconv" : "conv", k, s, sh.h, sh.w, cin, cout, (int)post, algo_name(algo),
                            isa_name(modes[q]));
              CHECK(paths_bit_equal(per_mode[0], per_mode[q], what));
            }
          }
        }
    }
  set_force_scalar(false);
  std::printf("%s: %d cases x %zu paths ok (direct; %d Winograd runs, %d TapGemm runs)%s\n",
              transposed ? "conv_transpose2d" : "conv2d", cases, modes.size(), wino_cases, tap_cases,
              modes.size() > 1 ? ", every path == scalar bit for bit" : "");
}

// Bigger layer shapes (the codec's channel counts) against each other:
// scalar vs AVX2 (bit-identical; Auto picks the same algorithm on both) and
// 1 vs 2 threads, plus a check against the reference.
void test_float_large() {
  ThreadPool pool2(2);
  const std::vector<Isa> modes = isa_modes();
  struct L {
    bool tr;
    int cin, cout, k, s, h, w;
  };
  const L layers[] = {{false, 3, 64, 5, 2, 37, 51}, {false, 64, 36, 5, 2, 19, 23}, {false, 48, 40, 3, 1, 11, 29},
                      {true, 40, 24, 5, 2, 9, 13},  {true, 64, 3, 5, 2, 14, 10},   {false, 130, 20, 5, 2, 9, 9},
                      {false, 3, 8, 5, 2, 130, 190},  {false, 5, 6, 3, 2, 101, 77},   {false, 4, 5, 5, 1, 90, 70},
                      {true, 6, 5, 5, 2, 45, 71}};
  for (const L& l : layers) {
    const std::vector<float> in = randf((size_t)l.cin * l.h * l.w);
    const std::vector<float> wt = randf((size_t)l.cin * l.cout * l.k * l.k, -0.1f, 0.1f);
    const std::vector<float> bias = randf(l.cout);
    std::vector<double> ref, mag;
    if (l.tr)
      ref_deconv(in, l.cin, l.h, l.w, wt, bias, l.cout, l.k, ref, mag);
    else
      ref_conv2d(in, l.cin, l.h, l.w, wt, bias, l.cout, l.k, l.s, ref, mag);
    for (ConvAlgo algo : {ConvAlgo::Direct, ConvAlgo::Auto}) {
      std::vector<std::vector<float>> res;
      std::vector<ConvAlgo> chosen;
      for (Isa isa : modes) {
        set_max_isa(isa);
        std::vector<float> o1(ref.size()), o2(ref.size());
        std::vector<float> o3(ref.size()), o4(ref.size());
        if (l.tr) {
          ConvTranspose2d c(l.cin, l.cout, l.k, l.s, wt.data(), bias.data());
          c.set_algorithm(algo);
          chosen.push_back(c.algorithm());
          c.run(in.data(), l.h, l.w, o1.data(), nullptr, 0);
          c.run(in.data(), l.h, l.w, o2.data(), &pool2, 0);
          c.run(in.data(), l.h, l.w, o3.data());  // first_row unknown: Auto = Direct
          c.set_algorithm(ConvAlgo::Direct);
          c.run(in.data(), l.h, l.w, o4.data());
        } else {
          Conv2d c(l.cin, l.cout, l.k, l.s, wt.data(), bias.data());
          c.set_algorithm(algo);
          chosen.push_back(c.algorithm());
          c.run(in.data(), l.h, l.w, o1.data(), nullptr, 0);
          c.run(in.data(), l.h, l.w, o2.data(), &pool2, 0);
          c.run(in.data(), l.h, l.w, o3.data());
          c.set_algorithm(ConvAlgo::Direct);
          c.run(in.data(), l.h, l.w, o4.data());
        }
        CHECK(bit_equal(o3, o4));
        CHECK(close_to_ref(o1, ref, mag, 1e-5, "large layer"));
        CHECK(bit_equal(o1, o2));
        res.push_back(o1);
      }
      // Auto: Winograd iff supported and cin, cout >= 16; else TapGemm for a
      // transposed conv with cout < 16 (no GDN here); on every path
      const bool wino_ok = l.tr ? l.k == 5 : ((l.k == 5 && l.s == 2) || (l.k == 3 && l.s == 1));
      ConvAlgo want = ConvAlgo::Direct;
      if (algo == ConvAlgo::Auto && wino_ok && l.cin >= 16 && l.cout >= 16) want = ConvAlgo::Winograd;
      else if (algo == ConvAlgo::Auto && l.tr && l.cout < 16) want = ConvAlgo::TapGemm;
      for (ConvAlgo a : chosen) CHECK(a == want);
      for (size_t q = 1; q < res.size(); ++q) CHECK(paths_bit_equal(res[0], res[q], "large layer"));
    }
  }
  set_force_scalar(false);
  std::printf("large float layers ok\n");
}

// Strip-wise runs (first_row) reproduce the whole-image output bit for bit,
// for both algorithms, every strip offset parity and with fused IGDN.
void test_strips() {
  ThreadPool pool2(2);
  const int H = 15, W = 13, cin = 18, cout = 20;
  const std::vector<float> in = randf((size_t)cin * H * W);
  const std::vector<float> bias = randf(cout);
  std::vector<float> beta, gamma;
  make_gdn_params(cout, beta, gamma);
  const Gdn igdn(cout, beta.data(), gamma.data(), true);
  int checked = 0;
  for (Isa isa : isa_modes()) {
    set_max_isa(isa);
    for (int kind = 0; kind < 3; ++kind) {  // 0: deconv k5, 1: conv k3 s1, 2: conv k5 s2
      const int k = kind == 1 ? 3 : 5, s = kind == 2 ? 2 : 1;
      const std::vector<float> wt = randf((size_t)cin * cout * k * k, -0.2f, 0.2f);
      std::unique_ptr<ConvTranspose2d> d;
      std::unique_ptr<Conv2d> c;
      if (kind == 0) {
        d.reset(new ConvTranspose2d(cin, cout, k, 2, wt.data(), bias.data()));
        d->set_gdn(igdn);
      } else {
        c.reset(new Conv2d(cin, cout, k, s, wt.data(), bias.data()));
      }
      auto out_rows = [&](int h) { return kind == 0 ? 2 * h : (h - 1) / s + 1; };
      const int OW = kind == 0 ? 2 * W : (W - 1) / s + 1;
      for (ConvAlgo algo : {ConvAlgo::Direct, ConvAlgo::Winograd}) {
        if (d) d->set_algorithm(algo);
        if (c) c->set_algorithm(algo);
        std::vector<float> full((size_t)cout * out_rows(H) * OW);
        if (d) d->run(in.data(), H, W, full.data(), &pool2);
        if (c) c->run(in.data(), H, W, full.data(), &pool2);
        for (int a = 0; a < H; a += s)
          for (int b = a + 1; b <= H; b += 3) {
            const int h = b - a;
            std::vector<float> strip_in((size_t)cin * h * W);
            for (int ci = 0; ci < cin; ++ci)
              std::memcpy(&strip_in[(size_t)ci * h * W], &in[((size_t)ci * H + a) * W], sizeof(float) * h * W);
            std::vector<float> so((size_t)cout * out_rows(h) * OW);
            if (d) d->run(strip_in.data(), h, W, so.data(), nullptr, a);
            if (c) c->run(strip_in.data(), h, W, so.data(), nullptr, a);
            // output rows (global) whose receptive field lies inside the strip
            // (transposed Winograd: whose F(4x2) block's input rows do; blocks
            // start on input rows 2 mod 4 and read from one row above to one
            // row below them)
            int g0, g1;  // [g0, g1)
            if (kind == 0 && algo == ConvAlgo::Winograd) {
              auto block_ok = [&](int y) {
                const int B = y - ((y - 2) % 4 + 4) % 4;
                return (B - 1 >= a || a == 0) && (B + 4 < b || b == H);
              };
              g0 = 2 * H;
              g1 = 0;
              for (int y = 0; y < H; ++y)
                if (block_ok(y)) {
                  g0 = std::min(g0, 2 * y);
                  g1 = std::max(g1, 2 * y + 2);
                }
              if (g0 > g1) g0 = g1;
            } else if (kind == 0) {
              g0 = a == 0 ? 0 : 2 * (a + 1);
              g1 = b == H ? 2 * H : 2 * (b - 1);
            } else if (kind == 1) {
              g0 = a == 0 ? 0 : a + 1;
              g1 = b == H ? H : b - 1;
            } else {
              g0 = a == 0 ? 0 : (a + 2) / 2;
              g1 = b == H ? out_rows(H) : (b - 3) / 2 + 1;
            }
            const int o0 = kind == 0 ? 2 * a : a / s;  // global row of strip output row 0
            bool same = true;
            for (int co = 0; co < cout; ++co)
              for (int y = g0; y < g1; ++y)
                same = same && std::memcmp(&so[((size_t)co * out_rows(h) + (y - o0)) * OW],
                                           &full[((size_t)co * out_rows(H) + y) * OW], sizeof(float) * OW) == 0;
            if (!same)
              std::fprintf(stderr, "strip kind %d %s rows [%d, %d) differs from the whole image (%s)\n", kind,
                           algo == ConvAlgo::Winograd ? "winograd" : "direct", a, b, active_isa_name());
            CHECK(same);
            ++checked;
          }
      }
    }
  }
  set_force_scalar(false);
  std::printf("strips == whole image: %d strips ok\n", checked);
}

// TapGemm (bands of input rows, a ring of G rows): strips of any offset and
// height reproduce the whole-image rows their receptive field covers, and
// 1, 2 and 3 threads (other bandings) give the same bits.
void test_strips_tapgemm() {
  ThreadPool pool2(2), pool3(3);
  const int H = 23, W = 9, cin = 11, cout = 3;
  const std::vector<float> in = randf((size_t)cin * H * W);
  const std::vector<float> wt = randf((size_t)cin * cout * 25, -0.2f, 0.2f);
  const std::vector<float> bias = randf(cout);
  int checked = 0;
  for (Isa isa : isa_modes()) {
    set_max_isa(isa);
    for (bool relu : {false, true}) {
      ConvTranspose2d d(cin, cout, 5, 2, wt.data(), bias.data());
      d.set_relu(relu);
      d.set_algorithm(ConvAlgo::TapGemm);
      std::vector<float> full((size_t)cout * 4 * H * W), f1(full.size()), f3(full.size());
      d.run(in.data(), H, W, full.data(), &pool2, 0);
      d.run(in.data(), H, W, f1.data(), nullptr, 0);
      d.run(in.data(), H, W, f3.data(), &pool3, 0);
      CHECK(bit_equal(full, f1));
      CHECK(bit_equal(full, f3));
      for (int a = 0; a < H; a += 2)
        for (int b = a + 1; b <= H; b += 4) {
          const int h = b - a;
          std::vector<float> strip_in((size_t)cin * h * W);
          for (int ci = 0; ci < cin; ++ci)
            std::memcpy(&strip_in[(size_t)ci * h * W], &in[((size_t)ci * H + a) * W], sizeof(float) * h * W);
          std::vector<float> so((size_t)cout * 4 * h * W);
          d.run(strip_in.data(), h, W, so.data(), &pool2, a);
          const int g0 = a == 0 ? 0 : 2 * (a + 1), g1 = b == H ? 2 * H : 2 * (b - 1);
          bool same = true;
          for (int co = 0; co < cout; ++co)
            for (int y = g0; y < g1; ++y)
              same = same && std::memcmp(&so[((size_t)co * 2 * h + (y - 2 * a)) * 2 * W],
                                         &full[((size_t)co * 2 * H + y) * 2 * W], sizeof(float) * 2 * W) == 0;
          CHECK(same);
          ++checked;
        }
    }
  }
  set_force_scalar(false);
  std::printf("TapGemm strips == whole image, 1/2/3 threads identical: %d strips ok\n", checked);
}

// The decoder's synthesis chain in strips (core/hyperprior.cc): three k5
// transposed convs on the Winograd path (F(4x2) blocks, whose rounding
// mixes in input rows outside an output's receptive field) with fused IGDN,
// then the 64 -> 3 layer (TapGemm), run on latent rows [r0 - halo, r1 +
// halo) of strips of S latent rows; the kept output rows [16 r0, 16 r1) must
// equal the whole image's bit for bit with the codec's halo for S a multiple
// of its strip multiple, and (the check that the halo is needed) differ
// somewhere with one row less above, and with one row less below.
void test_synthesis_chain_strips() {
  using lmc::HyperpriorModel;
  ThreadPool pool2(2);
  const int H = 29, W = 5, c0 = 16, c = 16;
  std::vector<float> beta, gamma;
  make_gdn_params(c, beta, gamma);
  const Gdn igdn(c, beta.data(), gamma.data(), true);
  std::vector<std::unique_ptr<ConvTranspose2d>> net;
  std::vector<std::vector<float>> weights;
  for (int l = 0; l < 4; ++l) {
    const int ci = l == 0 ? c0 : c, co = l == 3 ? 3 : c;
    weights.push_back(randf((size_t)ci * co * 25, -0.3f, 0.3f));
    const std::vector<float> bias = randf(co, -0.1f, 0.1f);
    net.emplace_back(new ConvTranspose2d(ci, co, 5, 2, weights.back().data(), bias.data()));
    if (l < 3) net.back()->set_gdn(igdn);
  }
  const std::vector<float> in = randf((size_t)c0 * H * W);
  // rows [a, b) of the latent -> output rows [16a, 16b)
  auto run = [&](int a, int b) {
    std::vector<float> x((size_t)c0 * (b - a) * W);
    for (int ci = 0; ci < c0; ++ci)
      std::memcpy(&x[(size_t)ci * (b - a) * W], &in[((size_t)ci * H + a) * W], sizeof(float) * (b - a) * W);
    int h = b - a, w = W;
    int64_t row = a;
    for (int l = 0; l < 4; ++l) {
      std::vector<float> y((size_t)(l == 3 ? 3 : c) * 4 * h * w);
      net[l]->run(x.data(), h, w, y.data(), &pool2, row);
      x.swap(y);
      h *= 2;
      w *= 2;
      row *= 2;
    }
    return x;
  };
  CHECK(net[0]->algorithm() == ConvAlgo::Winograd && net[3]->algorithm() == ConvAlgo::TapGemm);
  const int halo = HyperpriorModel::kDecodeHaloRows, mult = HyperpriorModel::kDecodeStripMultiple;
  int checked = 0, differ_above = 0, differ_below = 0;
  for (Isa isa : isa_modes()) {
    set_max_isa(isa);
    const std::vector<float> full = run(0, H);
    const int OH = 16 * H, OW = 16 * W;
    for (int S : {mult, 2 * mult})
      for (int variant = 0; variant < 3; ++variant)  // the halo, one row less above, one less below
        for (int r0 = 0; r0 < H; r0 += S) {
          const int r1 = std::min(H, r0 + S);
          const int a = std::max(0, r0 - halo + (variant == 1)), b = std::min(H, r1 + halo - (variant == 2));
          const std::vector<float> so = run(a, b);
          bool same = true;
          for (int co = 0; co < 3; ++co)
            for (int y = 16 * r0; y < 16 * r1; ++y)
              same = same && std::memcmp(&so[((size_t)co * 16 * (b - a) + (y - 16 * a)) * OW],
                                         &full[((size_t)co * OH + y) * OW], sizeof(float) * OW) == 0;
          if (variant == 0) {
            CHECK(same);
            ++checked;
          }
          differ_above += variant == 1 && !same;
          differ_below += variant == 2 && !same;
        }
  }
  set_force_scalar(false);
  CHECK(differ_above > 0 && differ_below > 0);
  std::printf("synthesis chain strips == whole image: %d strips ok (with a halo one row short: %d / %d differ)\n",
              checked, differ_above, differ_below);
}

void test_gdn_standalone() {
  ThreadPool pool2(2);
  const std::vector<Isa> modes = isa_modes();
  for (int c : {1, 3, 8, 13, 64})
    for (const Shape& sh : kShapes)
      for (bool inverse : {false, true}) {
        const int64_t hw = (int64_t)sh.h * sh.w;
        const std::vector<float> x = randf((size_t)c * hw, -3.0f, 3.0f);
        std::vector<float> beta, gamma;
        make_gdn_params(c, beta, gamma);
        std::vector<double> ref(x.begin(), x.end()), mag(x.size());
        for (size_t i = 0; i < x.size(); ++i) mag[i] = std::fabs(x[i]);
        ref_gdn(ref, mag, c, hw, beta, gamma, inverse);
        Gdn g(c, beta.data(), gamma.data(), inverse);
        std::vector<std::vector<float>> res;
        for (Isa isa : modes) {
          set_max_isa(isa);
          std::vector<float> o1(x.size()), o2 = x;
          g.run(x.data(), sh.h, sh.w, o1.data());
          g.run(o2.data(), sh.h, sh.w, o2.data(), &pool2);  // in place, 2 threads
          CHECK(close_to_ref(o1, ref, mag, 1e-5, inverse ? "igdn" : "gdn"));
          CHECK(bit_equal(o1, o2));
          res.push_back(o1);
        }
        for (size_t q = 1; q < res.size(); ++q) CHECK(paths_bit_equal(res[0], res[q], inverse ? "igdn" : "gdn"));
      }
  set_force_scalar(false);
  std::printf("gdn/igdn ok\n");
}

// A diagonal gamma (what training produces) takes the per-channel path; it
// must give exactly the bits of the dense c x c product (forced with
// allow_diagonal = false), stand-alone and fused into every conv kind, on
// both kernel paths and thread counts. Off-diagonal -0.0 counts as zero; a
// zero diagonal entry and zero / huge / tiny inputs are included.
void test_gdn_diagonal() {
  ThreadPool pool2(2);
  const std::vector<Isa> modes = isa_modes();
  auto diag_params = [](int c, std::vector<float>& beta, std::vector<float>& gamma) {
    beta = randf(c, 0.5f, 1.5f);
    gamma.assign((size_t)c * c, 0.0f);
    const std::vector<float> d = randf(c, 0.0f, 0.3f);
    for (int i = 0; i < c; ++i) gamma[(size_t)i * c + i] = d[i];
    if (c > 1) gamma[1] = -0.0f;
    if (c > 2) gamma[(size_t)2 * c + 2] = 0.0f;
  };
  int cases = 0;
  for (int c : {1, 3, 8, 13, 64, 128})
    for (bool inverse : {false, true}) {
      std::vector<float> beta, gamma;
      diag_params(c, beta, gamma);
      const Gdn fast(c, beta.data(), gamma.data(), inverse);
      const Gdn dense(c, beta.data(), gamma.data(), inverse, false);
      CHECK(fast.diagonal());
      CHECK(!dense.diagonal());
      // a single non-zero off-diagonal entry makes it dense
      if (c > 1) {
        std::vector<float> g2 = gamma;
        g2[(size_t)(c - 1) * c] = 1e-30f;
        CHECK(!Gdn(c, beta.data(), g2.data(), inverse).diagonal());
      }
      const int h = 7, w = 29;
      std::vector<float> x = randf((size_t)c * h * w, -3.0f, 3.0f);
      x[0] = 0.0f;
      x[1] = -0.0f;
      x[2] = 1e30f;
      x[3] = -1e-40f;  // subnormal
      std::vector<std::vector<float>> per_mode;
      for (Isa isa : modes) {
        set_max_isa(isa);
        std::vector<float> a(x.size()), b(x.size()), a2 = x;
        fast.run(x.data(), h, w, a.data());
        dense.run(x.data(), h, w, b.data());
        fast.run(a2.data(), h, w, a2.data(), &pool2);
        CHECK(bit_equal(a, b));
        CHECK(bit_equal(a, a2));
        per_mode.push_back(a);
        ++cases;
      }
      for (size_t q = 1; q < per_mode.size(); ++q) CHECK(paths_bit_equal(per_mode[0], per_mode[q], "diagonal gdn"));
    }
  // fused: conv (direct, Winograd) and transposed conv (direct, Winograd)
  for (bool transposed : {false, true})
    for (ConvAlgo algo : {ConvAlgo::Direct, ConvAlgo::Winograd})
      for (int cout : {5, 16}) {
        const int cin = 16, k = 5, s = 2, h = 11, w = 19;
        const std::vector<float> in = randf((size_t)cin * h * w);
        const std::vector<float> wt = randf((size_t)cin * cout * k * k);
        const std::vector<float> bias = randf(cout, -0.5f, 0.5f);
        std::vector<float> beta, gamma;
        diag_params(cout, beta, gamma);
        const bool inverse = transposed;
        const Gdn fast(cout, beta.data(), gamma.data(), inverse);
        const Gdn dense(cout, beta.data(), gamma.data(), inverse, false);
        std::vector<std::vector<float>> per_mode;
        for (Isa isa : modes) {
          set_max_isa(isa);
          std::vector<float> a, b, a2;
          auto run = [&](const Gdn& g, std::vector<float>& o, ThreadPool* pool) {
            if (transposed) {
              ConvTranspose2d conv(cin, cout, k, s, wt.data(), bias.data());
              conv.set_gdn(g);
              conv.set_algorithm(algo);
              o.assign((size_t)cout * conv.out_h(h) * conv.out_w(w), -7.0f);
              conv.run(in.data(), h, w, o.data(), pool);
            } else {
              Conv2d conv(cin, cout, k, s, wt.data(), bias.data());
              conv.set_gdn(g);
              conv.set_algorithm(algo);
              o.assign((size_t)cout * conv.out_h(h) * conv.out_w(w), -7.0f);
              conv.run(in.data(), h, w, o.data(), pool);
            }
          };
          run(fast, a, nullptr);
          run(dense, b, nullptr);
          run(fast, a2, &pool2);
          CHECK(bit_equal(a, b));
          CHECK(bit_equal(a, a2));
          per_mode.push_back(a);
          ++cases;
        }
        for (size_t q = 1; q < per_mode.size(); ++q) CHECK(paths_bit_equal(per_mode[0], per_mode[q], "fused diagonal gdn"));
      }
  set_force_scalar(false);
  std::printf("diagonal gdn == dense gdn: %d cases ok\n", cases);
}

void test_elementwise() {
  ThreadPool pool2(2);
  // Same inputs on every path; the outputs are compared bit for bit across
  // paths, special values included (relu: -0 and NaN give +0 on both).
  const float specials[] = {-0.0f, 0.0f, INFINITY, -INFINITY, NAN, -NAN, 1e-40f, -1e-40f, 3.4e38f};
  std::vector<std::vector<float>> relu_in, scale_in, scale_g;
  for (int64_t n : {0, 1, 7, 8, 9, 100, 70001}) {
    std::vector<float> x = randf(n);
    for (size_t i = 0; i < x.size(); ++i)
      if (i % 5 == 2) x[i] = specials[(i / 5) % (sizeof specials / sizeof specials[0])];
    relu_in.push_back(x);
  }
  for (int c : {1, 3, 5}) {
    scale_in.push_back(randf(c * 37));
    scale_g.push_back(randf(c));
  }
  std::vector<std::vector<std::vector<float>>> per_mode;
  for (Isa isa : isa_modes()) {
    set_max_isa(isa);
    std::vector<std::vector<float>> outs;
    for (const std::vector<float>& x : relu_in) {
      const int64_t n = (int64_t)x.size();
      std::vector<float> y = x;
      relu(y.data(), n, &pool2);
      bool ok = true;
      for (int64_t i = 0; i < n; ++i) ok = ok && y[i] == (x[i] > 0 ? x[i] : 0.0f) && !std::signbit(y[i]);
      CHECK(ok);
      outs.push_back(y);
    }
    for (size_t k = 0; k < scale_in.size(); ++k) {
      const int c = (int)scale_g[k].size();
      const int64_t hw = 37;
      const std::vector<float>& x = scale_in[k];
      std::vector<float> y = x;
      scale_channels(y.data(), c, hw, scale_g[k].data(), &pool2);
      bool ok = true;
      for (int i = 0; i < c; ++i)
        for (int64_t p = 0; p < hw; ++p) ok = ok && y[i * hw + p] == x[i * hw + p] * scale_g[k][i];
      CHECK(ok);
      outs.push_back(y);
    }
    per_mode.push_back(outs);
  }
  for (size_t q = 1; q < per_mode.size(); ++q)
    for (size_t k = 0; k < per_mode[0].size(); ++k) CHECK(paths_bit_equal(per_mode[0][k], per_mode[q][k], "relu/scale"));
  set_force_scalar(false);
  std::printf("relu/scale ok\n");
}

// ---------------------------------------------------------------------------
// Integer convolutions: exact.
// ---------------------------------------------------------------------------
int32_t ref_requant(uint32_t acc, const Requant& rq) {
  const uint32_t a2 = acc + (rq.shift > 0 ? (1u << (rq.shift - 1)) : 0u);
  const int64_t sv = a2 >= 0x80000000u ? (int64_t)a2 - 4294967296LL : (int64_t)a2;
  int64_t v = sv >> rq.shift;  // int64 arithmetic shift of a value in int32 range
  if (v < rq.lo) v = rq.lo;
  if (v > rq.hi) v = rq.hi;
  return (int32_t)v;
}

void ref_conv_i16(const std::vector<int16_t>& in, int cin, int h, int w, const std::vector<int16_t>& wt,
                  const std::vector<int32_t>& bias, int cout, int k, int s, bool transposed, const Requant& rq,
                  std::vector<int32_t>& out) {
  const int p = k / 2;
  const int ho = transposed ? 2 * h : (h + 2 * p - k) / s + 1;
  const int wo = transposed ? 2 * w : (w + 2 * p - k) / s + 1;
  std::vector<int64_t> acc((size_t)cout * ho * wo);
  for (int co = 0; co < cout; ++co)
    for (int i = 0; i < ho * wo; ++i) acc[(size_t)co * ho * wo + i] = bias[co];
  if (!transposed) {
    for (int co = 0; co < cout; ++co)
      for (int oy = 0; oy < ho; ++oy)
        for (int ox = 0; ox < wo; ++ox)
          for (int ci = 0; ci < cin; ++ci)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int iy = oy * s - p + ky, ix = ox * s - p + kx;
                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                acc[((size_t)co * ho + oy) * wo + ox] += (int64_t)in[((size_t)ci * h + iy) * w + ix] *
                                                         wt[(((size_t)co * cin + ci) * k + ky) * k + kx];
              }
  } else {
    for (int ci = 0; ci < cin; ++ci)
      for (int iy = 0; iy < h; ++iy)
        for (int ix = 0; ix < w; ++ix)
          for (int co = 0; co < cout; ++co)
            for (int ky = 0; ky < k; ++ky)
              for (int kx = 0; kx < k; ++kx) {
                const int oy = 2 * iy - p + ky, ox = 2 * ix - p + kx;
                if (oy < 0 || oy >= ho || ox < 0 || ox >= wo) continue;
                acc[((size_t)co * ho + oy) * wo + ox] += (int64_t)in[((size_t)ci * h + iy) * w + ix] *
                                                         wt[(((size_t)ci * cout + co) * k + ky) * k + kx];
              }
  }
  out.resize(acc.size());
  for (size_t i = 0; i < acc.size(); ++i) out[i] = ref_requant((uint32_t)(uint64_t)acc[i], rq);
}

void test_int_conv() {
  ThreadPool pool2(2);
  const std::vector<Isa> modes = isa_modes();
  const Requant rqs[] = {{0, INT32_MIN, INT32_MAX}, {1, -1000000, 1000000}, {7, -32767, 32767},
                         {12, -40000, 5}, {31, INT32_MIN, INT32_MAX}, {20, -3, 3}};
  struct C {
    bool tr;
    int cin, cout, k, s;
    double p_ext;
  };
  const C convs[] = {{false, 1, 1, 3, 1, 0.5},  {false, 3, 5, 3, 2, 0.3},   {false, 7, 9, 5, 1, 1.0},
                     {false, 13, 6, 5, 2, 0.9}, {true, 5, 7, 5, 2, 1.0},    {true, 6, 3, 3, 2, 0.2},
                     {true, 9, 10, 5, 2, 0.0},  {false, 40, 6, 5, 2, 1.0}, {true, 33, 5, 5, 2, 1.0},
                     // 1x1 (the context model's fuses: core/context_model.h)
                     {false, 1, 3, 1, 1, 0.5},  {false, 35, 18, 1, 1, 1.0}, {false, 192, 128, 1, 1, 0.3}};
  int n = 0, wrapped = 0;
  for (const C& c : convs)
    for (const Shape& sh : kShapes) {
      if (sh.h * sh.w > 400 && c.cin * c.cout > 100) continue;
      const Requant rq = rqs[n % 6];
      ++n;
      const std::vector<int16_t> in = randi16((size_t)c.cin * sh.h * sh.w, c.p_ext);
      const std::vector<int16_t> wt = randi16((size_t)c.cin * c.cout * c.k * c.k, c.p_ext);
      std::vector<int32_t> bias(c.cout);
      std::uniform_int_distribution<int32_t> bd(INT32_MIN, INT32_MAX);
      for (auto& b : bias) b = bd(rng());
      if (n % 5 == 0) bias[0] = INT32_MAX;
      std::vector<int32_t> ref;
      ref_conv_i16(in, c.cin, sh.h, sh.w, wt, bias, c.cout, c.k, c.s, c.tr, rq, ref);
      // does this case actually wrap int32? (sum of |products| > 2^31)
      if (c.p_ext >= 0.9 && c.cin * c.k * c.k >= 9) ++wrapped;
      std::vector<std::vector<int32_t>> res;
      for (Isa isa : modes) {
        set_max_isa(isa);
        std::vector<int32_t> o1(ref.size(), 77), o2(ref.size(), 78);
        if (c.tr) {
          ConvTranspose2dI16 conv(c.cin, c.cout, c.k, c.s, wt.data(), bias.data(), rq);
          conv.run(in.data(), sh.h, sh.w, o1.data());
          conv.run(in.data(), sh.h, sh.w, o2.data(), &pool2);
        } else {
          Conv2dI16 conv(c.cin, c.cout, c.k, c.s, wt.data(), bias.data(), rq);
          conv.run(in.data(), sh.h, sh.w, o1.data());
          conv.run(in.data(), sh.h, sh.w, o2.data(), &pool2);
        }
        if (o1 != ref) {
          size_t i = 0;
          while (i < ref.size() && o1[i] == ref[i]) ++i;
          std::fprintf(stderr, "int %s k%d s%d %dx%d %d->%d %s: element %zu got %d want %d\n", c.tr ? "deconv" : "conv",
                       c.k, c.s, sh.h, sh.w, c.cin, c.cout, active_isa_name(), i, o1[i], ref[i]);
          CHECK(!"int conv == reference");
        }
        CHECK(o1 == o2);
        res.push_back(o1);
      }
      for (size_t q = 1; q < res.size(); ++q) CHECK(res[0] == res[q]);
    }
  // All-extreme case: every product is +-32767^2, the sums wrap many times.
  for (bool tr : {false, true}) {
    const int cin = 64, cout = 8, k = 5, h = 9, w = 11;
    std::vector<int16_t> in((size_t)cin * h * w, 32767), wt((size_t)cin * cout * k * k, 32767);
    for (size_t i = 0; i < wt.size(); i += 3) wt[i] = -32767;
    std::vector<int32_t> bias(cout, INT32_MAX);
    const Requant rq{3, INT32_MIN, INT32_MAX};
    std::vector<int32_t> ref;
    ref_conv_i16(in, cin, h, w, wt, bias, cout, k, 2, tr, rq, ref);
    for (Isa isa : modes) {
      set_max_isa(isa);
      std::vector<int32_t> o(ref.size());
      if (tr) {
        ConvTranspose2dI16(cin, cout, k, 2, wt.data(), bias.data(), rq).run(in.data(), h, w, o.data(), &pool2);
      } else {
        Conv2dI16(cin, cout, k, 2, wt.data(), bias.data(), rq).run(in.data(), h, w, o.data(), &pool2);
      }
      CHECK(o == ref);
    }
  }
  set_force_scalar(false);
  std::printf("int16 convs: %d cases (%d with int32 wrap-around) x %zu paths bit-exact\n", n + 2, wrapped + 2,
              modes.size());
}

// ---------------------------------------------------------------------------
// Misc
// ---------------------------------------------------------------------------
void test_bad_args() {
  const Status IA = Status::InvalidArgument;
  const std::vector<float> w(5 * 5 * 4 * 4, 0.1f), b(4, 0.0f), g(16, 0.1f);
  const std::vector<int16_t> wi(5 * 5 * 4 * 4, 1);
  std::vector<float> buf(4096);
  std::vector<int32_t> ibuf(4096);
  std::vector<int16_t> i16(4096);
  CHECK_THROWS(Conv2d(4, 4, 4, 1, w.data(), b.data()), IA);
  CHECK_THROWS(Conv2d(4, 4, 1, 1, w.data(), b.data()), IA);
  CHECK_THROWS(Conv2d(4, 4, 3, 3, w.data(), b.data()), IA);
  CHECK_THROWS(Conv2d(4, 4, 3, 0, w.data(), b.data()), IA);
  CHECK_THROWS(Conv2d(0, 4, 3, 1, w.data(), b.data()), IA);
  CHECK_THROWS(Conv2d(4, -1, 3, 1, w.data(), b.data()), IA);
  CHECK_THROWS(Conv2d(4, 4, 3, 1, nullptr, b.data()), IA);
  CHECK_THROWS(ConvTranspose2d(4, 4, 5, 1, w.data(), b.data()), IA);
  CHECK_THROWS(ConvTranspose2d(4, 4, 4, 2, w.data(), b.data()), IA);
  CHECK_THROWS(ConvTranspose2d(0, 4, 5, 2, w.data(), b.data()), IA);
  CHECK_THROWS(Gdn(0, b.data(), g.data(), false), IA);
  CHECK_THROWS(Gdn(4, nullptr, g.data(), false), IA);
  {
    Conv2d c(4, 4, 3, 1, w.data(), nullptr);  // null bias = zeros is allowed
    CHECK_THROWS(c.run(buf.data(), 0, 4, buf.data()), IA);
    CHECK_THROWS(c.run(buf.data(), 4, -2, buf.data()), IA);
    CHECK_THROWS(c.run(nullptr, 4, 4, buf.data()), IA);
    CHECK_THROWS(c.run(buf.data(), 4, 4, nullptr), IA);
    CHECK_THROWS(c.run(buf.data(), 1 << 24, 4, buf.data()), Status::LimitExceeded);
    Gdn g3(3, b.data(), g.data(), true);
    CHECK_THROWS(c.set_gdn(g3), IA);
    Gdn g4(4, b.data(), g.data(), true);
    c.set_gdn(g4);
    CHECK(c.post_op() == PostOp::Igdn);
    c.clear_post_op();
    CHECK(c.post_op() == PostOp::None);
    CHECK_THROWS(g4.run(buf.data(), 0, 1, buf.data()), IA);
  }
  {
    ConvTranspose2d d(4, 4, 5, 2, w.data(), b.data());
    CHECK_THROWS(d.run(buf.data(), 3, 0, buf.data()), IA);
  }
  CHECK_THROWS(Conv2dI16(4, 4, 3, 1, wi.data(), nullptr, Requant{32, 0, 1}), IA);
  CHECK_THROWS(Conv2dI16(4, 4, 3, 1, wi.data(), nullptr, Requant{-1, 0, 1}), IA);
  CHECK_THROWS(Conv2dI16(4, 4, 3, 1, wi.data(), nullptr, Requant{2, 5, 4}), IA);
  CHECK_THROWS(Conv2dI16(4, 4, 2, 1, wi.data(), nullptr, Requant{}), IA);
  CHECK_THROWS(Conv2dI16(4, 4, 5, 3, wi.data(), nullptr, Requant{}), IA);
  CHECK_THROWS(Conv2dI16(4, 4, 1, 2, wi.data(), nullptr, Requant{}), IA);  // 1x1: stride 1 only
  CHECK_THROWS(ConvTranspose2dI16(4, 4, 5, 1, wi.data(), nullptr, Requant{}), IA);
  CHECK_THROWS(ConvTranspose2dI16(4, 0, 5, 2, wi.data(), nullptr, Requant{}), IA);
  {
    Conv2dI16 c(4, 4, 5, 2, wi.data(), nullptr, Requant{});
    CHECK_THROWS(c.run(i16.data(), 0, 3, ibuf.data()), IA);
    CHECK_THROWS(c.run(nullptr, 3, 3, ibuf.data()), IA);
  }
  CHECK_THROWS(ThreadPool(0), IA);
  CHECK_THROWS(relu(nullptr, 5), IA);
  CHECK_THROWS(scale_channels(buf.data(), -1, 4, g.data()), IA);
  std::printf("bad arguments ok\n");
}

void test_threadpool_and_dispatch() {
  // LMCODEC_FORCE_SCALAR is read on first use (this is the first use).
  const char* env = std::getenv("LMCODEC_FORCE_SCALAR");
  const bool env_scalar = env != nullptr && env[0] != '\0' && std::string(env) != "0";
  if (env_scalar) CHECK(active_isa() == Isa::Scalar);
  // LMCODEC_KERNELS=<path> caps the initial choice the same way
  const char* kenv = std::getenv("LMCODEC_KERNELS");
  Isa kcap = kBestIsa;
  if (!env_scalar && kenv != nullptr && parse_isa(kenv, &kcap)) CHECK(static_cast<int>(active_isa()) <= static_cast<int>(kcap));
  std::printf("LMCODEC_FORCE_SCALAR=%s LMCODEC_KERNELS=%s -> initial path %s\n", env ? env : "(unset)",
              kenv ? kenv : "(unset)", active_isa_name());
  for (int n : {1, 2, 3}) {
    ThreadPool pool(n);
    CHECK(pool.size() == n);
    for (int64_t tasks : {0, 1, 2, 5, 1000}) {
      std::vector<std::atomic<int>> hits(tasks);
      for (auto& h : hits) h.store(0);
      std::atomic<bool> bad_thread{false};
      pool.parallel_for(tasks, [&](int64_t t, int th) {
        hits[t].fetch_add(1);
        if (th < 0 || th >= n) bad_thread = true;
      });
      bool once = true;
      for (auto& h : hits) once = once && h.load() == 1;
      CHECK(once);
      CHECK(!bad_thread.load());
    }
    // exceptions propagate, pool stays usable
    CHECK_THROWS(pool.parallel_for(10, [&](int64_t t, int) {
      if (t == 3) throw Error(Status::Internal, "boom");
    }), Status::Internal);
    std::atomic<int> cnt{0};
    pool.parallel_for(10, [&](int64_t, int) {
      // nested calls run inline
      pool.parallel_for(3, [&](int64_t, int) { cnt.fetch_add(1); });
    });
    CHECK(cnt.load() == 30);
  }
  // pool leases: a finished lease's pool is reused, concurrent leases get
  // their own, sizes are kept apart, bad sizes throw
  {
    ThreadPool* first = nullptr;
    {
      PoolLease a(2);
      first = a.get();
      CHECK(first->size() == 2);
      PoolLease b(2), c(3);
      CHECK(b.get() != first && c.get() != first && c.get()->size() == 3);
      std::atomic<int> cnt{0};
      b.get()->parallel_for(100, [&](int64_t, int) { cnt.fetch_add(1); });
      CHECK(cnt.load() == 100);
    }
    bool reused = false;
    for (int i = 0; i < 3; ++i) {  // the idle list holds a, b and c: one of the 2-thread ones comes back
      PoolLease d(2);
      reused = reused || d.get() == first;
      CHECK(d.get()->size() == 2);
    }
    CHECK(reused);
    CHECK_THROWS(PoolLease(0), Status::InvalidArgument);
    CHECK_THROWS(PoolLease(1025), Status::InvalidArgument);
  }
  const CpuFeatures& f = cpu_features();
  set_force_scalar(true);
  CHECK(active_isa() == Isa::Scalar);
  CHECK(std::string(active_isa_name()) == "scalar");
  CHECK(force_scalar() && max_isa() == Isa::Scalar);
  set_force_scalar(false);
  CHECK(!force_scalar() && max_isa() == kBestIsa);
  // automatic: the best path this build and CPU have
  Isa best = Isa::Scalar;
  for (Isa isa : {Isa::Simd128, Isa::Avx2, Isa::Avx512})
    if (isa_available(isa)) best = isa;
  CHECK(active_isa() == best);
  CHECK(isa_available(Isa::Scalar));
  CHECK(isa_available(Isa::Simd128) == (detail::simd128_kernels() != nullptr));
#if defined(__wasm_simd128__)
  CHECK(isa_available(Isa::Simd128) && std::string(detail::simd128_kernels()->name) == "simd128");
#else
  CHECK(!isa_available(Isa::Simd128));
#endif
  if (f.avx2 && f.fma && detail::avx2_kernels() != nullptr) CHECK(isa_available(Isa::Avx2));
  if (!detail::avx512_emulated())
    CHECK(isa_available(Isa::Avx512) ==
          (detail::avx512_kernels() != nullptr && f.avx512f && f.avx512bw && f.avx512dq && f.avx512vl && f.avx2));
  // a cap gives the best available path not above it
  const Isa below_avx2 = isa_available(Isa::Simd128) ? Isa::Simd128 : Isa::Scalar;
  set_max_isa(Isa::Avx2);
  CHECK(active_isa() == (isa_available(Isa::Avx2) ? Isa::Avx2 : below_avx2));
  CHECK(std::string(detail::active_kernels().name) == isa_name(active_isa()));
  set_max_isa(Isa::Simd128);
  CHECK(active_isa() == below_avx2);
  set_max_isa(Isa::Avx512);
  CHECK(active_isa() == best);
  Isa parsed = Isa::Scalar;
  CHECK(parse_isa("avx2", &parsed) && parsed == Isa::Avx2);
  CHECK(parse_isa("simd128", &parsed) && parsed == Isa::Simd128);
  CHECK(parse_isa("avx512", &parsed) && parsed == Isa::Avx512);
  CHECK(parse_isa("auto", &parsed) && parsed == kBestIsa);
  CHECK(parse_isa("scalar", &parsed) && parsed == Isa::Scalar);
  CHECK(!parse_isa("sse9", &parsed) && !parse_isa("", &parsed) && !parse_isa(nullptr, &parsed));
  set_max_isa(kBestIsa);
  std::printf("cpu: sse2=%d avx=%d avx2=%d fma=%d f16c=%d avx512 f/bw/dq/vl=%d/%d/%d/%d; active path: %s (%s)\n",
              f.sse2, f.avx, f.avx2, f.fma, f.f16c, f.avx512f, f.avx512bw, f.avx512dq, f.avx512vl, active_isa_name(),
              detail::active_kernels().name);
}

// ---------------------------------------------------------------------------
// Benchmark
// ---------------------------------------------------------------------------
double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}
// CPU time of the whole process (all threads), to separate kernel efficiency
// from contention with other processes on a shared machine.
double cpu_ms() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

struct BenchLayer {
  std::string name;
  enum Kind { kConv, kDeconv, kGdn } kind;
  int cin, cout, k, s, h, w;  // input size
  Post post;                  // fused post-op
};

struct BuiltLayer {
  BenchLayer spec;
  std::unique_ptr<Conv2d> conv;
  std::unique_ptr<ConvTranspose2d> deconv;
  std::unique_ptr<Gdn> gdn;
  double gmac = 0;
  int64_t out_elems = 0;
};

std::vector<BuiltLayer> build(const std::vector<BenchLayer>& specs, ConvAlgo algo) {
  std::vector<BuiltLayer> out;
  for (const BenchLayer& s : specs) {
    BuiltLayer b;
    b.spec = s;
    std::vector<float> beta, gamma;
    make_gdn_params(s.kind == BenchLayer::kGdn ? s.cin : s.cout, beta, gamma);
    const float scale = 1.0f / std::sqrt((float)s.cin * s.k * s.k);
    if (s.kind == BenchLayer::kConv) {
      std::vector<float> w = randf((size_t)s.cin * s.cout * s.k * s.k, -scale, scale), bias = randf(s.cout);
      b.conv.reset(new Conv2d(s.cin, s.cout, s.k, s.s, w.data(), bias.data()));
      b.conv->set_algorithm(algo == ConvAlgo::Winograd && !b.conv->winograd_supported() ? ConvAlgo::Direct : algo);
      if (b.conv->algorithm() == ConvAlgo::Winograd) b.spec.name += " [W]";
      const int ho = b.conv->out_h(s.h), wo = b.conv->out_w(s.w);
      b.gmac = (double)ho * wo * s.cout * s.cin * s.k * s.k * 1e-9;
      b.out_elems = (int64_t)s.cout * ho * wo;
      if (s.post == Post::Relu) b.conv->set_relu(true);
      if (s.post == Post::Gdn || s.post == Post::Igdn) {
        b.conv->set_gdn(Gdn(s.cout, beta.data(), gamma.data(), s.post == Post::Igdn));
        b.gmac += (double)ho * wo * s.cout * s.cout * 1e-9;
      }
    } else if (s.kind == BenchLayer::kDeconv) {
      std::vector<float> w = randf((size_t)s.cin * s.cout * s.k * s.k, -scale * 2, scale * 2), bias = randf(s.cout);
      b.deconv.reset(new ConvTranspose2d(s.cin, s.cout, s.k, s.s, w.data(), bias.data()));
      b.deconv->set_algorithm(algo == ConvAlgo::Winograd && !b.deconv->winograd_supported() ? ConvAlgo::Direct : algo);
      if (b.deconv->algorithm() == ConvAlgo::Winograd) b.spec.name += " [W]";
      // useful MACs: each output pixel sees k*k/4 taps on average
      b.gmac = 4.0 * s.h * s.w * s.cout * s.cin * (s.k * s.k / 4.0) * 1e-9;
      b.out_elems = (int64_t)s.cout * 4 * s.h * s.w;
      if (s.post == Post::Relu) b.deconv->set_relu(true);
      if (s.post == Post::Gdn || s.post == Post::Igdn) {
        b.deconv->set_gdn(Gdn(s.cout, beta.data(), gamma.data(), s.post == Post::Igdn));
        b.gmac += 4.0 * s.h * s.w * s.cout * s.cout * 1e-9;
      }
    } else {
      b.gdn.reset(new Gdn(s.cin, beta.data(), gamma.data(), s.post == Post::Igdn));
      b.gmac = (double)s.h * s.w * s.cin * s.cin * 1e-9;
      b.out_elems = (int64_t)s.cin * s.h * s.w;
    }
    out.push_back(std::move(b));
  }
  return out;
}

// Runs the network once; returns per-layer wall ms (and CPU ms in cpu).
std::vector<double> run_net(std::vector<BuiltLayer>& net, ThreadPool* pool, std::vector<float>& a,
                            std::vector<float>& b, std::vector<double>& cpu) {
  std::vector<double> ms;
  cpu.clear();
  for (BuiltLayer& l : net) {
    const BenchLayer& s = l.spec;
    const double t0 = now_ms(), c0 = cpu_ms();
    if (l.conv) {
      l.conv->run(a.data(), s.h, s.w, b.data(), pool, 0);  // whole image: first_row 0
    } else if (l.deconv) {
      l.deconv->run(a.data(), s.h, s.w, b.data(), pool, 0);
    } else {
      l.gdn->run(a.data(), s.h, s.w, b.data(), pool);
    }
    ms.push_back(now_ms() - t0);
    cpu.push_back(cpu_ms() - c0);
    std::swap(a, b);
  }
  return ms;
}

void bench_net(const char* title, const std::vector<BenchLayer>& specs, ConvAlgo algo) {
  std::vector<BuiltLayer> net = build(specs, algo);
  const BenchLayer& s0 = specs[0];
  std::vector<float> input = randf((size_t)s0.cin * s0.h * s0.w);
  struct Cfg {
    Isa isa;
    int threads;
  };
  std::vector<Cfg> cfgs;
  for (Isa isa : isa_modes())
    for (int t : {1, 2}) cfgs.push_back({isa, t});
  std::vector<std::vector<double>> best(cfgs.size(), std::vector<double>(net.size(), 1e30));
  std::vector<std::vector<double>> best_cpu = best;
  for (size_t c = 0; c < cfgs.size(); ++c) {
    set_max_isa(cfgs[c].isa);
    ThreadPool pool(cfgs[c].threads);
    const int reps = cfgs[c].isa == Isa::Scalar ? 2 : 6;  // first run warms the caches / buffers
    // activations preallocated: the timings exclude page faults of fresh memory
    size_t max_elems = input.size();
    for (const BuiltLayer& l : net) max_elems = std::max(max_elems, (size_t)l.out_elems);
    std::vector<float> a(max_elems), b(max_elems);
    for (int r = 0; r < reps; ++r) {
      std::copy(input.begin(), input.end(), a.begin());
      std::vector<double> cpu;
      const std::vector<double> ms = run_net(net, &pool, a, b, cpu);
      if (r == 0 && reps > 1) continue;
      for (size_t i = 0; i < ms.size(); ++i) {
        best[c][i] = std::min(best[c][i], ms[i]);
        best_cpu[c][i] = std::min(best_cpu[c][i], cpu[i]);
      }
    }
  }
  set_force_scalar(false);
  std::printf("\n%s\n", title);
  std::printf("  per config: wall ms (best of runs) / GFLOP/s (2*MAC per wall second) / GFLOP/s per busy core\n");
  std::printf("  (2*MAC per CPU second of all threads: the kernel's own speed, unaffected by other processes).\n");
  std::printf("  MAC = direct-convolution MACs (+ GDN); [W] layers use Winograd, which does ~half of them.\n");
  std::printf("%-34s %6s", "layer", "GMAC");
  for (const Cfg& c : cfgs) std::printf(" | %6s %dT             ", isa_name(c.isa), c.threads);
  std::printf("\n");
  std::vector<double> tot(cfgs.size(), 0.0), totc(cfgs.size(), 0.0);
  double gm = 0;
  for (size_t i = 0; i < net.size(); ++i) {
    std::printf("%-34s %6.3f", net[i].spec.name.c_str(), net[i].gmac);
    gm += net[i].gmac;
    for (size_t c = 0; c < cfgs.size(); ++c) {
      std::printf(" | %8.2fms %5.1f %5.1f", best[c][i], 2 * net[i].gmac / best[c][i] * 1e3,
                  2 * net[i].gmac / best_cpu[c][i] * 1e3);
      tot[c] += best[c][i];
      totc[c] += best_cpu[c][i];
    }
    std::printf("\n");
  }
  std::printf("%-34s %6.3f", "TOTAL", gm);
  for (size_t c = 0; c < cfgs.size(); ++c)
    std::printf(" | %8.2fms %5.1f %5.1f", tot[c], 2 * gm / tot[c] * 1e3, 2 * gm / totc[c] * 1e3);
  std::printf("\n");
}

// Integer (entropy-model path) layers: exact int16 x int16 -> int32.
void bench_int() {
  struct IL {
    const char* name;
    bool tr;
    int cin, cout, k, s, h, w;
  };
  const IL layers[] = {{"i16 deconv 128->128 12x8", true, 128, 128, 5, 2, 8, 12},
                       {"i16 deconv 128->128 24x16", true, 128, 128, 5, 2, 16, 24},
                       {"i16 conv 128->256 k3 s1 48x32", false, 128, 256, 3, 1, 32, 48},
                       {"i16 conv 192->128 k3 s1 48x32", false, 192, 128, 3, 1, 32, 48},
                       {"i16 conv 128->128 s2 48x32", false, 128, 128, 5, 2, 32, 48}};
  struct Cfg {
    Isa isa;
    int threads;
  };
  std::vector<Cfg> cfgs;
  for (Isa isa : isa_modes())
    for (int t : {1, 2}) cfgs.push_back({isa, t});
  std::printf("\nint16 convs (entropy-model path): wall ms / GOP/s (2*MAC per wall second)\n%-34s %6s", "layer", "GMAC");
  for (const Cfg& c : cfgs) std::printf(" | %6s %dT       ", isa_name(c.isa), c.threads);
  std::printf("\n");
  for (const IL& l : layers) {
    const std::vector<int16_t> in = randi16((size_t)l.cin * l.h * l.w, 0.0);
    const std::vector<int16_t> wt = randi16((size_t)l.cin * l.cout * l.k * l.k, 0.0);
    const std::vector<int32_t> bias(l.cout, 1000);
    const Requant rq{12, -32767, 32767};
    std::unique_ptr<Conv2dI16> c;
    std::unique_ptr<ConvTranspose2dI16> d;
    int64_t out_elems;
    double gmac;
    if (l.tr) {
      d.reset(new ConvTranspose2dI16(l.cin, l.cout, l.k, l.s, wt.data(), bias.data(), rq));
      out_elems = (int64_t)l.cout * 4 * l.h * l.w;
      gmac = 4.0 * l.h * l.w * l.cout * l.cin * (l.k * l.k / 4.0) * 1e-9;
    } else {
      c.reset(new Conv2dI16(l.cin, l.cout, l.k, l.s, wt.data(), bias.data(), rq));
      out_elems = (int64_t)l.cout * c->out_h(l.h) * c->out_w(l.w);
      gmac = (double)c->out_h(l.h) * c->out_w(l.w) * l.cout * l.cin * l.k * l.k * 1e-9;
    }
    std::vector<int32_t> out(out_elems);
    std::printf("%-34s %6.3f", l.name, gmac);
    for (const Cfg& cfg : cfgs) {
      set_max_isa(cfg.isa);
      ThreadPool pool(cfg.threads);
      double best = 1e30;
      for (int r = 0; r < (cfg.isa == Isa::Scalar ? 2 : 6); ++r) {
        const double t0 = now_ms();
        if (d) {
          d->run(in.data(), l.h, l.w, out.data(), &pool);
        } else {
          c->run(in.data(), l.h, l.w, out.data(), &pool);
        }
        if (r > 0) best = std::min(best, now_ms() - t0);
      }
      std::printf(" | %8.2fms %5.1f", best, 2 * gmac / best * 1e3);
    }
    std::printf("\n");
  }
  set_force_scalar(false);
}

int run_bench() {
  double load[3] = {0, 0, 0};
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3) load[0] = -1;
    std::fclose(f);
  }
  std::printf("lmcodec dsp benchmark; active path %s; hardware threads %d; load average %.2f\n", active_isa_name(),
              ThreadPool::hardware_threads(), load[0]);
  using K = BenchLayer;
  const std::vector<BenchLayer> synth = {
      {"deconv 192->128 48x32 +IGDN", K::kDeconv, 192, 128, 5, 2, 32, 48, Post::Igdn},
      {"deconv 128->128 96x64 +IGDN", K::kDeconv, 128, 128, 5, 2, 64, 96, Post::Igdn},
      {"deconv 128->64 192x128 +IGDN", K::kDeconv, 128, 64, 5, 2, 128, 192, Post::Igdn},
      {"deconv 64->3 384x256", K::kDeconv, 64, 3, 5, 2, 256, 384, Post::None},
  };
  const std::vector<BenchLayer> analysis = {
      {"conv 3->64 s2 768x512 +GDN", K::kConv, 3, 64, 5, 2, 512, 768, Post::Gdn},
      {"conv 64->128 s2 384x256 +GDN", K::kConv, 64, 128, 5, 2, 256, 384, Post::Gdn},
      {"conv 128->128 s2 192x128 +GDN", K::kConv, 128, 128, 5, 2, 128, 192, Post::Gdn},
      {"conv 128->192 s2 96x64", K::kConv, 128, 192, 5, 2, 64, 96, Post::None},
      {"conv 192->128 k3 s1 48x32 +relu", K::kConv, 192, 128, 3, 1, 32, 48, Post::Relu},
      {"conv 128->128 s2 48x32 +relu", K::kConv, 128, 128, 5, 2, 32, 48, Post::Relu},
      {"conv 128->128 s2 24x16", K::kConv, 128, 128, 5, 2, 16, 24, Post::None},
  };
  const std::vector<BenchLayer> gdn_only = {
      {"IGDN 128 96x64 (stand-alone)", K::kGdn, 128, 128, 1, 1, 64, 96, Post::Igdn},
      {"IGDN 64 384x256 (stand-alone)", K::kGdn, 64, 64, 1, 1, 256, 384, Post::Igdn},
  };
  bench_net("synthesis (decoder), 768x512 output, ConvAlgo::Auto", synth, ConvAlgo::Auto);
  bench_net("synthesis (decoder), 768x512 output, ConvAlgo::Direct", synth, ConvAlgo::Direct);
  bench_net("analysis (encoder) + hyper analysis, 768x512 input, ConvAlgo::Auto", analysis, ConvAlgo::Auto);
  bench_net("analysis (encoder) + hyper analysis, 768x512 input, ConvAlgo::Direct", analysis, ConvAlgo::Direct);
  bench_net("stand-alone GDN", gdn_only, ConvAlgo::Auto);
  bench_int();
  return 0;
}

}  // namespace

// Block transforms (the linear shortcut) vs a naive double reference, on
// every path and thread count, inside larger tensors (channel strides) and
// with accumulate; plus bad arguments.
void test_block_transforms() {
  // 11 x 5 blocks: synthesis groups 4, 4, 3 block rows per product with 1
  // thread and 2, 2, 2, 2, 2, 1 with 2 (results must not depend on it)
  const int cin = 3, cout = 20, b = 4, h = 44, w = 20;
  const int bh = h / b, bw = w / b;
  std::vector<float> wa = randf(size_t(cout) * cin * b * b), ba = randf(cout);
  std::vector<float> ws = randf(size_t(cout) * cin * b * b), bs = randf(cin);
  // analysis input: [cin][h][w] inside a channel stride of h*w + 7
  const int64_t in_cs = int64_t(h) * w + 7, y_cs = int64_t(bh) * bw + 5, x_cs = int64_t(h) * w + 3;
  std::vector<float> x = randf(size_t(cin) * in_cs);
  std::vector<double> ya(size_t(cout) * bh * bw), xs(size_t(cin) * h * w);
  for (int m = 0; m < cout; ++m)
    for (int r = 0; r < bh; ++r)
      for (int c0 = 0; c0 < bw; ++c0) {
        double acc = ba[m];
        for (int c = 0; c < cin; ++c)
          for (int i = 0; i < b; ++i)
            for (int j = 0; j < b; ++j)
              acc += double(wa[((size_t(m) * cin + c) * b + i) * b + j]) * x[c * in_cs + (r * b + i) * w + c0 * b + j];
        ya[(size_t(m) * bh + r) * bw + c0] = acc;
      }
  std::vector<float> y0 = randf(size_t(cout) * y_cs);  // synthesis input, channel stride y_cs
  for (int c = 0; c < cin; ++c)
    for (int r = 0; r < h; ++r)
      for (int q = 0; q < w; ++q) {
        double acc = bs[c];
        for (int m = 0; m < cout; ++m)
          acc += double(ws[((size_t(m) * cin + c) * b + r % b) * b + q % b]) * y0[m * y_cs + (r / b) * bw + q / b];
        xs[(size_t(c) * h + r) * w + q] = acc;
      }
  BlockAnalysis an(cin, cout, b, wa.data(), ba.data());
  BlockSynthesis sy(cout, cin, b, ws.data(), bs.data());
  std::vector<float> first_a, first_s;
  std::vector<std::vector<float>> path_a, path_s, path_p;  // per path (1 thread)
  for (Isa isa : isa_modes())
    for (int threads : {1, 2}) {
      set_max_isa(isa);
      ThreadPool pool(threads);
      std::vector<float> yo(size_t(cout) * y_cs, 0.5f), xo(size_t(cin) * x_cs, -0.25f);
      an.run(x.data(), in_cs, h, w, yo.data(), y_cs, true, &pool);
      sy.run(y0.data(), y_cs, bh, bw, xo.data(), x_cs, true, &pool);
      double err = 0;
      for (int m = 0; m < cout; ++m)
        for (int i = 0; i < bh * bw; ++i) err = std::max(err, std::fabs(yo[m * y_cs + i] - 0.5 - ya[size_t(m) * bh * bw + i]));
      for (int c = 0; c < cin; ++c)
        for (int i = 0; i < h * w; ++i) err = std::max(err, std::fabs(xo[c * x_cs + i] + 0.25 - xs[size_t(c) * h * w + i]));
      CHECK(err < 1e-4);
      // the gaps between channels are untouched
      for (int m = 0; m < cout; ++m)
        for (int64_t i = int64_t(bh) * bw; i < y_cs; ++i) CHECK_EQ(yo[m * y_cs + i], 0.5f);
      // no accumulate: plain result
      std::vector<float> yp(size_t(cout) * bh * bw);
      an.run(x.data(), in_cs, h, w, yp.data(), int64_t(bh) * bw, false, &pool);
      CHECK(std::fabs(yp[7] - ya[7]) < 1e-4);
      // thread count never changes a float result
      if (threads == 1) {
        first_a = yo;
        first_s = xo;
        path_a.push_back(yo);
        path_s.push_back(xo);
        path_p.push_back(yp);
      } else {
        CHECK(first_a == yo);
        CHECK(first_s == xo);
      }
    }
  // nor does the kernel path: the scalar GEMM mirrors the AVX2 FMAs
  for (size_t q = 1; q < path_a.size(); ++q) {
    CHECK(paths_bit_equal(path_a[0], path_a[q], "block analysis (accumulate)"));
    CHECK(paths_bit_equal(path_s[0], path_s[q], "block synthesis (accumulate)"));
    CHECK(paths_bit_equal(path_p[0], path_p[q], "block analysis"));
  }
  // Scalar vs AVX2 on shapes that reach every edge of the AVX2 GEMM: row
  // counts that are not multiples of 4, 24-column blocks (full, several,
  // with a masked rest of 1..23 columns), the codec's 16x16 blocks (K = 768).
  struct BT {
    int cin, cout, b, h, w;
  };
  // (AVX-512: 48-column blocks; n = 24 and 68 end in a masked 2-vector block)
  for (const BT& t : {BT{3, 5, 4, 8, 84}, BT{3, 7, 16, 32, 48}, BT{5, 3, 3, 6, 57}, BT{3, 6, 2, 4, 96},
                      BT{2, 5, 2, 4, 62}, BT{3, 9, 1, 3, 50}, BT{3, 4, 16, 16, 768}, BT{3, 5, 2, 4, 24},
                      BT{2, 3, 4, 8, 136}}) {
    const std::vector<float> w1 = randf(size_t(t.cout) * t.cin * t.b * t.b), b1 = randf(t.cout);
    const std::vector<float> w2 = randf(size_t(t.cout) * t.cin * t.b * t.b), b2 = randf(t.cin);
    const std::vector<float> xin = randf(size_t(t.cin) * t.h * t.w);
    const int bh2 = t.h / t.b, bw2 = t.w / t.b;
    const std::vector<float> yin = randf(size_t(t.cout) * bh2 * bw2);
    const BlockAnalysis a2(t.cin, t.cout, t.b, w1.data(), b1.data());
    const BlockSynthesis s2(t.cout, t.cin, t.b, w2.data(), b2.data());
    std::vector<std::vector<float>> ra, rs;
    for (Isa isa : isa_modes()) {
      set_max_isa(isa);
      std::vector<float> yo(size_t(t.cout) * bh2 * bw2, 0.125f), xo(size_t(t.cin) * bh2 * t.b * bw2 * t.b, -2.0f);
      a2.run(xin.data(), int64_t(t.h) * t.w, t.h, t.w, yo.data(), int64_t(bh2) * bw2, true);
      s2.run(yin.data(), int64_t(bh2) * bw2, bh2, bw2, xo.data(), int64_t(bh2) * t.b * bw2 * t.b, true);
      ra.push_back(yo);
      rs.push_back(xo);
    }
    for (size_t q = 1; q < ra.size(); ++q) {
      CHECK(paths_bit_equal(ra[0], ra[q], "block analysis (edge shapes)"));
      CHECK(paths_bit_equal(rs[0], rs[q], "block synthesis (edge shapes)"));
    }
  }
  set_force_scalar(false);
  {  // the codec's own shape: 3 x 16 x 16 patches <-> 192 channels
    const int M = 192, B = 16, W = 48;
    std::vector<float> w1 = randf(size_t(M) * 3 * B * B), b1 = randf(M), img = randf(size_t(3) * B * W);
    BlockAnalysis a1(3, M, B, w1.data(), b1.data());
    BlockSynthesis s1(M, 3, B, w1.data(), b1.data());
    std::vector<float> y(size_t(M) * (W / B)), x(size_t(3) * B * W);
    a1.run(img.data(), int64_t(B) * W, B, W, y.data(), W / B, false);
    s1.run(y.data(), W / B, 1, W / B, x.data(), int64_t(B) * W, false);
    double e1 = 0, e2 = 0;
    for (int m = 0; m < M; ++m)
      for (int q = 0; q < W / B; ++q) {
        double acc = b1[m];
        for (int c = 0; c < 3; ++c)
          for (int i = 0; i < B; ++i)
            for (int j = 0; j < B; ++j)
              acc += double(w1[((size_t(m) * 3 + c) * B + i) * B + j]) * img[(size_t(c) * B + i) * W + q * B + j];
        e1 = std::max(e1, std::fabs(acc - y[size_t(m) * (W / B) + q]));
      }
    for (int c = 0; c < 3; ++c)
      for (int i = 0; i < B; ++i)
        for (int j = 0; j < W; ++j) {
          double acc = b1[c];
          for (int m = 0; m < M; ++m)
            acc += double(w1[((size_t(m) * 3 + c) * B + i) * B + j % B]) * y[size_t(m) * (W / B) + j / B];
          e2 = std::max(e2, std::fabs(acc - x[(size_t(c) * B + i) * W + j]));
        }
    CHECK(e1 < 1e-3 && e2 < 1e-2);
  }
  CHECK_THROWS(BlockAnalysis(3, 4, 40, wa.data(), nullptr), Status::InvalidArgument);  // 3 * 40 * 40 > 4096
  CHECK_THROWS(BlockSynthesis(4, 3, 40, ws.data(), nullptr), Status::InvalidArgument);
  CHECK_THROWS(BlockAnalysis(0, 4, 4, wa.data(), nullptr), Status::InvalidArgument);
  CHECK_THROWS(BlockAnalysis(3, 4, 4, nullptr, nullptr), Status::InvalidArgument);
  CHECK_THROWS(BlockSynthesis(3, 4, 100, ws.data(), nullptr), Status::InvalidArgument);
  std::vector<float> out(1024);
  CHECK_THROWS(an.run(x.data(), in_cs, h + 1, w, out.data(), 64, false), Status::InvalidArgument);
}

// A correctly rounded fmaf written independently of the kernels' emulation:
// the exact a*b + c is s + e (the product is exact in double, TwoSum gives
// the error e of s = RN(p + c)); float(s) is right unless s lies exactly on
// the midpoint of two adjacent floats r, r2 and e != 0, when the exact value
// is on e's side of it.
float exact_fmaf(float a, float b, float c) {
  const double p = double(a) * double(b), s = p + double(c), v = s - p;
  const double e = (p - (s - v)) + (double(c) - v);
  const float r = static_cast<float>(s);
  if (!(e > 0.0 || e < 0.0) || std::isinf(s)) return r;  // s is exact (or inf / NaN): one rounding
  // floats as doubles, with +-inf standing for +-2^128 (the next step of the float grid)
  auto as_d = [](float f) { return std::isinf(f) ? std::copysign(std::ldexp(1.0, 128), f) : double(f); };
  const double rd = as_d(r);
  if (rd == s) return r;
  const float other = std::isinf(r) ? std::copysign(3.4028235e38f, r) : std::nextafter(r, s > rd ? INFINITY : -INFINITY);
  const double od = as_d(other);
  if (rd + od != 2.0 * s) return r;  // not a midpoint (exact double arithmetic): float(s) is right
  return ((e > 0.0) == (od > rd)) ? other : r;  // the exact value lies on e's side of the midpoint
}

// The reference fmaf of the FMA tests: the C library's when it rounds
// correctly (glibc), else exact_fmaf (emscripten's musl fmaf rounds twice).
float ref_fmaf(float a, float b, float c) {
  static const bool libc_ok = [] {
    const float u23 = std::ldexp(1.0f, -23);
    volatile float a0 = 1.0f + u23, b0 = std::ldexp(1.0f - u23, -24);  // a0*b0 + a0: just below a midpoint
    return std::fma(float(a0), float(b0), float(a0)) == 1.0f + u23;
  }();
  return libc_ok ? std::fma(a, b, c) : exact_fmaf(a, b, c);
}

// The portable path's FMA (double-precision emulation on x86 builds without
// -mfma) against a correctly rounded fmaf (ref_fmaf): ties, cancellation,
// subnormals, overflow, signed zeros, inf/NaN, and random operands.
void test_portable_fma() {
  auto same = [](float x, float y) {
    uint32_t a, b;
    std::memcpy(&a, &x, 4);
    std::memcpy(&b, &y, 4);
    return a == b || (x != x && y != y);
  };
  const float inf = INFINITY, den = 1e-40f, mx = 3.4028235e38f;
  const float special[] = {0.f, -0.f, 1.f, -1.f, 0.5f, 1.0000001f, 0.99999994f, 3.f, 1e-20f, -1e-20f, den, -den,
                           1.1754944e-38f, mx, -mx, inf, -inf, NAN, 16777216.f, 16777217.f, 0.33333334f, 1e20f};
  long bad = 0, n = 0;
  for (float a : special)
    for (float b : special)
      for (float c : special) {
        ++n;
        if (!same(detail::portable_fma(a, b, c), ref_fmaf(a, b, c))) ++bad;
      }
  // near-ties: a*b lands half an ulp away from representable sums
  std::uniform_int_distribution<uint32_t> bitsd(0, 0xFFFFFFFFu);
  std::uniform_int_distribution<int> small(-3, 3);
  for (int i = 0; i < 2000000; ++i) {
    uint32_t ua = bitsd(rng()), ub = bitsd(rng()), uc = bitsd(rng());
    float a, b, c;
    std::memcpy(&a, &ua, 4);
    std::memcpy(&b, &ub, 4);
    std::memcpy(&c, &uc, 4);
    if (i % 2) {  // comparable magnitudes (where rounding is subtle)
      a = std::ldexp(1.0f + float(ua >> 9) / 8388608.0f, small(rng()));
      b = std::ldexp(1.0f + float(ub >> 9) / 8388608.0f, small(rng()));
      const float p = a * b;
      c = (i % 4 == 1) ? -p : std::nextafter(-p, float(small(rng())));
      if (i % 8 == 3) c = std::ldexp(float(int(uc % 2048) - 1024), -30 + small(rng()));
    }
    ++n;
    if (!same(detail::portable_fma(a, b, c), ref_fmaf(a, b, c))) ++bad;
  }
  // the independent reference agrees with the libc's where that one is sound
  long ref_bad = 0;
  for (float a : special)
    for (float b : special)
      for (float c : special)
        if (!same(exact_fmaf(a, b, c), ref_fmaf(a, b, c))) ++ref_bad;
  CHECK_EQ(ref_bad, 0);
  std::printf("portable fma: %ld / %ld differ from fmaf\n", bad, n);
  CHECK_EQ(bad, 0);
}

// Every kernel table's fused multiply-add, through its dense product
// (gemm_f32 with k = 1: c = bias + a * b, one fma per element), against the C
// library's fmaf: the special values, near-ties and random operands as above,
// and the double-rounding traps of an FMA emulated in double (WebAssembly
// SIMD128 has no FMA: conv_wasm.cc rounds a*b+c to double, checks for a float
// midpoint and falls back to round-to-odd). 11 columns: the 8-wide blocks and
// the tails.
void test_kernel_fma() {
  auto bits = [](float x) {
    uint32_t u;
    std::memcpy(&u, &x, 4);
    return u;
  };
  const float inf = INFINITY, den = 1e-40f, mx = 3.4028235e38f;
  const float u23 = std::ldexp(1.0f, -23);
  std::vector<float> avals, cvals, bvals;  // row i: a = avals[i], bias = cvals[i]; 11 b per row
  auto row = [&](float a, float c, const std::vector<float>& b) {
    avals.push_back(a);
    cvals.push_back(c);
    for (int j = 0; j < 11; ++j) bvals.push_back(b[j % b.size()]);
  };
  // a*b + c lands on the midpoint between two floats in double, but the exact
  // value is off it: double rounding would round the wrong way
  const float t = std::ldexp(1.0f - u23, -24);  // (1 + 2^-23) * t = 2^-24 - 2^-70
  row(1.0f + u23, 1.0f + u23, {t, -t, t, t, t, t, t, t, t, t, t});
  row(1.0f + u23, -1.0f - u23, {-t, t, -t});
  row(-1.0f - u23, 1.0f + 2 * u23, {t, -t});
  row(1.0f, 1.0f, {std::ldexp(1.0f, -24), std::ldexp(3.0f, -24), -std::ldexp(1.0f, -24)});  // exact ties (even)
  row(1.0f, 1.0f + u23, {std::ldexp(1.0f, -24), std::ldexp(3.0f, -24)});
  row(std::ldexp(1.0f, -100), std::ldexp(3.0f, -149), {std::ldexp(1.0f, -50), std::ldexp(1.5f, -49), -std::ldexp(1.0f, -50)});
  row(std::ldexp(1.0f, 103), mx, {1.0f, 0.5f, 1.5f, -1.0f});  // the overflow threshold
  const float special[] = {0.f, -0.f, 1.f, -1.f, 0.5f, 1.0000001f, 0.99999994f, 3.f, 1e-20f, -1e-20f, den, -den,
                           1.1754944e-38f, mx, -mx, inf, -inf, NAN, 16777216.f, 16777217.f, 0.33333334f, 1e20f};
  const std::vector<float> sp(std::begin(special), std::end(special));
  const std::vector<float> sp2(sp.begin() + 11, sp.end());
  for (float a : special)
    for (float c : special) {
      row(a, c, sp);
      row(a, c, sp2);
    }
  std::uniform_int_distribution<uint32_t> bitsd(0, 0xFFFFFFFFu);
  std::uniform_int_distribution<int> small(-3, 3);
  for (int i = 0; i < 40000; ++i) {
    std::vector<float> b(11);
    float a, c;
    const uint32_t ua = bitsd(rng()), uc = bitsd(rng());
    if (i % 2) {  // comparable magnitudes: b near -c / a, a few ulps apart
      a = std::ldexp(1.0f + float(ua >> 9) / 8388608.0f, small(rng()));
      c = std::ldexp(1.0f + float(uc >> 9) / 8388608.0f, small(rng()));
      float q = -c / a;
      for (int j = 0; j < 11; ++j) {
        b[j] = q;
        q = std::nextafter(q, 0.0f);
      }
    } else {
      std::memcpy(&a, &ua, 4);
      std::memcpy(&c, &uc, 4);
      for (auto& x : b) {
        const uint32_t ub = bitsd(rng());
        std::memcpy(&x, &ub, 4);
      }
    }
    row(a, c, b);
  }
  const int m = static_cast<int>(avals.size()), n = 11;
  std::vector<float> want((size_t)m * n);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j) want[(size_t)i * n + j] = ref_fmaf(avals[i], bvals[(size_t)i * n + j], cvals[i]);
  CHECK(bits(want[0]) == bits(1.0f + u23));  // the trap is one (and the reference gets it right)
  for (Isa isa : isa_modes()) {
    set_max_isa(isa);
    const detail::KernelTable& kt = detail::active_kernels();
    std::vector<float> got((size_t)m * n, 7.0f);
    for (int i = 0; i < m; ++i) {  // one row at a time: its own a and bias
      detail::GemmJob j{};
      j.a = &avals[i];
      j.lda = 1;
      j.b = &bvals[(size_t)i * n];
      j.ldb = n;
      j.bias = &cvals[i];
      j.c = &got[(size_t)i * n];
      j.ldc = n;
      j.m = 1;
      j.n = n;
      j.k = 1;
      j.accumulate = 0;
      kt.gemm_f32(j);
    }
    long bad = 0;
    for (size_t e = 0; e < got.size(); ++e)
      if (bits(got[e]) != bits(want[e]) && !(got[e] != got[e] && want[e] != want[e])) {
        if (bad < 5)
          std::printf("  %s fma(%a, %a, %a) = %a, fmaf %a\n", kt.name, avals[e / n], bvals[e], cvals[e / n], got[e],
                      want[e]);
        ++bad;
      }
    std::printf("kernel fma (%s): %ld / %zu differ from fmaf\n", kt.name, bad, got.size());
    CHECK_EQ(bad, 0);
    // the same trap inside a direct convolution (its micro-kernels, 4- and
    // 3-channel blocks): one input channel of t, 3x3 weights zero but the
    // centre 1 + 2^-23, bias 1 + 2^-23: every output is fma(1 + 2^-23, t,
    // 1 + 2^-23) = 1 + 2^-23 (the zero taps add exact zeros)
    for (int cout : {4, 3}) {
      const int h = 9, w = 21;
      std::vector<float> in((size_t)h * w, t), wt((size_t)cout * 9, 0.0f), bias(cout, 1.0f + u23);
      for (int co = 0; co < cout; ++co) wt[(size_t)co * 9 + 4] = 1.0f + u23;
      Conv2d conv(1, cout, 3, 1, wt.data(), bias.data());
      conv.set_algorithm(ConvAlgo::Direct);
      std::vector<float> out((size_t)cout * h * w, 0.0f);
      conv.run(in.data(), h, w, out.data(), nullptr);
      long cbad = 0;
      for (float v : out) cbad += bits(v) != bits(1.0f + u23);
      if (cbad) std::printf("  %s conv trap (cout %d): %ld / %zu outputs wrong\n", kt.name, cout, cbad, out.size());
      CHECK_EQ(cbad, 0);
    }
  }
  set_max_isa(kBestIsa);
}

// Fused padding and layouts of the transposed convs: the decoder writes a
// layer's output straight into the next layer's zero-bordered input buffer
// (ConvTranspose2d::padded_input / zero_padding / run_padded, and run() into
// a TensorLayout, plain or polyphase) and must get exactly what run() gives.
void test_fused_padding() {
  ThreadPool pool2(2);
  int checked = 0;
  struct Case {
    int cin, cout, h, w;
    int64_t first_row;
    ConvAlgo algo;
  };
  const Case cases[] = {{16, 3, 5, 7, 0, ConvAlgo::Auto},     {64, 3, 9, 13, 0, ConvAlgo::Auto},
                        {8, 5, 1, 1, -1, ConvAlgo::Direct},   {20, 20, 6, 11, -1, ConvAlgo::Auto},
                        {20, 20, 6, 11, 3, ConvAlgo::Direct}, {3, 16, 4, 33, 5, ConvAlgo::Auto},
                        {20, 20, 6, 11, 2, ConvAlgo::Auto},   {20, 18, 7, 5, 3, ConvAlgo::Auto},
                        {16, 16, 1, 2, 1, ConvAlgo::Winograd}, {12, 7, 6, 5, -1, ConvAlgo::TapGemm},
                        {5, 15, 1, 3, 2, ConvAlgo::TapGemm}};
  for (Isa isa : isa_modes()) {
    set_max_isa(isa);
    for (const Case& c : cases) {
      const std::vector<float> in = randf((size_t)c.cin * c.h * c.w);
      const std::vector<float> wt = randf((size_t)c.cin * c.cout * 25, -0.3f, 0.3f);
      const std::vector<float> bias = randf(c.cout);
      ConvTranspose2d conv(c.cin, c.cout, 5, 2, wt.data(), bias.data());
      conv.set_algorithm(c.algo);
      const size_t n_out = (size_t)c.cout * 4 * c.h * c.w;
      std::vector<float> ref(n_out);
      conv.run(in.data(), c.h, c.w, ref.data(), &pool2, c.first_row);
      const ConvTranspose2d::PaddedInput p = conv.padded_input(c.h, c.w, c.first_row);
      const bool wino = conv.algorithm() == ConvAlgo::Winograd && (c.first_row >= 0 || c.algo == ConvAlgo::Winograd);
      CHECK(p.layout.split == (wino ? 2 : 1));
      for (ThreadPool* pool : {(ThreadPool*)nullptr, &pool2}) {
        std::vector<float> buf((size_t)p.total, std::numeric_limits<float>::quiet_NaN());  // garbage
        conv.zero_padding(buf.data(), c.h, c.w, c.first_row, pool);
        for (int ci = 0; ci < c.cin; ++ci)
          for (int y = 0; y < c.h; ++y)
            for (int x = 0; x < c.w; ++x) buf[(size_t)p.layout.offset(ci, y, x)] = in[((size_t)ci * c.h + y) * c.w + x];
        std::vector<float> out(n_out, -5.0f);
        conv.run_padded(buf.data(), c.h, c.w, out.data(), pool, c.first_row);
        CHECK(bit_equal(out, ref));
        ++checked;
      }
    }
    // a producer writing into another conv's padded input (plain and
    // polyphase), direct and Winograd, then the consumer: == two plain runs
    for (ConvAlgo pa : {ConvAlgo::Direct, ConvAlgo::Winograd, ConvAlgo::TapGemm})
      for (ConvAlgo ca : {ConvAlgo::Direct, ConvAlgo::Winograd, ConvAlgo::TapGemm})
        for (int64_t row0 : {0, 1, 3}) {
          // TapGemm takes fewer than 16 output channels
          const int cin = 16, mid = pa == ConvAlgo::TapGemm ? 8 : 16, cout = 8, h = 3 + (int)row0, w = 5;
          const std::vector<float> in = randf((size_t)cin * h * w);
          const std::vector<float> w1 = randf((size_t)cin * mid * 25, -0.3f, 0.3f);
          const std::vector<float> w2 = randf((size_t)mid * cout * 25, -0.3f, 0.3f);
          ConvTranspose2d a(cin, mid, 5, 2, w1.data(), nullptr), b(mid, cout, 5, 2, w2.data(), nullptr);
          a.set_algorithm(pa);
          b.set_algorithm(ca);
          std::vector<float> t((size_t)mid * 4 * h * w), ref((size_t)cout * 16 * h * w);
          a.run(in.data(), h, w, t.data(), &pool2, row0);
          b.run(t.data(), 2 * h, 2 * w, ref.data(), &pool2, 2 * row0);
          const ConvTranspose2d::PaddedInput p = b.padded_input(2 * h, 2 * w, 2 * row0);
          std::vector<float> buf((size_t)p.total, std::numeric_limits<float>::quiet_NaN());
          b.zero_padding(buf.data(), 2 * h, 2 * w, 2 * row0, &pool2);
          a.run(in.data(), h, w, buf.data(), p.layout, &pool2, row0);
          std::vector<float> out(ref.size(), -5.0f);
          b.run_padded(buf.data(), 2 * h, 2 * w, out.data(), &pool2, 2 * row0);
          if (!bit_equal(out, ref))
            std::fprintf(stderr, "fused chain %s -> %s row %d differs (%s)\n", algo_name(pa), algo_name(ca),
                         (int)row0, active_isa_name());
          CHECK(bit_equal(out, ref));
          ++checked;
        }
    // strided output: the interior equals run(), the rest is untouched
    for (ConvAlgo algo : {ConvAlgo::Direct, ConvAlgo::Winograd, ConvAlgo::TapGemm}) {
      const int cin = 16, cout = algo == ConvAlgo::TapGemm ? 8 : 16, h = 7, w = 9;
      const std::vector<float> in = randf((size_t)cin * h * w);
      const std::vector<float> wt = randf((size_t)cin * cout * 25, -0.3f, 0.3f);
      ConvTranspose2d conv(cin, cout, 5, 2, wt.data(), nullptr);
      conv.set_algorithm(algo);
      std::vector<float> ref((size_t)cout * 4 * h * w);
      conv.run(in.data(), h, w, ref.data(), &pool2, 0);
      TensorLayout lay;
      lay.top = 1;
      lay.left = 2;
      lay.row = 2 * w + 5;
      lay.cstride = lay.row * (2 * h + 3) + 7;
      std::vector<float> big((size_t)(lay.cstride * cout), 42.0f);
      conv.run(in.data(), h, w, big.data(), lay, &pool2, 0);
      bool ok = true;
      std::vector<bool> inside(big.size(), false);
      for (int co = 0; co < cout; ++co)
        for (int y = 0; y < 2 * h; ++y)
          for (int x = 0; x < 2 * w; ++x) {
            const size_t at = (size_t)lay.offset(co, y, x);
            inside[at] = true;
            ok = ok && std::memcmp(&big[at], &ref[((size_t)co * 2 * h + y) * 2 * w + x], 4) == 0;
          }
      for (size_t i = 0; i < big.size(); ++i) ok = ok && (inside[i] || big[i] == 42.0f);
      CHECK(ok);
      TensorLayout bad = lay;
      bad.row = 2 * w;  // left + 2w columns do not fit
      CHECK_THROWS(conv.run(in.data(), h, w, big.data(), bad, &pool2, 0), Status::InvalidArgument);
      ++checked;
    }
  }
  set_force_scalar(false);
  std::printf("fused padding / output layouts: %d runs bit-identical to run()\n", checked);
}

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--bench") return run_bench();
  test_portable_fma();
  test_threadpool_and_dispatch();
  test_kernel_fma();  // first: it checks how LMCODEC_FORCE_SCALAR is read on first use
  test_block_transforms();
  test_bad_args();
  test_elementwise();
  test_gdn_standalone();
  test_gdn_diagonal();
  test_float_conv(false);
  test_float_conv(true);
  test_float_large();
  test_fused_padding();
  test_strips_tapgemm();
  test_strips();
  test_synthesis_chain_strips();
  test_int_conv();
  return check_summary();
}
