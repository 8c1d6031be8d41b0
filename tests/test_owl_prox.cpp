// OWL / GrOWL proximal operator tests.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "engine/error.h"
#include "mtl/sparsity/owl_prox.h"

namespace {

// F(x) = 0.5 ||x - v||^2 + Omega_w(x)
double owl_objective(const std::vector<double>& x, const std::vector<double>& v,
                     const std::vector<double>& w) {
  double q = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) q += 0.5 * (x[i] - v[i]) * (x[i] - v[i]);
  return q + mt::owl_norm(x, w);
}

// Brute force, independent of pool-adjacent-violators: the minimiser has
// sign(x_i) = sign(v_i) and its magnitudes form ordered tied blocks B_1 > B_2 > ...
// > B_m > 0 plus a zero block. For every such ordered partition, the stationary point
// of the quadratic on that face is u_j = (sum_{i in B_j} |v_i| - sum_{p in P_j} w_p) / |B_j|
// (P_j = the sorted positions of block j). Evaluating the true F at every candidate
// and taking the best gives the exact minimiser (the optimum's own face yields it).
std::vector<double> brute_force_prox(const std::vector<double>& v, const std::vector<double>& w) {
  const int n = static_cast<int>(v.size());
  std::vector<int> level(n, 0);  // 0 = zero block, 1..m = blocks from largest down
  std::vector<double> best_x(n, 0.0);
  double best_f = owl_objective(best_x, v, w);
  int total = 1;
  for (int i = 0; i < n; ++i) total *= (n + 1);
  for (int code = 0; code < total; ++code) {
    int c = code, m = 0;
    for (int i = 0; i < n; ++i) {
      level[i] = c % (n + 1);
      c /= (n + 1);
      m = std::max(m, level[i]);
    }
    bool contiguous = true;  // levels 1..m all used
    for (int l = 1; l <= m; ++l)
      if (std::find(level.begin(), level.end(), l) == level.end()) contiguous = false;
    if (!contiguous) continue;
    std::vector<double> x(n, 0.0);
    int pos = 0;
    for (int l = 1; l <= m; ++l) {
      double sv = 0.0, sw = 0.0;
      int cnt = 0;
      for (int i = 0; i < n; ++i)
        if (level[i] == l) {
          sv += std::fabs(v[i]);
          sw += w[pos++];
          ++cnt;
        }
      const double u = std::max(0.0, (sv - sw) / cnt);
      for (int i = 0; i < n; ++i)
        if (level[i] == l) x[i] = v[i] < 0 ? -u : u;
    }
    const double f = owl_objective(x, v, w);
    if (f < best_f) {
      best_f = f;
      best_x = x;
    }
  }
  return best_x;
}

std::vector<double> random_weights(std::mt19937& rng, int n) {
  std::uniform_real_distribution<double> U(0.0, 1.5);
  std::vector<double> w(n);
  for (double& x : w) x = U(rng);
  std::sort(w.begin(), w.end(), std::greater<double>());
  return w;
}

}  // namespace

TEST_CASE("owl_prox: matches the brute-force minimiser for n = 2..4") {
  std::mt19937 rng(12345);
  std::uniform_real_distribution<double> V(-3.0, 3.0);
  int cases = 0;
  for (int n = 2; n <= 4; ++n)
    for (int rep = 0; rep < 60; ++rep) {
      std::vector<double> v(n);
      for (double& x : v) x = V(rng);
      if (rep % 5 == 0) v[1] = -v[0];  // tied magnitudes
      const std::vector<double> w = random_weights(rng, n);
      const std::vector<double> x = mt::owl_prox(v, w);
      const std::vector<double> xb = brute_force_prox(v, w);
      for (int i = 0; i < n; ++i) CHECK(x[i] == doctest::Approx(xb[i]).epsilon(1e-9).scale(1.0));
      CHECK(owl_objective(x, v, w) <= owl_objective(xb, v, w) + 1e-12);
      ++cases;
    }
  CHECK(cases == 180);
}

TEST_CASE("owl_prox: no random perturbation improves the objective") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> V(-2.0, 2.0), D(-1e-3, 1e-3);
  for (int rep = 0; rep < 20; ++rep) {
    const int n = 6;
    std::vector<double> v(n);
    for (double& x : v) x = V(rng);
    const std::vector<double> w = random_weights(rng, n);
    const std::vector<double> x = mt::owl_prox(v, w);
    const double f = owl_objective(x, v, w);
    for (int k = 0; k < 200; ++k) {
      std::vector<double> y = x;
      for (double& e : y) e += D(rng);
      CHECK(owl_objective(y, v, w) >= f - 1e-12);
    }
  }
}

