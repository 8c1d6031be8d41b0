// The flat-canvas convolution path (engine/conv_flat.h, engine/conv_canvas.h)
// and Winograd's F(2x2, 3x3) built on it (engine/conv_winograd.h): the two
// kernels against their naive twins in every build this CPU runs, the AVX-512
// and AVX2 builds giving the same bits; conv2d forced onto each path against
// the naive loops on random shapes (strides 1-3, kernels 1-5, padding past
// k-1, odd and tiny images, bands of several images) and on the ResNet-18
// layers; finite differences; the same bits at 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "engine/conv_canvas.h"
#include "engine/conv_flat.h"
#include "engine/conv_winograd.h"
#include "engine/error.h"
#include "engine/cpu_dispatch.h"
#include "engine/parallel.h"
#include "tests/conv_util.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::ConvCase;
using mt::testing::ConvResult;
using mt::testing::check_conv_against_naive;
using mt::testing::check_conv_same_at_1_and_2_threads;
using mt::testing::gradcheck;
using mt::testing::max_abs;
using mt::testing::max_abs_diff;
using mt::testing::param;
using mt::testing::run_conv;
using mt::testing::rand_int;
using mt::testing::same_bits;

namespace {

struct Restore {
  int threads = num_threads();
  ~Restore() {
    set_num_threads(threads);
    cpu_dispatch::cap(cpu_dispatch::Level::Avx512);
    conv2d_force_path(ConvPath::Auto);
  }
};

// The builds this CPU can run, best first.
std::vector<cpu_dispatch::Level> builds() {
  std::vector<cpu_dispatch::Level> v;
  cpu_dispatch::cap(cpu_dispatch::Level::Avx512);
  if (cpu_dispatch::use_avx512()) v.push_back(cpu_dispatch::Level::Avx512);
  if (cpu_dispatch::use_avx2_fma()) v.push_back(cpu_dispatch::Level::Avx2);
  v.push_back(cpu_dispatch::Level::Portable);
  return v;
}

std::vector<float> uniform(size_t n, Rng& rng) {
  std::vector<float> v(n);
  for (float& f : v) f = rng.uniform() * 2 - 1;
  return v;
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

// A random kernel problem: O channels, T taps at random offsets, Q positions.
struct KernelCase {
  int O, T, bands;
  int64_t Q, in_band, dy_plane;
  std::vector<int32_t> taps;
  std::vector<float> in, w, packed, dy;
};

KernelCase random_kernel_case(Rng& rng) {
  KernelCase c;
  c.O = rand_int(rng, 1, 13);
  c.T = rand_int(rng, 1, 40);
  c.bands = rand_int(rng, 1, 3);
  c.Q = rand_int(rng, 1, 200);
  const int64_t Qr = conv_flat::round_up(c.Q, conv_flat::kLanes);
  const int spread = rand_int(rng, 1, 300);
  for (int t = 0; t < c.T; t++) c.taps.push_back((int32_t)rng.below((uint64_t)spread));
  c.in_band = spread + Qr;
  c.in = uniform((size_t)(c.in_band * c.bands), rng);
  c.w = uniform((size_t)c.O * c.T, rng);
  c.packed.resize((size_t)conv_flat::packed_size(c.O, c.T));
  conv_flat::pack_weights(c.O, c.T, [&](int o, int t) { return c.w[(size_t)o * c.T + t]; }, c.packed.data());
  c.dy_plane = Qr + rand_int(rng, 0, 20);
  c.dy = uniform((size_t)(c.dy_plane * c.O * c.bands), rng);
  return c;
}

std::vector<float> run_correlate(const KernelCase& c, bool naive) {
  const int64_t Qr = conv_flat::round_up(c.Q, conv_flat::kLanes);
  std::vector<float> out((size_t)(c.O * Qr), -7.f);
  conv_flat::Correlate k;
  k.O = c.O, k.T = c.T, k.in = c.in.data(), k.taps = c.taps.data(), k.w = c.packed.data();
  k.out = out.data(), k.out_plane = Qr, k.Q = c.Q;
  naive ? conv_flat::correlate_naive(k) : conv_flat::correlate(k);
  return out;
}

std::vector<float> run_grad_weight(const KernelCase& c, bool naive) {
  std::vector<float> dw((size_t)c.O * c.T, -7.f);
  conv_flat::GradWeight k;
  k.O = c.O, k.T = c.T, k.bands = c.bands, k.in = c.in.data(), k.in_band = c.in_band, k.taps = c.taps.data();
  k.dy = c.dy.data(), k.dy_plane = c.dy_plane, k.dy_band = c.dy_plane * c.O, k.Q = c.Q, k.dw = dw.data();
  naive ? conv_flat::grad_weight_naive(k) : conv_flat::grad_weight(k);
  return dw;
}

ConvCase random_conv_case(Rng& rng) {
  for (;;) {
    ConvCase c;
    const int N = rand_int(rng, 1, 12), C = rand_int(rng, 1, 6), O = rand_int(rng, 1, 10);
    const int kh = rand_int(rng, 1, 5), kw = rand_int(rng, 1, 5);
    const int H = rand_int(rng, 1, 13), W = rand_int(rng, 1, 21);
    c.a.stride = rand_int(rng, 1, 3);
    c.a.pad = rand_int(rng, 0, std::max(kh, kw));
    if (H + 2 * c.a.pad < kh || W + 2 * c.a.pad < kw) continue;
    c.x = {N, C, H, W};
    c.w = {O, C, kh, kw};
    c.bias = rng.below(2) == 0;
    return c;
  }
}

// conv2d (whatever path is forced) against the naive loops on random 3x3,
// stride-1, padding-1 shapes (Winograd's): N <= 9, C and O <= 20, H <= max_h,
// W <= max_w, bias on about half; `path` is the kernels conv2d_path_name must name.
void check_random_3x3(Rng& rng, int trials, int max_h, int max_w, const std::string& path) {
  for (int trial = 0; trial < trials; trial++) {
    ConvCase c;
    c.x = {rand_int(rng, 1, 9), rand_int(rng, 1, 20), rand_int(rng, 1, max_h), rand_int(rng, 1, max_w)};
    c.w = {rand_int(rng, 1, 20), c.x[1], 3, 3};
    c.a.stride = 1, c.a.pad = 1;
    c.bias = rng.below(2) == 0;
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -1, 1, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " bias " << c.bias);
    CHECK(conv2d_path_name(c.x, c.w, c.a) == path);
    const ConvResult f = run_conv(c, x, w, b, gy, rng);
    check_conv_against_naive(c, x, w, b, f, gy);
  }
}

// conv2d (whatever path is forced) against the naive loops on layer-like cases:
// x ~ U(-1, 1), w ~ U(-0.2, 0.2), no bias.
void check_layers_against_naive(const std::vector<ConvCase>& cases, Rng& rng) {
  for (const ConvCase& c : cases) {
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -0.2f, 0.2f, rng), b, gy;
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride);
    const ConvResult f = run_conv(c, x, w, b, gy, rng);
    check_conv_against_naive(c, x, w, b, f, gy);
  }
}

