// The direct stride-1 convolution kernels (engine/conv_direct.cpp) behind
// conv2d: forward and all three gradients against the naive loops on many
// shapes (row widths around multiples of 8, padding up to and past k-1, the
// column path's strides beside them), finite differences, the AVX2 and the
// portable builds giving the same bits, and the same bits at 1 and 2 threads.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "engine/cpu_dispatch.h"
#include "engine/conv_direct.h"
#include "engine/parallel.h"
#include "tests/conv_util.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::ConvCase;
using mt::testing::ConvResult;
using mt::testing::check_conv_against_naive;
using mt::testing::check_conv_same_at_1_and_2_threads;
using mt::testing::run_conv;
using mt::testing::same_bits;
using mt::testing::gradcheck;
using mt::testing::max_abs;
using mt::testing::max_abs_diff;
using mt::testing::param;
using mt::testing::rand_int;

namespace {

// A random case; stride 1 three times in four (the direct path).
ConvCase random_case(Rng& rng) {
  ConvCase c;
  for (;;) {
    const int N = rand_int(rng, 1, 10), C = rand_int(rng, 1, 5), O = rand_int(rng, 1, 9);
    const int kh = rand_int(rng, 1, 5), kw = rand_int(rng, 1, 5);
    const int H = rand_int(rng, 1, 14), W = rand_int(rng, 1, 26);  // output rows of 1..26 columns: 0-3 units, tails
    c.a.stride = rng.below(4) == 0 ? rand_int(rng, 2, 3) : 1;
    c.a.pad = rand_int(rng, 0, std::max(kh, kw));  // up to k: past k-1 takes the column path's dX
    if (H + 2 * c.a.pad < kh || W + 2 * c.a.pad < kw) continue;
    c.x = {N, C, H, W};
    c.w = {O, C, kh, kw};
    c.bias = rng.below(3) != 0;
    return c;
  }
}

struct ThreadsGuard {
  int prev = num_threads();
  ~ThreadsGuard() { set_num_threads(prev); }
};

struct PortableGuard {
  ~PortableGuard() { cpu_dispatch::force_portable(false); }
};

}  // namespace

TEST_SUITE("conv_direct") {

TEST_CASE("conv2d forward and gradients equal the naive loops on random shapes") {
  Rng rng(21);
  for (int trial = 0; trial < 300; trial++) {
    const ConvCase c = random_case(rng);
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -1, 1, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng);
    Tensor gy;
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride << " pad " << c.a.pad
              << " bias " << c.bias);
    const ConvResult f = run_conv(c, x, w, b, gy, rng);
    check_conv_against_naive(c, x, w, b, f, gy);
  }
}

TEST_CASE("conv2d on the MultiLeNet and MDMTN shapes equals the naive loops") {
  Rng rng(22);
  for (const ConvCase& c : {ConvCase{{12, 1, 28, 28}, {10, 1, 5, 5}, {}, true}, ConvCase{{12, 10, 12, 12}, {20, 10, 5, 5}, {}, true},
                        ConvCase{{12, 1, 28, 28}, {20, 1, 5, 5}, {}, true}, ConvCase{{4, 3, 32, 32}, {16, 3, 3, 3}, {1, 1}, true},
                        ConvCase{{4, 16, 16, 16}, {8, 16, 3, 3}, {1, 1}, false}}) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " pad " << c.a.pad);
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -0.3f, 0.3f, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
    const ConvResult f = run_conv(c, x, w, b, gy, rng);
    check_conv_against_naive(c, x, w, b, f, gy);
  }
}

TEST_CASE("conv2d backward: the direct dW beside the column dX keeps its staged dy alive") {
  // pad > kh-1 sends dX through columns while dW stays direct, and Wo = 5 (not
  // a multiple of 8) makes dW read dy from a staged copy. The column gradient
  // (K*P = 375 floats) is larger than that copy (40 floats): asked for in the
  // copy's scratch slot, it grew the slot and freed the copy before dW read
  // it (a heap-use-after-free that AddressSanitizer reports; without it the
  // freed memory usually still held the data). On a fresh thread, whose
  // scratch slots start empty, so a slot must grow.
  const ConvCase c{{1, 5, 3, 5}, {1, 5, 1, 3}, {1, 1}, false};
  Rng rng(25);
  Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -1, 1, rng), gy;
  ConvResult f;
  std::thread([&] { f = run_conv(c, x, w, Tensor(), gy, rng); }).join();
  check_conv_against_naive(c, x, w, Tensor(), f, gy);
}