TEST_CASE("owl_prox: equal weights give soft-thresholding") {
  const std::vector<double> v = {3.0, -0.5, 1.2, -2.0, 0.0, 0.7};
  const std::vector<double> w(v.size(), 0.8);
  const std::vector<double> x = mt::owl_prox(v, w);
  for (std::size_t i = 0; i < v.size(); ++i) {
    const double st = (v[i] > 0 ? 1.0 : -1.0) * std::max(0.0, std::fabs(v[i]) - 0.8);
    CHECK(x[i] == doctest::Approx(st).epsilon(1e-12));
  }
}

TEST_CASE("owl_prox: hand cases, ordering, signs, zero input") {
  // |v| sorted (3, 2.8), w = (1, 0): z = (2, 2.8) violates the order -> pooled 2.4
  std::vector<double> x = mt::owl_prox({-2.8, 3.0}, {1.0, 0.0});
  CHECK(x[0] == doctest::Approx(-2.4));
  CHECK(x[1] == doctest::Approx(2.4));
  // spike weights: only the largest entry is shrunk extra
  x = mt::owl_prox({4.0, 1.0, -2.0}, {1.5, 0.5, 0.5});
  CHECK(x[0] == doctest::Approx(2.5));
  CHECK(x[1] == doctest::Approx(0.5));
  CHECK(x[2] == doctest::Approx(-1.5));

  std::mt19937 rng(3);
  std::uniform_real_distribution<double> V(-5.0, 5.0);
  for (int rep = 0; rep < 50; ++rep) {
    std::vector<double> v(8);
    for (double& e : v) e = V(rng);
    const std::vector<double> out = mt::owl_prox(v, random_weights(rng, 8));
    for (int i = 0; i < 8; ++i) {
      CHECK(out[i] * v[i] >= 0.0);                     // signs kept (or zero)
      CHECK(std::fabs(out[i]) <= std::fabs(v[i]) + 1e-12);  // shrinkage
      for (int j = 0; j < 8; ++j)                      // magnitudes ordered like the input's
        if (std::fabs(v[i]) >= std::fabs(v[j])) CHECK(std::fabs(out[i]) >= std::fabs(out[j]) - 1e-12);
    }
  }
  const std::vector<double> z = mt::owl_prox({0.0, 0.0, 0.0}, {1.0, 0.5, 0.0});
  for (double e : z) CHECK(e == 0.0);
  CHECK(mt::owl_prox({}, {}).empty());
  // zero weights: identity
  const std::vector<double> id = mt::owl_prox({1.0, -2.0}, {0.0, 0.0});
  CHECK(id[0] == 1.0);
  CHECK(id[1] == -2.0);
}

TEST_CASE("owl_prox: bad weights") {
  CHECK_THROWS_WITH_AS(mt::owl_prox({1.0, 2.0}, {0.5, 1.0}),
                       "owl_prox: weights must be non-increasing, but w_2 = 1 > w_1 = 0.5",
                       mt::Error);
  CHECK_THROWS_WITH_AS(mt::owl_prox({1.0, 2.0}, {0.5}), "owl_prox: 2 values but 1 weights",
                       mt::Error);
  CHECK_THROWS_WITH_AS(mt::owl_prox({1.0}, {-0.5}),
                       "owl_prox: weight w_1 = -0.5 must be finite and >= 0", mt::Error);
}

TEST_CASE("growl_weights: reference formulas") {
  const std::vector<double> s = mt::growl_weights(4, "spike", 0.8, 0.2);
  CHECK(s[0] == doctest::Approx(1.0));
  for (int i = 1; i < 4; ++i) CHECK(s[i] == doctest::Approx(0.2));
  const std::vector<double> l = mt::growl_weights(4, "linear", 0.8, 0.2);  // 0.8 + 0.2 (4-i)/4
  CHECK(l[0] == doctest::Approx(0.95));
  CHECK(l[1] == doctest::Approx(0.9));
  CHECK(l[2] == doctest::Approx(0.85));
  CHECK(l[3] == doctest::Approx(0.8));
  const std::vector<double> d = mt::growl_weights(5, "dejiao", 0.8, 0.2);  // p = 2
  CHECK(d[0] == doctest::Approx(1.2));
  CHECK(d[1] == doctest::Approx(1.0));
  CHECK(d[2] == doctest::Approx(0.2));
  CHECK(d[4] == doctest::Approx(0.2));
  for (const char* t : {"spike", "linear", "dejiao"}) {
    const std::vector<double> w = mt::growl_weights(9, t);
    for (std::size_t i = 1; i < w.size(); ++i) CHECK(w[i] <= w[i - 1]);
  }
  CHECK_THROWS_WITH_AS(mt::growl_weights(3, "square"),
                       "growl_weights: unknown type 'square' (expected spike, linear or dejiao)",
                       mt::Error);
  CHECK_THROWS_AS(mt::growl_weights(0, "spike"), mt::Error);
  CHECK_THROWS_AS(mt::growl_weights(3, "spike", -1.0, 0.2), mt::Error);
}

