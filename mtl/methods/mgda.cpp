// MGDA and MGDA-UB (Sener & Koltun, "Multi-Task Learning as Multi-Objective
// Optimization", NeurIPS 2018) as a Gram weighting.
//
// alpha on the simplex minimises || sum_t alpha_t g_t ||^2 = alpha^T M alpha
// (the paper's Eq. 3 with the Gram matrix M of the g_t; solver in
// mtl/solvers/min_norm.h); the network trains on sum_t alpha_t L_t, so heads
// are scaled by alpha_t too. The two names differ only in where g_t is taken
// (gram_method.h): "mgda" at every shared parameter, "mgda-ub" at Z (the upper
// bound of the paper's Theorem 1, one trunk pass).
//
// The reference code's optional normalisation of g_t (none / l2 / loss / loss+,
// MethodOptions::normalization) is applied to M before the solver:
// M_ij / (s_i s_j) = <g_i / s_i, g_j / s_j>; alpha then weights the raw
// gradients, as there.
//
// The paper's Algorithm 2 ("Update Equations for MTL"), line by line, and where
// one MGDA-UB step here (gram_method.cpp's representation mode + this file +
// the optimizer) follows or departs from it:
//   lines 1-3  theta^t -= eta grad_theta^t L^t, each head on its own loss.
//              By default DEPARTS, as the reference code: the network trains on
//              sum_t alpha_t L_t, so head t gets alpha_t grad_theta^t L^t
//              (TaskWeights::heads = alpha below; z_backward() scales them).
//              --heads own (HeadWeights::Own) follows the paper: heads = 1,
//              head t on L_t; --heads mean gives heads = 1/K (a diagnostic).
//   line 4     alpha = FRANKWOLFESOLVER: weights() below; min_norm() solves K = 2
//              in closed form (Algorithm 1) and, for K >= 3, runs Wolfe's
//              min-norm-point algorithm by default (exact, stops on the duality
//              gap; --solver frank-wolfe is lines 6-15 as written, see
//              min_norm.cpp's frank_wolfe() for its own departures).
//   line 8     M_ij = <grad L^i, grad L^j>: for mgda-ub the gradients w.r.t. Z
//              (Section 3.3: Z's gradients in place of theta^sh's), per sample,
//              from z_gradients()/z_gram(); for mgda at every shared parameter.
//              Departs only by the optional normalisation above (reference code).
//   line 5     theta^sh -= eta sum_t alpha_t grad_theta^sh L^t: z_backward() runs
//              one trunk backward with upstream sum_t alpha_t dL^t/dZ, which is
//              that sum by the chain rule; the optimizer (SGD with momentum, Adam,
//              ...) then takes the step instead of plain eta times the gradient.
#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "mtl/methods/gram_method.h"

namespace mt {

namespace {

class MinNorm : public GramWeighting {
 public:
  explicit MinNorm(MethodOptions opt) : opt_(std::move(opt)) {}
  std::string name() const override { return "mgda"; }

  TaskWeights weights(const Gram& G, const std::vector<double>& losses, int64_t) override {
    const int K = G.K;
    std::vector<double> M = G.v;
    std::vector<double> norms(K);
    for (int t = 0; t < K; t++) norms[t] = std::sqrt(std::max(0.0, G(t, t)));
    std::vector<double> s = normalization_scales(opt_.normalization, losses, norms);
    for (double& v : s)
      if (!(v > 0)) v = 1.0;  // a zero gradient or loss: leave that task unscaled
    for (int i = 0; i < K; i++)
      for (int j = 0; j < K; j++) M[i * K + j] /= s[i] * s[j];
    MinNormResult r = min_norm(M, K, opt_.solver);
    std::vector<double> heads = opt_.heads == HeadWeights::Alpha ? r.alpha
                                : std::vector<double>(K, opt_.heads == HeadWeights::Own ? 1.0 : 1.0 / K);
    return {r.alpha, heads, r.iterations, /*min_norm=*/true, r.gap};  // r.gap: the solve's certificate
  }

 private:
  MethodOptions opt_;
};

}  // namespace

HeadWeights parse_head_weights(const std::string& s) {
  if (s == "alpha") return HeadWeights::Alpha;
  if (s == "own") return HeadWeights::Own;
  if (s == "mean") return HeadWeights::Mean;
  throw Error("unknown head weights '" + s + "' (valid: alpha, own, mean)");
}

std::unique_ptr<GramWeighting> make_min_norm_weighting(const MethodOptions& opt) {
  return std::make_unique<MinNorm>(opt);
}

}  // namespace mt
