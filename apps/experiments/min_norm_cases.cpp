// Hard min-norm problems and a long-double reference (see min_norm_cases.h).
#include "apps/experiments/min_norm_cases.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "engine/error.h"
#include "engine/rng.h"

namespace mt {

namespace {

using LD = long double;
using Grads = std::vector<std::vector<double>>;

double normal(Rng& rng) {  // Box-Muller, reproducible on any standard library
  const double u1 = 1.0 - rng.uniform_double(), u2 = rng.uniform_double();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

std::vector<double> normal_vec(Rng& rng, size_t n) {
  std::vector<double> v(n);
  for (double& x : v) x = normal(rng);
  return v;
}

Grads normal_grads(Rng& rng, int K, size_t n) {
  Grads g(K);
  for (auto& v : g) v = normal_vec(rng, n);
  return g;
}

std::vector<double> gram_of(const Grads& g) {
  const size_t K = g.size();
  std::vector<double> M(K * K);
  for (size_t i = 0; i < K; ++i)
    for (size_t j = i; j < K; ++j) {
      double s = 0.0;
      for (size_t k = 0; k < g[i].size(); ++k) s += g[i][k] * g[j][k];
      M[i * K + j] = M[j * K + i] = s;
    }
  return M;
}

// One case of a family; rep varies the variant within the family.
Grads draw(const std::string& family, int K, int rep, Rng& rng) {
  if (family == "random") {  // N(0, 1) in n dims, from fewer dims than tasks (0 in the hull) to many
    const size_t dims[] = {size_t(K / 2 + 1), size_t(K), size_t(3 * K), 100};
    return normal_grads(rng, K, dims[rep % 4]);
  }
  if (family == "rank-deficient") {  // rank r < K: g_t = sum_j c_tj b_j, n = 50
    const int r = std::max(1, rep % 2 ? K / 4 : 2);
    const Grads b = normal_grads(rng, r, 50);
    Grads g(K, std::vector<double>(50, 0.0));
    for (auto& v : g)
      for (int j = 0; j < r; ++j) {
        const double c = normal(rng);
        for (size_t k = 0; k < 50; ++k) v[k] += c * b[j][k];
      }
    return g;
  }
  if (family == "nearly-collinear") {  // g_t = g + delta xi_t, delta 1e-3 or 1e-5
    const double delta = rep % 2 ? 1e-5 : 1e-3;
    const std::vector<double> c = normal_vec(rng, 50);
    Grads g = normal_grads(rng, K, 50);
    for (auto& v : g)
      for (size_t k = 0; k < 50; ++k) v[k] = c[k] + delta * v[k];
    return g;
  }
  if (family == "dominating") {  // one gradient 1000x (or 1e5x) the others
    Grads g = normal_grads(rng, K, rep % 3 == 2 ? size_t(K) : 50);
    const double s = rep % 2 ? 1e5 : 1e3;
    for (double& x : g[rep % K]) x *= s;
    return g;
  }
  if (family == "conflicting") {  // xi_t - mean(xi) (0 in the hull) plus eps c, eps in {0.1, 0.01, 0}
    const double eps[] = {0.1, 0.01, 0.0};
    const size_t n = rep % 2 ? size_t(2 * K) : 100;
    Grads g = normal_grads(rng, K, n);
    const std::vector<double> c = normal_vec(rng, n);
    std::vector<double> mean(n, 0.0);
    for (const auto& v : g)
      for (size_t k = 0; k < n; ++k) mean[k] += v[k] / K;
    for (auto& v : g)
      for (size_t k = 0; k < n; ++k) v[k] = v[k] - mean[k] + eps[rep % 3] * c[k];
    return g;
  }
  if (family == "badly-scaled") {  // norms spread over 10^-3 .. 10^3
    Grads g = normal_grads(rng, K, rep % 2 ? size_t(K / 2 + 1) : 50);
    for (auto& v : g) {
      const double s = std::pow(10.0, -3.0 + 6.0 * rng.uniform_double());
      for (double& x : v) x *= s;
    }
    return g;
  }
  throw Error("hard_min_norm_cases: unknown family '" + family + "'");
}

std::vector<LD> mat_vec_ld(const std::vector<double>& M, int K, const std::vector<double>& a) {
  std::vector<LD> y(K, 0.0L);
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) y[i] += LD(M[size_t(i) * K + j]) * LD(a[j]);
  return y;
}

// The affine minimiser of the points in S from the bordered system, long double,
// Gaussian elimination with partial pivoting. False if singular (affinely dependent).
bool bordered_solve(const std::vector<double>& M, int K, const std::vector<int>& S, std::vector<LD>& v) {
  const int s = int(S.size()), n = s + 1;
  LD scale = 0.0L;
  for (int i : S) scale = std::max(scale, LD(std::abs(M[size_t(i) * K + i])));
  if (!(scale > 0.0L)) scale = 1.0L;
  // A = [M_SS / scale, 1; 1^T, 0], rhs = [0; 1]; the unknowns are v and -lambda / scale
  std::vector<LD> A(size_t(n) * (n + 1), 0.0L);
  auto a = [&](int r, int c) -> LD& { return A[size_t(r) * (n + 1) + c]; };
  for (int i = 0; i < s; ++i) {
    for (int j = 0; j < s; ++j) a(i, j) = LD(M[size_t(S[i]) * K + S[j]]) / scale;
    a(i, s) = 1.0L;
    a(s, i) = 1.0L;
  }
  a(s, n) = 1.0L;
  for (int c = 0; c < n; ++c) {
    int p = c;
    for (int r = c + 1; r < n; ++r)
      if (std::abs(a(r, c)) > std::abs(a(p, c))) p = r;
    if (!(std::abs(a(p, c)) > 1e-15L)) return false;
    if (p != c)
      for (int k = 0; k <= n; ++k) std::swap(a(p, k), a(c, k));
    for (int r = c + 1; r < n; ++r) {
      const LD m = a(r, c) / a(c, c);
      for (int k = c; k <= n; ++k) a(r, k) -= m * a(c, k);
    }
  }
  std::vector<LD> x(n);
  for (int r = n - 1; r >= 0; --r) {
    LD t = a(r, n);
    for (int k = r + 1; k < n; ++k) t -= a(r, k) * x[k];
    x[r] = t / a(r, r);
  }
  v.assign(x.begin(), x.begin() + s);
  return true;
}

MinNormReference enumerate(const std::vector<double>& M, int K) {
  MinNormReference best;
  best.exact = true;
  best.upper = std::numeric_limits<LD>::infinity();
  std::vector<LD> v;
  for (uint32_t mask = 1; mask < (1u << K); ++mask) {
    std::vector<int> S;
    for (int t = 0; t < K; ++t)
      if (mask >> t & 1u) S.push_back(t);
    if (!bordered_solve(M, K, S, v)) continue;
    if (std::any_of(v.begin(), v.end(), [](LD x) { return x < 0.0L; })) continue;
    std::vector<double> alpha(K, 0.0);
    LD f = 0.0L;
    for (size_t i = 0; i < S.size(); ++i)
      for (size_t j = 0; j < S.size(); ++j) f += v[i] * LD(M[size_t(S[i]) * K + S[j]]) * v[j];
    if (f < best.upper) {
      for (size_t i = 0; i < S.size(); ++i) alpha[S[i]] = double(v[i]);
      best.upper = f;
      best.alpha = alpha;
    }
  }
  best.upper = std::max(best.upper, 0.0L);
  best.lower = best.upper;
  return best;
}

// Pairwise Frank-Wolfe in long double: move weight from the support vertex with
// the largest (M beta)_t to the vertex with the smallest, exact line search.
MinNormReference pairwise_fw(const std::vector<double>& M, int K) {
  std::vector<LD> beta(K, 0.0L);
  int start = 0;
  for (int t = 1; t < K; ++t)
    if (M[size_t(t) * K + t] < M[size_t(start) * K + start]) start = t;
  beta[start] = 1.0L;
  std::vector<LD> Mb(K);
  for (int t = 0; t < K; ++t) Mb[t] = M[size_t(t) * K + start];
  LD f = M[size_t(start) * K + start];
  for (int it = 0; it < 50000; ++it) {
    int s = 0, v = -1;
    for (int t = 0; t < K; ++t) {
      if (Mb[t] < Mb[s]) s = t;
      if (beta[t] > 0.0L && (v < 0 || Mb[t] > Mb[v])) v = t;
    }
    if (f - Mb[s] <= 1e-15L * f || s == v) break;
    const LD slope = Mb[s] - Mb[v];  // half the derivative of f along e_s - e_v
    const LD curv = LD(M[size_t(s) * K + s]) + LD(M[size_t(v) * K + v]) - 2.0L * LD(M[size_t(s) * K + v]);
    LD gamma = curv > 0.0L ? std::min(beta[v], -slope / curv) : beta[v];
    if (!(gamma > 0.0L)) break;
    beta[s] += gamma;
    beta[v] -= gamma;
    if (gamma == beta[v] + gamma) beta[v] = 0.0L;  // a drop step
    for (int t = 0; t < K; ++t) Mb[t] += gamma * (LD(M[size_t(t) * K + s]) - LD(M[size_t(t) * K + v]));
    f += 2.0L * gamma * slope + gamma * gamma * curv;
  }
  MinNormReference r;
  r.alpha.resize(K);
  LD sum = 0.0L;
  for (LD b : beta) sum += std::max(b, 0.0L);
  for (int t = 0; t < K; ++t) r.alpha[t] = double(std::max(beta[t], 0.0L) / sum);
  r.upper = objective_ld(M, r.alpha);
  r.lower = lower_bound_ld(M, r.alpha);
  return r;
}

}  // namespace

const std::vector<std::string>& min_norm_case_families() {
  static const std::vector<std::string> f = {"random",     "rank-deficient", "nearly-collinear",
                                             "dominating", "conflicting",    "badly-scaled"};
  return f;
}

std::vector<MinNormCase> hard_min_norm_cases(int K, int per_family, uint64_t seed) {
  if (K < 3) throw Error("hard_min_norm_cases: K must be >= 3, got " + std::to_string(K));
  Rng rng(seed * 1000003ull + uint64_t(K));
  std::vector<MinNormCase> cases;
  for (const std::string& family : min_norm_case_families())
    for (int rep = 0; rep < per_family; ++rep) cases.push_back({family, K, gram_of(draw(family, K, rep, rng))});
  return cases;
}

namespace {
// f(alpha) = alpha^T M alpha and min_t (M alpha)_t, in long double.
std::pair<LD, LD> objective_and_min(const std::vector<double>& M, const std::vector<double>& alpha) {
  const int K = int(alpha.size());
  const std::vector<LD> Ma = mat_vec_ld(M, K, alpha);
  LD f = 0.0L;
  for (int t = 0; t < K; ++t) f += LD(alpha[t]) * Ma[t];
  return {f, *std::min_element(Ma.begin(), Ma.end())};
}
}  // namespace

long double objective_ld(const std::vector<double>& M, const std::vector<double>& alpha) {
  return objective_and_min(M, alpha).first;
}

long double lower_bound_ld(const std::vector<double>& M, const std::vector<double>& alpha) {
  const auto [f, min_Ma] = objective_and_min(M, alpha);
  return 2.0L * min_Ma - f;
}

MinNormReference min_norm_reference(const std::vector<double>& M, int K) {
  if (K < 1 || M.size() != size_t(K) * K) throw Error("min_norm_reference: M is not K x K");
  return K <= kEnumerateMaxK ? enumerate(M, K) : pairwise_fw(M, K);
}

}  // namespace mt
