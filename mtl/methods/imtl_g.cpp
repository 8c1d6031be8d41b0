// IMTL-G (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, "Towards Impartial
// Multi-task Learning", ICLR 2021), the gradient part of IMTL, in Gram form.
//
// d = sum_t alpha_t g_t with sum_t alpha_t = 1 whose projections onto every
// unit gradient u_t = g_t / ||g_t|| are equal: <d, u_1> = <d, u_t> for all t.
// The paper's closed form (Section 3.2): with the rows
//   D = [g_1 - g_2, ..., g_1 - g_K],  U = [u_1 - u_2, ..., u_1 - u_K],
//   alpha_{2:K} = g_1 U^T (D U^T)^{-1},  alpha_1 = 1 - sum_{t >= 2} alpha_t.
// With n_t = ||g_t|| = sqrt(M_tt) every entry is a Gram entry:
//   (g_1 U^T)_j   = M_11 / n_1 - M_1j / n_j
//   (D U^T)_ij    = (M_11 - M_i1) / n_1 - (M_1j - M_ij) / n_j.
// Departures, for inputs the paper does not cover: a task with g_t = 0 has no
// direction u_t and gets alpha_t = 0 (the others are balanced among
// themselves); when D U^T is singular (two gradients with the same direction
// make their conditions one) a ridge of 1e-8 max|D U^T| is added, as LibMTL and
// the Nash-MTL authors' code do, and if that fails too alpha is uniform.
// Heads train on L_t (IMTL-G changes only the shared gradient; the paper
// scales the heads' losses only in its IMTL-L part).
#include <cmath>

#include "mtl/methods/gram_method.h"
#include "mtl/solvers/small_linalg.h"

namespace mt {

namespace {

class ImtlG : public GramWeighting {
 public:
  std::string name() const override { return "imtl-g"; }

  TaskWeights weights(const Gram& M, const std::vector<double>&, int64_t) override {
    const int K = M.K;
    TaskWeights w{std::vector<double>(K, 0.0), std::vector<double>(K, 1.0), 0};
    std::vector<int> T;  // the tasks with a direction
    std::vector<double> n;
    for (int t = 0; t < K; t++)
      if (M(t, t) > 0) T.push_back(t), n.push_back(std::sqrt(M(t, t)));
    if (T.empty()) {
      w.shared.assign(K, 1.0 / K);
      return w;
    }
    const int m = (int)T.size() - 1, f = T[0];  // f plays task 1
    std::vector<double> A(size_t(m) * m), b(m);
    // alpha_{2:} solves alpha^T (D U^T) = g_1 U^T, i.e. (D U^T)^T alpha = (g_1 U^T)^T.
    double scale = 0;
    for (int j = 0; j < m; j++) {
      const int tj = T[j + 1];
      b[j] = M(f, f) / n[0] - M(f, tj) / n[j + 1];
      for (int i = 0; i < m; i++) {
        const int ti = T[i + 1];
        const double dut = (M(f, f) - M(ti, f)) / n[0] - (M(f, tj) - M(ti, tj)) / n[j + 1];  // (D U^T)_ij
        A[size_t(j) * m + i] = dut;
        scale = std::max(scale, std::fabs(dut));
      }
    }
    std::vector<double> alpha = b;
    bool ok = lu_solve(A, alpha, m);
    if (!ok) {
      for (int i = 0; i < m; i++) A[size_t(i) * m + i] += 1e-8 * scale;
      alpha = b;
      ok = lu_solve(A, alpha, m);
    }
    if (!ok) {
      for (int t : T) w.shared[t] = 1.0 / T.size();
      return w;
    }
    double rest = 0;
    for (int j = 0; j < m; j++) w.shared[T[j + 1]] = alpha[j], rest += alpha[j];
    w.shared[f] = 1.0 - rest;
    return w;
  }
};

}  // namespace

std::unique_ptr<GramWeighting> make_imtl_g_weighting() { return std::make_unique<ImtlG>(); }

}  // namespace mt