// conv2d's gradients (x, W, and b where the case has one) against finite differences.
void gradcheck_conv(const std::vector<ConvCase>& cases, Rng& rng) {
  for (const ConvCase& c : cases) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride << " pad " << c.a.pad);
    std::vector<Tensor> in;  // x, W (and b): reserved, which also spares GCC 12 a false -Warray-bounds
    in.reserve(3);
    in.push_back(param(c.x, rng));
    in.push_back(param(c.w, rng));
    if (c.bias) in.push_back(param({c.w[0]}, rng));
    const Conv2dArgs a = c.a;
    gradcheck([a](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a); },
              in);
  }
}

// A second backward through a 3x3 padding-1 conv2d (with bias; x [N, C, H, W],
// O outputs) adds dx, dW and db once more: the gradients come out exactly doubled.
void check_grads_accumulate(const Shape& xs, int O, Rng& rng) {
  Tensor x = param(xs, rng), w = param({O, xs[1], 3, 3}, rng), b = param({O}, rng);
  Tensor up = Tensor::uniform({xs[0], O, xs[2], xs[3]}, -1, 1, rng);
  const Conv2dArgs pad1{1, 1};
  backward(conv2d(x, w, b, pad1), up);
  const Tensor gx = x.grad().clone(), gw = w.grad().clone(), gb = b.grad().clone();
  backward(conv2d(x, w, b, pad1), up);
  INFO("x " << shape_str(xs) << " O " << O);
  CHECK(same_bits(x.grad(), mul_scalar(gx, 2.f)));
  CHECK(same_bits(w.grad(), mul_scalar(gw, 2.f)));
  CHECK(same_bits(b.grad(), mul_scalar(gb, 2.f)));
}

}  // namespace

