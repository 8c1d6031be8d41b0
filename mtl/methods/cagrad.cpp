// CAGrad (Liu, Liu, Jin, Stone & Liu, "Conflict-Averse Gradient Descent for
// Multi-task Learning", NeurIPS 2021), Algorithm 1 in Gram form.
//
// d maximises the worst task's first-order improvement min_i <g_i, d> in a ball
// around the average gradient g_0 = (1/K) sum_i g_i:  ||d - g_0|| <= c ||g_0||.
// Through its Lagrangian dual (as derived in the paper), with g_w = sum_i w_i g_i and
// sqrt(phi) = c ||g_0||:
//   w* = argmin_{w in simplex} F(w) = <g_w, g_0> + sqrt(phi) ||g_w||,
//   d  = g_0 + sqrt(phi) / ||g_w*|| g_w*,   i.e. weights 1/K + sqrt(phi) / ||g_w*|| w*_i.
// In Gram terms <g_w, g_0> = w^T M 1 / K, ||g_w||^2 = w^T M w, ||g_0||^2 = 1^T M 1 / K^2.
// c = MethodOptions::cagrad_c (0.4, the authors' NYU-v2 setting); c = 0 gives
// the mean gradient.
//
// The inner problem is convex on the simplex; it is solved here (the authors
// call scipy's SLSQP) by projected gradient with Armijo backtracking (Beck &
// Teboulle's step rule) on M scaled to unit mean diagonal, to a change
// sum_i |w_i - w_i'| < 1e-12 or 5000 iterations. Departures: the update is the
// paper's d (mean scale, as TorchJD); the authors' NYU-v2 code multiplies it
// by K / (1 + c^2) and LibMTL divides it by 1 + c^2, both a learning-rate change.
// If g_w* = 0 (0 is in the convex hull of the gradients) d = g_0. Heads train
// on L_t unchanged (authors' code).
#include <cmath>

#include "mtl/methods/gram_method.h"
#include "mtl/solvers/small_linalg.h"
#include "mtl/text.h"

namespace mt {

namespace {

class CAGrad : public GramWeighting {
 public:
  explicit CAGrad(double c) : c_(c) {
    MT_CHECK(c >= 0 && std::isfinite(c), "cagrad", "c must be finite and >= 0, got " + text::num(c));
  }
  std::string name() const override { return "cagrad"; }

  TaskWeights weights(const Gram& G, const std::vector<double>&, int64_t) override {
    const int K = G.K;
    TaskWeights out{std::vector<double>(K, 1.0 / K), std::vector<double>(K, 1.0), 0};
    double mean_diag = 0;
    for (int t = 0; t < K; t++) mean_diag += G(t, t) / K;
    if (!(mean_diag > 0) || c_ == 0) return out;
    std::vector<double> M(G.v);  // scaled: F's minimiser and the weights do not depend on the scale of M
    for (double& v : M) v /= mean_diag;
    auto Mx = [&](const std::vector<double>& x) {
      std::vector<double> y(K, 0.0);
      for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) y[i] += M[size_t(i) * K + j] * x[j];
      return y;
    };
    auto dot = [](const std::vector<double>& a, const std::vector<double>& b) {
      double s = 0;
      for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
      return s;
    };
    const std::vector<double> b = Mx(std::vector<double>(K, 1.0 / K));  // M 1 / K: <g_i, g_0>
    double g0_sq = 0;
    for (double v : b) g0_sq += v / K;
    const double sqrt_phi = c_ * std::sqrt(std::max(g0_sq, 0.0));
    auto F = [&](const std::vector<double>& w, const std::vector<double>& Mw) {
      return dot(w, b) + sqrt_phi * std::sqrt(std::max(dot(w, Mw), 0.0));
    };
    std::vector<double> w(K, 1.0 / K), Mw = Mx(w);
    double Fw = F(w, Mw), t = 1.0;
    for (int it = 0; it < 5000; it++) {
      out.iterations = it + 1;
      const double norm = std::sqrt(std::max(dot(w, Mw), 0.0));
      if (!(norm > 0)) break;  // g_w = 0: F's kink, the minimum (F >= 0 = F(w) there)
      std::vector<double> grad(K);  // dF/dw = M 1/K + sqrt(phi) M w / ||g_w||
      for (int i = 0; i < K; i++) grad[i] = b[i] + sqrt_phi * Mw[i] / norm;
      std::vector<double> wn, Mwn, step(K);
      double Fn = 0;
      for (t *= 2;; t *= 0.5) {  // Armijo on the projected step
        std::vector<double> u(K);
        for (int i = 0; i < K; i++) u[i] = w[i] - t * grad[i];
        wn = project_to_simplex(u);
        for (int i = 0; i < K; i++) step[i] = wn[i] - w[i];
        Mwn = Mx(wn);
        Fn = F(wn, Mwn);
        if (Fn <= Fw + dot(grad, step) + dot(step, step) / (2 * t) || t < 1e-20) break;
      }
      double change = 0;
      for (double s : step) change += std::fabs(s);
      w = wn, Mw = Mwn, Fw = Fn;
      if (change < 1e-12) break;
    }
    const double norm = std::sqrt(std::max(dot(w, Mw), 0.0));
    if (norm > 0)
      for (int i = 0; i < K; i++) out.shared[i] += sqrt_phi / norm * w[i];
    return out;
  }

 private:
  double c_;
};

}  // namespace

std::unique_ptr<GramWeighting> make_cagrad_weighting(const MethodOptions& opt) {
  return std::make_unique<CAGrad>(opt.cagrad_c);
}

}  // namespace mt
