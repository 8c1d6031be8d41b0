// Pareto tools tests: non-domination, exact hypervolume (the front plot: tests/test_report.cpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "engine/error.h"
#include "mtl/solvers/pareto.h"

namespace {

using Points = std::vector<std::vector<double>>;

// Union volume by inclusion-exclusion: sum over non-empty subsets of
// (-1)^{|T|+1} vol(intersection of the boxes [p, r]); the intersection's lower
// corner is the component-wise max.
double inclusion_exclusion(const Points& pts, const std::vector<double>& r) {
  const std::size_t n = pts.size(), d = r.size();
  double total = 0.0;
  for (unsigned mask = 1; mask < (1u << n); ++mask) {
    std::vector<double> lo(d, -1e300);
    int bits = 0;
    for (std::size_t i = 0; i < n; ++i)
      if (mask & (1u << i)) {
        ++bits;
        for (std::size_t j = 0; j < d; ++j) lo[j] = std::max(lo[j], pts[i][j]);
      }
    double vol = 1.0;
    for (std::size_t j = 0; j < d; ++j) vol *= std::max(0.0, r[j] - lo[j]);
    total += (bits % 2 ? 1.0 : -1.0) * vol;
  }
  return total;
}

}  // namespace

TEST_CASE("non_dominated: hand cases") {
  const Points p = {{1, 3}, {2, 2}, {3, 1}, {3, 3}, {2, 2}, {1, 4}, {0.5, 5}};
  const std::vector<bool> f = mt::non_dominated(p);
  // (3,3) dominated by (2,2); (1,4) by (1,3); the duplicate (2,2) is kept
  CHECK(f == std::vector<bool>{true, true, true, false, true, false, true});
  CHECK(mt::non_dominated({}).empty());
  CHECK(mt::non_dominated({{1, 2, 3}}) == std::vector<bool>{true});
  const std::vector<bool> g = mt::non_dominated({{1, 1, 1}, {1, 1, 2}, {0, 2, 2}, {2, 0, 3}});
  CHECK(g == std::vector<bool>{true, false, true, true});
  CHECK_THROWS_WITH_AS(mt::non_dominated({{1, 2}, {1, 2, 3}}),
                       "non_dominated: point 1 has 3 objectives, point 0 has 2", mt::Error);
}

TEST_CASE("hypervolume: 2-D hand cases") {
  const std::vector<double> ref = {4, 4};
  CHECK(mt::hypervolume({{1, 3}, {2, 2}, {3, 1}}, ref) == doctest::Approx(6.0));
  // dominated, duplicate, outside and on-the-boundary points change nothing
  CHECK(mt::hypervolume({{1, 3}, {2, 2}, {3, 1}, {3, 3}, {2, 2}, {5, 0}, {4, 0}, {0, 4}}, ref) ==
        doctest::Approx(6.0));
  CHECK(mt::hypervolume({{2, 2}}, ref) == doctest::Approx(4.0));
  CHECK(mt::hypervolume({}, ref) == 0.0);
  CHECK(mt::hypervolume({{5, 5}}, ref) == 0.0);
}

TEST_CASE("hypervolume: 3-D hand cases") {
  CHECK(mt::hypervolume({{1, 1, 1}}, {2, 2, 2}) == doctest::Approx(1.0));
  // three boxes of volume 2, pairwise and triple overlaps [2,3]^3: 6 - 3 + 1 = 4
  CHECK(mt::hypervolume({{1, 2, 2}, {2, 1, 2}, {2, 2, 1}}, {3, 3, 3}) == doctest::Approx(4.0));
  // boxes 2*2*1 and 1*1*3 overlapping in [1,2]x[1,2]x[2,3]: 4 + 3 - 1 = 6
  CHECK(mt::hypervolume({{0, 0, 2}, {1, 1, 0}}, {2, 2, 3}) == doctest::Approx(6.0));
  // plus a dominated point and a duplicate
  CHECK(mt::hypervolume({{0, 0, 2}, {1, 1, 0}, {1, 1, 2.5}, {0, 0, 2}}, {2, 2, 3}) ==
        doctest::Approx(6.0));
  CHECK(mt::hypervolume({}, {1, 1, 1}) == 0.0);
}

TEST_CASE("hypervolume: random sets against inclusion-exclusion") {
  std::mt19937 rng(42);
  std::uniform_real_distribution<double> U(0.0, 1.2);
  for (int d = 2; d <= 3; ++d)
    for (int rep = 0; rep < 40; ++rep) {
      const int n = 1 + rep % 8;
      Points pts(n, std::vector<double>(d));
      for (auto& p : pts)
        for (double& x : p) x = U(rng);
      if (rep % 4 == 0) pts[0][d - 1] = pts[n - 1][d - 1];  // shared coordinate values
      const std::vector<double> ref(d, 1.0);
      Points inside;  // inclusion-exclusion needs the points inside the box
      for (const auto& p : pts)
        if (std::all_of(p.begin(), p.end(), [](double x) { return x < 1.0; })) inside.push_back(p);
      CHECK(mt::hypervolume(pts, ref) == doctest::Approx(inclusion_exclusion(inside, ref)).epsilon(1e-10));
    }
}

TEST_CASE("hypervolume: bad input") {
  CHECK_THROWS_WITH_AS(mt::hypervolume({{1, 1, 1, 1}}, {2, 2, 2, 2}),
                       "hypervolume: exact only in 2 or 3 dimensions, got 4", mt::Error);
  CHECK_THROWS_WITH_AS(mt::hypervolume({{1, 1}}, {2}),
                       "hypervolume: exact only in 2 or 3 dimensions, got 1", mt::Error);
  CHECK_THROWS_WITH_AS(mt::hypervolume({{1, 1}, {1, 1, 1}}, {2, 2}),
                       "hypervolume: point 1 has 3 objectives, reference has 2", mt::Error);
}