TEST_SUITE("conv_flat") {

TEST_CASE("correlate and grad_weight equal their naive twins in every build") {
  Restore restore;
  Rng rng(31);
  for (cpu_dispatch::Level level : builds()) {
    cpu_dispatch::cap(level);
    INFO("build " << conv_flat::build_name());
    for (int trial = 0; trial < 60; trial++) {
      const KernelCase c = random_kernel_case(rng);
      INFO("O " << c.O << " T " << c.T << " Q " << c.Q << " bands " << c.bands);
      const int64_t Qr = conv_flat::round_up(c.Q, conv_flat::kLanes);
      const std::vector<float> fast = run_correlate(c, false), slow = run_correlate(c, true);
      double worst = 0;
      for (int o = 0; o < c.O; o++)
        worst = std::max(worst, max_diff(std::vector<float>(fast.begin() + o * Qr, fast.begin() + (o + 1) * Qr),
                                             std::vector<float>(slow.begin() + o * Qr, slow.begin() + (o + 1) * Qr),
                                             (size_t)Qr));
      CHECK(worst < 1e-5 * c.T);
      const std::vector<float> gf = run_grad_weight(c, false), gs = run_grad_weight(c, true);
      CHECK(max_diff(gf, gs, gf.size()) < 1e-5 * (double)(Qr * c.bands));
    }
  }
}

TEST_CASE("the AVX-512 and AVX2 builds of the flat kernels give the same bits") {
  Restore restore;
  const std::vector<cpu_dispatch::Level> b = builds();
  if (b.size() < 3) {
    MESSAGE("this CPU lacks AVX-512 or AVX2: nothing to compare");
    return;
  }
  Rng rng(32);
  for (int trial = 0; trial < 40; trial++) {
    const KernelCase c = random_kernel_case(rng);
    cpu_dispatch::cap(cpu_dispatch::Level::Avx512);
    const std::vector<float> y512 = run_correlate(c, false), w512 = run_grad_weight(c, false);
    cpu_dispatch::cap(cpu_dispatch::Level::Avx2);
    const std::vector<float> y256 = run_correlate(c, false), w256 = run_grad_weight(c, false);
    INFO("O " << c.O << " T " << c.T << " Q " << c.Q << " bands " << c.bands);
    CHECK(same_bits(y512, y256));
    CHECK(same_bits(w512, w256));
  }
}

TEST_CASE("conv2d on the flat path equals the naive loops on random shapes") {
  Restore restore;
  conv2d_force_path(ConvPath::Flat);
  Rng rng(33);
  for (int trial = 0; trial < 300; trial++) {
    const ConvCase c = random_conv_case(rng);
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -1, 1, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride << " pad " << c.a.pad
              << " bias " << c.bias);
    const ConvResult f = run_conv(c, x, w, b, gy, rng);
    check_conv_against_naive(c, x, w, b, f, gy);
  }
}

TEST_CASE("conv2d on the ResNet-18 layers equals the naive loops") {
  Restore restore;
  Rng rng(34);
  // the convolutions of resnet18 (56x56 grey, width 16) and resnet18-w32 (64x64 RGB), two images each
  std::vector<ConvCase> cases;
  for (int w : {16, 32}) {
    const int in = w == 16 ? 1 : 3, hw = w == 16 ? 28 : 32;
    cases.push_back({{2, in, 2 * hw, 2 * hw}, {w, in, 3, 3}, {2, 1}, false});  // stem
    for (int stage = 0, c = w, h = hw; stage < 4; stage++) {
      const int o = stage == 0 ? c : 2 * c, s = stage == 0 ? 1 : 2, ho = h / s;
      cases.push_back({{2, c, h, h}, {o, c, 3, 3}, {s, 1}, false});
      cases.push_back({{2, o, ho, ho}, {o, o, 3, 3}, {1, 1}, false});
      if (s == 2) cases.push_back({{2, c, h, h}, {o, c, 1, 1}, {2, 0}, false});
      c = o, h = ho;
    }
  }
  check_layers_against_naive(cases, rng);
}

TEST_CASE("conv2d on the flat path matches finite differences") {
  Restore restore;
  conv2d_force_path(ConvPath::Flat);
  Rng rng(35);
  gradcheck_conv({ConvCase{{3, 2, 5, 6}, {3, 2, 3, 3}, {1, 1}, true}, ConvCase{{2, 2, 7, 6}, {2, 2, 3, 3}, {2, 1}, true},
                  ConvCase{{3, 3, 4, 5}, {2, 3, 1, 1}, {2, 0}, false}, ConvCase{{2, 1, 6, 7}, {2, 1, 4, 2}, {3, 2}, true}},
                 rng);
}

TEST_CASE("conv2d on the flat path is bit-identical at 1 and 2 threads") {
  Restore restore;
  Rng rng(36);
  // many bands of several images each: 4x4 and 7x7 images go many to a band
  for (const ConvCase& c : {ConvCase{{37, 16, 8, 8}, {32, 16, 3, 3}, {2, 1}, true},
                            ConvCase{{37, 32, 4, 4}, {32, 32, 3, 3}, {1, 1}, false},
                            ConvCase{{21, 16, 14, 14}, {16, 16, 3, 3}, {1, 1}, true},
                            ConvCase{{21, 16, 14, 14}, {32, 16, 1, 1}, {2, 0}, false}}) {
    check_conv_same_at_1_and_2_threads(c, rng);
  }
}

TEST_CASE("conv2d on the Winograd path equals the naive loops on random 3x3 shapes") {
  Restore restore;
  conv2d_force_path(ConvPath::Winograd);
  Rng rng(37);
  check_random_3x3(rng, 150, 12, 17, "winograd");
}

