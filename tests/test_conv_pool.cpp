// conv2d and pooling: fast kernels against their naive oracles, finite-
// difference gradients, the same bits at 1 and 2 threads, no allocation in
// steady state, and the shape errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/parallel.h"
#include "engine/workspace.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::gradcheck;
using mt::testing::max_abs;
using mt::testing::max_abs_diff;
using mt::testing::param;
using mt::testing::rand_int;

namespace {

// f throws mt::Error whose message contains every one of `parts`.
void check_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  std::string msg;
  try {
    f();
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("message: '" << msg << "'");
  REQUIRE(!msg.empty());
  for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
}

// A tensor whose entries are distinct and at least `gap` apart (a shuffled
// ramp): max pooling has no near-ties for finite differences to cross.
Tensor distinct(const Shape& s, Rng& rng, float gap) {
  const int64_t n = numel_of(s);
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; i++) v[i] = (float)(i - n / 2) * gap;
  for (int64_t i = n - 1; i > 0; i--) std::swap(v[i], v[rng.below((uint64_t)i + 1)]);
  Tensor t = Tensor::from(s, v);
  t.requires_grad_();
  return t;
}

// Restores the thread count when a test ends, whatever happens.
struct ThreadsGuard {
  int prev = num_threads();
  ~ThreadsGuard() { set_num_threads(prev); }
};

}  // namespace

TEST_SUITE("conv_pool") {

TEST_CASE("conv2d fast path equals conv2d_naive on random shapes") {
  Rng rng(11);
  int tried = 0;
  while (tried < 110) {
    // the last 30 use images smaller than the kernel, where padding covers whole rows of the columns
    const bool tiny = tried >= 80;
    const int N = rand_int(rng, 1, 5), C = rand_int(rng, 1, 4), O = rand_int(rng, 1, 5);
    const int H = tiny ? rand_int(rng, 1, 4) : rand_int(rng, 5, 12);
    const int W = tiny ? rand_int(rng, 1, 4) : rand_int(rng, 5, 12);
    const int kh = rand_int(rng, 1, 5), kw = rand_int(rng, 1, 5);
    Conv2dArgs a;
    a.stride = rand_int(rng, 1, 3);
    a.pad = rand_int(rng, 0, 2);
    if (H + 2 * a.pad < kh || W + 2 * a.pad < kw) continue;
    tried++;
    Tensor x = Tensor::uniform({N, C, H, W}, -1, 1, rng);
    Tensor w = Tensor::uniform({O, C, kh, kw}, -1, 1, rng);
    Tensor b = (tried % 3) ? Tensor::uniform({O}, -1, 1, rng) : Tensor();
    Tensor fast = conv2d(x, w, b, a), ref = conv2d_naive(x, w, b, a);
    INFO("x " << shape_str(x.shape()) << " w " << shape_str(w.shape()) << " stride " << a.stride << " pad "
              << a.pad << " bias " << b.defined());
    REQUIRE(fast.shape() == ref.shape());
    CHECK(max_abs_diff(fast, ref) < 1e-4 * std::max(1.0, max_abs(ref)));
  }
  // The 1x1 / stride 1 / no padding path reads x directly as its columns.
  Tensor x = Tensor::uniform({3, 4, 5, 6}, -1, 1, rng), w = Tensor::uniform({2, 4, 1, 1}, -1, 1, rng);
  CHECK(max_abs_diff(conv2d(x, w, Tensor()), conv2d_naive(x, w, Tensor())) < 1e-5);
}

TEST_CASE("conv2d_naive on a hand-computed case") {
  // x = 1..9 in a 3x3 image, W = 2x2 of ones, pad 0: each output is a 2x2 window sum; bias 0.5.
  Tensor x = Tensor::from({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  Tensor w = Tensor::ones({1, 1, 2, 2});
  Tensor b = Tensor::from({1}, {0.5f});
  CHECK(conv2d_naive(x, w, b).to_vector() == std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f});
  CHECK(conv2d(x, w, b).to_vector() == std::vector<float>{12.5f, 16.5f, 24.5f, 28.5f});
  // stride 2, pad 1: windows at the corners see one real pixel each
  Conv2dArgs a;
  a.stride = 2;
  a.pad = 1;
  CHECK(conv2d_naive(x, w, Tensor(), a).to_vector() == std::vector<float>{1, 5, 11, 28});
  CHECK(conv2d(x, w, Tensor(), a).to_vector() == std::vector<float>{1, 5, 11, 28});
}

TEST_CASE("conv2d gradients (x, W, b) match finite differences") {
  Rng rng(3);
  struct Case { Shape x, w; int stride, pad; bool bias; };
  for (const Case& c : {Case{{2, 3, 6, 5}, {4, 3, 3, 3}, 2, 1, true}, Case{{2, 2, 5, 5}, {3, 2, 3, 2}, 1, 0, true},
                        Case{{1, 2, 7, 6}, {2, 2, 5, 3}, 3, 2, false}, Case{{3, 3, 4, 4}, {2, 3, 1, 1}, 1, 0, true},
                        Case{{2, 1, 2, 3}, {2, 1, 5, 4}, 1, 2, true}}) {  // image smaller than the kernel
    INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.stride << " pad " << c.pad);
    Conv2dArgs a;
    a.stride = c.stride;
    a.pad = c.pad;
    std::vector<Tensor> in = {param(c.x, rng), param(c.w, rng)};
    if (c.bias) in.push_back(param({c.w[0]}, rng));
    gradcheck([a](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t.size() > 2 ? t[2] : Tensor(), a); },
              in);
  }
}

