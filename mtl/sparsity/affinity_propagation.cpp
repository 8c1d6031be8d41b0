// Affinity Propagation and row tying (see affinity_propagation.h).
#include "mtl/sparsity/affinity_propagation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include "engine/error.h"
#include "mtl/text.h"

namespace mt {

namespace {

using text::num;

// splitmix64: a fixed, portable stream for the tie-breaking perturbation.
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform_pm1() { return double(next() >> 11) * (2.0 / 9007199254740992.0) - 1.0; }
};

}  // namespace

ApResult affinity_propagation(const std::vector<double>& S_in, int n, double preference,
                              double damping, int max_iter, int conv_iter) {
  if (n < 1) throw Error("affinity_propagation: need n >= 1 points, got " + std::to_string(n));
  const std::size_t N = static_cast<std::size_t>(n);
  if (S_in.size() != N * N)
    throw Error("affinity_propagation: similarity matrix has " + std::to_string(S_in.size()) +
                " entries, expected n*n = " + std::to_string(N * N));
  if (!(damping >= 0.5 && damping < 1.0))
    throw Error("affinity_propagation: damping must be in [0.5, 1), got " + num(damping));
  if (max_iter < 1)
    throw Error("affinity_propagation: max_iter must be >= 1, got " + std::to_string(max_iter));
  if (conv_iter < 1)
    throw Error("affinity_propagation: conv_iter must be >= 1, got " + std::to_string(conv_iter));
  if (!std::isfinite(preference))
    throw Error("affinity_propagation: preference is not finite: " + num(preference));

  // s(i,k) with the preference on the diagonal
  std::vector<double> S(S_in);
  bool all_equal = true;
  double scale = std::fabs(preference);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t k = 0; k < N; ++k) {
      if (i == k) {
        S[i * N + k] = preference;
        continue;
      }
      const double s = S[i * N + k];
      if (!std::isfinite(s))
        throw Error("affinity_propagation: similarity s(" + std::to_string(i) + "," +
                    std::to_string(k) + ") is not finite");
      scale = std::max(scale, std::fabs(s));
      if (s != S[N > 1 ? 1 : 0]) all_equal = false;
    }

  ApResult res;
  // Degenerate cases (no structure to pass messages about), as scikit-learn.
  if (N == 1 || all_equal) {
    res.converged = true;
    if (N > 1 && preference > S[1]) {
      for (int i = 0; i < n; ++i) {
        res.labels.push_back(i);
        res.exemplars.push_back(i);
      }
    } else {
      res.labels.assign(N, 0);
      res.exemplars = {0};
    }
    return res;
  }

  // Tiny fixed perturbation so exact ties (e.g. identical rows) cannot keep the
  // messages symmetric forever.
  SplitMix64 rng{0x5EEDull};
  for (double& s : S) s += 1e-12 * scale * rng.uniform_pm1();

  std::vector<double> R(N * N, 0.0), A(N * N, 0.0);
  std::vector<char> E(N, 0), E_prev(N, 0);
  int same_run = 0;  // consecutive iterations with this exemplar set
  const double d = damping, u = 1.0 - damping;

  int it = 0;
  for (; it < max_iter; ++it) {
    // responsibilities r(i,k) = s(i,k) - max_{k' != k} [a(i,k') + s(i,k')]
    for (std::size_t i = 0; i < N; ++i) {
      const double* a = &A[i * N];
      const double* s = &S[i * N];
      double y1 = -std::numeric_limits<double>::infinity(), y2 = y1;
      std::size_t k1 = 0;
      for (std::size_t k = 0; k < N; ++k) {
        const double v = a[k] + s[k];
        if (v > y1) {
          y2 = y1;
          y1 = v;
          k1 = k;
        } else if (v > y2) {
          y2 = v;
        }
      }
      double* r = &R[i * N];
      for (std::size_t k = 0; k < N; ++k) r[k] = d * r[k] + u * (s[k] - (k == k1 ? y2 : y1));
    }
    // availabilities a(i,k) = min(0, r(k,k) + sum_{i' not in {i,k}} max(0, r(i',k))),
    //                a(k,k) = sum_{i' != k} max(0, r(i',k))
    for (std::size_t k = 0; k < N; ++k) {
      double col = R[k * N + k];
      for (std::size_t i = 0; i < N; ++i)
        if (i != k) col += std::max(0.0, R[i * N + k]);
      for (std::size_t i = 0; i < N; ++i) {
        const double upd = i == k ? col - R[k * N + k]
                                  : std::min(0.0, col - std::max(0.0, R[i * N + k]));
        A[i * N + k] = d * A[i * N + k] + u * upd;
      }
    }
    // exemplars: a(k,k) + r(k,k) > 0
    std::size_t K = 0;
    for (std::size_t k = 0; k < N; ++k) {
      E[k] = A[k * N + k] + R[k * N + k] > 0.0;
      K += std::size_t(E[k]);
    }
    same_run = (it > 0 && E == E_prev) ? same_run + 1 : 1;
    E_prev = E;
    if (it >= conv_iter && same_run >= conv_iter && K > 0) {
      res.converged = true;
      ++it;
      break;
    }
  }
  res.iterations = std::min(it, max_iter);

  std::vector<std::size_t> I;
  for (std::size_t k = 0; k < N; ++k)
    if (E[k]) I.push_back(k);
  if (I.empty()) {  // no exemplar: every point alone (nothing gets tied)
    res.converged = false;
    for (int i = 0; i < n; ++i) {
      res.labels.push_back(i);
      res.exemplars.push_back(i);
    }
    return res;
  }

  // c(i) = argmax_k s(i, I_k), exemplars labelled by themselves
  auto assign = [&](std::vector<std::size_t>& c) {
    c.assign(N, 0);
    for (std::size_t i = 0; i < N; ++i) {
      double best = -std::numeric_limits<double>::infinity();
      for (std::size_t k = 0; k < I.size(); ++k)
        if (S[i * N + I[k]] > best) {
          best = S[i * N + I[k]];
          c[i] = k;
        }
    }
    for (std::size_t k = 0; k < I.size(); ++k) c[I[k]] = k;
  };
  std::vector<std::size_t> c;
  assign(c);
  // refine: the exemplar of cluster k is the member j maximising sum_{i in k} s(i,j)
  for (std::size_t k = 0; k < I.size(); ++k) {
    double best = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < N; ++j) {
      if (c[j] != k) continue;
      double sum = 0.0;
      for (std::size_t i = 0; i < N; ++i)
        if (c[i] == k) sum += S[i * N + j];
      if (sum > best) {
        best = sum;
        I[k] = j;
      }
    }
  }
  assign(c);

  // labels as indices into the sorted, unique exemplar list
  std::vector<int> ex(N);
  for (std::size_t i = 0; i < N; ++i) ex[i] = static_cast<int>(I[c[i]]);
  res.exemplars = ex;
  std::sort(res.exemplars.begin(), res.exemplars.end());
  res.exemplars.erase(std::unique(res.exemplars.begin(), res.exemplars.end()), res.exemplars.end());
  res.labels.resize(N);
  for (std::size_t i = 0; i < N; ++i)
    res.labels[i] = static_cast<int>(
        std::lower_bound(res.exemplars.begin(), res.exemplars.end(), ex[i]) - res.exemplars.begin());
  return res;
}