TEST_CASE("conv2d on the Winograd path: ResNet-18 layers, finite differences, 1 and 2 threads") {
  Restore restore;
  conv2d_force_path(ConvPath::Winograd);
  Rng rng(38);
  check_layers_against_naive({ConvCase{{2, 16, 28, 28}, {16, 16, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 64, 7, 7}, {64, 64, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 128, 4, 4}, {128, 128, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 32, 32, 32}, {32, 32, 3, 3}, {1, 1}, false}},
                             rng);
  gradcheck_conv({ConvCase{{2, 2, 5, 6}, {3, 2, 3, 3}, {1, 1}, true}, ConvCase{{3, 3, 3, 2}, {2, 3, 3, 3}, {1, 1}, false}},
                 rng);
  for (const ConvCase& c : {ConvCase{{37, 16, 7, 7}, {32, 16, 3, 3}, {1, 1}, true},
                            ConvCase{{21, 16, 14, 13}, {16, 16, 3, 3}, {1, 1}, false}}) {
    check_conv_same_at_1_and_2_threads(c, rng);
  }
}

TEST_CASE("Winograd's tiles as matrices: the naive loops, finite differences, 1 and 2 threads, the rule") {
  Restore restore;
  conv2d_force_path(ConvPath::WinogradMatrices);
  Rng rng(39);
  // random 3x3 shapes: odd and even sides, 1x1 images, tile counts not a multiple of 16, with bias
  check_random_3x3(rng, 100, 9, 9, "winograd matrices");
  // the ResNet-18 layers it takes by shape
  check_layers_against_naive({ConvCase{{3, 128, 4, 4}, {128, 128, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 64, 8, 8}, {64, 64, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 128, 7, 7}, {128, 128, 3, 3}, {1, 1}, false}},
                             rng);
  gradcheck_conv({ConvCase{{2, 2, 5, 4}, {3, 2, 3, 3}, {1, 1}, true}, ConvCase{{3, 3, 3, 3}, {2, 3, 3, 3}, {1, 1}, false}},
                 rng);
  for (const ConvCase& c : {ConvCase{{37, 16, 4, 4}, {32, 16, 3, 3}, {1, 1}, true},
                            ConvCase{{21, 8, 7, 6}, {16, 8, 3, 3}, {1, 1}, false}}) {
    check_conv_same_at_1_and_2_threads(c, rng);
  }
  check_grads_accumulate({5, 6, 4, 5}, 7, rng);
}

