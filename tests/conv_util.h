// conv2d's whole path (forward, then backward from an upstream gradient)
// against the naive loops (engine/conv_naive.cpp), shared by the tests of the
// kernels behind conv2d (test_conv_direct.cpp, test_conv_flat.cpp).
#pragma once
#include <doctest/doctest.h>

#include <algorithm>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "tests/gradcheck.h"

namespace mt::testing {

struct ConvCase {
  Shape x, w;
  Conv2dArgs a;
  bool bias;
};

struct ConvResult {
  Tensor y, dx, dW, db;
};

// conv2d forward and backward with upstream gy (made on the first call when undefined).
inline ConvResult run_conv(const ConvCase& c, const Tensor& x0, const Tensor& w0, const Tensor& b0, Tensor& gy,
                           Rng& rng) {
  Tensor x = x0.clone(), w = w0.clone(), b = c.bias ? b0.clone() : Tensor();
  x.requires_grad_();
  w.requires_grad_();
  if (c.bias) b.requires_grad_();
  Tensor y = conv2d(x, w, b, c.a);
  if (!gy.defined()) gy = Tensor::uniform(y.shape(), -1, 1, rng);
  backward(y, gy);
  return {y.detach(), x.grad(), w.grad(), c.bias ? b.grad() : Tensor()};
}

// The results equal the naive loops' up to 1e-4 relative to the largest entry.
inline void check_conv_against_naive(const ConvCase& c, const Tensor& x, const Tensor& w, const Tensor& b,
                                     const ConvResult& f, const Tensor& gy) {
  const Tensor y_ref = conv2d_naive(x, w, c.bias ? b : Tensor(), c.a);
  const Conv2dGrads g = conv2d_backward_naive(x, w, gy, c.a);
  REQUIRE(f.y.shape() == y_ref.shape());
  CHECK(max_abs_diff(f.y, y_ref) < 1e-4 * std::max(1.0, max_abs(y_ref)));
  CHECK(max_abs_diff(f.dx, g.dx) < 1e-4 * std::max(1.0, max_abs(g.dx)));
  CHECK(max_abs_diff(f.dW, g.dW) < 1e-4 * std::max(1.0, max_abs(g.dW)));
  if (c.bias) CHECK(max_abs_diff(f.db, g.db) < 1e-4 * std::max(1.0, max_abs(g.db)));
}

// conv2d on x, W and b drawn from rng, at 1 and then at 2 threads: the same bits in y
// and every gradient. The caller restores the thread count.
inline void check_conv_same_at_1_and_2_threads(const ConvCase& c, Rng& rng) {
  Tensor x = Tensor::uniform(c.x, -1, 1, rng), w = Tensor::uniform(c.w, -1, 1, rng);
  Tensor b = Tensor::uniform({c.w[0]}, -1, 1, rng), gy;
  set_num_threads(1);
  const ConvResult one = run_conv(c, x, w, b, gy, rng);
  set_num_threads(2);
  const ConvResult two = run_conv(c, x, w, b, gy, rng);
  INFO("x " << shape_str(c.x) << " w " << shape_str(c.w) << " stride " << c.a.stride << " pad " << c.a.pad);
  CHECK(same_bits(one.y, two.y));
  CHECK(same_bits(one.dx, two.dx));
  CHECK(same_bits(one.dW, two.dW));
  if (c.bias) CHECK(same_bits(one.db, two.db));
}

}  // namespace mt::testing
