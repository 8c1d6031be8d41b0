// Affinity Propagation, row similarity and row tying tests.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/error.h"
#include "mtl/sparsity/affinity_propagation.h"

namespace {

// same cluster <=> same group, for every pair
bool same_partition(const std::vector<int>& labels, const std::vector<int>& groups) {
  for (std::size_t i = 0; i < labels.size(); ++i)
    for (std::size_t j = 0; j < labels.size(); ++j)
      if ((labels[i] == labels[j]) != (groups[i] == groups[j])) return false;
  return true;
}

}  // namespace

TEST_CASE("row_similarity: <w_i, w_j> / max(|w_i|^2, |w_j|^2)") {
  const std::vector<float> W = {1, 0, 2, 0, 0, 0, 0, 1, -1, 0};
  const std::vector<double> S = mt::row_similarity(W.data(), 5, 2);
  REQUIRE(S.size() == 25);
  CHECK(S[0 * 5 + 1] == doctest::Approx(0.5));   // 2 / max(1, 4)
  CHECK(S[1 * 5 + 0] == doctest::Approx(0.5));
  CHECK(S[0 * 5 + 0] == doctest::Approx(1.0));
  CHECK(S[0 * 5 + 2] == 0.0);                      // one zero row
  CHECK(S[2 * 5 + 2] == 0.0);                      // both zero
  CHECK(S[0 * 5 + 3] == 0.0);                      // orthogonal
  CHECK(S[0 * 5 + 4] == doctest::Approx(-1.0));   // opposite
  CHECK(S[1 * 5 + 4] == doctest::Approx(-0.5));
}

TEST_CASE("affinity_propagation: recovers three groups of scaled copies") {
  // rows are scaled copies of three orthogonal base directions, interleaved
  const int cols = 6;
  const float base[3][6] = {{1, 2, 0, 0, 0, 0}, {0, 0, 1, -1, 0, 0}, {0, 0, 0, 0, 3, 1}};
  const float scales[4] = {1.0f, 0.9f, 1.1f, 0.95f};
  std::vector<float> W;
  std::vector<int> group;
  for (int s = 0; s < 4; ++s)
    for (int g = 0; g < 3; ++g) {
      for (int j = 0; j < cols; ++j) W.push_back(scales[s] * base[g][j]);
      group.push_back(g);
    }
  const int rows = 12;
  const std::vector<double> S = mt::row_similarity(W.data(), rows, cols);
  const mt::ApResult r = mt::affinity_propagation(S, rows, 0.5);
  CHECK(r.converged);
  CHECK(r.iterations > 0);
  CHECK(r.iterations <= 200);
  REQUIRE(r.exemplars.size() == 3);
  CHECK(same_partition(r.labels, group));
  for (int c = 0; c < 3; ++c) CHECK(r.labels[r.exemplars[c]] == c);  // an exemplar is in its cluster

  // tying makes each group's rows equal to the group mean
  std::vector<float> T = W;
  mt::tie_rows_to_cluster_means(T.data(), rows, cols, r.labels);
  const float mean_scale = (1.0f + 0.9f + 1.1f + 0.95f) / 4.0f;
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j)
      CHECK(T[i * cols + j] == doctest::Approx(mean_scale * base[group[i]][j]).epsilon(1e-6));
}

TEST_CASE("affinity_propagation: identical rows form one cluster") {
  std::vector<float> W;
  for (int i = 0; i < 6; ++i) W.insert(W.end(), {0.5f, -1.0f, 2.0f});
  const std::vector<double> S = mt::row_similarity(W.data(), 6, 3);
  const mt::ApResult r = mt::affinity_propagation(S, 6, 0.8);
  CHECK(r.exemplars.size() == 1);
  for (int l : r.labels) CHECK(l == 0);
  // preference above the (equal) similarity: every point its own exemplar
  CHECK(mt::affinity_propagation(S, 6, 1.5).exemplars.size() == 6);
  // a single point
  const mt::ApResult one = mt::affinity_propagation({0.0}, 1, 0.5);
  CHECK(one.labels == std::vector<int>{0});
  CHECK(one.exemplars == std::vector<int>{0});
}