TEST_CASE("Winograd's F(4x4, 3x3) as matrices: the naive loops, finite differences, 1 and 2 threads, the rule") {
  Restore restore;
  conv2d_force_path(ConvPath::Winograd4x4);
  Rng rng(41);
  // random 3x3 shapes: sides not a multiple of 4 (partial tiles), 1x1 images,
  // tile counts not a multiple of 16, with bias; at 1e-4 like F(2x2, 3x3)
  check_random_3x3(rng, 100, 13, 13, "winograd 4x4 matrices");
  // the ResNet-18 layers it takes by shape, at their widths (the rounding grows with the channels)
  check_layers_against_naive({ConvCase{{3, 256, 4, 4}, {256, 256, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 128, 8, 8}, {128, 128, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 64, 7, 7}, {64, 64, 3, 3}, {1, 1}, false},
                              ConvCase{{2, 64, 16, 16}, {64, 64, 3, 3}, {1, 1}, false}},
                             rng);
  gradcheck_conv({ConvCase{{2, 2, 5, 6}, {3, 2, 3, 3}, {1, 1}, true}, ConvCase{{3, 3, 3, 3}, {2, 3, 3, 3}, {1, 1}, false}},
                 rng);
  for (const ConvCase& c : {ConvCase{{37, 16, 4, 4}, {32, 16, 3, 3}, {1, 1}, true},
                            ConvCase{{21, 8, 7, 10}, {16, 8, 3, 3}, {1, 1}, false}}) {
    check_conv_same_at_1_and_2_threads(c, rng);
  }
  check_grads_accumulate({5, 6, 9, 5}, 7, rng);
  // the tiles' patches gathered with AVX2 shuffles or element by element (a
  // build without AVX2): the same bits, forward and weight gradient
  {
    Tensor x = Tensor::uniform({16, 5, 8, 11}, -1, 1, rng), w = Tensor::uniform({7, 5, 3, 3}, -1, 1, rng);
    Tensor dy = Tensor::uniform({16, 7, 8, 11}, -1, 1, rng);
    conv_winograd::Problem p;
    p.N = 16, p.C = 5, p.H = 8, p.W = 11, p.O = 7, p.x = x.data(), p.w = w.data(), p.m = 4, p.matrices = true;
    std::vector<Tensor> y, dw;
    for (cpu_dispatch::Level level : {cpu_dispatch::Level::Avx512, cpu_dispatch::Level::Portable}) {
      cpu_dispatch::cap(level);
      y.push_back(Tensor::empty({16, 7, 8, 11}));
      dw.push_back(Tensor::zeros({7, 5, 3, 3}));
      conv_winograd::forward(p, nullptr, y.back().data(), false);
      conv_winograd::grad_weight(p, dy.data(), dw.back().data());
    }
    cpu_dispatch::cap(cpu_dispatch::Level::Avx512);
    CHECK(same_bits(y[0], y[1]));
    CHECK(same_bits(dw[0], dw[1]));
  }
  // F(4x4, 3x3) on canvases, a tile side other than 2 or 4, or a U from outside: errors, not wrong numbers
  {
    Tensor x = Tensor::uniform({1, 2, 4, 4}, -1, 1, rng), w = Tensor::uniform({3, 2, 3, 3}, -1, 1, rng);
    Tensor y = Tensor::empty({1, 3, 4, 4}), U = Tensor::empty({16, 3, 2});
    conv_winograd::Problem p;
    p.N = 1, p.C = 2, p.H = p.W = 4, p.O = 3, p.x = x.data(), p.w = w.data(), p.m = 4;
    const char* layout = "conv_winograd: F(4x4, 3x3) takes the matrices layout and transforms its own weights (U null)";
    CHECK_THROWS_WITH_AS(conv_winograd::forward(p, nullptr, y.data(), false), layout, mt::Error);
    p.matrices = true, p.U = U.data();
    CHECK_THROWS_WITH_AS(conv_winograd::forward(p, nullptr, y.data(), false), layout, mt::Error);
    p.U = nullptr, p.m = 3;
    CHECK_THROWS_WITH_AS(conv_winograd::forward(p, nullptr, y.data(), false),
                         "conv_winograd: output tile side m = 3, not 2 or 4", mt::Error);
    Tensor dw = Tensor::zeros({3, 2, 3, 3});
    CHECK_THROWS_AS(conv_winograd::grad_weight(p, y.data(), dw.data()), mt::Error);
  }
  // Auto (engine/ops_conv.cpp, winograd_4x4): all three passes from 16 input
  // and output channels on every image size; below, the flat or direct kernels
  conv2d_force_path(ConvPath::Auto);
  const Conv2dArgs a{1, 1};
  CHECK(conv2d_path_name({64, 256, 4, 4}, {256, 256, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 128, 4, 4}, {128, 128, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 64, 4, 4}, {64, 64, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 128, 8, 8}, {128, 128, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 128, 7, 7}, {128, 128, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 64, 7, 7}, {64, 64, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 64, 16, 16}, {64, 64, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 64, 32, 32}, {64, 64, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 32, 4, 4}, {32, 32, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 32, 32, 32}, {32, 32, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 16, 28, 28}, {16, 16, 3, 3}, a) == "winograd 4x4 matrices");
  CHECK(conv2d_path_name({64, 8, 28, 28}, {16, 8, 3, 3}, a) == "flat");
  CHECK(conv2d_path_name({64, 16, 28, 28}, {8, 16, 3, 3}, a) == "direct");
  CHECK(conv2d_path_name({64, 32, 32, 32}, {32, 32, 3, 3}, {1, 0}) == "flat");  // padding 0: not Winograd's
  // and the auto choice computes what the naive loops do (an image side a multiple of 4 and not)
  check_layers_against_naive({ConvCase{{4, 64, 8, 8}, {64, 64, 3, 3}, {1, 1}, false},
                              ConvCase{{4, 64, 7, 7}, {64, 64, 3, 3}, {1, 1}, false}},
                             rng);
}

// F(4x4, 3x3)'s matrices block by block (conv_winograd::Problem::tile_block):
// y and dW for one problem, at a block size and a thread count.
struct BlockRun {
  Tensor y, dw;
};
BlockRun run_blocks(conv_winograd::Problem p, int tile_block, int threads, const Tensor& dy) {
  set_num_threads(threads);
  p.tile_block = tile_block;
  BlockRun r{Tensor::empty(dy.shape()), Tensor::zeros({p.O, p.C, 3, 3})};
  conv_winograd::forward(p, nullptr, r.y.data(), false);
  conv_winograd::grad_weight(p, dy.data(), r.dw.data());
  return r;
}

