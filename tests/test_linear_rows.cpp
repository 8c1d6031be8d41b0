// linear() on a few rows (engine/linear_rows.h): the AVX2 build, the portable
// build and the scalar reference give the same bits; the values agree with a
// double-precision dot product and with the sgemm path; gradients by finite
// differences at batch 1.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/cpu_dispatch.h"
#include "engine/linear_rows.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::same_bits;
using mt::testing::gradcheck;
using mt::testing::param;

namespace {
struct PortableGuard {
  ~PortableGuard() { cpu_dispatch::force_portable(false); }
};
}  // namespace

TEST_CASE("linear_rows: both builds equal the scalar reference bit for bit and a double dot product") {
  PortableGuard guard;
  Rng rng(11);
  for (int trial = 0; trial < 200; trial++) {
    const int N = 1 + (int)rng.below(4), In = (int)rng.below(70), Out = 1 + (int)rng.below(20);
    const bool bias = rng.below(3) != 0;
    Tensor x = Tensor::uniform({N, In}, -1, 1, rng), W = Tensor::uniform({Out, In}, -1, 1, rng);
    Tensor b = Tensor::uniform({Out}, -1, 1, rng);
    const float* B = bias ? b.data() : nullptr;
    std::vector<float> ref(N * Out), fast(N * Out), port(N * Out);
    linear_rows::forward_reference(N, In, Out, x.data(), W.data(), B, ref.data());
    cpu_dispatch::force_portable(false);
    linear_rows::forward(N, In, Out, x.data(), W.data(), B, fast.data());
    cpu_dispatch::force_portable(true);
    linear_rows::forward(N, In, Out, x.data(), W.data(), B, port.data());
    CHECK(same_bits(ref, fast));
    CHECK(same_bits(ref, port));
    for (int n = 0; n < N; n++)
      for (int o = 0; o < Out; o++) {
        double d = bias ? b.data()[o] : 0.0;
        for (int k = 0; k < In; k++) d += (double)x.data()[n * In + k] * W.data()[o * In + k];
        CHECK(std::fabs(ref[n * Out + o] - d) <= 1e-5 * (1 + In));
      }
  }
}

TEST_CASE("linear() on up to kMaxRows rows takes linear_rows and agrees with the sgemm path") {
  Rng rng(12);
  const int In = 320, Out = 50, big = linear_rows::kMaxRows + 3;
  Tensor x = Tensor::uniform({big, In}, -1, 1, rng), W = Tensor::uniform({Out, In}, -1, 1, rng);
  Tensor b = Tensor::uniform({Out}, -1, 1, rng);
  Tensor y_big = linear(x, W, b);  // sgemm
  for (int N = 1; N <= linear_rows::kMaxRows; N++) {
    Tensor xs = narrow(x, 0, 0, N);
    Tensor y = linear(xs, W, b);
    std::vector<float> ref(N * Out);
    linear_rows::forward_reference(N, In, Out, xs.data(), W.data(), b.data(), ref.data());
    CHECK(same_bits(y.to_vector(), ref));
    for (int i = 0; i < N * Out; i++) CHECK(std::fabs(y.data()[i] - y_big.data()[i]) <= 1e-4);
  }
}

TEST_CASE("linear at batch 1 and 3: gradients match finite differences") {
  Rng r(13);
  gradcheck([](const std::vector<Tensor>& v) { return linear(v[0], v[1], v[2]); },
            {param({1, 13}, r), param({7, 13}, r), param({7}, r)});
  gradcheck([](const std::vector<Tensor>& v) { return linear(v[0], v[1], Tensor()); },
            {param({3, 9}, r), param({4, 9}, r)});
}
