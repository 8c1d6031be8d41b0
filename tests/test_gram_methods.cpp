// The gradient-balancing methods (mtl/methods/gram_method.h, loss_method.h):
// each weighting against a case its paper's geometry answers by hand, the
// invariance its paper claims, K = 1, the small solvers against independent
// oracles, both gradient modes on tiny models, and exact checkpoint resume.
#include <doctest/doctest.h>

#include <cmath>
#include <functional>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "layers/linear.h"
#include "mtl/methods/gram_method.h"
#include "mtl/methods/loss_method.h"
#include "mtl/models/multilenet.h"
#include "mtl/solvers/dual_cone.h"
#include "mtl/solvers/small_linalg.h"

using namespace mt;

namespace {

using Vec = std::vector<double>;

// The Gram matrix of explicit gradient vectors.
Gram gram_of(const std::vector<Vec>& g) {
  Gram M;
  M.K = (int)g.size();
  for (const Vec& a : g)
    for (const Vec& b : g) {
      double s = 0;
      for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
      M.v.push_back(s);
    }
  return M;
}

// d = sum_t w_t g_t
Vec combine(const std::vector<Vec>& g, const Vec& w) {
  Vec d(g[0].size(), 0.0);
  for (size_t t = 0; t < g.size(); t++)
    for (size_t i = 0; i < d.size(); i++) d[i] += w[t] * g[t][i];
  return d;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += a[i] * b[i];
  return s;
}

std::vector<Vec> random_gradients(int K, int n, uint64_t seed) {
  Rng r(seed);
  std::vector<Vec> g(K, Vec(n));
  for (Vec& v : g)
    for (double& x : v) x = r.normal();
  return g;
}

TaskWeights weigh(const std::string& method, const std::vector<Vec>& g, MethodOptions o = {}) {
  return make_gram_weighting(method, (int)g.size(), o)->weights(gram_of(g), Vec(g.size(), 1.0), 0);
}

void check_close(const Vec& a, const Vec& b, double tol) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); i++) CHECK_MESSAGE(std::fabs(a[i] - b[i]) <= tol, i, ": ", a[i], " vs ", b[i]);
}

}  // namespace

// ---------------------------------------------------------------- small solvers

TEST_CASE("lu_solve: a 3 x 3 system needing a pivot swap, and a singular one") {
  Vec A = {0, 2, 1, 1, 1, 1, 2, 1, 3}, b = {5, 4, 7};  // A (1, 2, 1) = b; a_00 = 0 forces a swap
  REQUIRE(lu_solve(A, b, 3));
  check_close(b, {1, 2, 1}, 1e-14);
  Vec S = {1, 2, 2, 4}, c = {1, 2};
  CHECK_FALSE(lu_solve(S, c, 2));
  CHECK_THROWS_AS(lu_solve({1, 2, 3}, c, 2), Error);
}

TEST_CASE("sym_eig: closed form 2 x 2, and V diag(lambda) V^T == A with V orthonormal for a random 6 x 6") {
  Vec lambda, V;
  sym_eig({2, 1, 1, 2}, 2, lambda, V);
  check_close(lambda, {1, 3}, 1e-14);
  CHECK(std::fabs(std::fabs(V[0]) - std::sqrt(0.5)) < 1e-14);  // eigenvector of 1: (1, -1)/sqrt 2
  CHECK(V[0] * V[2] < 0);
  const int n = 6;
  Rng r(3);
  Vec A(n * n);
  for (int i = 0; i < n; i++)
    for (int j = i; j < n; j++) A[i * n + j] = A[j * n + i] = r.normal();
  sym_eig(A, n, lambda, V);
  for (int k = 1; k < n; k++) CHECK(lambda[k - 1] <= lambda[k]);
  for (int i = 0; i < n; i++)
    for (int j = 0; j < n; j++) {
      double a = 0, id = 0;
      for (int k = 0; k < n; k++) {
        a += V[i * n + k] * lambda[k] * V[j * n + k];
        id += V[k * n + i] * V[k * n + j];
      }
      CHECK(a == doctest::Approx(A[i * n + j]).epsilon(1e-12).scale(1.0));
      CHECK(id == doctest::Approx(i == j ? 1.0 : 0.0).scale(1.0).epsilon(1e-12));
    }
}

TEST_CASE("project_to_simplex: inside points stay, outside points go to the nearest face") {
  check_close(project_to_simplex({0.2, 0.3, 0.5}), {0.2, 0.3, 0.5}, 1e-15);
  check_close(project_to_simplex({2.0, 0.0}), {1.0, 0.0}, 1e-15);
  check_close(project_to_simplex({1.0, 1.0}), {0.5, 0.5}, 1e-15);
  check_close(project_to_simplex({0.5, 0.5, -3.0}), {0.5, 0.5, 0.0}, 1e-15);
  check_close(project_to_simplex({-1.0}), {1.0}, 1e-15);
}