TEST_CASE("Winograd's F(4x4, 3x3) in blocks of tiles: any block size, the naive loops, runs of blocks, 1 and 2 threads") {
  Restore restore;
  Rng rng(43);
  // Blocks of 16 to 112 tiles and the default (64 forward, 128 weight gradient)
  // on a batch of 496 tiles (a last, shorter block; at 16 tiles the weight
  // gradient's 31 blocks in 16 runs of 1 or 2), against the naive loops; the
  // same bits at 1 and 2 threads for each block size.
  {
    const int N = 31, C = 16, O = 24, H = 13, W = 15;  // 4 x 4 tiles per image, partial at the edges
    Tensor x = Tensor::uniform({N, C, H, W}, -1, 1, rng), w = Tensor::uniform({O, C, 3, 3}, -0.3f, 0.3f, rng);
    Tensor dy = Tensor::uniform({N, O, H, W}, -1, 1, rng);
    const Tensor y_ref = conv2d_naive(x, w, Tensor(), {1, 1});
    const Tensor dw_ref = conv2d_backward_naive(x, w, dy, {1, 1}).dW;
    conv_winograd::Problem p;
    p.N = N, p.C = C, p.H = H, p.W = W, p.O = O, p.x = x.data(), p.w = w.data(), p.m = 4, p.matrices = true;
    for (int tb : {0, 16, 32, 48, 112}) {
      INFO("tile_block " << tb);
      const BlockRun one = run_blocks(p, tb, 1, dy), two = run_blocks(p, tb, 2, dy);
      CHECK(max_abs_diff(one.y, y_ref) < 1e-4 * std::max(1.0, max_abs(y_ref)));
      CHECK(max_abs_diff(one.dw, dw_ref) < 1e-4 * std::max(1.0, max_abs(dw_ref)));
      CHECK(same_bits(one.y, two.y));
      CHECK(same_bits(one.dw, two.dw));
    }
  }
  // 192 channels: a run's dU (36 x 192 x 192 floats) allows only 3 runs in 16 MB;
  // 4 blocks of 16 tiles fall into runs of 1, 1 and 2. Against one block in one run.
  {
    const int N = 64, C = 192, O = 192, H = 4, W = 4;
    Tensor x = Tensor::uniform({N, C, H, W}, -1, 1, rng), w = Tensor::uniform({O, C, 3, 3}, -0.1f, 0.1f, rng);
    Tensor dy = Tensor::uniform({N, O, H, W}, -1, 1, rng);
    conv_winograd::Problem p;
    p.N = N, p.C = C, p.H = H, p.W = W, p.O = O, p.x = x.data(), p.w = w.data(), p.m = 4, p.matrices = true;
    const BlockRun whole = run_blocks(p, 64, 1, dy), one = run_blocks(p, 16, 1, dy), two = run_blocks(p, 16, 2, dy);
    CHECK(max_abs_diff(one.y, whole.y) <= 1e-5 * max_abs(whole.y));
    CHECK(max_abs_diff(one.dw, whole.dw) <= 1e-5 * max_abs(whole.dw));
    CHECK(same_bits(one.y, two.y));
    CHECK(same_bits(one.dw, two.dw));
  }
  // The blocks by shape: 64 tiles (forward) and 128 (weight gradient), or,
  // where those leave an odd number of blocks, whole blocks of an even count
  // (a 28x28 batch of 64: 3136 tiles, 28 blocks of 112 for both); an odd
  // number of 16-tile groups, or a single block, keeps the targets. Such a
  // batch against the naive loops and at 1 and 2 threads.
  {
    conv_winograd::Problem p;
    p.C = p.O = 16, p.m = 4, p.matrices = true;
    const auto blocks = [&](int N, int H) {
      p.N = N, p.H = p.W = H;
      return std::make_pair(conv_winograd::block_tiles(p, false), conv_winograd::block_tiles(p, true));
    };
    CHECK(blocks(64, 28) == std::make_pair(112, 112));
    CHECK(blocks(64, 14) == std::make_pair(64, 128));   // 1024 tiles: 16 and 8 blocks
    CHECK(blocks(63, 28) == std::make_pair(64, 128));   // 3087 tiles, 193 groups of 16
    CHECK(blocks(64, 4) == std::make_pair(64, 128));    // 64 tiles: one block
    CHECK(blocks(32, 28) == std::make_pair(112, 112));  // 1568 tiles: 25 and 13 blocks, or 14 of 112
    CHECK(blocks(36, 28) == std::make_pair(64, 128));   // 1764 tiles, 111 groups (28 blocks of 64: even)
    p.tile_block = 32;
    CHECK(blocks(64, 28) == std::make_pair(32, 32));
    const int N = 32, C = 16, O = 16, H = 28, W = 28;
    Tensor x = Tensor::uniform({N, C, H, W}, -1, 1, rng), w = Tensor::uniform({O, C, 3, 3}, -0.3f, 0.3f, rng);
    Tensor dy = Tensor::uniform({N, O, H, W}, -1, 1, rng);
    const Tensor y_ref = conv2d_naive(x, w, Tensor(), {1, 1});
    const Tensor dw_ref = conv2d_backward_naive(x, w, dy, {1, 1}).dW;
    p.N = N, p.C = C, p.H = H, p.W = W, p.O = O, p.x = x.data(), p.w = w.data(), p.tile_block = 0;
    const BlockRun one = run_blocks(p, 0, 1, dy), two = run_blocks(p, 0, 2, dy);
    CHECK(max_abs_diff(one.y, y_ref) < 1e-4 * std::max(1.0, max_abs(y_ref)));
    CHECK(max_abs_diff(one.dw, dw_ref) < 1e-4 * std::max(1.0, max_abs(dw_ref)));
    CHECK(same_bits(one.y, two.y));
    CHECK(same_bits(one.dw, two.dw));
  }
  // a block that is not a positive multiple of 16: an error naming it
  {
    Tensor x = Tensor::uniform({1, 2, 4, 4}, -1, 1, rng), w = Tensor::uniform({3, 2, 3, 3}, -1, 1, rng);
    Tensor y = Tensor::empty({1, 3, 4, 4});
    conv_winograd::Problem p;
    p.N = 1, p.C = 2, p.H = p.W = 4, p.O = 3, p.x = x.data(), p.w = w.data(), p.m = 4, p.matrices = true;
    p.tile_block = 24;
    CHECK_THROWS_WITH_AS(conv_winograd::forward(p, nullptr, y.data(), false),
                         "conv_winograd: tile_block = 24, not 0 or a positive multiple of 16", mt::Error);
    p.tile_block = -16;
    CHECK_THROWS_WITH_AS(conv_winograd::forward(p, nullptr, y.data(), false),
                         "conv_winograd: tile_block = -16, not 0 or a positive multiple of 16", mt::Error);
  }
}

