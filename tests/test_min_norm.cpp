// Tests for the MGDA min-norm solver (mtl/solvers/min_norm.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "apps/experiments/min_norm_cases.h"
#include "engine/error.h"
#include "mtl/solvers/min_norm.h"

using namespace mt;

namespace {

// K random gradients of dimension n, N(0, 1) entries; with mixed_scales each
// task is multiplied by 10^U(-1, 1) (norms spread over two decades).
std::vector<std::vector<float>> random_grads(std::mt19937& rng, int K, size_t n, bool mixed_scales) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<float> log_scale(-1.0f, 1.0f);
  std::vector<std::vector<float>> g(K, std::vector<float>(n));
  for (auto& v : g) {
    const float s = mixed_scales ? std::pow(10.0f, log_scale(rng)) : 1.0f;
    for (float& x : v) x = s * normal(rng);
  }
  return g;
}

std::vector<double> gram_of(const std::vector<std::vector<float>>& g) {
  std::vector<const float*> ptr;
  for (const auto& v : g) ptr.push_back(v.data());
  return gram_matrix(ptr, g.empty() ? 0 : g[0].size());
}

std::vector<double> mat_vec(const std::vector<double>& M, const std::vector<double>& a) {
  const size_t K = a.size();
  std::vector<double> y(K, 0.0);
  for (size_t i = 0; i < K; ++i)
    for (size_t j = 0; j < K; ++j) y[i] += M[i * K + j] * a[j];
  return y;
}

double objective(const std::vector<double>& M, const std::vector<double>& a) {
  const std::vector<double> Ma = mat_vec(M, a);
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * Ma[i];
  return s;
}

double max_diag(const std::vector<double>& M, int K) {
  double m = 0.0;
  for (int i = 0; i < K; ++i) m = std::max(m, M[size_t(i) * K + i]);
  return m;
}

void check_on_simplex(const std::vector<double>& alpha, size_t K) {
  REQUIRE(alpha.size() == K);
  double sum = 0.0;
  for (double a : alpha) {
    CHECK(std::isfinite(a));
    CHECK(a >= 0.0);
    sum += a;
  }
  CHECK(std::abs(sum - 1.0) <= 1e-12);
}

// KKT conditions of min_{alpha in simplex} alpha^T M alpha with multiplier
// lambda = alpha^T M alpha: (M alpha)_t >= lambda for all t (dual
// feasibility), with equality on the support of alpha. tol is relative to
// max_t M_tt, the scale of the problem.
void check_kkt(const std::vector<double>& M, const std::vector<double>& alpha, double rel_tol) {
  const int K = int(alpha.size());
  const double tol = rel_tol * max_diag(M, K);
  const std::vector<double> Ma = mat_vec(M, alpha);
  const double lambda = objective(M, alpha);
  for (int t = 0; t < K; ++t) {
    CAPTURE(t);
    CAPTURE(alpha[t]);
    CHECK(Ma[t] >= lambda - tol);
    if (alpha[t] > 1e-6) CHECK(std::abs(Ma[t] - lambda) <= tol);
  }
}

// Frank-Wolfe only shrinks the weight of a vertex that is not in the optimal
// support geometrically slowly (O(1/k) in theory, the well-known zig-zag), so
// "alpha_t > 1e-6 implies equality" is out of its reach in any sane number of
// iterations. What it does certify is its duality gap (below)
// and complementary slackness in the weighted form alpha_t |(M alpha)_t - lambda|.
// The Frank-Wolfe duality gap of f = alpha^T M alpha, grad f = 2 M alpha:
//   gap = grad f . (alpha - e_t_hat) = 2 (lambda - min_t (M alpha)_t) >= f(alpha) - f*.
double fw_gap(const std::vector<double>& M, const std::vector<double>& alpha) {
  const std::vector<double> Ma = mat_vec(M, alpha);
  return 2.0 * (objective(M, alpha) - *std::min_element(Ma.begin(), Ma.end()));
}