// The oracle for the dual-cone QP: every active set, its stationary point, the
// one that is feasible and satisfies the KKT conditions.
Vec dual_cone_brute_force(const Vec& M, int K, const Vec& u) {
  for (int mask = 0; mask < (1 << K); mask++) {  // mask: the free coordinates (lambda > 0)
    std::vector<int> P;
    for (int i = 0; i < K; i++)
      if (mask >> i & 1) P.push_back(i);
    const int n = (int)P.size();
    Vec A(n * n), b(n);
    for (int i = 0; i < n; i++) {
      b[i] = 0;
      for (int j = 0; j < K; j++) b[i] -= M[P[i] * K + j] * u[j];
      for (int j = 0; j < n; j++) A[i * n + j] = M[P[i] * K + P[j]];
    }
    if (n && !lu_solve(A, b, n)) continue;
    Vec w = u;
    bool ok = true;
    for (int i = 0; i < n; i++) ok = ok && b[i] >= -1e-12, w[P[i]] += b[i];
    for (int i = 0; i < K && ok; i++) {
      double g = 0;
      for (int j = 0; j < K; j++) g += M[i * K + j] * w[j];
      ok = g >= -1e-10;
    }
    if (ok) return w;
  }
  FAIL("no KKT point");
  return {};
}

TEST_CASE("project_dual_cone equals the brute force over active sets and satisfies the KKT conditions") {
  for (uint64_t seed = 1; seed <= 30; seed++) {
    const int K = 2 + seed % 4;
    auto g = random_gradients(K, K + 2, seed);
    for (Vec& v : g) v[0] += seed % 3 == 0 ? 2.0 : -0.5;  // more or less conflict
    const Gram M = gram_of(g);
    Rng r(seed);
    Vec u(K);
    for (double& x : u) x = r.uniform_double();
    DualConeResult res = project_dual_cone(M.v, K, u);
    Vec want = dual_cone_brute_force(M.v, K, u);
    check_close(res.w, want, 1e-9);
    const Vec d = combine(g, res.w);
    for (int j = 0; j < K; j++) {
      CHECK(res.w[j] >= u[j]);
      CHECK(dot(g[j], d) >= -1e-9);                            // no conflict with any g_j
      CHECK(std::fabs((res.w[j] - u[j]) * dot(g[j], d)) < 1e-9);  // complementarity
    }
  }
  CHECK_THROWS_WITH_AS(project_dual_cone({1, 0, 0}, 2, {1, 1}), doctest::Contains("K x K"), Error);
}

// ---------------------------------------------------------------- the Gram weightings, by hand

TEST_CASE("mgda: the min-norm point; two orthogonal gradients of norms 1 and 2 give alpha = (4/5, 1/5)") {
  TaskWeights w = weigh("mgda", {{1, 0}, {0, 2}});
  check_close(w.shared, {0.8, 0.2}, 1e-12);
  check_close(w.heads, w.shared, 0);  // MGDA trains on sum_t alpha_t L_t
  MethodOptions o;
  o.heads = HeadWeights::Own;  // --heads own: Algorithm 2 lines 1-3, each head on its own loss
  TaskWeights wo = weigh("mgda", {{1, 0}, {0, 2}}, o);
  check_close(wo.shared, {0.8, 0.2}, 1e-12);
  check_close(wo.heads, {1, 1}, 0);
  o.heads = HeadWeights::Mean;  // --heads mean: 1/K
  TaskWeights wm = weigh("mgda-ub", {{1, 0}, {0, 2}}, o);
  check_close(wm.shared, {0.8, 0.2}, 1e-12);
  check_close(wm.heads, {0.5, 0.5}, 0);
  CHECK(parse_head_weights("own") == HeadWeights::Own);
  CHECK_THROWS_WITH_AS(parse_head_weights("all"), doctest::Contains("'all'"), Error);
}

TEST_CASE("pcgrad: the conflicting parts are projected away, as drawn in the paper's Figure 1") {
  // g1 = (1, 0), g2 = (-1, 1): <g1, g2> = -1.
  // g1^PC = g1 + g2 / 2 = (1/2, 1/2) (orthogonal to g2), g2^PC = g2 + g1 = (0, 1) (orthogonal to g1).
  const std::vector<Vec> g = {{1, 0}, {-1, 1}};
  TaskWeights w = weigh("pcgrad", g);
  check_close(w.shared, {2.0, 1.5}, 1e-15);
  check_close(combine(g, w.shared), {0.5, 1.5}, 1e-15);
  check_close(w.heads, {1, 1}, 0);
  // no conflict: nothing changes, d = g1 + g2
  check_close(weigh("pcgrad", {{1, 0}, {1, 1}}).shared, {1, 1}, 0);
}