TEST_CASE("conv2d skips dX when the input needs no gradient") {
  Rng rng(4);
  Tensor x = Tensor::uniform({2, 1, 6, 6}, -1, 1, rng);  // like conv1's input: no grad
  Tensor w = param({3, 1, 3, 3}, rng), b = param({3}, rng);
  Conv2dArgs a;
  a.pad = 1;
  gradcheck([a](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], a); }, {x, w, b});
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("conv2d gradients accumulate (+=) over backward passes") {
  Rng rng(9);
  for (int k : {1, 3}) {  // the 1x1 path writes dX straight from sgemm; 3x3 goes through col2im
    INFO("kernel " << k);
    Tensor x = param({3, 2, 5, 5}, rng), w = param({4, 2, k, k}, rng), b = param({4}, rng);
    Tensor up = Tensor::uniform({3, 4, 6 - k, 6 - k}, -1, 1, rng);
    backward(conv2d(x, w, b), up);
    const std::vector<float> gx = x.grad().to_vector(), gw = w.grad().to_vector(), gb = b.grad().to_vector();
    backward(conv2d(x, w, b), up);
    for (size_t i = 0; i < gx.size(); i++) CHECK(x.grad().data()[i] == doctest::Approx(2 * gx[i]));
    for (size_t i = 0; i < gw.size(); i++) CHECK(w.grad().data()[i] == doctest::Approx(2 * gw[i]));
    for (size_t i = 0; i < gb.size(); i++) CHECK(b.grad().data()[i] == doctest::Approx(2 * gb[i]));
  }
}

TEST_CASE("conv2d forward and backward are bit-identical at 1 and 2 threads") {
  ThreadsGuard guard;
  Rng rng(5);
  // 40 samples: several chunks, so the chunked dW/db reduction is exercised.
  Tensor x0 = Tensor::uniform({40, 3, 11, 10}, -1, 1, rng);
  Tensor w0 = Tensor::uniform({6, 3, 3, 3}, -1, 1, rng), b0 = Tensor::uniform({6}, -1, 1, rng);
  Conv2dArgs a;
  a.stride = 2;
  a.pad = 1;
  Tensor up;
  auto run = [&](int threads) {
    set_num_threads(threads);
    Tensor x = x0.clone(), w = w0.clone(), b = b0.clone();
    x.requires_grad_();
    w.requires_grad_();
    b.requires_grad_();
    Tensor y = conv2d(x, w, b, a);
    if (!up.defined()) up = Tensor::uniform(y.shape(), -1, 1, rng);
    backward(y, up);
    return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
  };
  std::vector<Tensor> one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); i++) {
    INFO("result " << i);
    REQUIRE(one[i].numel() == two[i].numel());
    CHECK(std::memcmp(one[i].data(), two[i].data(), sizeof(float) * one[i].numel()) == 0);
  }
}