void check_kkt_weighted(const std::vector<double>& M, const std::vector<double>& alpha,
                        double rel_tol) {
  const int K = int(alpha.size());
  const double tol = rel_tol * max_diag(M, K);
  const std::vector<double> Ma = mat_vec(M, alpha);
  const double lambda = objective(M, alpha);
  CHECK(fw_gap(M, alpha) <= tol);
  for (int t = 0; t < K; ++t) {
    CAPTURE(t);
    CHECK(alpha[t] * std::abs(Ma[t] - lambda) <= tol);
  }
}

std::vector<double> gram2(std::vector<float> g1, std::vector<float> g2) {
  return gram_of({g1, g2});
}

}  // namespace

TEST_CASE("parse_grad_normalization accepts the four modes and names a bad value") {
  CHECK(parse_grad_normalization("none") == GradNormalization::None);
  CHECK(parse_grad_normalization("l2") == GradNormalization::L2);
  CHECK(parse_grad_normalization("loss") == GradNormalization::Loss);
  CHECK(parse_grad_normalization("loss+") == GradNormalization::LossPlus);
  CHECK_THROWS_WITH_AS(parse_grad_normalization("L2"),
                       "unknown gradient normalization 'L2' (allowed: none, l2, loss, loss+)",
                       mt::Error);
  CHECK_THROWS_AS(parse_grad_normalization(""), mt::Error);
  CHECK_THROWS_AS(parse_grad_normalization("loss-"), mt::Error);
}

TEST_CASE("normalization_scales per mode") {
  const std::vector<double> L = {2.0, 0.5, 3.0};    // L_t
  const std::vector<double> G = {4.0, 10.0, 0.0};   // ||g_t||
  CHECK(normalization_scales(GradNormalization::None, L, G) == std::vector<double>{1, 1, 1});
  CHECK(normalization_scales(GradNormalization::L2, L, G) == std::vector<double>{4, 10, 0});
  CHECK(normalization_scales(GradNormalization::Loss, L, G) == std::vector<double>{2, 0.5, 3});
  CHECK(normalization_scales(GradNormalization::LossPlus, L, G) == std::vector<double>{8, 5, 0});
  CHECK(normalization_scales(GradNormalization::L2, {}, {}).empty());

  CHECK_THROWS_WITH_AS(normalization_scales(GradNormalization::L2, {1.0, 2.0}, {1.0}),
                       "normalization_scales: 2 losses but 1 gradient norms", mt::Error);
  CHECK_THROWS_WITH_AS(
      normalization_scales(GradNormalization::Loss, {1.0, std::nan("")}, {1.0, 1.0}),
      "normalization_scales: loss of task 1 is nan (must be finite and >= 0)", mt::Error);
  CHECK_THROWS_AS(normalization_scales(GradNormalization::L2, {1.0}, {-1.0}), mt::Error);
}

TEST_CASE("gram_matrix sums inner products in double") {
  const std::vector<float> a = {1, 2, 3}, b = {0, -1, 4}, c = {0.5f, 0.5f, 0.5f};
  const std::vector<double> M = gram_matrix({a.data(), b.data(), c.data()}, 3);
  CHECK(M == std::vector<double>{14, 10, 3, 10, 17, 1.5, 3, 1.5, 0.75});
  CHECK(gram_matrix({}, 5).empty());
  CHECK_THROWS_AS(gram_matrix({a.data(), nullptr}, 3), mt::Error);
}