TEST_CASE("pcgrad: the projection order is drawn from the seed; every g_i^PC ends free of conflict when K = 2") {
  auto g = random_gradients(4, 3, 7);
  MethodOptions a, b;
  a.seed = 1, b.seed = 2;
  bool differs = false;
  for (int rep = 0; rep < 10 && !differs; rep++) {
    auto wa = make_gram_weighting("pcgrad", 4, a), wa2 = make_gram_weighting("pcgrad", 4, a);
    auto wb = make_gram_weighting("pcgrad", 4, b);
    const Gram M = gram_of(g);
    for (int s = 0; s < 5; s++) {
      Vec x = wa->weights(M, {}, s).shared, y = wa2->weights(M, {}, s).shared, z = wb->weights(M, {}, s).shared;
      CHECK(x == y);
      for (int t = 0; t < 4; t++) differs = differs || std::fabs(x[t] - z[t]) > 1e-12;
    }
    g = random_gradients(4, 3, 100 + rep);
  }
  CHECK(differs);  // with 4 tasks in 3-D the order matters
}

TEST_CASE("cagrad: orthogonal unit gradients give (1 + c)/2 each; d maximises the worst improvement in the ball") {
  MethodOptions o;
  o.cagrad_c = 0.4;
  check_close(weigh("cagrad", {{1, 0}, {0, 1}}, o).shared, {0.7, 0.7}, 1e-9);
  o.cagrad_c = 0;
  check_close(weigh("cagrad", {{1, 0}, {-3, 1}}, o).shared, {0.5, 0.5}, 0);  // c = 0: the mean gradient
  // Brute force: d = g0 + c ||g0|| (cos a, sin a) on the ball's boundary (a linear
  // objective's maximum over a disk lies there), the best min_i <g_i, d>.
  for (double c : {0.2, 0.5, 0.9}) {
    const std::vector<std::vector<Vec>> cases = {
        {{1, 0}, {-0.6, 1}}, {{2, 0.3}, {-1, 0.2}, {0.1, -1}}, {{1, 1}, {0.5, -0.2}}};
    for (const std::vector<Vec>& g : cases) {
      o.cagrad_c = c;
      const Vec d = combine(g, weigh("cagrad", g, o).shared);
      Vec g0 = combine(g, Vec(g.size(), 1.0 / g.size()));
      const double r = c * std::sqrt(dot(g0, g0));
      Vec diff = {d[0] - g0[0], d[1] - g0[1]};
      CHECK(std::sqrt(dot(diff, diff)) <= r * (1 + 1e-9));
      auto worst = [&](const Vec& x) {
        double m = HUGE_VAL;
        for (const Vec& gi : g) m = std::min(m, dot(gi, x));
        return m;
      };
      double best = -HUGE_VAL;
      for (int k = 0; k < 200000; k++) {
        const double a = 2 * M_PI * k / 200000;
        best = std::max(best, worst({g0[0] + r * std::cos(a), g0[1] + r * std::sin(a)}));
      }
      double gmax = 0;
      for (const Vec& gi : g) gmax = std::max(gmax, std::sqrt(dot(gi, gi)));
      CHECK(worst(d) >= best - 1e-9);                            // no point of the grid does better
      CHECK(worst(d) <= best + r * gmax * 2 * M_PI / 200000);    // and d is within the grid's resolution
    }
  }
}

TEST_CASE("cagrad with many tasks: strong duality, the tasks the dual weights pick have the worst improvement") {
  // d = g0 + sqrt(phi) g_w / ||g_w|| and F(w) = <g_w, d> >= min_i <g_i, d>, with
  // equality (the optimum) iff every task with w_i > 0 attains the minimum.
  MethodOptions o;
  for (uint64_t seed = 1; seed <= 6; seed++) {
    const int K = 3 + 7 * (seed % 3);
    auto g = random_gradients(K, 2 * K, seed);
    for (Vec& v : g) v[0] += 0.5;
    const Vec w = weigh("cagrad", g, o).shared;
    const Vec d = combine(g, w);
    double p = HUGE_VAL;
    for (const Vec& gi : g) p = std::min(p, dot(gi, d));
    int picked = 0;
    for (int i = 0; i < K; i++)
      if (w[i] > 1.0 / K + 1e-9) {
        picked++;
        CHECK(dot(g[i], d) == doctest::Approx(p).epsilon(1e-6));
      }
    CHECK(picked >= 1);
  }
}

TEST_CASE("imtl-g: (2/3, 1/3) for g1 = (1, 0), g2 = (0, 2); equal projections on every unit gradient") {
  const std::vector<Vec> g = {{1, 0}, {0, 2}};
  TaskWeights w = weigh("imtl-g", g);
  check_close(w.shared, {2.0 / 3, 1.0 / 3}, 1e-14);
  check_close(combine(g, w.shared), {2.0 / 3, 2.0 / 3}, 1e-14);
  for (uint64_t seed = 1; seed <= 10; seed++) {
    const int K = 2 + seed % 4;
    auto gr = random_gradients(K, 6, seed);
    Vec a = weigh("imtl-g", gr).shared;
    double s = 0;
    for (double v : a) s += v;
    CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
    const Vec d = combine(gr, a);
    const double p0 = dot(d, gr[0]) / std::sqrt(dot(gr[0], gr[0]));
    for (int t = 1; t < K; t++)
      CHECK(dot(d, gr[t]) / std::sqrt(dot(gr[t], gr[t])) == doctest::Approx(p0).epsilon(1e-9));
  }
  // a zero gradient has no direction: it gets 0 and the others are balanced
  check_close(weigh("imtl-g", {{1, 0}, {0, 0}, {0, 2}}).shared, {2.0 / 3, 0, 1.0 / 3}, 1e-14);
}

