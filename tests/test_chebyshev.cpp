// Modified weighted Chebyshev scalarisation and augmented Lagrangian tests.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "engine/error.h"
#include "mtl/methods/chebyshev.h"

namespace {

mt::ChebyshevConfig hand_config() {
  mt::ChebyshevConfig cfg;
  cfg.k = {0.2, 0.8};
  cfg.a = {0.1, 0.0};
  cfg.eps = 0.5;
  return cfg;
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = "/tmp/test_chebyshev_" + std::to_string(::getpid()) + "_" + name;
  std::ofstream(path) << text;
  return path;
}

}  // namespace

TEST_CASE("chebyshev: constraints and weighted Chebyshev value, hand case") {
  // sum_j (f_j - a_j) = 0.9 + 2 = 2.9
  // c_0 = 0.2*0.9 + 0.2*0.5*2.9 - 0.3 = 0.17,  c_1 = 0.8*2 + 0.8*0.5*2.9 - 0.3 = 2.46
  const mt::ChebyshevConfig cfg = hand_config();
  const std::vector<double> c = mt::chebyshev_constraints(cfg, {1.0, 2.0}, 0.3);
  CHECK(c[0] == doctest::Approx(0.17));
  CHECK(c[1] == doctest::Approx(2.46));
  // max(0.2 (0.9 + 1.45), 0.8 (2 + 1.45)) = 2.76
  const double wc = mt::weighted_chebyshev_value(cfg, {1.0, 2.0});
  CHECK(wc == doctest::Approx(2.76));
  // t = WC value is the smallest feasible t: all c_i <= 0, the max one active
  const std::vector<double> c_wc = mt::chebyshev_constraints(cfg, {1.0, 2.0}, wc);
  CHECK(c_wc[0] < 0.0);
  CHECK(c_wc[1] == doctest::Approx(0.0).scale(1.0));
  // the reference point defaults to zeros
  mt::ChebyshevConfig z;
  z.k = {1.0, 1.0, 1.0};
  z.eps = 0.0;
  CHECK(mt::weighted_chebyshev_value(z, {0.5, 3.0, 1.0}) == doctest::Approx(3.0));
}

TEST_CASE("chebyshev: augmented Lagrangian values, hand case") {
  // k = (1,1), a = 0, eps = 0, f = (1, 2), t = 1.5 -> c = (-0.5, 0.5); lambda = .5, mu = 2
  mt::ChebyshevConfig cfg;
  cfg.k = {1.0, 1.0};
  cfg.eps = 0.0;
  mt::AlState st;
  st.lambda = {0.5, 0.5};
  st.mu = 2.0;
  st.rho = 2.0;
  // published: 1.5 + (0.5*-0.5 + 0.5*0.5) + (2/2)(0.25 + 0.25) = 2.0
  CHECK(mt::al_objective(mt::AlVariant::Published, cfg, st, {1.0, 2.0}, 1.5) == doctest::Approx(2.0));
  // standard: 1.5 + (0 - 0.25)/4 + (1.5^2 - 0.25)/4 = 1.9375
  CHECK(mt::al_objective(mt::AlVariant::Standard, cfg, st, {1.0, 2.0}, 1.5) ==
        doctest::Approx(1.9375));
}

