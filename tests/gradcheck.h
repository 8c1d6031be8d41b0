// Finite-difference gradient check shared by the op and layer tests.
// The engine computes in float32, so the check uses central differences on a
// scalar probe L = sum_i w_i * out_i (w fixed random, summed in double) and
// compares with autograd's dL/dinput element by element, relative to the
// larger of the two magnitudes. Inputs should be kept away from kinks.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/rng.h"

namespace mt::testing {

inline double probe(const Tensor& out, const std::vector<float>& w) {
  double s = 0;
  const float* o = out.data();
  for (int64_t i = 0; i < out.numel(); i++) s += (double)w[i] * o[i];
  return s;
}

// f maps the inputs to one output tensor. Every input that requires grad is
// checked. Returns the worst relative error seen (also CHECKed against tol).
inline double gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f, std::vector<Tensor> inputs,
                        float h = 1e-2f, double tol = 2e-2, uint64_t seed = 7) {
  Rng rng(seed);
  Tensor out = f(inputs);
  std::vector<float> w(out.numel());
  for (auto& v : w) v = rng.uniform() * 2 - 1;
  for (auto& t : inputs)
    if (t.requires_grad()) t.zero_grad();
  backward(out, Tensor::from(out.shape(), w));
  double worst = 0;
  for (size_t k = 0; k < inputs.size(); k++) {
    Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    REQUIRE(x.grad().defined());
    std::vector<float> analytic = x.grad().to_vector();
    float* d = x.data();
    for (int64_t i = 0; i < x.numel(); i++) {
      const float orig = d[i];
      double lp, lm;
      {
        NoGrad ng;
        d[i] = orig + h;
        lp = probe(f(inputs), w);
        d[i] = orig - h;
        lm = probe(f(inputs), w);
        d[i] = orig;
      }
      const double numeric = (lp - lm) / (2.0 * h);
      const double scale = std::max({1.0, std::fabs(numeric), std::fabs((double)analytic[i])});
      const double err = std::fabs(numeric - analytic[i]) / scale;
      worst = std::max(worst, err);
      if (err > tol) {
        INFO("input " << k << " element " << i << ": numeric " << numeric << " analytic " << analytic[i]);
        CHECK(err <= tol);
        return worst;
      }
    }
  }
  return worst;
}

// A tensor of the given shape with entries uniform in [lo, hi), requiring grad.
inline Tensor param(const Shape& s, Rng& rng, float lo = -1.f, float hi = 1.f) {
  Tensor t = Tensor::uniform(s, lo, hi, rng);
  t.requires_grad_();
  return t;
}

// Max absolute difference of two same-shaped tensors.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double m = 0;
  for (int64_t i = 0; i < a.numel(); i++) m = std::max(m, (double)std::fabs(a.data()[i] - b.data()[i]));
  return m;
}

// Max absolute entry of a tensor.
inline double max_abs(const Tensor& t) {
  double m = 0;
  for (int64_t i = 0; i < t.numel(); i++) m = std::max(m, (double)std::fabs(t.data()[i]));
  return m;
}

// Equal shapes (sizes) and equal bits: for kernels that must give exactly the same numbers.
inline bool same_bits(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0;
}
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// A uniform integer in [lo, hi].
inline int rand_int(Rng& rng, int lo, int hi) { return lo + (int)rng.below((uint64_t)(hi - lo + 1)); }

}  // namespace mt::testing