TEST_CASE("nash-mtl: alpha_i <g_i, d> = 1 (the bargaining condition); orthogonal g_i give alpha_i = 1 / ||g_i||") {
  MethodOptions o;
  TaskWeights w = weigh("nash-mtl", {{2, 0}, {0, 1}}, o);
  check_close(w.shared, {0.5, 1.0}, 1e-7);
  check_close(w.heads, w.shared, 0);  // Nash-MTL trains on sum_t alpha_t L_t
  for (uint64_t seed = 1; seed <= 10; seed++) {
    const int K = 2 + seed % 5;
    auto g = random_gradients(K, K + 3, seed);
    for (Vec& v : g) v[0] += 1.5;  // a bargaining set with room for all
    Vec a = weigh("nash-mtl", g, o).shared;
    const Vec d = combine(g, a);
    for (int t = 0; t < K; t++) {
      CHECK(a[t] > 0);
      CHECK(a[t] * dot(g[t], d) == doctest::Approx(1.0).epsilon(1e-6));
    }
    // scaling the gradients by s scales alpha by 1 / s
    for (Vec& v : g)
      for (double& x : v) x *= 3.0;
    Vec a3 = weigh("nash-mtl", g, o).shared;
    for (int t = 0; t < K; t++) CHECK(a3[t] == doctest::Approx(a[t] / 3).epsilon(1e-9));
  }
  // opposed gradients have no bargaining solution: the ridge keeps alpha finite
  Vec a = weigh("nash-mtl", {{1, 0}, {-1, 0}}, o).shared;
  CHECK(std::isfinite(a[0]));
  CHECK(std::isfinite(a[1]));
}

TEST_CASE("aligned-mtl: the aligned gradients are orthogonal with equal norms sigma_min") {
  // orthogonal g1 = (2, 0), g2 = (0, 1): sigma = (2, 1), aligned g^1 = (1, 0), g^2 = (0, 1)
  check_close(weigh("aligned-mtl", {{2, 0}, {0, 1}}).shared, {0.5, 1.0}, 1e-14);
  // g1 = (1, 0), g2 = (1, 1): w = sigma_min M^{-1/2} 1 with the closed form of a 2 x 2
  // square root, sqrt(M) = (M + s I) / t, s = sqrt(det M), t = sqrt(tr M + 2 s)
  const std::vector<Vec> g = {{1, 0}, {1, 1}};
  const Gram M = gram_of(g);
  const double s = std::sqrt(M(0, 0) * M(1, 1) - M(0, 1) * M(0, 1)), t = std::sqrt(M(0, 0) + M(1, 1) + 2 * s);
  const double r00 = (M(0, 0) + s) / t, r01 = M(0, 1) / t, r11 = (M(1, 1) + s) / t, det = r00 * r11 - r01 * r01;
  const double lmin = (M(0, 0) + M(1, 1) - std::sqrt(std::pow(M(0, 0) - M(1, 1), 2) + 4 * M(0, 1) * M(0, 1))) / 2;
  const Vec want = {std::sqrt(lmin) * (r11 - r01) / det, std::sqrt(lmin) * (r00 - r01) / det};
  TaskWeights w = weigh("aligned-mtl", g);
  check_close(w.shared, want, 1e-12);
  check_close(w.heads, {1, 1}, 0);
  const Vec d = combine(g, w.shared);
  CHECK(dot(d, d) == doctest::Approx(2 * lmin).epsilon(1e-12));  // || sum of K orthogonal sigma_min-vectors ||^2
  // rank 1 (g2 = 2 g1): the pseudo-inverse keeps the one direction u = (1, 2)/sqrt 5,
  // w = u <u, 1> = (3/5, 6/5)
  check_close(weigh("aligned-mtl", {{1, 1}, {2, 2}}).shared, {0.6, 1.2}, 1e-12);
}

TEST_CASE("upgrad: each gradient projected onto the dual cone, averaged; no conflict with any task") {
  MethodOptions o;
  o.upgrad_reg = 0;
  // g1 = (1, 0), g2 = (-1, 1): pi(g1) = g1 + g2/2 = (1/2, 1/2), pi(g2) = g2 + g1 = (0, 1),
  // w = ((1 + 1)/2, (1/2 + 1)/2)
  const std::vector<Vec> g = {{1, 0}, {-1, 1}};
  check_close(weigh("upgrad", g, o).shared, {1.0, 0.75}, 1e-12);
  check_close(weigh("upgrad", {{1, 0}, {1, 1}}, o).shared, {0.5, 0.5}, 1e-12);  // no conflict: the mean
  for (uint64_t seed = 1; seed <= 10; seed++) {
    const int K = 2 + seed % 5;
    auto gr = random_gradients(K, K + 2, seed);
    for (double reg : {0.0, 1e-4}) {
      o.upgrad_reg = reg;
      Vec w = weigh("upgrad", gr, o).shared;
      const Vec d = combine(gr, w);
      double tr = 0;
      for (const Vec& v : gr) tr += dot(v, v);
      for (int j = 0; j < K; j++) CHECK(dot(gr[j], d) >= -reg * tr * w[j] - 1e-10);
    }
  }
}