TEST_CASE("Winograd's input gradient reads the forward's transformed weights: the same bits as transforming") {
  // The flipped kernel's U is the forward's, transposed and its tile elements
  // permuted (conv_winograd.cpp, flipped_xi): exact, so dx is bit-identical on
  // canvases (and, with this OpenBLAS, as matrices too).
  Rng rng(71);
  for (bool matrices : {false, true})
    for (const std::array<int, 4>& shape : {std::array<int, 4>{3, 5, 8, 7}, std::array<int, 4>{16, 64, 4, 48}}) {
      // (not a structured binding: clang's C++17 rejects one inside INFO's lambda)
      const int N = shape[0], C = shape[1], H = shape[2], O = shape[3];
      Tensor w = Tensor::uniform({O, C, 3, 3}, -1, 1, rng), dy = Tensor::uniform({N, O, H, H}, -1, 1, rng);
      conv_winograd::Problem f;  // the forward: x [N, C, H, H] -> [N, O, H, H]
      f.N = N, f.C = C, f.H = f.W = H, f.O = O, f.w = w.data(), f.matrices = matrices;
      Tensor U = Tensor::empty({16, O, C});
      conv_winograd::transform_weights(f, U.data());
      conv_winograd::Problem q;  // dx = the flipped problem on dy
      q.N = N, q.C = O, q.H = q.W = H, q.O = C, q.x = dy.data(), q.w = w.data(), q.flip = true, q.matrices = matrices;
      Tensor dx = Tensor::empty({N, C, H, H}), dx_u = Tensor::empty({N, C, H, H});
      conv_winograd::forward(q, nullptr, dx.data(), false);
      q.U = U.data();
      conv_winograd::forward(q, nullptr, dx_u.data(), false);
      INFO("matrices " << matrices << " C " << C << " O " << O);
      if (matrices)  // sgemm reads the forward's U transposed: its bits are OpenBLAS's business
        CHECK(max_abs_diff(dx, dx_u) <= 1e-5 * std::max(1.0, max_abs(dx)));
      else
        CHECK(same_bits(dx, dx_u));
    }
}

