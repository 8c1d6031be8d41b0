// Min-norm solver of MGDA / MGDA-UB (Sener & Koltun, NeurIPS 2018). See min_norm.h.
#include "mtl/solvers/min_norm.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "engine/error.h"

namespace mt {

namespace {

// Row-major K x K matrix M (symmetrised and scaled to max |M_ij| = 1 by min_norm()).
struct Mat {
  int K;
  std::vector<double> a;
  double operator()(int i, int j) const { return a[size_t(i) * K + j]; }
};

// ||c u + (1-c) v||^2 from v11 = <u,u>, v12 = <u,v>, v22 = <v,v>; >= 0 up to rounding.
double pair_norm_sq(double c, double v11, double v12, double v22) {
  const double d = 1.0 - c;
  return std::max(0.0, c * c * v11 + 2.0 * c * d * v12 + d * d * v22);
}

// gamma = argmin_{c in [0,1]} ||c u + (1-c) v||^2 (the paper's Algorithm 1).
// The dominance tests come first-vector-first, so u wins a tie: Frank-Wolfe
// relies on this to stay put (gamma = 1) once alpha is optimal.
double weight_on_first(double v11, double v12, double v22) {
  if (v12 >= v11) return 1.0;  // <u, v - u> >= 0: u is already the closest point to 0
  if (v12 >= v22) return 0.0;  // <v, u - v> >= 0: v is
  // Both differences are > 0 here, so the denominator ||u - v||^2 is > 0.
  const double denom = (v11 - v12) + (v22 - v12);
  return std::clamp((v22 - v12) / denom, 0.0, 1.0);
}

std::string fmt(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

void check_finite_pair(double v11, double v12, double v22) {
  if (!std::isfinite(v11) || !std::isfinite(v12) || !std::isfinite(v22))
    throw Error("min_norm: non-finite gradient inner product (v11 = " + fmt(v11) +
                ", v12 = " + fmt(v12) + ", v22 = " + fmt(v22) + ")");
}

std::vector<double> mat_vec(const Mat& M, const std::vector<double>& x) {
  std::vector<double> y(M.K, 0.0);
  for (int i = 0; i < M.K; ++i)
    for (int j = 0; j < M.K; ++j) y[i] += M(i, j) * x[j];
  return y;
}

double dot(const std::vector<double>& x, const std::vector<double>& y) {
  double s = 0.0;
  for (size_t i = 0; i < x.size(); ++i) s += x[i] * y[i];
  return s;
}

// Euclidean projection onto the simplex, sort-based (Held et al. 1974; Duchi et
// al. 2008): x_t = max(u_t - theta, 0) with theta chosen so that sum x_t = 1.
std::vector<double> project_to_simplex(const std::vector<double>& u) {
  std::vector<double> s = u;
  std::sort(s.begin(), s.end(), std::greater<double>());
  double cumsum = 0.0, theta = 0.0;
  for (size_t j = 0; j < s.size(); ++j) {
    cumsum += s[j];
    const double t = (cumsum - 1.0) / double(j + 1);
    if (s[j] - t > 0.0) theta = t;  // j + 1 <= rho: s_j stays in the support
  }
  std::vector<double> x(u.size());
  for (size_t i = 0; i < u.size(); ++i) x[i] = std::max(u[i] - theta, 0.0);
  return x;
}

// Start point of both iterative solvers (as in the reference code): the best
// pair (i, j) solved in closed form, i.e. the min-norm point over all edges of Delta.
std::vector<double> best_pair_start(const Mat& M) {
  std::vector<double> alpha(M.K, 0.0);
  double best = std::numeric_limits<double>::infinity();
  for (int i = 0; i < M.K; ++i)
    for (int j = i + 1; j < M.K; ++j) {
      const MinNormResult r = min_norm_2(M(i, i), M(i, j), M(j, j));
      if (r.norm_sq < best) {
        best = r.norm_sq;
        std::fill(alpha.begin(), alpha.end(), 0.0);
        alpha[i] = r.alpha[0];
        alpha[j] = r.alpha[1];
      }
    }
  return alpha;
}

// The paper's Algorithm 2 (Frank-Wolfe). Each step moves alpha towards the
// vertex e_t_hat with t_hat = argmin_r (M alpha)_r, the task whose gradient
// has the most negative inner product with the current combination, and the
// step size gamma is the exact 2-vector min-norm between sum_t alpha_t g_t and g_t_hat.
void frank_wolfe(const Mat& M, const MinNormOptions& opt, std::vector<double>& alpha, int& iters,
                 bool& converged) {
  while (iters < opt.max_iter) {
    const std::vector<double> Malpha = mat_vec(M, alpha);  // M alpha
    const int t_hat = int(std::min_element(Malpha.begin(), Malpha.end()) - Malpha.begin());
    const double v11 = dot(alpha, Malpha);  // alpha^T M alpha
    const double v12 = Malpha[t_hat];       // (M alpha)_t_hat
    const double v22 = M(t_hat, t_hat);     // M_t_hat,t_hat
    const double gamma = weight_on_first(v11, v12, v22);
    ++iters;

    double change = 0.0;  // sum_t |alpha_new - alpha_old|
    for (int t = 0; t < M.K; ++t) {
      const double updated = gamma * alpha[t] + (1.0 - gamma) * (t == t_hat ? 1.0 : 0.0);
      change += std::abs(updated - alpha[t]);
      alpha[t] = updated;
    }
    if (change < opt.tol) {
      converged = true;
      return;
    }
  }
}

// Projected gradient descent on Delta with the objective f(alpha) = alpha^T M alpha.
// Direction: d = P(alpha - s * 2 M alpha) - alpha, P the sort-based projection
// onto Delta. Any alpha + tau d with tau in [0, 1] is a convex combination of
// two points of Delta, hence feasible. Along d, f is the 1-D quadratic
//   f(alpha + tau d) = f + 2 tau d^T M alpha + tau^2 d^T M d,
// minimised exactly over [0, 1]. Plain PGD with a fixed s ~ 1/lambda_max(2M)
// crawls when the gradients have very different norms (ill-conditioned M), so
// this is the spectral variant (Birgin, Martinez & Raydan 2000):
//   - s is the Barzilai-Borwein step of the last move, <dalpha, dalpha> /
//     <dalpha, dgrad> = |d|^2 / (2 d^T M d);
//   - the full step tau = 1 is taken when it passes a non-monotone Armijo test
//     against the worst of the last 10 objective values, otherwise tau is the
//     exact line-search minimiser.
// The best alpha seen is returned.
void projected_gradient(const Mat& M, const MinNormOptions& opt, std::vector<double>& alpha,
                        int& iters, bool& converged) {
  const double s_min = 1e-12, s_max = 1e12;
  const double armijo = 1e-4;
  double s = 0.5;  // first trial step: 1 / (2 max_t M_tt), M being scaled to max |M_ij| = 1
  std::vector<double> Malpha = mat_vec(M, alpha);  // the gradient of f is 2 M alpha
  double f = dot(alpha, Malpha);
  std::vector<double> recent_f(10, f);
  std::vector<double> best_alpha = alpha;
  double best_f = f;
  std::vector<double> u(M.K), d(M.K);

  while (iters < opt.max_iter) {
    for (int t = 0; t < M.K; ++t) u[t] = alpha[t] - s * 2.0 * Malpha[t];
    const std::vector<double> y = project_to_simplex(u);
    for (int t = 0; t < M.K; ++t) d[t] = y[t] - alpha[t];

    const double slope = dot(d, Malpha);        // d^T M alpha (half of f's derivative along d)
    const double curv = dot(d, mat_vec(M, d));  // d^T M d
    double tau = 0.0;                           // step along d, in [0, 1]
    if (slope < 0.0) {
      const double f_full = f + 2.0 * slope + curv;  // f(y)
      const double f_ref = *std::max_element(recent_f.begin(), recent_f.end());
      if (f_full <= f_ref + armijo * 2.0 * slope)
        tau = 1.0;
      else
        tau = curv > 0.0 ? std::min(1.0, -slope / curv) : 1.0;
    }
    s = curv > 0.0 ? std::clamp(dot(d, d) / (2.0 * curv), s_min, s_max) : s_max;
    ++iters;

    double change = 0.0;  // sum_t |alpha_new - alpha_old|
    for (int t = 0; t < M.K; ++t) {
      const double updated = (1.0 - tau) * alpha[t] + tau * y[t];
      change += std::abs(updated - alpha[t]);
      alpha[t] = updated;
    }
    Malpha = mat_vec(M, alpha);
    f = dot(alpha, Malpha);
    recent_f[size_t(iters) % recent_f.size()] = f;
    if (f < best_f) {
      best_f = f;
      best_alpha = alpha;
    }
    if (change < opt.tol) {
      converged = true;
      break;
    }
  }
  if (best_f < f) alpha = best_alpha;
}

// The duality gap of alpha on the scaled M (MinNormResult::gap):
//   raw      = f - min_t (M alpha)_t, >= 0 in exact arithmetic;
//   rounding = 4 K eps max_t sum_s |M_ts| alpha_s, a bound on the rounding error
//              of computing raw for this alpha (raw below it is reported as 0);
//   floor    = 4 K eps max_t M_tt, the absolute floor of the stopping test: the
//              precision to which double resolves a point of the hull when the
//              largest gradient has M_tt = max (a zero optimum, 0 in the hull,
//              cannot be certified relatively).
struct Gap {
  double raw, rounding, floor, f;
  double relative() const {
    if (raw <= rounding) return 0.0;
    return f > 0.0 ? raw / f : std::numeric_limits<double>::infinity();
  }
  bool within(double gap_tol) const { return raw <= rounding || raw <= gap_tol * f + floor; }
};

Gap duality_gap(const Mat& M, const std::vector<double>& alpha, const std::vector<double>& Malpha, double f) {
  const double eps4K = 4.0 * M.K * std::numeric_limits<double>::epsilon();
  double rounding = 0.0, max_diag = 0.0;
  for (int t = 0; t < M.K; ++t) {
    double s = 0.0;
    for (int k = 0; k < M.K; ++k) s += std::abs(M(t, k)) * alpha[k];
    rounding = std::max(rounding, s);
    max_diag = std::max(max_diag, M(t, t));
  }
  const double raw = f - *std::min_element(Malpha.begin(), Malpha.end());
  return {raw, eps4K * rounding, eps4K * max_diag, f};
}

// Affine minimiser of the points indexed by S (Wolfe 1976, the "minor cycle"'s
// step 2): v = argmin { v^T M_SS v : sum_i v_i = 1 }. Its conditions are
// M_SS v = lambda 1, sum v = 1; for any c > 0 they give (M_SS + c 1 1^T) v =
// (lambda + c) 1, so v = u / sum(u) with (M_SS + c 1 1^T) u = 1. That matrix is
// the Gram matrix of Wolfe's lifted points (sqrt(c), g_i), positive definite iff
// the g_i are affinely independent. c is the geometric mean of the smallest and
// largest M_ii on S: with c = max M_ii, a cluster of small gradients beside a
// large one would differ only in the last digits of the lifted points (norms
// spread over 10^6 lost 12 digits that way); the geometric mean splits the
// loss between the small and the large end.
// Cholesky; returns false on a pivot <= 1e-13 of its own row's diagonal
// M_ii + c (the lifted point is in the span of the others to working precision:
// the test is scale-free, whatever the gradient norms).
bool affine_minimizer(const Mat& M, const std::vector<int>& S, std::vector<double>& v) {
  const size_t s = S.size();
  double lo = std::numeric_limits<double>::infinity(), hi = 0.0;
  for (int i : S) {
    lo = std::min(lo, M(i, i));
    hi = std::max(hi, M(i, i));
  }
  if (!(hi > 0.0)) return false;  // all points are 0: handled by the gap test before
  const double c = lo > 0.0 ? std::sqrt(lo) * std::sqrt(hi) : hi;
  std::vector<double> L(s * s, 0.0);  // lower triangle of M_SS + c 11^T = L L^T
  for (size_t i = 0; i < s; ++i)
    for (size_t j = 0; j <= i; ++j) {
      double a = M(S[i], S[j]) + c;
      for (size_t k = 0; k < j; ++k) a -= L[i * s + k] * L[j * s + k];
      if (i == j) {
        if (!(a > 1e-13 * (M(S[i], S[i]) + c))) return false;
        L[i * s + i] = std::sqrt(a);
      } else {
        L[i * s + j] = a / L[j * s + j];
      }
    }
  std::vector<double> u(s, 1.0);  // solve L L^T u = 1
  for (size_t i = 0; i < s; ++i) {
    for (size_t k = 0; k < i; ++k) u[i] -= L[i * s + k] * u[k];
    u[i] /= L[i * s + i];
  }
  for (size_t i = s; i-- > 0;) {
    for (size_t k = i + 1; k < s; ++k) u[i] -= L[k * s + i] * u[k];
    u[i] /= L[i * s + i];
  }
  double sum = 0.0;
  for (double x : u) sum += x;
  if (!(sum > 0.0) || !std::isfinite(sum)) return false;  // sum = 1^T A^-1 1 > 0 for A > 0
  v.resize(s);
  for (size_t i = 0; i < s; ++i) v[i] = u[i] / sum;
  return true;
}

// Wolfe's minimum-norm-point algorithm (P. Wolfe, "Finding the nearest point in
// a polytope", Math. Programming 11, 1976), on the Gram matrix: a point is a
// task gradient g_t, the current point x = sum_t alpha_t g_t, and x . g_t = (M alpha)_t.
// S (Wolfe's "corral") is the support of alpha, a set of affinely independent
// points whose affine minimiser is x.
//   major cycle: t_hat = argmin_t (M alpha)_t (the vertex Frank-Wolfe would
//     take). Stop when the relative duality gap is <= gap_tol; else add t_hat to S.
//     (The absolute floor of MinNormResult::converged does not stop it: a
//     small optimum beside a huge gradient would stop early; only the stalls
//     below do.)
//   minor cycle: v = the affine minimiser of S. If v > 0 on S, alpha = v (x is
//     then the min-norm point of conv(S)): next major cycle. Otherwise move
//     alpha towards v until the first weight reaches 0, drop the points whose
//     weight is 0, and repeat.
// Each major cycle lowers f strictly and no corral repeats, so in exact
// arithmetic it ends after finitely many steps with the exact optimum. In
// floating point, a major cycle that does not lower f, a chosen vertex already
// in S, or a singular affine system ends it early (converged then says whether
// the gap test passed). An iteration is one affine solve (one minor cycle).
void wolfe(const Mat& M, const MinNormOptions& opt, std::vector<double>& alpha, int& iters) {
  std::vector<int> S;
  for (int t = 0; t < M.K; ++t)
    if (alpha[t] > 0.0) S.push_back(t);
  std::vector<double> v;
  double f_prev = std::numeric_limits<double>::infinity();
  while (true) {
    const std::vector<double> Malpha = mat_vec(M, alpha);
    const double f = dot(alpha, Malpha);
    if (duality_gap(M, alpha, Malpha, f).relative() <= opt.gap_tol) return;  // not within(): no floor here
    const int t_hat = int(std::min_element(Malpha.begin(), Malpha.end()) - Malpha.begin());
    if (!(f < f_prev) || std::find(S.begin(), S.end(), t_hat) != S.end()) return;  // stalled
    f_prev = f;
    S.push_back(t_hat);  // with alpha_t_hat = 0
    while (true) {       // minor cycles
      if (iters >= opt.max_iter) return;
      ++iters;
      if (!affine_minimizer(M, S, v)) return;
      if (std::all_of(v.begin(), v.end(), [](double x) { return x > 0.0; })) {
        for (size_t i = 0; i < S.size(); ++i) alpha[S[i]] = v[i];
        break;
      }
      // theta: the largest step from alpha towards v that keeps every weight >= 0
      double theta = 1.0;
      size_t hit = S.size();  // the point whose weight reaches 0 first (none if theta = 1)
      for (size_t i = 0; i < S.size(); ++i) {
        const double a = alpha[S[i]];
        if (v[i] <= 0.0 && a / (a - v[i]) < theta) {  // a - v[i] >= a >= 0, > 0 unless a = v[i] = 0
          theta = a / (a - v[i]);
          hit = i;
        }
      }
      std::vector<int> kept;
      for (size_t i = 0; i < S.size(); ++i) {
        double& a = alpha[S[i]];
        a = (1.0 - theta) * a + theta * v[i];
        if (i == hit || !(a > 0.0)) {
          a = 0.0;
        } else {
          kept.push_back(S[i]);
        }
      }
      S = kept;
    }
  }
}

}  // namespace

const std::vector<std::string>& min_norm_algo_names() {
  static const std::vector<std::string> names = {"wolfe", "frank-wolfe", "projected-gradient"};
  return names;
}

const std::string& min_norm_algo_name(MinNormAlgo algo) { return min_norm_algo_names().at(size_t(algo)); }

MinNormAlgo parse_min_norm_algo(const std::string& name) {
  const auto& names = min_norm_algo_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (name == names[i]) return MinNormAlgo(i);
  std::string allowed;
  for (const auto& n : names) allowed += (allowed.empty() ? "" : ", ") + n;
  throw Error("unknown min-norm solver '" + name + "' (allowed: " + allowed + ")");
}

GradNormalization parse_grad_normalization(const std::string& s) {
  if (s == "none") return GradNormalization::None;
  if (s == "l2") return GradNormalization::L2;
  if (s == "loss") return GradNormalization::Loss;
  if (s == "loss+") return GradNormalization::LossPlus;
  throw Error("unknown gradient normalization '" + s + "' (allowed: none, l2, loss, loss+)");
}

std::vector<double> normalization_scales(GradNormalization n, const std::vector<double>& losses,
                                         const std::vector<double>& grad_norms) {
  if (losses.size() != grad_norms.size())
    throw Error("normalization_scales: " + std::to_string(losses.size()) + " losses but " +
                std::to_string(grad_norms.size()) + " gradient norms");
  const size_t K = losses.size();
  for (size_t t = 0; t < K; ++t) {
    if (!std::isfinite(losses[t]) || losses[t] < 0.0)
      throw Error("normalization_scales: loss of task " + std::to_string(t) + " is " +
                  fmt(losses[t]) + " (must be finite and >= 0)");
    if (!std::isfinite(grad_norms[t]) || grad_norms[t] < 0.0)
      throw Error("normalization_scales: gradient norm of task " + std::to_string(t) + " is " +
                  fmt(grad_norms[t]) + " (must be finite and >= 0)");
  }
  std::vector<double> scale(K, 1.0);
  for (size_t t = 0; t < K; ++t) {
    switch (n) {
      case GradNormalization::None: scale[t] = 1.0; break;
      case GradNormalization::L2: scale[t] = grad_norms[t]; break;
      case GradNormalization::Loss: scale[t] = losses[t]; break;
      case GradNormalization::LossPlus: scale[t] = losses[t] * grad_norms[t]; break;
    }
  }
  return scale;
}

std::vector<double> gram_matrix(const std::vector<const float*>& g, size_t n) {
  const size_t K = g.size();
  for (size_t t = 0; t < K; ++t)
    if (n > 0 && g[t] == nullptr)
      throw Error("gram_matrix: gradient " + std::to_string(t) + " is null (n = " +
                  std::to_string(n) + ")");
  std::vector<double> M(K * K, 0.0);
  for (size_t i = 0; i < K; ++i)
    for (size_t j = i; j < K; ++j) {
      double s = 0.0;  // <g_i, g_j>, accumulated in double in index order
      for (size_t k = 0; k < n; ++k) s += double(g[i][k]) * double(g[j][k]);
      M[i * K + j] = s;
      M[j * K + i] = s;
    }
  return M;
}

// Two tasks, closed form (the paper's Algorithm 1):
//   alpha_1 = clamp((v22 - v12) / (v11 + v22 - 2 v12), 0, 1),  alpha_2 = 1 - alpha_1.
// When one gradient dominates (v12 >= v11: g1 is the min-norm point, or v12 >=
// v22: g2 is) the reference code returns alpha_1 = 0.999 / 0.001; we return the
// exact 1 / 0, which is the true minimiser. Identical gradients (both tests
// hold, zero denominator): every alpha gives the same combination; we return
// the symmetric (0.5, 0.5).
MinNormResult min_norm_2(double v11, double v12, double v22) {
  check_finite_pair(v11, v12, v22);
  const double alpha1 = (v12 >= v11 && v12 >= v22) ? 0.5 : weight_on_first(v11, v12, v22);
  return {{alpha1, 1.0 - alpha1}, pair_norm_sq(alpha1, v11, v12, v22), 0, true};
}

MinNormResult min_norm(const std::vector<double>& gram, int K, const MinNormOptions& opt) {
  if (K < 1) throw Error("min_norm: need at least one task, got K = " + std::to_string(K));
  if (gram.size() != size_t(K) * size_t(K))
    throw Error("min_norm: gram matrix has " + std::to_string(gram.size()) +
                " entries, expected K*K = " + std::to_string(size_t(K) * size_t(K)) +
                " for K = " + std::to_string(K));
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      const double m = gram[size_t(i) * K + j];
      if (!std::isfinite(m))
        throw Error("min_norm: non-finite gradient inner product M[" + std::to_string(i) + "][" +
                    std::to_string(j) + "] = " + fmt(m) + " (K = " + std::to_string(K) + ")");
    }
  if (opt.max_iter < 0)
    throw Error("min_norm: max_iter must be >= 0, got " + std::to_string(opt.max_iter));
  if (!(opt.tol >= 0.0) || !std::isfinite(opt.tol))
    throw Error("min_norm: tol must be finite and >= 0, got " + fmt(opt.tol));
  if (!(opt.gap_tol >= 0.0) || !std::isfinite(opt.gap_tol))
    throw Error("min_norm: gap_tol must be finite and >= 0, got " + fmt(opt.gap_tol));