TEST_CASE("every Gram weighting at K = 1") {
  const std::vector<Vec> g = {{3, 4}};  // ||g|| = 5
  MethodOptions o;
  const std::pair<const char*, double> want[] = {{"mgda", 1.0},    {"pcgrad", 1.0},  {"cagrad", 1.0 + o.cagrad_c},
                                                 {"imtl-g", 1.0},  {"nash-mtl", 0.2}, {"aligned-mtl", 1.0},
                                                 {"upgrad", 1.0}};
  for (const auto& nw : want) {  // (no structured binding: clang cannot capture one in CHECK_MESSAGE)
    const char* name = nw.first;
    const double w = nw.second;
    TaskWeights tw = weigh(name, g, o);
    REQUIRE(tw.shared.size() == 1);
    CHECK_MESSAGE(tw.shared[0] == doctest::Approx(w).epsilon(1e-7), name);
  }
}

TEST_CASE("every Gram weighting stays finite on degenerate gradients: all zero, identical, one zero") {
  const std::vector<std::vector<Vec>> cases = {{{0, 0}, {0, 0}, {0, 0}}, {{1, 2}, {1, 2}, {1, 2}}, {{1, 0}, {0, 0}, {0, 1}},
                                               {{1, 0}, {-1, 0}}};
  for (const char* name : {"mgda", "pcgrad", "cagrad", "imtl-g", "nash-mtl", "aligned-mtl", "upgrad"})
    for (const auto& g : cases) {
      TaskWeights w = weigh(name, g);
      for (size_t t = 0; t < g.size(); t++) {
        CHECK_MESSAGE(std::isfinite(w.shared[t]), name);
        CHECK_MESSAGE(std::isfinite(w.heads[t]), name);
      }
    }
}

// ---------------------------------------------------------------- loss weightings

TEST_CASE("dwa: weight 1 for two epochs, then K softmax(r / T) of the epoch-average loss ratios") {
  MethodOptions o;
  auto w = make_loss_weighting("dwa", 2, o);
  const std::vector<Vec> L = {{1.0, 2.0}, {3.0, 2.0}, {1.0, 1.0}, {1.0, 2.0}, {0.5, 0.5}};
  // two epochs of two steps: averages e0 = (2, 2), e1 = (1, 1.5); in epoch 2, r = (1/2, 3/4)
  for (int s = 0; s < 4; s++) {
    check_close(w->weights(L[s], s), {1, 1}, 0);
    if (s % 2 == 1) w->end_epoch();
  }
  const double e0 = std::exp(0.5 / 2), e1 = std::exp(0.75 / 2);
  check_close(w->weights(L[4], 4), {2 * e0 / (e0 + e1), 2 * e1 / (e0 + e1)}, 1e-14);
  o.dwa_temperature = 0;
  CHECK_THROWS_WITH_AS(make_loss_weighting("dwa", 2, o), doctest::Contains("temperature"), Error);
}

TEST_CASE("rlw: softmax of standard normal draws, seeded") {
  MethodOptions o;
  o.seed = 4;
  auto a = make_loss_weighting("rlw", 3, o), b = make_loss_weighting("rlw", 3, o);
  Vec prev;
  for (int s = 0; s < 5; s++) {
    Vec x = a->weights({1, 1, 1}, s);
    CHECK(x == b->weights({1, 1, 1}, s));
    double sum = 0;
    for (double v : x) {
      CHECK(v > 0);
      sum += v;
    }
    CHECK(sum == doctest::Approx(1.0).epsilon(1e-14));
    CHECK(x != prev);
    prev = x;
  }
}

TEST_CASE("famo: w_i = z_i / (c (L_i + eps)); after the step xi moves against J^T delta (Adam's first step)") {
  MethodOptions o;
  auto w = make_loss_weighting("famo", 2, o);
  Vec x = w->weights({1.0, 3.0}, 0);  // z = (1/2, 1/2): w proportional to 1 / L, summing to 1
  check_close(x, {0.75, 0.25}, 1e-8);
  REQUIRE(w->wants_losses_after_step());
  // task 0 improved by log 2, task 1 not at all: delta = (log 2, 0), <z, delta> = log 2 / 2,
  // J^T delta = (log 2 / 4, -log 2 / 4): xi = (-lr, +lr) after Adam's first step
  w->losses_after_step({0.5, 3.0});
  Vec y = w->weights({1.0, 1.0}, 1);
  const double z0 = 1 / (1 + std::exp(2 * o.famo_lr));
  check_close(y, {z0, 1 - z0}, 1e-6);  // equal losses: w = z
  check_close(make_loss_weighting("famo", 1, o)->weights({0.3}, 0), {1.0}, 1e-12);
}

