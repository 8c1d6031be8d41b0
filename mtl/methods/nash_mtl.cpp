// Nash-MTL (Navon, Shamsian, Achituve, Maron, Kawaguchi, Chechik & Fetaya,
// "Multi-Task Learning as a Bargaining Game", ICML 2022), in Gram form.
//
// The Nash bargaining solution d = sum_t alpha_t g_t, alpha > 0, is characterised
// in the paper's Section 3 by
//   G G^T alpha = 1 / alpha,  i.e.  alpha_i <g_i, d> = alpha_i (M alpha)_i = 1 for every i:
// each task's utility <g_i, d> is the inverse of its weight. The paper (and the
// authors' code) approach it by a sequence of convex problems solved with
// cvxpy, at most 20 rounds. The same point is the unique minimiser of the
// strictly convex
//   f(alpha) = (1/2) alpha^T M alpha - sum_i log alpha_i   (alpha > 0),
// because grad f = M alpha - 1 / alpha; it is solved here to machine precision
// by damped Newton (f is self-concordant: Boyd & Vandenberghe 2004, Sec. 9.6),
// warm-started at the previous step's solution (state, saved in checkpoints),
// as the authors warm-start their solver.
//
// Scale: the solve runs on M / s, s = ||M||_F (as the authors' code); alpha =
// alpha' / sqrt(s) then satisfies the condition for M itself. A ridge 1e-8 I on
// M / s keeps f bounded below when the gradients are linearly dependent (say
// g_2 = -g_1), where no bargaining solution exists; the authors' code keeps
// the previous alpha when its solver fails there.
//
// The network trains on sum_t alpha_t L_t (heads scaled by alpha_t), and the
// shared parameters' gradient is then clipped to norm MethodOptions::nash_max_norm
// (1.0, the authors' default; 0 turns it off), in either gradient mode.
#include <cmath>

#include "engine/error.h"
#include "mtl/methods/gram_method.h"
#include "mtl/methods/method_state.h"
#include "mtl/solvers/small_linalg.h"
#include "mtl/text.h"

namespace mt {

namespace {

constexpr double kRidge = 1e-8;

class NashMtl : public GramWeighting {
 public:
  NashMtl(int K, double max_norm) : prev_(K, 1.0), max_norm_(max_norm) {
    MT_CHECK(max_norm >= 0, "nash-mtl", "max_norm must be >= 0, got " + text::num(max_norm));
  }
  std::string name() const override { return "nash-mtl"; }
  double shared_max_norm() const override { return max_norm_; }

  TaskWeights weights(const Gram& G, const std::vector<double>&, int64_t) override {
    const int K = G.K;
    double s = 0;
    for (double v : G.v) s += v * v;
    s = std::sqrt(s);
    TaskWeights w{std::vector<double>(K, 0.0), {}, 0};
    if (!(s > 0)) {  // every gradient is zero: d = 0 whatever alpha
      w.shared.assign(K, 1.0);
      w.heads = w.shared;
      return w;
    }
    std::vector<double> A(G.v);
    for (double& v : A) v /= s;
    for (int i = 0; i < K; i++) A[size_t(i) * K + i] += kRidge;
    std::vector<double> a = prev_;
    w.iterations = newton(A, K, a);
    prev_ = a;
    for (int i = 0; i < K; i++) w.shared[i] = a[i] / std::sqrt(s);
    w.heads = w.shared;
    return w;
  }

  void save_state(StFile& f) const override { put_doubles(f, "method.nash.alpha", prev_); }
  void load_state(const StFile& f, const std::string& path) override {
    std::vector<double> a = get_doubles(f, "method.nash.alpha", prev_.size(), path);
    for (double v : a)
      if (!(v > 0) || !std::isfinite(v)) throw Error(path + ": tensor 'method.nash.alpha' must be finite and > 0");
    prev_ = a;
  }

 private:
  // Minimises f(a) = a^T A a / 2 - sum_i log a_i from a > 0; returns the iterations.
  static int newton(const std::vector<double>& A, int K, std::vector<double>& a) {
    auto Ax = [&](const std::vector<double>& x) {
      std::vector<double> y(K, 0.0);
      for (int i = 0; i < K; i++)
        for (int j = 0; j < K; j++) y[i] += A[size_t(i) * K + j] * x[j];
      return y;
    };
    auto f = [&](const std::vector<double>& x) {
      const std::vector<double> y = Ax(x);
      double v = 0;
      for (int i = 0; i < K; i++) v += 0.5 * x[i] * y[i] - std::log(x[i]);
      return v;
    };
    int it = 0;
    for (; it < 100; it++) {
      const std::vector<double> Aa = Ax(a);
      std::vector<double> g(K), H(A), step(K);
      for (int i = 0; i < K; i++) {
        g[i] = Aa[i] - 1.0 / a[i];
        H[size_t(i) * K + i] += 1.0 / (a[i] * a[i]);  // Hessian: A + diag(1 / a^2)
        step[i] = -g[i];
      }
      if (!lu_solve(H, step, K)) break;  // cannot happen: H is positive definite
      double decrement = 0;  // Newton decrement^2 = -g . step
      for (int i = 0; i < K; i++) decrement -= g[i] * step[i];
      if (!(decrement > 1e-30)) break;
      double t = 1.0;
      for (int i = 0; i < K; i++)  // stay inside a > 0
        if (step[i] < 0) t = std::min(t, -0.99 * a[i] / step[i]);
      std::vector<double> next(K);
      if (decrement > 1e-6) {  // damped phase: backtracking (alpha = 1/4, beta = 1/2)
        const double f0 = f(a);
        for (;; t *= 0.5) {
          for (int i = 0; i < K; i++) next[i] = a[i] + t * step[i];
          if (f(next) <= f0 - 0.25 * t * decrement || t < 1e-12) break;
        }
      } else {  // quadratic phase: the full step (f's decrease is below its rounding here)
        for (int i = 0; i < K; i++) next[i] = a[i] + t * step[i];
      }
      a = next;
      if (decrement < 1e-22) return it + 1;  // converged to rounding
    }
    return it;
  }

  std::vector<double> prev_;  // alpha' of the last step (the warm start), for M / ||M||_F
  double max_norm_;
};

}  // namespace

std::unique_ptr<GramWeighting> make_nash_mtl_weighting(int K, const MethodOptions& opt) {
  return std::make_unique<NashMtl>(K, opt.nash_max_norm);
}

}  // namespace mt
