// max_pool2d_relu (engine/ops_pool.cpp) against its oracle, the composition
// relu(max_pool2d(x)): the same bits forward and backward, with ties inside
// windows (small integers, many equal maxima, zeros and negative windows),
// -0 and NaN inputs, odd sizes, the generic pooling path, a gradient added
// into an existing one, and at 1 and 2 threads. Also the MultiLeNet trunk
// with and without the fused op.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::same_bits;

namespace {

// Values from {-2, -1, -0, 0, 1, 2} (ties everywhere) or uniform, a NaN now and then.
Tensor input(const Shape& s, Rng& rng, bool ties, bool nan) {
  Tensor x = Tensor::uniform(s, -1, 1, rng);
  float* p = x.data();
  const float vals[] = {-2.f, -1.f, -0.f, 0.f, 1.f, 2.f};
  for (int64_t i = 0; i < x.numel(); i++) {
    if (ties) p[i] = vals[rng.below(6)];
    if (nan && rng.below(40) == 0) p[i] = std::numeric_limits<float>::quiet_NaN();
  }
  return x;
}

struct Out {
  Tensor y, dx;
};

// y = pool (fused or not) of x * 1 (so x's gradient arrives through an op, as
// in the models), backward with gy; `twice` runs a second forward/backward
// first so the gradient is added into an existing one.
Out run(bool fused, const Tensor& x0, const Pool2dArgs& a, const Tensor& gy_in, bool twice) {
  Tensor x = x0.clone();
  x.requires_grad_();
  Out o;
  for (int rep = 0; rep < (twice ? 2 : 1); rep++) {
    Tensor h = x * 1.f;
    Tensor y = fused ? max_pool2d_relu(h, a) : relu(max_pool2d(h, a));
    backward(y, gy_in);
    o.y = y.detach();
  }
  o.dx = x.grad();
  return o;
}

}  // namespace

TEST_CASE("max_pool2d_relu gives the bits of relu(max_pool2d(x)), forward and backward") {
  Rng rng(21);
  const Pool2dArgs args[] = {{2, 0, 0}, {2, 2, 0}, {3, 2, 1}, {3, 1, 0}, {2, 1, 1}};
  for (int trial = 0; trial < 120; trial++) {
    const Pool2dArgs a = args[trial % 5];
    const int H = a.kernel + (int)rng.below(9), W = a.kernel + (int)rng.below(13);
    const Shape s = {1 + (int)rng.below(3), 1 + (int)rng.below(4), H, W};
    const bool ties = trial % 2 == 0, nan = trial % 7 == 3, twice = trial % 3 == 1;
    Tensor x = input(s, rng, ties, nan);
    Tensor probe;
    {
      NoGrad ng;
      probe = max_pool2d(x, a);
    }
    Tensor gy = input(probe.shape(), rng, false, false);
    for (int64_t i = 0; i < gy.numel(); i += 9) gy.data()[i] = -0.f;
    const Out ref = run(false, x, a, gy, twice), got = run(true, x, a, gy, twice);
    CHECK(same_bits(ref.y, got.y));
    CHECK(same_bits(ref.dx, got.dx));
  }
}

TEST_CASE("max_pool2d_relu: NoGrad forward, shape errors and 1 vs 2 threads") {
  Rng rng(22);
  Tensor x = input({3, 10, 24, 24}, rng, true, false);
  Tensor ref = relu(max_pool2d(x, {2}));
  Tensor got;
  {
    NoGrad ng;
    got = max_pool2d_relu(x, {2});
  }
  CHECK(same_bits(ref, got));
  CHECK_THROWS_WITH_AS(max_pool2d_relu(Tensor::ones({2, 3})), doctest::Contains("max_pool2d_relu"), Error);

  const int prev = num_threads();
  Tensor gy = Tensor::uniform(ref.shape(), -1, 1, rng);
  set_num_threads(1);
  const Out one = run(true, x, {2}, gy, false);
  set_num_threads(2);
  const Out two = run(true, x, {2}, gy, false);
  set_num_threads(prev);
  CHECK(same_bits(one.y, two.y));
  CHECK(same_bits(one.dx, two.dx));
}

#include "mtl/models/multilenet.h"

TEST_CASE("the MultiLeNet trunk with the fused op gives the unfused composition's bits") {
  manual_seed(3);
  MultiLeNetTrunk trunk({1, 28, 28});
  trunk.eval();  // no dropout draws: the composition below applies none
  Rng rng(23);
  Tensor x = Tensor::uniform({5, 1, 28, 28}, -1, 1, rng);
  Tensor z = trunk.forward(x);
  Tensor gz = Tensor::uniform(z.shape(), -1, 1, rng);
  backward(z, gz);
  std::vector<Tensor> fused;
  for (auto& p : trunk.named_parameters()) {
    fused.push_back(p.second.grad().clone());
    p.second.zero_grad();
  }
  Tensor h = relu(max_pool2d(trunk.conv1->forward(x), {2}));
  h = relu(max_pool2d(trunk.conv2->forward(h), {2}));
  Tensor z2 = relu(trunk.fc->forward(h.flatten(1)));
  CHECK(same_bits(z.detach(), z2.detach()));
  backward(z2, gz);
  size_t i = 0;
  for (auto& p : trunk.named_parameters()) CHECK(same_bits(fused[i++], p.second.grad()));
}