TEST_CASE("two tasks: closed form cases computed by hand") {
  SUBCASE("orthogonal, equal norms -> (0.5, 0.5)") {
    const MinNormResult r = min_norm_2(1.0, 0.0, 1.0);
    CHECK(r.alpha[0] == doctest::Approx(0.5));
    CHECK(r.alpha[1] == doctest::Approx(0.5));
    CHECK(r.norm_sq == doctest::Approx(0.5));
  }
  SUBCASE("g1 = (1,0), g2 = (0,2) -> alpha_1 = 4/5") {
    const auto M = gram2({1, 0}, {0, 2});  // v11 = 1, v12 = 0, v22 = 4
    const MinNormResult r = min_norm(M, 2);
    CHECK(r.alpha[0] == doctest::Approx(0.8));
    CHECK(r.alpha[1] == doctest::Approx(0.2));
    CHECK(r.norm_sq == doctest::Approx(0.8));  // ||(0.8, 0.4)||^2
    CHECK(r.iterations == 0);
    CHECK(r.converged);
  }
  SUBCASE("g2 = 2 g1: g1 dominates -> exactly (1, 0), not the reference's 0.999") {
    const MinNormResult r = min_norm(gram2({1, 1}, {2, 2}), 2);
    CHECK(r.alpha == std::vector<double>{1.0, 0.0});
    CHECK(r.norm_sq == doctest::Approx(2.0));
    const MinNormResult s = min_norm(gram2({2, 2}, {1, 1}), 2);  // mirrored: (0, 1)
    CHECK(s.alpha == std::vector<double>{0.0, 1.0});
    CHECK(s.norm_sq == doctest::Approx(2.0));
  }
  SUBCASE("identical gradients -> symmetric (0.5, 0.5), norm = ||g||^2") {
    const MinNormResult r = min_norm(gram2({3, -4}, {3, -4}), 2);
    CHECK(r.alpha == std::vector<double>{0.5, 0.5});
    CHECK(r.norm_sq == doctest::Approx(25.0));
    const MinNormResult z = min_norm_2(0.0, 0.0, 0.0);  // both zero
    CHECK(z.alpha == std::vector<double>{0.5, 0.5});
    CHECK(z.norm_sq == 0.0);
  }
  SUBCASE("opposite gradients g2 = -g1 -> equal weights, norm 0") {
    const MinNormResult r = min_norm(gram2({1, -2, 3}, {-1, 2, -3}), 2);
    CHECK(r.alpha[0] == doctest::Approx(0.5));
    CHECK(r.alpha[1] == doctest::Approx(0.5));
    CHECK(r.norm_sq == doctest::Approx(0.0));
  }
  SUBCASE("one task -> alpha = {1}") {
    const MinNormResult r = min_norm({7.0}, 1);
    CHECK(r.alpha == std::vector<double>{1.0});
    CHECK(r.norm_sq == 7.0);
    CHECK(r.converged);
  }
}

TEST_CASE("K tasks: both algorithms satisfy the KKT conditions and agree") {
  std::mt19937 rng(20181203);
  struct Case { int K; size_t n; };
  // K > n: the gradients' convex hull usually contains 0, optimum 0.
  const Case cases[] = {{3, 3}, {3, 50}, {3, 2}, {5, 3}, {5, 20}, {5, 4}, {10, 3}, {10, 50}, {10, 9}};
  MinNormOptions fw, pg;
  fw.algo = MinNormAlgo::FrankWolfe;
  pg.algo = MinNormAlgo::ProjectedGradient;
  fw.max_iter = pg.max_iter = 20000;
  fw.tol = pg.tol = 1e-13;
  for (const Case& c : cases) {
    for (int rep = 0; rep < 4; ++rep) {
      CAPTURE(c.K);
      CAPTURE(c.n);
      CAPTURE(rep);
      const auto M = gram_of(random_grads(rng, c.K, c.n, rep % 2 == 1));
      const MinNormResult a = min_norm(M, c.K, fw);
      const MinNormResult b = min_norm(M, c.K, pg);
      check_on_simplex(a.alpha, c.K);
      check_on_simplex(b.alpha, c.K);
      check_kkt(M, b.alpha, 1e-7);            // projected gradient: the full conditions
      check_kkt_weighted(M, a.alpha, 1e-4);   // Frank-Wolfe: gap and weighted slackness
      CHECK(a.norm_sq == doctest::Approx(objective(M, a.alpha)).epsilon(1e-9));
      CHECK(b.norm_sq == doctest::Approx(objective(M, b.alpha)).epsilon(1e-9));
      // Same optimum: FW's gap bounds its own excess objective.
      const double slack = 1e-9 * max_diag(M, c.K);
      CHECK(b.norm_sq <= a.norm_sq + slack);
      CHECK(a.norm_sq <= b.norm_sq + fw_gap(M, a.alpha) + slack);
      CHECK(a.iterations <= fw.max_iter);
      CHECK(b.iterations <= pg.max_iter);
    }
  }
}