TEST_CASE("growl_prox_rows: rescales rows by prox(norms) / norms") {
  // norms (5, 1, 0, 1); w = (2, .5, .5, .5): sorted z = (3, .5, .5, -.5) -> (3, .5, .5, 0)
  std::vector<float> W = {3, 4, 0, 1, 0, 0, 0.6f, 0.8f};
  mt::growl_prox_rows(W.data(), 4, 2, {2.0, 0.5, 0.5, 0.5});
  const std::vector<float> expect = {1.8f, 2.4f, 0, 0.5f, 0, 0, 0.3f, 0.4f};
  for (std::size_t i = 0; i < W.size(); ++i) CHECK(W[i] == doctest::Approx(expect[i]).epsilon(1e-6));
  // large weights prune everything
  std::vector<float> W2 = {1, 2, 3, 4};
  mt::growl_prox_rows(W2.data(), 2, 2, {10.0, 10.0});
  for (float e : W2) CHECK(e == 0.0f);
  CHECK_THROWS_WITH_AS(mt::growl_prox_rows(W2.data(), 2, 2, {1.0}),
                       "growl_prox_rows: 2 rows but 1 weights", mt::Error);
}

TEST_CASE("growl_prox_rows: the cap on zeroed rows keeps the smallest-norm rows pruned") {
  // norms (4, .5, .3, .2, 0), w = 1: soft threshold -> (3, 0, 0, 0, 0)
  const std::vector<float> W0 = {4, 0, 0.5f, 0, 0, 0.3f, 0.2f, 0, 0, 0};
  auto zero_rows = [](const std::vector<float>& W) {
    int z = 0;
    for (int r = 0; r < 5; ++r) z += (W[2 * r] == 0.0f && W[2 * r + 1] == 0.0f);
    return z;
  };
  const std::vector<double> w(5, 1.0);

  std::vector<float> W = W0;
  mt::growl_prox_rows(W.data(), 5, 2, w, -1);  // no cap
  CHECK(zero_rows(W) == 4);
  CHECK(W[0] == doctest::Approx(3.0));

  W = W0;
  mt::growl_prox_rows(W.data(), 5, 2, w, 2);  // 1 already zero + 1 new (the 0.2 row)
  CHECK(zero_rows(W) == 2);
  CHECK(W[0] == doctest::Approx(3.0));
  CHECK(W[2] == 0.5f);  // restored to its original value
  CHECK(W[5] == 0.3f);
  CHECK(W[6] == 0.0f);  // smallest norm stays pruned

  W = W0;
  mt::growl_prox_rows(W.data(), 5, 2, w, 0);  // the zero row cannot be revived
  CHECK(zero_rows(W) == 1);
  CHECK(W[6] == 0.2f);

  W = W0;
  mt::growl_prox_rows(W.data(), 5, 2, w, 4);  // cap not binding
  CHECK(zero_rows(W) == 4);
}

TEST_CASE("growl_prox_groups: generic groups, column and conv-channel groupings") {
  // columns of a 3 x 2 matrix == rows of its transpose
  std::vector<float> M = {1, 2, -3, 0.5f, 2, 0.1f};
  std::vector<float> Mt = {1, -3, 2, 2, 0.5f, 0.1f};
  const std::vector<double> w = {1.5, 0.5};
  mt::growl_prox_groups(M.data(), M.size(), mt::column_groups(3, 2), w);
  mt::growl_prox_rows(Mt.data(), 2, 3, w);
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 2; ++j) CHECK(M[i * 2 + j] == doctest::Approx(Mt[j * 3 + i]));

  const auto g = mt::input_channel_groups(2, 3, 4);  // W[o, c, k] at (o*3 + c)*4 + k
  REQUIRE(g.size() == 3);
  CHECK(g[1].size() == 8);
  CHECK(g[1][0] == 4);
  CHECK(g[1][4] == 16);
  CHECK(g[2][7] == 23);

  std::vector<float> d = {1, 2, 3};
  CHECK_THROWS_WITH_AS(mt::growl_prox_groups(d.data(), d.size(), {{0, 3}}, {1.0}),
                       "growl_prox_groups: group 0 has index 3 >= size 3", mt::Error);
  CHECK_THROWS_AS(mt::growl_prox_groups(d.data(), d.size(), {{0}, {}}, {1.0, 1.0}), mt::Error);
}

TEST_CASE("growl_zero_cap: ramps over the search phase") {
  CHECK(mt::growl_zero_cap(10, 0.3, 0, 3) == 1);
  CHECK(mt::growl_zero_cap(10, 0.3, 1, 3) == 2);
  CHECK(mt::growl_zero_cap(10, 0.3, 2, 3) == 3);
  CHECK(mt::growl_zero_cap(64, 0.8, 2, 3) == 51);
  CHECK_THROWS_AS(mt::growl_zero_cap(10, 0.3, 3, 3), mt::Error);
  CHECK_THROWS_AS(mt::growl_zero_cap(10, 1.5, 0, 3), mt::Error);
}
