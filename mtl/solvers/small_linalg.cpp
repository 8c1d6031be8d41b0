// Small dense linear algebra (see small_linalg.h).
#include "mtl/solvers/small_linalg.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "engine/error.h"

namespace mt {

bool lu_solve(std::vector<double> A, std::vector<double>& b, int n) {
  if (n < 0 || A.size() != size_t(n) * n || b.size() != size_t(n))
    throw Error("lu_solve: needs an n x n matrix and n right-hand values");
  double scale = 0;
  for (double v : A) scale = std::max(scale, std::fabs(v));
  if (!(scale > 0) || !std::isfinite(scale)) return n == 0;
  auto a = [&](int i, int j) -> double& { return A[size_t(i) * n + j]; };
  for (int k = 0; k < n; k++) {
    int p = k;  // partial pivoting: the largest |a_ik| below the diagonal
    for (int i = k + 1; i < n; i++)
      if (std::fabs(a(i, k)) > std::fabs(a(p, k))) p = i;
    if (!(std::fabs(a(p, k)) > 1e-13 * scale)) return false;
    if (p != k) {
      for (int j = 0; j < n; j++) std::swap(a(k, j), a(p, j));
      std::swap(b[k], b[p]);
    }
    for (int i = k + 1; i < n; i++) {
      const double f = a(i, k) / a(k, k);
      if (f == 0) continue;
      for (int j = k; j < n; j++) a(i, j) -= f * a(k, j);
      b[i] -= f * b[k];
    }
  }
  for (int i = n - 1; i >= 0; i--) {  // back substitution
    double s = b[i];
    for (int j = i + 1; j < n; j++) s -= a(i, j) * b[j];
    b[i] = s / a(i, i);
  }
  return true;
}

void sym_eig(const std::vector<double>& A0, int n, std::vector<double>& lambda, std::vector<double>& V) {
  if (n < 1 || A0.size() != size_t(n) * n) throw Error("sym_eig: needs an n x n matrix with n >= 1");
  std::vector<double> A(A0);
  for (int i = 0; i < n; i++)  // symmetric from the upper triangle
    for (int j = 0; j < i; j++) A[size_t(i) * n + j] = A[size_t(j) * n + i];
  V.assign(size_t(n) * n, 0.0);
  for (int i = 0; i < n; i++) V[size_t(i) * n + i] = 1.0;
  auto a = [&](int i, int j) -> double& { return A[size_t(i) * n + j]; };
  for (int sweep = 0; sweep < 100; sweep++) {
    double off = 0, total = 0;
    for (int i = 0; i < n; i++)
      for (int j = 0; j < n; j++) (i == j ? total : off) += a(i, j) * a(i, j);
    if (off <= 1e-30 * (total + off)) break;
    for (int p = 0; p < n; p++)
      for (int q = p + 1; q < n; q++) {
        if (a(p, q) == 0) continue;
        // The rotation in the (p, q) plane that zeroes a_pq (Golub & Van Loan, Alg. 8.4.1).
        const double theta = (a(q, q) - a(p, p)) / (2 * a(p, q));
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int k = 0; k < n; k++) {  // A <- A J (columns p, q)
          const double akp = a(k, p), akq = a(k, q);
          a(k, p) = c * akp - s * akq;
          a(k, q) = s * akp + c * akq;
        }
        for (int k = 0; k < n; k++) {  // A <- J^T A (rows p, q)
          const double apk = a(p, k), aqk = a(q, k);
          a(p, k) = c * apk - s * aqk;
          a(q, k) = s * apk + c * aqk;
        }
        for (int k = 0; k < n; k++) {  // V <- V J
          double& vkp = V[size_t(k) * n + p];
          double& vkq = V[size_t(k) * n + q];
          const double x = vkp, y = vkq;
          vkp = c * x - s * y;
          vkq = s * x + c * y;
        }
      }
  }
  std::vector<int> order(n);
  for (int i = 0; i < n; i++) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int i, int j) { return a(i, i) < a(j, j); });
  lambda.assign(n, 0.0);
  std::vector<double> W(size_t(n) * n);
  for (int k = 0; k < n; k++) {
    lambda[k] = a(order[k], order[k]);
    for (int i = 0; i < n; i++) W[size_t(i) * n + k] = V[size_t(i) * n + order[k]];
  }
  V = std::move(W);
}

std::vector<double> project_to_simplex(const std::vector<double>& u) {
  if (u.empty()) throw Error("project_to_simplex: empty vector");
  // w_i = max(u_i - tau, 0) with tau chosen so that sum_i w_i = 1: with u sorted
  // in decreasing order, tau = (sum of the largest rho entries - 1) / rho for the
  // largest rho whose entry u_(rho) still exceeds that tau.
  std::vector<double> s(u);
  std::sort(s.begin(), s.end(), std::greater<double>());
  double prefix = 0, tau = 0;
  for (size_t r = 0; r < s.size(); r++) {
    prefix += s[r];
    const double t = (prefix - 1.0) / double(r + 1);
    if (s[r] > t) tau = t;
  }
  std::vector<double> w(u.size());
  for (size_t i = 0; i < u.size(); i++) w[i] = std::max(u[i] - tau, 0.0);
  return w;
}

}  // namespace mt