TEST_CASE("stch: 1 / L_t during the warm-up, then K p_t / L_t with p = softmax(log(L / z_nad) / mu)") {
  MethodOptions o;
  o.stch_warmup_epochs = 2;
  o.stch_mu = 0.5;
  auto w = make_loss_weighting("stch", 2, o);
  check_close(w->weights({9.0, 9.0}, 0), {1 / 9.0, 1 / 9.0}, 1e-15);  // first warm-up epoch: not averaged
  w->end_epoch();
  check_close(w->weights({2.0, 4.0}, 1), {0.5, 0.25}, 1e-15);
  check_close(w->weights({4.0, 2.0}, 2), {0.25, 0.5}, 1e-15);
  w->end_epoch();
  // nadir = (3, 3); L = (1.5, 3): f = log(L / 3) / mu = (2 log 1/2, 0), p = (1/5, 4/5)
  check_close(w->weights({1.5, 3.0}, 3), {2 * 0.2 / 1.5, 2 * 0.8 / 3.0}, 1e-12);
  o.stch_warmup_epochs = 0;
  CHECK_THROWS_WITH_AS(make_loss_weighting("stch", 2, o), doctest::Contains("warm-up"), Error);
}

TEST_CASE("every loss weighting at K = 1: DWA, RLW, FAMO weigh the one task 1; STCH 1 / L (log L's gradient)") {
  MethodOptions o;
  for (const char* name : {"dwa", "rlw", "famo", "stch"}) {
    auto w = make_loss_weighting(name, 1, o);
    for (int s = 0; s < 5; s++) {  // one step an epoch
      const double L = 2.0 / (s + 1);
      CHECK_MESSAGE(w->weights({L}, s)[0] == doctest::Approx(std::string(name) == "stch" ? 1 / L : 1.0), name);
      if (w->wants_losses_after_step()) w->losses_after_step({L / 2});
      w->end_epoch();
    }
  }
}

// ---------------------------------------------------------------- both gradient modes on models

namespace {

// Z = W x (no bias) and linear heads: on one-hot inputs (x_b = e_b) the trunk's
// Jacobian is orthonormal, so the Gram matrix at Z equals the one at W.
class TinyLinear : public MultiTaskModel {
 public:
  TinyLinear(int K, int D, int F, int C) {
    for (int t = 0; t < K; t++) tasks_.push_back(Task::classification("t" + std::to_string(t), C, TaskLoss::CrossEntropy));
    trunk = register_module("trunk", std::make_shared<Linear>(D, F, /*bias=*/false));
    heads = register_module("heads", std::make_shared<ModuleList>());
    declare_shared(trunk);
    for (int t = 0; t < K; t++) declare_task(t, heads->add(std::make_shared<Linear>(F, C)));
  }
  Tensor shared(const Tensor& x) override { return trunk->forward(x); }
  Tensor head(int t, const Tensor& z, const Tensor&) override { return (*heads)[t].forward(z); }
  std::string arch() const override { return "tiny-linear"; }
  Tensor last_shared_weight() const override { return trunk->weight; }
  std::shared_ptr<Linear> trunk;
  std::shared_ptr<ModuleList> heads;
};

std::vector<float> all_grads(const MultiTaskModel& m) {
  std::vector<float> g;
  for (const auto& [name, p] : m.named_parameters()) {
    Tensor gp = p.grad();
    for (int64_t i = 0; i < p.numel(); i++) g.push_back(gp.defined() ? gp.data()[i] : 0.f);
  }
  return g;
}

double max_rel_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0, scale = 1e-12;
  for (size_t i = 0; i < a.size(); i++) scale = std::max(scale, (double)std::fabs(b[i]));
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m / scale;
}

Targets random_labels(int K, int n, int C, Rng& r) {
  Targets y(K, std::vector<int32_t>(n));
  for (auto& yt : y)
    for (auto& v : yt.label) v = (int32_t)r.below(C);
  return y;
}

const char* kGramModeMethods[] = {"pcgrad", "cagrad", "imtl-g", "nash-mtl", "upgrad"};

}  // namespace

