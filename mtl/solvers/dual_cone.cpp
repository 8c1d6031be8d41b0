// Dual-cone projection weights by an active-set method (see dual_cone.h).
#include "mtl/solvers/dual_cone.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "mtl/solvers/small_linalg.h"

namespace mt {

namespace {

// s = argmin over lambda with lambda_i = 0 outside P of (1/2) lambda^T M lambda + q^T lambda:
// M_PP s_P = -q_P.
std::vector<double> solve_passive(const std::vector<double>& M, int K, const std::vector<double>& q,
                                  const std::vector<int>& P) {
  const int n = (int)P.size();
  std::vector<double> A(size_t(n) * n), b(n);
  for (int i = 0; i < n; i++) {
    b[i] = -q[P[i]];
    for (int j = 0; j < n; j++) A[size_t(i) * n + j] = M[size_t(P[i]) * K + P[j]];
  }
  if (!lu_solve(A, b, n)) throw Error("project_dual_cone: the Gram matrix is singular (regularise it)");
  std::vector<double> s(K, 0.0);
  for (int i = 0; i < n; i++) s[P[i]] = b[i];
  return s;
}

}  // namespace

DualConeResult project_dual_cone(const std::vector<double>& M, int K, const std::vector<double>& u) {
  if (K < 1 || M.size() != size_t(K) * K || u.size() != size_t(K))
    throw Error("project_dual_cone: needs a K x K Gram matrix and K weights, K >= 1");
  double scale = 0, umax = 0;
  for (double v : M) {
    if (!std::isfinite(v)) throw Error("project_dual_cone: non-finite Gram matrix entry");
    scale = std::max(scale, std::fabs(v));
  }
  for (double v : u) {
    if (!std::isfinite(v)) throw Error("project_dual_cone: non-finite weight");
    umax = std::max(umax, std::fabs(v));
  }
  DualConeResult r;
  r.w = u;
  if (!(scale > 0) || !(umax > 0)) return r;  // nothing to project
  // q = M u: the objective in lambda = w - u is (1/2) lambda^T M lambda + q^T lambda.
  std::vector<double> q(K, 0.0), lambda(K, 0.0);
  for (int i = 0; i < K; i++)
    for (int j = 0; j < K; j++) q[i] += M[size_t(i) * K + j] * u[j];
  auto neg_gradient = [&](int i) {  // -(M lambda + q)_i = -(M w)_i
    double g = q[i];
    for (int j = 0; j < K; j++) g += M[size_t(i) * K + j] * lambda[j];
    return -g;
  };
  const double tol = 1e-12 * scale * umax;
  std::vector<char> passive(K, 0);
  const int max_iter = 10 * K + 10;
  while (r.iterations < max_iter) {
    // Lawson & Hanson's step 2: the constrained coordinate whose release lowers
    // the objective fastest; none left means the KKT conditions hold.
    int j = -1;
    double best = tol;
    for (int i = 0; i < K; i++) {
      if (passive[i]) continue;
      const double g = neg_gradient(i);
      if (g > best) best = g, j = i;
    }
    if (j < 0) break;
    passive[j] = 1;
    r.iterations++;
    for (;;) {
      std::vector<int> P;
      for (int i = 0; i < K; i++)
        if (passive[i]) P.push_back(i);
      std::vector<double> s = solve_passive(M, K, q, P);
      // Steps 8-11: move toward s until the first passive coordinate reaches 0.
      double step = 1.0;
      int blocking = -1;
      for (int i : P)
        if (s[i] <= 0 && lambda[i] / (lambda[i] - s[i]) < step) step = lambda[i] / (lambda[i] - s[i]), blocking = i;
      if (blocking < 0) {
        lambda = s;
        break;
      }
      for (int i = 0; i < K; i++) lambda[i] += step * (s[i] - lambda[i]);
      lambda[blocking] = 0;  // exactly on its bound (rounding may leave +-ulp)
      for (int i : P)
        if (lambda[i] <= 0) passive[i] = 0, lambda[i] = 0;
      if (++r.iterations >= max_iter) break;
    }
  }
  for (int i = 0; i < K; i++) r.w[i] = u[i] + std::max(lambda[i], 0.0);
  return r;
}

}  // namespace mt