TEST_CASE("conv2d allocates nothing in steady state") {
  Rng rng(6);
  Tensor x = param({16, 4, 12, 12}, rng), w = param({8, 4, 5, 5}, rng), b = param({8}, rng);
  Tensor up = Tensor::uniform({16, 8, 8, 8}, -1, 1, rng);
  size_t allocs[3], grows[3];
  for (int it = 0; it < 3; it++) {
    x.zero_grad();
    w.zero_grad();
    b.zero_grad();
    Tensor y = conv2d(x, w, b);
    backward(y, up);
    allocs[it] = pool_stats().system_allocs;
    grows[it] = scratch_grows();
  }
  CHECK(allocs[2] == allocs[1]);
  CHECK(grows[2] == grows[1]);
}

TEST_CASE("conv2d shape errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 8, 8});
  check_error([&] { conv2d(x, Tensor::zeros({4, 2, 3, 3}), Tensor()); },
              {"conv2d: input [2,3,8,8] has 3 channels, weight [4,2,3,3] expects 2"});
  check_error([&] { conv2d(Tensor::zeros({3, 8, 8}), Tensor::zeros({4, 3, 3, 3}), Tensor()); },
              {"conv2d", "[3,8,8]", "4-D"});
  check_error([&] { conv2d(x, Tensor::zeros({4, 3, 3}), Tensor()); }, {"conv2d", "weight [4,3,3]", "4-D"});
  check_error([&] { conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor::zeros({5})); },
              {"conv2d", "bias [5]", "[4]"});
  check_error([&] { conv2d(x, Tensor::zeros({4, 3, 11, 3}), Tensor()); },
              {"conv2d", "kernel 11x3", "larger than the padded input 8x8"});
  Conv2dArgs bad_stride;
  bad_stride.stride = 0;
  check_error([&] { conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), bad_stride); }, {"conv2d", "stride"});
  Conv2dArgs bad_pad;
  bad_pad.pad = -1;
  check_error([&] { conv2d(x, Tensor::zeros({4, 3, 3, 3}), Tensor(), bad_pad); }, {"conv2d", "padding"});
  check_error([&] { conv2d(Tensor(), Tensor::zeros({4, 3, 3, 3}), Tensor()); }, {"conv2d", "undefined"});
  check_error([&] { conv2d_naive(x, Tensor::zeros({4, 2, 3, 3}), Tensor()); }, {"conv2d_naive"});
}

TEST_CASE("max and avg pooling fast paths equal the naive oracles") {
  Rng rng(12);
  int tried = 0;
  while (tried < 80) {
    const int N = rand_int(rng, 1, 3), C = rand_int(rng, 1, 4);
    const int H = rand_int(rng, 1, 12), W = rand_int(rng, 1, 12);
    Pool2dArgs a;
    a.kernel = rand_int(rng, 1, 4);
    a.stride = rand_int(rng, 0, 3);
    a.pad = rand_int(rng, 0, a.kernel / 2);
    if (tried % 4 == 0) a = Pool2dArgs{};  // the 2x2 stride-2 special case
    if (H + 2 * a.pad < a.kernel || W + 2 * a.pad < a.kernel) continue;
    tried++;
    Tensor x = Tensor::uniform({N, C, H, W}, -1, 1, rng);
    INFO("x " << shape_str(x.shape()) << " kernel " << a.kernel << " stride " << a.stride << " pad " << a.pad);
    Tensor m = max_pool2d(x, a), mr = max_pool2d_naive(x, a);
    REQUIRE(m.shape() == mr.shape());
    CHECK(max_abs_diff(m, mr) == 0);
    Tensor v = avg_pool2d(x, a), vr = avg_pool2d_naive(x, a);
    REQUIRE(v.shape() == vr.shape());
    CHECK(max_abs_diff(v, vr) < 1e-6);
  }
}