TEST_CASE("representation mode equals parameter mode when the trunk's Jacobian is orthonormal") {
  const int K = 3, D = 8, F = 5, C = 4, B = 6;
  manual_seed(2);
  TinyLinear model(K, D, F, C);
  Tensor x = Tensor::zeros({B, D});
  for (int b = 0; b < B; b++) x.data()[b * D + b] = 1.f;  // one-hot rows: X X^T = I
  Rng r(8);
  Targets y = random_labels(K, B, C, r);
  std::vector<std::string> names(std::begin(kGramModeMethods), std::end(kGramModeMethods));
  names.push_back("mgda");  // mgda / mgda-ub and aligned-mtl / -ub: the mode is in the name
  names.push_back("aligned-mtl");
  for (const std::string& name : names) {
    MethodOptions o;
    o.seed = 5;
    o.gradients = GradientMode::Parameters;
    const std::string rep_name = name == "mgda" ? "mgda-ub" : name == "aligned-mtl" ? "aligned-mtl-ub" : name;
    auto param = make_method(name, K, o);
    o.gradients = GradientMode::Representation;
    auto rep = make_method(rep_name, K, o);
    model.zero_grad();
    StepStats sp = param->compute_gradients(model, x, y);
    std::vector<float> gp = all_grads(model);
    model.zero_grad();
    StepStats sr = rep->compute_gradients(model, x, y);
    std::vector<float> gr = all_grads(model);
    for (int t = 0; t < K; t++) CHECK_MESSAGE(sp.weight[t] == doctest::Approx(sr.weight[t]).epsilon(1e-6), name);
    CHECK_MESSAGE(max_rel_diff(gr, gp) < 1e-5, name);
  }
}

TEST_CASE("z_gram: a batch's Gram matrix at Z is (1/N^2) times the sum of its N parts' (what a data-parallel run sums)") {
  const int K = 3, D = 7, F = 5, C = 4, B = 6;
  manual_seed(4);
  TinyLinear model(K, D, F, C);
  Rng r(9);
  Tensor x = Tensor::randn({B, D}, r);
  Targets y = random_labels(K, B, C, r);
  auto half = [&](int from) {  // samples from .. from + B/2 - 1
    Tensor xh = Tensor::zeros({B / 2, D});
    std::copy(x.data() + from * D, x.data() + (from + B / 2) * D, xh.data());
    Targets yh(K, std::vector<int32_t>(B / 2));
    for (int t = 0; t < K; t++)
      for (int b = 0; b < B / 2; b++) yh[t].label[b] = y[t].label[from + b];
    model.zero_grad();
    return z_gram(z_gradients(model, xh, yh));
  };
  const Gram a = half(0), b = half(B / 2);
  model.zero_grad();
  const ZGradients zg = z_gradients(model, x, y);
  const Gram M = z_gram(zg);
  REQUIRE(M.K == K);
  for (int i = 0; i < K; i++)
    for (int j = 0; j < K; j++) CHECK(M(i, j) == doctest::Approx((a(i, j) + b(i, j)) / 4).epsilon(1e-5));
  CHECK(M(0, 0) > 0);
}

TEST_CASE("each Gram method's step: shared gradient of sum_t w_t L_t, head t's of head_t L_t, in both modes") {
  std::vector<Task> tasks = {{"a", 10}, {"b", 10}, {"c", 10}};
  manual_seed(4);
  auto model = make_model("multilenet", tasks, {1, 28, 28});
  model->eval();  // no dropout: two computations of the same objective must agree
  Rng r(6);
  Tensor x = Tensor::randn({8, 1, 28, 28}, r);
  Targets y = random_labels(3, 8, 10, r);
  std::vector<std::pair<std::string, GradientMode>> runs = {{"aligned-mtl", GradientMode::Parameters},
                                                            {"aligned-mtl-ub", GradientMode::Representation}};
  for (const char* name : kGramModeMethods)
    for (GradientMode mode : {GradientMode::Representation, GradientMode::Parameters}) runs.push_back({name, mode});
  for (const auto& run : runs) {  // (no structured binding: clang cannot capture one in CHECK_MESSAGE)
    const std::string& name = run.first;
    const GradientMode mode = run.second;
    MethodOptions o;
    o.gradients = mode;
    o.nash_max_norm = 0;  // the clip is checked below
    auto method = make_method(name, 3, o);
    model->zero_grad();
    StepStats st = method->compute_gradients(*model, x, y);
    std::vector<float> got = all_grads(*model);
    // independently: the trunk's gradient of sum_t w_t L_t, head t's of h_t L_t
    // (h_t = w_t for Nash-MTL, which trains on the weighted loss; 1 for the others)
    const bool heads_weighted = name == "nash-mtl";
    auto grads_of = [&](const std::vector<double>& c) {
      model->zero_grad();
      Tensor z = model->shared(x);
      std::vector<Tensor> L = task_losses(*model, z, x, y);
      backward(L[0] * (float)c[0] + L[1] * (float)c[1] + L[2] * (float)c[2]);
      return all_grads(*model);
    };
    const std::vector<float> trunk = grads_of(st.weight);
    const std::vector<float> heads = grads_of(heads_weighted ? st.weight : std::vector<double>{1, 1, 1});
    std::vector<float> want;
    size_t at = 0;
    for (const auto& [pname, p] : model->named_parameters()) {
      const bool head = pname.rfind("heads.", 0) == 0;
      for (int64_t i = 0; i < p.numel(); i++, at++) want.push_back(head ? heads[at] : trunk[at]);
    }
    CHECK_MESSAGE(max_rel_diff(got, want) < 1e-5, name, " ", gradient_mode_name(mode));
    CHECK(st.gram_seconds >= 0);
  }
}