TEST_CASE("K = 3: solver objective beats a brute-force grid over the simplex") {
  std::mt19937 rng(7);
  for (int rep = 0; rep < 3; ++rep) {
    const auto M = gram_of(random_grads(rng, 3, rep == 0 ? 2 : 6, false));
    double grid_min = std::numeric_limits<double>::infinity();
    const int steps = 1000;  // step 1e-3
    for (int i = 0; i <= steps; ++i)
      for (int j = 0; i + j <= steps; ++j) {
        const std::vector<double> a = {i / double(steps), j / double(steps),
                                       (steps - i - j) / double(steps)};
        grid_min = std::min(grid_min, objective(M, a));
      }
    for (MinNormAlgo algo : {MinNormAlgo::FrankWolfe, MinNormAlgo::ProjectedGradient}) {
      MinNormOptions opt;  // defaults: max_iter 250, tol 1e-5
      opt.algo = algo;
      const MinNormResult r = min_norm(M, 3, opt);
      CAPTURE(rep);
      CAPTURE(int(algo));
      CHECK(r.norm_sq <= grid_min + 1e-6 * max_diag(M, 3));
    }
  }
}

TEST_CASE("max_iter caps the iterations and reports non-convergence") {
  std::mt19937 rng(3);
  const auto M = gram_of(random_grads(rng, 10, 8, false));  // the optimum mixes several tasks
  for (MinNormAlgo algo : {MinNormAlgo::FrankWolfe, MinNormAlgo::ProjectedGradient}) {
    CAPTURE(int(algo));
    MinNormOptions opt;
    opt.algo = algo;
    opt.max_iter = 3;
    opt.tol = 1e-15;
    const MinNormResult r = min_norm(M, 10, opt);
    CHECK(r.iterations <= 3);
    CHECK_FALSE(r.converged);
    check_on_simplex(r.alpha, 10);

    opt.max_iter = 0;  // just the best-pair start
    const MinNormResult z = min_norm(M, 10, opt);
    CHECK(z.iterations == 0);
    CHECK_FALSE(z.converged);
    check_on_simplex(z.alpha, 10);
  }
}

TEST_CASE("alpha is on the simplex and finite over many random and degenerate cases") {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> pick_K(1, 12), pick_n(1, 40);
  for (int rep = 0; rep < 300; ++rep) {
    const int K = pick_K(rng);
    auto g = random_grads(rng, K, size_t(pick_n(rng)), true);
    if (rep % 5 == 1 && K > 1) g[K - 1] = g[0];                               // duplicate task
    if (rep % 5 == 2) std::fill(g[0].begin(), g[0].end(), 0.0f);              // zero gradient
    if (rep % 5 == 3)
      for (auto& v : g) std::fill(v.begin(), v.end(), 0.0f);                 // all zero
    if (rep % 5 == 4)
      for (auto& v : g)
        for (float& x : v) x *= 1e18f;                                       // huge (M ~ 1e36+)
    const auto M = gram_of(g);
    MinNormOptions opt;
    opt.algo = rep % 2 ? MinNormAlgo::ProjectedGradient : MinNormAlgo::FrankWolfe;
    const MinNormResult r = min_norm(M, K, opt);
    CAPTURE(rep);
    CAPTURE(K);
    check_on_simplex(r.alpha, K);
    CHECK(std::isfinite(r.norm_sq));
    CHECK(r.norm_sq >= 0.0);
    CHECK(r.iterations <= opt.max_iter);
    if (!r.converged) CHECK(r.iterations == opt.max_iter);
    if (K <= 2) CHECK((r.converged && r.iterations == 0));
  }
}