TEST_CASE("affinity_propagation: exact duplicates in two groups (ties broken deterministically)") {
  // rows 0,2,4 identical, rows 1,3,5 identical, the two directions orthogonal
  std::vector<float> W;
  for (int i = 0; i < 6; ++i) {
    if (i % 2 == 0) W.insert(W.end(), {1, 1, 0});
    else W.insert(W.end(), {0, 0, 2});
  }
  const std::vector<double> S = mt::row_similarity(W.data(), 6, 3);
  const mt::ApResult a = mt::affinity_propagation(S, 6, 0.5);
  const mt::ApResult b = mt::affinity_propagation(S, 6, 0.5);
  CHECK(a.converged);
  CHECK(a.exemplars.size() == 2);
  CHECK(same_partition(a.labels, {0, 1, 0, 1, 0, 1}));
  CHECK(a.labels == b.labels);
  CHECK(a.exemplars == b.exemplars);
  CHECK(a.iterations == b.iterations);
}

TEST_CASE("affinity_propagation: lower preference gives fewer clusters") {
  // 1-D points in loose clumps, s(i,k) = -(x_i - x_k)^2
  const std::vector<double> x = {0.0, 0.3, 0.5, 2.0, 2.4, 2.5, 5.0, 5.1, 5.6, 9.0, 9.2, 12.0};
  const int n = static_cast<int>(x.size());
  std::vector<double> S(n * n);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) S[i * n + k] = -(x[i] - x[k]) * (x[i] - x[k]);
  std::vector<std::size_t> counts;
  for (double pref : {-0.05, -1.0, -10.0, -100.0}) {
    const mt::ApResult r = mt::affinity_propagation(S, n, pref);
    CHECK(r.converged);
    CHECK(r.labels.size() == x.size());
    counts.push_back(r.exemplars.size());
  }
  for (std::size_t i = 1; i < counts.size(); ++i) CHECK(counts[i] <= counts[i - 1]);
  CHECK(counts.front() > counts.back());
  CHECK(counts.front() >= 5);
  CHECK(counts.back() <= 2);
}

TEST_CASE("affinity_propagation: bad input") {
  const std::vector<double> S(9, 0.5);
  CHECK_THROWS_WITH_AS(mt::affinity_propagation({}, 0, 0.5),
                       "affinity_propagation: need n >= 1 points, got 0", mt::Error);
  CHECK_THROWS_WITH_AS(mt::affinity_propagation(S, 4, 0.5),
                       "affinity_propagation: similarity matrix has 9 entries, expected n*n = 16",
                       mt::Error);
  CHECK_THROWS_WITH_AS(mt::affinity_propagation(S, 3, 0.5, 0.4),
                       "affinity_propagation: damping must be in [0.5, 1), got 0.4", mt::Error);
  CHECK_THROWS_WITH_AS(mt::affinity_propagation(S, 3, 0.5, 1.0),
                       "affinity_propagation: damping must be in [0.5, 1), got 1", mt::Error);
  CHECK_THROWS_AS(mt::affinity_propagation(S, 3, 0.5, 0.5, 0), mt::Error);
  CHECK_THROWS_AS(mt::affinity_propagation(S, 3, 0.5, 0.5, 200, 0), mt::Error);
  std::vector<double> bad = S;
  bad[1] = std::nan("");
  CHECK_THROWS_AS(mt::affinity_propagation(bad, 3, 0.5), mt::Error);
  CHECK_THROWS_AS(mt::row_similarity(nullptr, 0, 3), mt::Error);
}

TEST_CASE("tie_rows_to_cluster_means: hand case") {
  std::vector<float> W = {1, 2, 3, 4, 10, 10, 5, 6};
  mt::tie_rows_to_cluster_means(W.data(), 4, 2, {0, 0, -1, 0});
  const std::vector<float> expect = {3, 4, 3, 4, 10, 10, 3, 4};
  CHECK(W == expect);
  CHECK_THROWS_WITH_AS(mt::tie_rows_to_cluster_means(W.data(), 4, 2, {0, 1}),
                       "tie_rows_to_cluster_means: 4 rows but 2 labels", mt::Error);
}