TEST_CASE("pooling on hand-computed cases") {
  Tensor x = Tensor::from({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
  CHECK(max_pool2d(x).to_vector() == std::vector<float>{6, 8, 14, 16});
  CHECK(avg_pool2d(x).to_vector() == std::vector<float>{3.5f, 5.5f, 11.5f, 13.5f});
  // kernel 3, stride 2, pad 1 -> 2x2 output; the padding counts in avg's divisor (9)
  Pool2dArgs a{3, 2, 1};
  CHECK(max_pool2d(x, a).to_vector() == std::vector<float>{6, 8, 14, 16});
  const std::vector<float> avg = avg_pool2d(x, a).to_vector();
  const std::vector<float> want = {(1 + 2 + 5 + 6) / 9.f, (2 + 3 + 4 + 6 + 7 + 8) / 9.f,
                                   (5 + 6 + 9 + 10 + 13 + 14) / 9.f, (6 + 7 + 8 + 10 + 11 + 12 + 14 + 15 + 16) / 9.f};
  REQUIRE(avg.size() == want.size());
  for (size_t i = 0; i < want.size(); i++) CHECK(avg[i] == doctest::Approx(want[i]).epsilon(1e-6));
  // max pooling pads with -inf: an all-negative input stays negative at the border
  Tensor neg = Tensor::full({1, 1, 2, 2}, -3.f);
  CHECK(max_pool2d(neg, Pool2dArgs{2, 1, 1}).to_vector() == std::vector<float>(9, -3.f));
  // a NaN in a window propagates, as in PyTorch
  Tensor nan = Tensor::from({1, 1, 2, 2}, {1, std::nanf(""), 3, 2});
  CHECK(std::isnan(max_pool2d(nan).item()));
  CHECK(std::isnan(max_pool2d(nan, Pool2dArgs{2, 1, 1}).data()[4]));
  CHECK(std::isnan(max_pool2d_naive(nan).item()));
  Tensor g = global_avg_pool2d(x);
  CHECK(g.shape() == Shape{1, 1});
  CHECK(g.item() == 8.5f);
}

TEST_CASE("max_pool2d routes the gradient to the first maximum") {
  Tensor x = Tensor::from({1, 1, 2, 2}, {5, 5, 5, 1});
  x.requires_grad_();
  backward(max_pool2d(x), Tensor::full({1, 1, 1, 1}, 2.f));
  CHECK(x.grad().to_vector() == std::vector<float>{2, 0, 0, 0});
}

TEST_CASE("pooling gradients match finite differences") {
  Rng rng(8);
  for (Pool2dArgs a : {Pool2dArgs{2, 0, 0}, Pool2dArgs{3, 2, 1}, Pool2dArgs{3, 1, 0}, Pool2dArgs{2, 1, 1}}) {
    INFO("kernel " << a.kernel << " stride " << a.stride << " pad " << a.pad);
    // values 0.05 apart, finite-difference step 0.01: no window's maximum changes hands
    gradcheck([a](const std::vector<Tensor>& t) { return max_pool2d(t[0], a); }, {distinct({2, 3, 6, 5}, rng, 0.05f)});
    gradcheck([a](const std::vector<Tensor>& t) { return avg_pool2d(t[0], a); }, {param({2, 3, 6, 5}, rng)});
  }
  gradcheck([](const std::vector<Tensor>& t) { return global_avg_pool2d(t[0]); }, {param({3, 4, 3, 5}, rng)});
}

TEST_CASE("pooling shape errors name the op") {
  Tensor x = Tensor::zeros({2, 3, 8, 8});
  check_error([&] { max_pool2d(Tensor::zeros({3, 8, 8})); }, {"max_pool2d", "[3,8,8]", "4-D"});
  check_error([&] { avg_pool2d(Tensor::zeros({3, 8, 8})); }, {"avg_pool2d", "[3,8,8]", "4-D"});
  check_error([&] { max_pool2d(x, Pool2dArgs{3, 1, 2}); }, {"max_pool2d", "padding 2", "kernel 3"});
  check_error([&] { avg_pool2d(x, Pool2dArgs{2, 2, -1}); }, {"avg_pool2d", "padding -1"});
  check_error([&] { max_pool2d(Tensor::zeros({1, 1, 3, 8}), Pool2dArgs{4, 4, 0}); },
              {"max_pool2d", "output would be empty", "[1,1,3,8]"});
  check_error([&] { avg_pool2d(x, Pool2dArgs{0, 1, 0}); }, {"avg_pool2d", "kernel"});
  check_error([&] { max_pool2d(x, Pool2dArgs{2, -1, 0}); }, {"max_pool2d", "stride"});
  check_error([&] { max_pool2d_naive(x, Pool2dArgs{3, 1, 2}); }, {"max_pool2d_naive"});
  check_error([&] { global_avg_pool2d(Tensor::zeros({2, 3})); }, {"global_avg_pool2d", "[2,3]"});
}

}  // TEST_SUITE
