// UPGrad (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization",
// 2024), in Gram form as TorchJD's UPGradWeighting.
//
// Each task gradient g_i is projected onto the dual cone of all of them (the
// directions that conflict with no task) and the projections are averaged:
//   d = (1/K) sum_i pi_J(g_i).
// By the paper's Proposition 1, pi_J(G^T u) = G^T w with w = argmin_{w >= u} w^T M w
// (mtl/solvers/dual_cone.h); with u = e_i / K (the mean as preference vector),
// d = G^T w, w = sum_i w^(i).
//
// As TorchJD, M is divided by its trace and given a ridge reg * I
// (MethodOptions::upgrad_reg, TorchJD's 1e-4), which makes each quadratic
// programme strictly convex. The paper's non-conflict property,
// <g_j, d> = (M w)_j >= 0, then holds up to that ridge: (M w)_j >= -reg tr(M) w_j
// (exactly when reg = 0 and M is positive definite). Departure: TorchJD treats
// a Gram matrix with trace < 1e-4 as zero, an absolute threshold that depends
// on the loss scale; here only a zero trace is (w = u then, and d = 0).
// Heads train on L_t unchanged (TorchJD's mtl_backward).
#include "mtl/methods/gram_method.h"
#include "mtl/solvers/dual_cone.h"
#include "mtl/text.h"

namespace mt {

namespace {

class UPGrad : public GramWeighting {
 public:
  explicit UPGrad(double reg) : reg_(reg) {
    MT_CHECK(reg >= 0, "upgrad", "the ridge must be >= 0, got " + text::num(reg));
  }
  std::string name() const override { return "upgrad"; }

  TaskWeights weights(const Gram& M, const std::vector<double>&, int64_t) override {
    const int K = M.K;
    TaskWeights w{std::vector<double>(K, 0.0), std::vector<double>(K, 1.0), 0};
    double trace = 0;
    for (int t = 0; t < K; t++) trace += M(t, t);
    if (!(trace > 0)) {
      w.shared.assign(K, 1.0 / K);
      return w;
    }
    std::vector<double> A(M.v);
    for (double& v : A) v /= trace;
    for (int t = 0; t < K; t++) A[size_t(t) * K + t] += reg_;
    for (int i = 0; i < K; i++) {
      std::vector<double> u(K, 0.0);
      u[i] = 1.0 / K;
      DualConeResult r = project_dual_cone(A, K, u);
      for (int t = 0; t < K; t++) w.shared[t] += r.w[t];
      w.iterations += r.iterations;
    }
    return w;
  }

 private:
  double reg_;
};

}  // namespace

std::unique_ptr<GramWeighting> make_upgrad_weighting(const MethodOptions& opt) {
  return std::make_unique<UPGrad>(opt.upgrad_reg);
}

}  // namespace mt