std::vector<double> row_similarity(const float* W, int rows, int cols) {
  if (rows < 1 || cols < 1)
    throw Error("row_similarity: bad shape " + std::to_string(rows) + " x " + std::to_string(cols));
  const std::size_t R = static_cast<std::size_t>(rows), C = static_cast<std::size_t>(cols);
  std::vector<double> sq(R, 0.0);  // ||w_i||^2
  for (std::size_t i = 0; i < R; ++i)
    for (std::size_t j = 0; j < C; ++j) sq[i] += double(W[i * C + j]) * double(W[i * C + j]);
  std::vector<double> S(R * R, 0.0);
  for (std::size_t i = 0; i < R; ++i)
    for (std::size_t k = i; k < R; ++k) {
      const double denom = std::max(sq[i], sq[k]);
      double s = 0.0;
      if (denom > 0.0) {
        double dot = 0.0;
        for (std::size_t j = 0; j < C; ++j) dot += double(W[i * C + j]) * double(W[k * C + j]);
        s = dot / denom;  // <w_i, w_k> / max(||w_i||^2, ||w_k||^2)
      }
      S[i * R + k] = S[k * R + i] = s;
    }
  return S;
}

void tie_rows_to_cluster_means(float* W, int rows, int cols, const std::vector<int>& labels) {
  if (rows < 1 || cols < 1)
    throw Error("tie_rows_to_cluster_means: bad shape " + std::to_string(rows) + " x " +
                std::to_string(cols));
  if (labels.size() != static_cast<std::size_t>(rows))
    throw Error("tie_rows_to_cluster_means: " + std::to_string(rows) + " rows but " +
                std::to_string(labels.size()) + " labels");
  int num_clusters = 0;
  for (int l : labels) {
    if (l < -1) throw Error("tie_rows_to_cluster_means: bad label " + std::to_string(l));
    num_clusters = std::max(num_clusters, l + 1);
  }
  const std::size_t C = static_cast<std::size_t>(cols);
  std::vector<double> mean(std::size_t(num_clusters) * C, 0.0);
  std::vector<int> count(static_cast<std::size_t>(num_clusters), 0);
  for (int i = 0; i < rows; ++i) {
    if (labels[i] < 0) continue;
    ++count[labels[i]];
    for (std::size_t j = 0; j < C; ++j) mean[labels[i] * C + j] += W[i * C + j];
  }
  for (int i = 0; i < rows; ++i) {
    if (labels[i] < 0) continue;
    const double inv = 1.0 / count[labels[i]];
    for (std::size_t j = 0; j < C; ++j) W[i * C + j] = float(mean[labels[i] * C + j] * inv);
  }
}

}  // namespace mt