TEST_CASE("chebyshev: al_gradient matches central finite differences") {
  std::mt19937 rng(2024);
  std::uniform_real_distribution<double> U(0.0, 1.0);
  int checked = 0;
  for (mt::AlVariant variant : {mt::AlVariant::Published, mt::AlVariant::Standard})
    for (int rep = 0; rep < 25; ++rep) {
      const int m = 2 + rep % 3;  // 2..4 objectives
      mt::ChebyshevConfig cfg;
      cfg.eps = rep % 2 ? 0.1 : 1e-4;
      mt::AlState st;
      st.mu = 0.2 + 3.0 * U(rng);
      std::vector<double> f(m);
      for (int i = 0; i < m; ++i) {
        cfg.k.push_back(U(rng));
        cfg.a.push_back(0.2 * U(rng));
        st.lambda.push_back(U(rng) - (variant == mt::AlVariant::Published ? 0.5 : 0.0));
        f[i] = 2.0 * U(rng);
      }
      const double t = 1.5 * U(rng) - 0.2;
      cfg.validate(m);
      st.validate(m);
      // stay away from the kink of max(0, lambda + mu c) in the standard variant
      const std::vector<double> c = mt::chebyshev_constraints(cfg, f, t);
      bool near_kink = false;
      for (int i = 0; i < m; ++i) near_kink |= std::fabs(st.lambda[i] + st.mu * c[i]) < 1e-3;
      if (near_kink) continue;

      std::vector<double> g;
      double gt = 0.0;
      mt::al_gradient(variant, cfg, st, f, t, g, gt);
      const double h = 1e-6;
      for (int j = 0; j < m; ++j) {
        std::vector<double> fp = f, fm = f;
        fp[j] += h;
        fm[j] -= h;
        const double fd = (mt::al_objective(variant, cfg, st, fp, t) -
                           mt::al_objective(variant, cfg, st, fm, t)) / (2 * h);
        CHECK(g[j] == doctest::Approx(fd).epsilon(1e-6).scale(1.0));
      }
      const double fd_t = (mt::al_objective(variant, cfg, st, f, t + h) -
                           mt::al_objective(variant, cfg, st, f, t - h)) / (2 * h);
      CHECK(gt == doctest::Approx(fd_t).epsilon(1e-6).scale(1.0));
      ++checked;
    }
  CHECK(checked >= 40);
}

TEST_CASE("chebyshev: outer-iteration updates") {
  mt::AlState st = mt::make_al_state(2, 2.0, 3.0);
  CHECK(st.lambda == std::vector<double>{0.5, 0.5});
  mt::AlState pub = st, std_ = st;
  mt::al_update(mt::AlVariant::Published, pub, {0.1, -0.5});
  CHECK(pub.lambda[0] == doctest::Approx(0.7));
  CHECK(pub.lambda[1] == doctest::Approx(-0.5));  // no clipping
  CHECK(pub.mu == doctest::Approx(6.0));
  mt::al_update(mt::AlVariant::Standard, std_, {0.1, -0.5});
  CHECK(std_.lambda[0] == doctest::Approx(0.7));
  CHECK(std_.lambda[1] == 0.0);  // max(0, 0.5 - 1)
  CHECK(std_.mu == doctest::Approx(6.0));
  CHECK_THROWS_WITH_AS(mt::al_update(mt::AlVariant::Standard, std_, {0.1}),
                       "al_update: 1 constraints but 2 multipliers lambda", mt::Error);
}

TEST_CASE("chebyshev: bad configuration messages") {
  mt::ChebyshevConfig cfg;
  cfg.k = {0.5, -0.2, 0.7};
  CHECK_THROWS_WITH_AS(cfg.validate(3), "preference k has a negative entry k_1 = -0.2", mt::Error);
  cfg.k = {0.5, 0.5};
  CHECK_THROWS_WITH_AS(cfg.validate(3),
                       "preference k has 2 entries, expected 3 (sparsity + 2 tasks)", mt::Error);
  cfg.k = {0.0, 0.0, 0.0};
  CHECK_THROWS_WITH_AS(cfg.validate(3), "preference k is all zeros", mt::Error);
  cfg.k = {0.01, 0.8, 0.19};
  cfg.validate(3);
  cfg.eps = -1e-3;
  CHECK_THROWS_WITH_AS(cfg.validate(3), "eps must be finite and >= 0, got -0.001", mt::Error);
  cfg.eps = 1e-4;
  cfg.a = {0.0, 0.0};
  CHECK_THROWS_WITH_AS(cfg.validate(3), "reference point a has 2 entries, expected 3", mt::Error);

  mt::AlState st;
  st.lambda = {1.0, 1.0, 1.0};
  st.mu = 0.0;
  CHECK_THROWS_WITH_AS(st.validate(3), "mu must be > 0, got 0", mt::Error);
  st.mu = -2.5;
  CHECK_THROWS_WITH_AS(st.validate(3), "mu must be > 0, got -2.5", mt::Error);
  st.mu = 1.0;
  st.rho = 0.5;
  CHECK_THROWS_WITH_AS(st.validate(3), "rho must be >= 1, got 0.5", mt::Error);
  st.rho = 2.0;
  CHECK_THROWS_WITH_AS(st.validate(2), "lambda has 3 entries, expected 2", mt::Error);

  CHECK(mt::parse_al_variant("published") == mt::AlVariant::Published);
  CHECK(mt::parse_al_variant("standard") == mt::AlVariant::Standard);
  CHECK(std::string(mt::al_variant_name(mt::AlVariant::Standard)) == "standard");
  CHECK_THROWS_WITH_AS(mt::parse_al_variant("textbook"),
                       "unknown augmented Lagrangian variant 'textbook' (expected published or standard)",
                       mt::Error);
}