TEST_CASE("bad inputs throw mt::Error naming the problem") {
  CHECK_THROWS_WITH_AS(min_norm({}, 0), "min_norm: need at least one task, got K = 0", mt::Error);
  CHECK_THROWS_WITH_AS(min_norm({1, 0, 0, 1}, 3),
                       "min_norm: gram matrix has 4 entries, expected K*K = 9 for K = 3",
                       mt::Error);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(min_norm({1, 0, 0, 0, nan, 0, 0, 0, 1}, 3),
                       "min_norm: non-finite gradient inner product M[1][1] = nan (K = 3)",
                       mt::Error);
  CHECK_THROWS_AS(min_norm({std::numeric_limits<double>::infinity()}, 1), mt::Error);
  try {
    min_norm_2(1.0, nan, 1.0);
    FAIL("expected mt::Error");
  } catch (const mt::Error& e) {
    CHECK(std::string(e.what()).find("min_norm: non-finite gradient inner product") == 0);
  }
  MinNormOptions bad;
  bad.max_iter = -1;
  CHECK_THROWS_AS(min_norm({1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, bad), mt::Error);
  bad = MinNormOptions{};
  bad.tol = nan;
  CHECK_THROWS_AS(min_norm({1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, bad), mt::Error);
}

TEST_CASE("solver names: the list, the parser and a bad name") {
  CHECK(min_norm_algo_names() == std::vector<std::string>{"wolfe", "frank-wolfe", "projected-gradient"});
  for (const std::string& n : min_norm_algo_names()) CHECK(min_norm_algo_name(parse_min_norm_algo(n)) == n);
  CHECK(parse_min_norm_algo("wolfe") == MinNormAlgo::Wolfe);
  CHECK(MinNormOptions{}.algo == MinNormAlgo::Wolfe);  // the default for K >= 3
  CHECK_THROWS_WITH_AS(parse_min_norm_algo("fw"),
                       "unknown min-norm solver 'fw' (allowed: wolfe, frank-wolfe, projected-gradient)",
                       mt::Error);
  MinNormOptions bad;
  bad.gap_tol = -1.0;
  CHECK_THROWS_WITH_AS(min_norm({1, 0, 0, 0, 1, 0, 0, 0, 1}, 3, bad),
                       "min_norm: gap_tol must be finite and >= 0, got -1", mt::Error);
}

// Wolfe's algorithm on the hard families (random, rank-deficient, nearly
// collinear, one dominating gradient, conflicting, badly scaled), K = 3..40,
// against the long-double reference of apps/experiments/min_norm_cases.h,
// which never calls min_norm: exact enumeration of the supports for K <= 10,
// pairwise Frank-Wolfe and the certified lower bound 2 min_t (M b)_t - f(b) above.
// The bound: f(alpha) - f* <= 1e-6 f* + 1e-13 max_t M_tt. The absolute term is
// for a zero optimum (0 in the hull: "conflicting" with eps = 0, most
// "rank-deficient" and K > n "random" cases), where no relative bound exists;
// it is 500x the rounding error of forming M alpha in double at K = 40
// (4 K eps max_t M_tt).
TEST_CASE("wolfe: relative gap <= 1e-6 against the long-double optimum on the hard families") {
  int n_cases = 0, n_exact = 0, fw_misses = 0;
  long double worst = 0;
  for (int K : {3, 4, 5, 6, 8, 10, 15, 20, 30, 40}) {
    for (const MinNormCase& c : hard_min_norm_cases(K, 6, 13)) {
      CAPTURE(c.family);
      CAPTURE(K);
      const MinNormResult r = min_norm(c.M, K);
      check_on_simplex(r.alpha, size_t(K));
      CHECK(r.converged);
      CHECK(r.iterations < MinNormOptions{}.max_iter);
      const MinNormReference ref = min_norm_reference(c.M, K);
      const long double f = objective_ld(c.M, r.alpha);
      // f* lies in [lower, upper]; the solver's own alpha certifies a lower bound too
      const long double lower = std::max(ref.lower, lower_bound_ld(c.M, r.alpha));
      const long double f_star = ref.exact ? ref.upper : lower;
      const long double floor = 1e-13L * max_diag(c.M, K);
      CAPTURE(double(f));
      CAPTURE(double(ref.upper));
      CAPTURE(double(lower));
      CHECK(f - f_star <= 1e-6L * f_star + floor);
      CHECK(f <= ref.upper * (1.0L + 1e-6L) + floor);  // never worse than the reference's alpha
      CHECK(std::abs(r.norm_sq - double(f)) <= 1e-9 * double(f) + 1e-13 * max_diag(c.M, K));
      if (f_star > 1e4L * floor) worst = std::max(worst, (f - f_star) / f_star);
      // the same bound catches the paper's Frank-Wolfe (250 iterations) on these cases
      MinNormOptions fw;
      fw.algo = MinNormAlgo::FrankWolfe;
      fw_misses += objective_ld(c.M, min_norm(c.M, K, fw).alpha) - f_star > 1e-6L * f_star + floor;
      ++n_cases;
      n_exact += ref.exact;
    }
  }
  CHECK(n_cases == 360);
  CHECK(n_exact == 216);
  CHECK(fw_misses > 50);
  MESSAGE("frank-wolfe misses the bound on " << fw_misses << " of them");
  MESSAGE("wolfe on " << n_cases << " hard cases: worst relative gap " << double(worst));
}

TEST_CASE("the gap is reported for every algorithm and certifies the objective") {
  for (int K : {5, 20}) {
    for (const MinNormCase& c : hard_min_norm_cases(K, 2, 7)) {
      for (MinNormAlgo algo : {MinNormAlgo::Wolfe, MinNormAlgo::FrankWolfe, MinNormAlgo::ProjectedGradient}) {
        CAPTURE(c.family);
        CAPTURE(K);
        CAPTURE(min_norm_algo_name(algo));
        MinNormOptions opt;
        opt.algo = algo;
        const MinNormResult r = min_norm(c.M, K, opt);
        CHECK(r.gap >= 0.0);
        // f(alpha) - f* <= 2 gap f(alpha), checked against the reference's upper bound on f*
        const long double f = objective_ld(c.M, r.alpha);
        const MinNormReference ref = min_norm_reference(c.M, K);
        if (std::isfinite(r.gap)) CHECK(f - ref.upper <= 2.0L * r.gap * f + 1e-13L * max_diag(c.M, K));
      }
    }
  }
}

TEST_CASE("wolfe: closed-form cases") {
  SUBCASE("orthonormal gradients: alpha = 1/K, f = 1/K, in K iterations at most") {
    for (int K : {3, 7, 40}) {
      std::vector<double> M(size_t(K) * K, 0.0);
      for (int t = 0; t < K; ++t) M[size_t(t) * K + t] = 1.0;
      const MinNormResult r = min_norm(M, K);
      for (double a : r.alpha) CHECK(a == doctest::Approx(1.0 / K).epsilon(1e-12));
      CHECK(r.norm_sq == doctest::Approx(1.0 / K).epsilon(1e-12));
      CHECK(r.gap == 0.0);
      CHECK(r.iterations <= K);
    }
  }
  SUBCASE("g3 = -(g1 + g2) / 2 puts 0 in the hull: f = 0, alpha = (1/4, 1/4, 1/2)") {
    // g1 = (1, 0), g2 = (0, 1), g3 = (-1/2, -1/2): 0 = 1/4 g1 + 1/4 g2 + 1/2 g3
    const auto M = gram_of({{1.f, 0.f}, {0.f, 1.f}, {-0.5f, -0.5f}});
    const MinNormResult r = min_norm(M, 3);
    CHECK(r.alpha[0] == doctest::Approx(0.25).epsilon(1e-12));
    CHECK(r.alpha[1] == doctest::Approx(0.25).epsilon(1e-12));
    CHECK(r.alpha[2] == doctest::Approx(0.5).epsilon(1e-12));
    CHECK(r.norm_sq <= 1e-28);
    CHECK(r.gap == 0.0);
    CHECK(r.converged);
  }
  SUBCASE("one gradient 1000x the others, all orthogonal: alpha_t = (1/|g_t|^2) / sum_s 1/|g_s|^2") {
    // g1 = (1000, 0, 0), g2 = (0, 1, 0), g3 = (0, 0, 1): alpha = (1e-6, 1, 1) / (2 + 1e-6), f = 1 / (2 + 1e-6)
    const auto M = gram_of({{1000.f, 0.f, 0.f}, {0.f, 1.f, 0.f}, {0.f, 0.f, 1.f}});
    const MinNormResult r = min_norm(M, 3);
    CHECK(r.alpha[0] == doctest::Approx(1e-6 / (2.0 + 1e-6)).epsilon(1e-9));
    CHECK(r.alpha[1] == doctest::Approx(1.0 / (2.0 + 1e-6)).epsilon(1e-12));
    CHECK(r.norm_sq == doctest::Approx(1.0 / (2.0 + 1e-6)).epsilon(1e-12));
    CHECK(r.gap <= 1e-12);
    CHECK(r.converged);
  }
}