  // M = symmetric part of gram, divided by max |M_ij|: alpha is invariant to the
  // scale of M, and this keeps every intermediate O(1) (no overflow for huge
  // gradients, a scale-free tol). norm_sq is reported for the original M.
  double scale = 0.0;
  for (double m : gram) scale = std::max(scale, std::abs(m));
  if (!(scale > 0.0)) scale = 1.0;  // all gradients zero: any alpha is optimal
  Mat M{K, std::vector<double>(size_t(K) * K)};
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j)
      M.a[size_t(i) * K + j] = 0.5 * (gram[size_t(i) * K + j] / scale + gram[size_t(j) * K + i] / scale);

  MinNormResult res{{}, 0.0, 0, true};
  if (K == 1) {
    res.alpha = {1.0};
  } else if (K == 2) {
    res.alpha = min_norm_2(M(0, 0), M(0, 1), M(1, 1)).alpha;
  } else {
    res.alpha = best_pair_start(M);
    res.converged = false;
    switch (opt.algo) {
      case MinNormAlgo::Wolfe: wolfe(M, opt, res.alpha, res.iterations); break;
      case MinNormAlgo::FrankWolfe: frank_wolfe(M, opt, res.alpha, res.iterations, res.converged); break;
      case MinNormAlgo::ProjectedGradient:
        projected_gradient(M, opt, res.alpha, res.iterations, res.converged);
        break;
    }
  }

  // Back onto the simplex exactly (rounding may leave sum_t alpha_t = 1 +- ulp).
  double sum = 0.0;
  for (double& a : res.alpha) {
    a = std::isfinite(a) ? std::max(a, 0.0) : 0.0;
    sum += a;
  }
  if (!(sum > 0.0)) {  // cannot happen for finite M; keep the output on the simplex anyway
    std::fill(res.alpha.begin(), res.alpha.end(), 1.0 / K);
  } else {
    for (double& a : res.alpha) a /= sum;
  }
  const std::vector<double> Malpha = mat_vec(M, res.alpha);
  const double f = dot(res.alpha, Malpha);
  res.norm_sq = std::max(0.0, f * scale);
  const Gap gap = duality_gap(M, res.alpha, Malpha, f);
  res.gap = gap.relative();
  if (K >= 3 && opt.algo == MinNormAlgo::Wolfe) res.converged = gap.within(opt.gap_tol);
  return res;
}

}  // namespace mt
