// grad_buffer (engine/autograd.h): ops that set every element of an input's
// gradient write into a fresh buffer instead of adding into zeros. For each
// such op (relu, dropout, dropout2d, max_pool2d, conv2d's dX on the direct and
// the column paths) the fresh write must give the bits of adding into zeros
// (a leaf's second backward after zero_grad() takes the adding path), also for
// an upstream gradient holding -0 and for odd pooled sizes, and adding into a
// buffer that already holds a gradient must still add.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::same_bits;

namespace {

// An upstream gradient with some exact -0 and +0 entries.
Tensor upstream(const Shape& s, Rng& rng) {
  Tensor g = Tensor::uniform(s, -1, 1, rng);
  float* p = g.data();
  for (int64_t i = 0; i < g.numel(); i++)
    if (i % 5 == 1) p[i] = -0.f;
    else if (i % 7 == 2) p[i] = 0.f;
  return g;
}

// f's input gradient three ways: fresh (first backward), into zeros (second
// backward after zero_grad) and on top of the first (third backward, no zero_grad).
void check_op(const std::function<Tensor(const Tensor&)>& f, const Shape& shape, uint64_t seed) {
  Rng rng(seed);
  Tensor x = Tensor::uniform(shape, -1, 1, rng);
  x.requires_grad_();
  Tensor gy;
  auto run = [&]() {
    Rng drop(seed + 1);  // the same dropout masks every time
    global_rng() = drop;
    Tensor y = f(x);
    if (!gy.defined()) gy = upstream(y.shape(), rng);
    backward(y, gy);
  };
  run();
  Tensor fresh = x.grad().clone();
  x.zero_grad();
  run();
  Tensor zeroed = x.grad().clone();
  CHECK(same_bits(fresh, zeroed));
  run();  // adds the same gradient again (an op summing several terms into one element
          // adds them one by one, so the result is 2x up to rounding, not exactly)
  Tensor twice = x.grad();
  bool all = true;
  for (int64_t i = 0; i < twice.numel(); i++) {
    const double z = zeroed.data()[i];
    all = all && std::fabs(twice.data()[i] - 2 * z) <= 1e-5 * (1 + std::fabs(z));
  }
  CHECK(all);
}

}  // namespace

TEST_CASE("fresh gradient buffers give the bits of adding into zeros") {
  check_op([](const Tensor& x) { return relu(x); }, {3, 4, 5, 7}, 1);
  check_op([](const Tensor& x) { return dropout(x, 0.3f, true); }, {4, 33}, 2);
  check_op([](const Tensor& x) { return dropout2d(x, 0.5f, true); }, {3, 6, 4, 4}, 3);
  for (int h : {4, 5, 8})
    for (int w : {4, 7, 12}) {
      check_op([](const Tensor& x) { return max_pool2d(x, {2}); }, {2, 3, h, w}, 10 + h * w);
      check_op([](const Tensor& x) { return max_pool2d(x, {3, 2, 1}); }, {2, 3, h, w}, 20 + h * w);
    }
  Rng r(5);
  Tensor W = Tensor::uniform({4, 3, 3, 3}, -1, 1, r), b = Tensor::uniform({4}, -1, 1, r);
  check_op([&](const Tensor& x) { return conv2d(x, W, b, {1, 0}); }, {2, 3, 9, 11}, 30);  // direct dX
  check_op([&](const Tensor& x) { return conv2d(x, W, b, {1, 1}); }, {2, 3, 9, 11}, 31);
  check_op([&](const Tensor& x) { return conv2d(x, W, b, {2, 1}); }, {2, 3, 9, 11}, 32);  // column path
  check_op([&](const Tensor& x) { return conv2d(x, W, b, {1, 3}); }, {2, 3, 6, 6}, 33);   // pad > k-1: column dX
  Tensor W1 = Tensor::uniform({4, 3, 1, 1}, -1, 1, r);
  check_op([&](const Tensor& x) { return conv2d(x, W1, Tensor(), {1, 0}); }, {2, 3, 5, 6}, 34);  // 1x1
}

TEST_CASE("a gradient reaching a tensor twice adds after a fresh write (relu output used twice)") {
  Rng rng(9);
  Tensor x = Tensor::uniform({2, 3, 6, 6}, -1, 1, rng);
  x.requires_grad_();
  Tensor h = max_pool2d(x, {2});
  Tensor y = relu(h) + relu(h) * 2.f;  // h's gradient: fresh from one relu, added by the other
  Tensor g = Tensor::uniform(y.shape(), -1, 1, rng);
  backward(y, g);
  // the same by hand: dh = g * (h > 0) + (2 g) * (h > 0)
  NoGrad ng;
  Tensor hv = max_pool2d(x.detach(), {2});
  Tensor dh = Tensor::zeros(hv.shape());
  for (int64_t i = 0; i < dh.numel(); i++) {
    const float gi = g.data()[i];
    const float a = hv.data()[i] > 0 ? gi : 0.f, b = hv.data()[i] > 0 ? gi * 2.f : 0.f;
    dh.data()[i] = (0.f + b) + a;  // relu(h) * 2 runs its backward first
  }
  // dx: dh scattered to the argmax of each window (first maximum in scan order)
  Tensor dx = Tensor::zeros(x.shape());
  const float* X = x.data();
  for (int q = 0; q < 6; q++)
    for (int oh = 0; oh < 3; oh++)
      for (int ow = 0; ow < 3; ow++) {
        int best = (2 * oh) * 6 + 2 * ow;
        for (int di = 0; di < 2; di++)
          for (int dj = 0; dj < 2; dj++) {
            const int at = (2 * oh + di) * 6 + 2 * ow + dj;
            if (X[q * 36 + at] > X[q * 36 + best]) best = at;
          }
        dx.data()[q * 36 + best] += dh.data()[q * 9 + oh * 3 + ow];
      }
  CHECK(same_bits(x.grad(), dx));
}