TEST_CASE("chebyshev: parse_prefs") {
  const std::vector<double> k = mt::parse_prefs("0.01,0.8, 0.19");
  REQUIRE(k.size() == 3);
  CHECK(k[0] == doctest::Approx(0.01));
  CHECK(k[2] == doctest::Approx(0.19));
  CHECK(mt::parse_prefs("1e-4") == std::vector<double>{1e-4});
  CHECK_THROWS_WITH_AS(mt::parse_prefs("0.01,0.8x,0.19"),
                       "preference list '0.01,0.8x,0.19': entry 2 '0.8x' is not a number",
                       mt::Error);
  CHECK_THROWS_WITH_AS(mt::parse_prefs("0.1,,0.9"),
                       "preference list '0.1,,0.9': entry 2 '' is not a number", mt::Error);
  CHECK_THROWS_WITH_AS(mt::parse_prefs(""), "preference list is empty", mt::Error);
  CHECK_THROWS_AS(mt::parse_prefs("0.5,nan"), mt::Error);
}

TEST_CASE("chebyshev: parse_pref_file") {
  const std::string good = write_temp("good.txt",
                                      "# sparsity, task 1, task 2\n"
                                      "0.01, 0.8, 0.19\n"
                                      "\n"
                                      "0.1 0.45\t0.45   # whitespace separated\n"
                                      "   \n"
                                      "0,0.5,0.5\n");
  const auto v = mt::parse_pref_file(good);
  REQUIRE(v.size() == 3);
  CHECK(v[0] == std::vector<double>{0.01, 0.8, 0.19});
  CHECK(v[1] == std::vector<double>{0.1, 0.45, 0.45});
  CHECK(v[2] == std::vector<double>{0.0, 0.5, 0.5});

  const std::string bad = write_temp("bad.txt", "0.1,0.2,0.7\n# ok\n0.1,zero,0.9\n");
  CHECK_THROWS_WITH_AS(mt::parse_pref_file(bad), (bad + ":3: 'zero' is not a number").c_str(),
                       mt::Error);
  const std::string ragged = write_temp("ragged.txt", "\n0.1,0.2,0.7\n0.5,0.5\n");
  CHECK_THROWS_WITH_AS(mt::parse_pref_file(ragged),
                       (ragged + ":3: 2 values, but line 2 has 3").c_str(), mt::Error);
  const std::string empty = write_temp("empty.txt", "# nothing\n\n");
  CHECK_THROWS_WITH_AS(mt::parse_pref_file(empty),
                       ("preference file " + empty + " has no preference vectors").c_str(),
                       mt::Error);
  CHECK_THROWS_WITH_AS(mt::parse_pref_file("/nonexistent/prefs.txt"),
                       "cannot open preference file /nonexistent/prefs.txt", mt::Error);
  for (const std::string& p : {good, bad, ragged, empty}) std::remove(p.c_str());
}

TEST_CASE("chebyshev: pref_grid") {
  const auto g = mt::pref_grid(3, 4);
  CHECK(g.size() == 15);  // C(6, 2)
  std::set<std::vector<double>> unique(g.begin(), g.end());
  CHECK(unique.size() == 15);
  for (const auto& k : g) {
    REQUIRE(k.size() == 3);
    double s = 0.0;
    for (double x : k) {
      s += x;
      CHECK(std::fabs(x * 4 - std::round(x * 4)) < 1e-12);
    }
    CHECK(s == doctest::Approx(1.0));
  }
  CHECK(g.front() == std::vector<double>{0.0, 0.0, 1.0});
  CHECK(g.back() == std::vector<double>{1.0, 0.0, 0.0});
  CHECK(mt::pref_grid(1, 3) == std::vector<std::vector<double>>{{1.0}});
  CHECK(mt::pref_grid(2, 2).size() == 3);
  CHECK_THROWS_AS(mt::pref_grid(0, 3), mt::Error);
  CHECK_THROWS_AS(mt::pref_grid(3, 0), mt::Error);
}