TEST_CASE("nash-mtl clips the shared parameters' gradient to max_norm in either mode") {
  std::vector<Task> tasks = {{"a", 10}, {"b", 10}};
  manual_seed(4);
  auto model = make_model("multilenet", tasks, {1, 28, 28});
  model->eval();
  Rng r(6);
  Tensor x = Tensor::randn({8, 1, 28, 28}, r);
  Targets y = random_labels(2, 8, 10, r);
  for (GradientMode mode : {GradientMode::Representation, GradientMode::Parameters}) {
    MethodOptions o;
    o.gradients = mode;
    o.nash_max_norm = 1e-3;
    auto method = make_method("nash-mtl", 2, o);
    model->zero_grad();
    method->compute_gradients(*model, x, y);
    double s = 0;
    for (const auto& [name, p] : model->shared_parameters())
      for (int64_t i = 0; i < p.numel(); i++) s += (double)p.grad().data()[i] * p.grad().data()[i];
    CHECK(std::sqrt(s) == doctest::Approx(1e-3).epsilon(1e-3));
  }
}

TEST_CASE("Gram methods: the same bits at 1 and 2 threads") {
  std::vector<Task> tasks = {{"a", 10}, {"b", 10}};
  Rng r(6);
  Tensor x = Tensor::randn({16, 1, 28, 28}, r);
  Targets y = random_labels(2, 16, 10, r);
  const int saved = num_threads();
  for (const char* name : {"upgrad", "cagrad"}) {
    std::vector<float> g[2];
    for (int th = 1; th <= 2; th++) {
      set_num_threads(th);
      manual_seed(4);
      auto model = make_model("multilenet", tasks, {1, 28, 28});
      model->eval();
      auto method = make_method(name, 2, {});
      method->compute_gradients(*model, x, y);
      g[th - 1] = all_grads(*model);
    }
    CHECK_MESSAGE(g[0] == g[1], name);
  }
  set_num_threads(saved);
}

// ---------------------------------------------------------------- state

TEST_CASE("checkpoint: a method restored from its state continues with the same numbers") {
  std::vector<Task> tasks = {{"a", 10}, {"b", 10}, {"c", 10}};
  Rng r(6);
  std::vector<Tensor> xs;
  std::vector<Targets> ys;
  for (int s = 0; s < 6; s++) {
    xs.push_back(Tensor::randn({8, 1, 28, 28}, r));
    ys.push_back(random_labels(3, 8, 10, r));
  }
  for (const char* name : {"pcgrad", "nash-mtl", "rlw", "famo", "dwa", "stch", "mgda-ub"}) {
    MethodOptions o;
    o.seed = 3;
    manual_seed(4);
    auto model = make_model("multilenet", tasks, {1, 28, 28});
    model->eval();
    auto a = make_method(name, 3, o);
    for (int s = 0; s < 3; s++) {  // epochs of two steps
      model->zero_grad();
      a->compute_gradients(*model, xs[s], ys[s]);
      a->after_step();
      if (s % 2 == 1) a->end_epoch({s / 2 + 1, false});
    }
    StFile f;
    a->save_state(f);
    auto b = make_method(name, 3, o);
    b->load_state(f, "ckpt");
    for (int s = 3; s < 6; s++) {
      model->zero_grad();
      StepStats sa = a->compute_gradients(*model, xs[s], ys[s]);
      a->after_step();
      model->zero_grad();
      StepStats sb = b->compute_gradients(*model, xs[s], ys[s]);
      b->after_step();
      if (s % 2 == 1) a->end_epoch({s / 2 + 1, false}), b->end_epoch({s / 2 + 1, false});
      CHECK_MESSAGE(sa.weight == sb.weight, name, " step ", s);
    }
    StFile empty;
    CHECK_THROWS_AS(make_method(name, 3, o)->load_state(empty, "ckpt"), Error);
  }
}

TEST_CASE("gram and loss method errors") {
  CHECK(parse_gradient_mode("representation") == GradientMode::Representation);
  CHECK(parse_gradient_mode("parameters") == GradientMode::Parameters);
  CHECK_THROWS_WITH_AS(parse_gradient_mode("params"), doctest::Contains("unknown gradient mode 'params'"), Error);
  CHECK(takes_gradient_mode("pcgrad"));
  CHECK_FALSE(takes_gradient_mode("mgda-ub"));
  CHECK_FALSE(takes_gradient_mode("famo"));
  MethodOptions o;
  o.cagrad_c = -1;
  CHECK_THROWS_WITH_AS(make_method("cagrad", 2, o), doctest::Contains("c must be"), Error);
  o = {};
  CHECK_THROWS_WITH_AS(make_gram_weighting("famo", 2, o), doctest::Contains("not a Gram-matrix method"), Error);
  o.weights = {1, 1};
  o.chebyshev.prefs = {0.01, 0.5, 0.49};
  for (const auto& n : method_names()) CHECK_NOTHROW(make_method(n, 2, o));
}