TEST_CASE("grouped columns: small outputs' gradients, several samples per sgemm") {
  Restore restore;
  Rng rng(37);
  // Auto: the flat forward, both gradients on columns of S samples side by
  // side (K = C kh kw >= 512 and at most 16 output positions, or 64 with
  // stride 2), and at stride 2 and 16 positions the forward too; N past S
  // leaves a last, shorter product; bias on some.
  const std::vector<std::pair<ConvCase, std::string>> chosen = {
      {{{20, 64, 6, 6}, {16, 64, 3, 3}, {1, 0}, true}, "flat (dx columns x16, dW columns x16)"},
      {{{6, 64, 16, 16}, {16, 64, 3, 3}, {2, 1}, false}, "flat (dx columns x4, dW columns x4)"},
      {{{5, 64, 8, 8}, {16, 64, 3, 3}, {2, 1}, true}, "columns x5"},
      {{{5, 64, 10, 10}, {16, 64, 3, 3}, {2, 1}, true}, "flat (dx columns x5, dW columns x5)"},  // 25 positions
      {{{20, 512, 2, 2}, {4, 512, 1, 1}, {1, 0}, true}, "columns x20"},  // 1x1: x copied as columns
      {{{3, 32, 14, 14}, {64, 32, 3, 3}, {2, 1}, false}, "flat"},          // K = 288: the flat kernels
      // stride 1, padding 1, 49 positions: Winograd's F(4x4, 3x3) from 16 channels (8: flat)
      {{{3, 64, 7, 7}, {64, 64, 3, 3}, {1, 1}, false}, "winograd 4x4 matrices"},
      {{{3, 32, 7, 7}, {32, 32, 3, 3}, {1, 1}, false}, "winograd 4x4 matrices"},
      {{{3, 8, 7, 7}, {32, 8, 3, 3}, {1, 1}, false}, "flat"},
  };
  for (const auto& entry : chosen) {
    const ConvCase& c = entry.first;  // (not a structured binding: clang's C++17 INFO cannot capture one)
    const std::string& name = entry.second;
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride);
    CHECK(conv2d_path_name(c.x, c.w, c.a) == name);
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -0.2f, 0.2f, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
    check_conv_against_naive(c, x, w, b, run_conv(c, x, w, b, gy, rng), gy);
    check_conv_same_at_1_and_2_threads(c, rng);
  }
  // Forced onto the columns, the forward groups samples too.
  conv2d_force_path(ConvPath::Columns);
  for (const ConvCase& c : {ConvCase{{20, 64, 4, 4}, {8, 64, 3, 3}, {1, 1}, true},
                            ConvCase{{6, 64, 16, 16}, {8, 64, 3, 3}, {2, 1}, true}}) {
    INFO("forced: x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride);
    CHECK(conv2d_path_name(c.x, c.w, c.a).rfind("columns x", 0) == 0);
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -0.2f, 0.2f, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
    check_conv_against_naive(c, x, w, b, run_conv(c, x, w, b, gy, rng), gy);
    check_conv_same_at_1_and_2_threads(c, rng);
  }
  conv2d_force_path(ConvPath::Auto);
  // Gradients accumulate: a second backward adds each of dx, dW and db once
  // more (dx: each sample's taps summed in a padded plane, then added), so all
  // three double exactly.
  Tensor x = param({20, 64, 6, 6}, rng), w = param({16, 64, 3, 3}, rng), b = param({16}, rng);
  Tensor up = Tensor::uniform({20, 16, 4, 4}, -1, 1, rng);
  Conv2dArgs a;
  REQUIRE(conv2d_path_name(x.shape(), w.shape(), a) == "flat (dx columns x16, dW columns x16)");
  backward(conv2d(x, w, b, a), up);
  const Tensor gx = x.grad().clone(), gw = w.grad().clone(), gb = b.grad().clone();
  backward(conv2d(x, w, b, a), up);
  CHECK(same_bits(x.grad(), mul_scalar(gx, 2.f)));
  CHECK(same_bits(w.grad(), mul_scalar(gw, 2.f)));
  CHECK(same_bits(b.grad(), mul_scalar(gb, 2.f)));
}

TEST_CASE("canvas plans: images per band and the grid of a band") {
  // 4x4 outputs of a 3x3 stride-1 conv: images share one zero column, 5 columns each
  // (64 images in bands of 13 would be 5 bands: evened to 6 bands of 11, the last of 9)
  const conv_canvas::Geometry g{64, 8, 4, 4, 8, 3, 3, 1, 1, 4, 4};
  CHECK(conv_canvas::images_per_band(g) == 11);
  const int G = 13;
  const conv_canvas::Plan P = conv_canvas::make_plan(g, G);
  CHECK(P.Sw == 5);
  CHECK(P.ld == 12 * 5 + 6);
  CHECK(P.Q == 3 * P.ld + 12 * 5 + 4);
  CHECK(P.dx.size() == 1);
  // 7x7 images, 1024 positions a band: 19 images (8 x 7 positions each) would
  // make bands of 19, 19, 19, 7, computing 76 images' grids; evened out, 4 x 16
  const conv_canvas::Geometry g7{64, 64, 7, 7, 64, 3, 3, 1, 1, 7, 7};
  CHECK(conv_canvas::images_per_band(g7, 1024) == 16);
  // ResNet-18's [64,16,28,28] -> 32, stride 2: 13 bands of 5 evened to 16 of 4
  const conv_canvas::Geometry g28{64, 16, 28, 28, 32, 3, 3, 2, 1, 14, 14};
  CHECK(conv_canvas::images_per_band(g28) == 4);
  // any batch: bands of G images and a last band less than one image per band
  // short, an even number of them where fewer images a band (at most twice the
  // bands) allow it
  for (int N = 1; N <= 100; N++) {
    conv_canvas::Geometry gn = g7;
    gn.N = N;
    const int Gn = conv_canvas::images_per_band(gn, 1024), bands = (N + Gn - 1) / Gn;
    INFO("N = " << N << ", " << bands << " bands of " << Gn);
    CHECK(Gn <= 19);
    CHECK(bands * Gn - N < bands);
    bool even_reachable = false;
    for (int G2 = 1; G2 <= Gn; G2++) {
      const int b2 = (N + G2 - 1) / G2;
      even_reachable = even_reachable || (b2 % 2 == 0 && b2 <= 2 * ((N + 18) / 19));
    }
    CHECK((bands % 2 == 0 || bands == 1 || !even_reachable));
  }
  // stride 2, 1x1: one phase plane of the even rows and columns, images back to back
  const conv_canvas::Plan S = conv_canvas::make_plan({4, 8, 8, 8, 16, 1, 1, 2, 0, 4, 4}, 4);
  CHECK(S.phases == 1);
  CHECK(S.Sw == 4);
  CHECK(S.dx.size() == 4);  // dx has four phases, three of them without taps (zeros)
}

}  // TEST_SUITE
