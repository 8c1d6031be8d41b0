// Aligned-MTL (Senushkin, Patakin, Kuznetsov & Konushin, "Independent Component
// Alignment for Multi-Task Learning", CVPR 2023), in Gram form.
//
// The paper makes the linear system of task gradients stable: G (K x n, rows
// g_t) is replaced by the aligned G^ = sigma_min U V^T of its SVD G = U Sigma V^T,
// whose rows are orthogonal with equal norms sigma_min (condition number 1),
// and the shared part trains on the sum of the aligned gradients, G^T^ 1.
// From the Gram matrix M = G G^T = U Lambda U^T (Lambda = Sigma^2):
//   G^ = sigma_min U Sigma^{-1} U^T G,  so  d = G^T w,  w = sigma_min U Sigma^{-1} U^T 1.
// Rank-deficient M: eigenvalues <= lambda_max * K * eps_float are dropped (a
// pseudo-inverse) and sigma_min is the smallest singular value kept, as the
// authors' code (float epsilon: the gradients are float32). Scale mode "min",
// the authors' default ("median" and "rmse" are not offered). Heads train on
// L_t unchanged (the authors' default, scale_decoder_grad = False).
//
// "aligned-mtl" takes g_t at the shared parameters, "aligned-mtl-ub" at Z (the
// paper's upper-bound variant, one trunk pass): the same weighting, see
// gram_method.h.
#include <cfloat>
#include <cmath>

#include "mtl/methods/gram_method.h"
#include "mtl/solvers/small_linalg.h"

namespace mt {

namespace {

class AlignedMtl : public GramWeighting {
 public:
  std::string name() const override { return "aligned-mtl"; }

  TaskWeights weights(const Gram& M, const std::vector<double>&, int64_t) override {
    const int K = M.K;
    std::vector<double> lambda, U;
    sym_eig(M.v, K, lambda, U);  // ascending
    const double tol = lambda[K - 1] * K * FLT_EPSILON;
    int first = 0;  // the kept eigenvalues are lambda[first..K-1]
    while (first < K && !(lambda[first] > tol)) first++;
    TaskWeights w{std::vector<double>(K, 1.0), std::vector<double>(K, 1.0), 0};
    if (first == K) return w;  // every gradient is zero: d = 0 whatever w
    const double sigma_min = std::sqrt(lambda[first]);
    for (int i = 0; i < K; i++) {
      double s = 0;  // (U Sigma^{-1} U^T 1)_i over the kept directions
      for (int k = first; k < K; k++) {
        double uk1 = 0;  // <u_k, 1>
        for (int j = 0; j < K; j++) uk1 += U[size_t(j) * K + k];
        s += U[size_t(i) * K + k] * uk1 / std::sqrt(lambda[k]);
      }
      w.shared[i] = sigma_min * s;
    }
    return w;
  }
};

}  // namespace

std::unique_ptr<GramWeighting> make_aligned_mtl_weighting() { return std::make_unique<AlignedMtl>(); }

}  // namespace mt