TEST_CASE("stride-1 conv2d gradients match finite differences") {
  Rng rng(23);
  // widths around a unit of 8 columns, padding below, at and past k-1
  for (const ConvCase& c : {ConvCase{{2, 2, 6, 12}, {3, 2, 3, 3}, {1, 0}, true}, ConvCase{{2, 1, 5, 13}, {2, 1, 3, 5}, {1, 2}, true},
                        ConvCase{{1, 3, 4, 9}, {2, 3, 2, 2}, {1, 1}, false}, ConvCase{{2, 2, 4, 5}, {3, 2, 3, 3}, {1, 3}, true},
                        ConvCase{{3, 2, 8, 8}, {2, 2, 5, 1}, {1, 0}, true}}) {
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " pad " << c.a.pad);
    std::vector<Tensor> in = {param(c.x, rng), param(c.w, rng)};
    if (c.bias) in.push_back(param({c.w[0]}, rng));
    const Conv2dArgs a = c.a;
    gradcheck([a](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a); },
              in);
  }
}

TEST_CASE("the AVX2 and the portable builds of the kernels give the same bits") {
  PortableGuard guard;
  if (!cpu_dispatch::use_avx2()) {
    MESSAGE("no AVX2 on this machine: only the portable build runs");
    return;
  }
  Rng rng(24);
  for (int trial = 0; trial < 40; trial++) {
    ConvCase c = random_case(rng);
    c.a.stride = 1;
    if (c.x[2] + 2 * c.a.pad < c.w[2] || c.x[3] + 2 * c.a.pad < c.w[3]) continue;
    Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -1, 1, rng);
    Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
    cpu_dispatch::force_portable(false);
    const ConvResult avx = run_conv(c, x, w, b, gy, rng);
    cpu_dispatch::force_portable(true);
    const ConvResult port = run_conv(c, x, w, b, gy, rng);
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " pad " << c.a.pad);
    CHECK(same_bits(avx.y, port.y));
    CHECK(same_bits(avx.dx, port.dx));
    CHECK(same_bits(avx.dW, port.dW));
  }
}

TEST_CASE("stride-1 conv2d is bit-identical at 1 and 2 threads") {
  ThreadsGuard guard;
  Rng rng(25);
  // 40 samples: several chunks, so the chunked dW/db reduction is exercised;
  // 11 columns: every row ends in a tail unit; pad 1 stages x and dy.
  for (const ConvCase& c : {ConvCase{{40, 3, 11, 11}, {6, 3, 3, 3}, {1, 1}, true},
                        ConvCase{{40, 10, 12, 12}, {20, 10, 5, 5}, {1, 0}, true}}) {
    check_conv_same_at_1_and_2_threads(c, rng);  // both cases have a bias: db checked too
  }
}

TEST_CASE("conv2d_backward_naive on a hand-computed case") {
  // x = 1..9 in a 3x3 image, W = 2x2 of ones, gy = ones: dW[ki,kj] sums the 2x2 window at (ki, kj);
  // dx counts the windows covering each pixel; db = 4.
  Tensor x = Tensor::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  const Conv2dGrads g = conv2d_backward_naive(x, Tensor::ones({1, 1, 2, 2}), Tensor::ones({1, 1, 2, 2}));
  CHECK(g.dW.to_vector() == std::vector<float>{12, 16, 24, 28});
  CHECK(g.dx.to_vector() == std::vector<float>{1, 2, 1, 2, 4, 2, 1, 2, 1});
  CHECK(g.db.to_vector() == std::vector<float>{4});
}

}  // TEST_SUITE
