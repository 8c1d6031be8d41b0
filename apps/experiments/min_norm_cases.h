// Hard min-norm problems and an independent long-double reference for them,
// shared by the solver's test (tests/test_min_norm.cpp) and the solver table
// (apps/experiments/solver_table.cpp).
//
// A case is the Gram matrix M = G G^T of K gradients (rows of G), computed in
// double and then taken as the exact problem: minimise f(alpha) = alpha^T M alpha
// over the simplex. The reference never calls mt::min_norm.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt {

// "random", "rank-deficient", "nearly-collinear", "dominating", "conflicting",
// "badly-scaled" (what each draws: min_norm_cases.cpp).
const std::vector<std::string>& min_norm_case_families();

struct MinNormCase {
  std::string family;
  int K = 0;
  std::vector<double> M;  // row-major K x K
};

// `per_family` cases of each family at this K (K >= 3), reproducible from seed.
std::vector<MinNormCase> hard_min_norm_cases(int K, int per_family, uint64_t seed);

// The optimum f* = min f on the simplex, in long double:
//   K <= kEnumerateMaxK: exact, by enumerating every support S and solving the
//     bordered system [M_SS 1; 1^T 0] [v; -lambda] = [0; 1] (the affine
//     minimiser of S) by Gaussian elimination with partial pivoting; f* is the
//     least f(v) over the supports whose v is >= 0 (the optimum is the affine
//     minimiser of its own minimal, affinely independent support);
//   larger K: pairwise Frank-Wolfe (Lacoste-Julien & Jaggi 2015; linear
//     convergence on a polytope) run until its duality gap is below 1e-15 f or
//     for 50,000 iterations.
// `lower` is a certified lower bound on f*: for any beta on the simplex,
//   f* >= 2 min_t (M beta)_t - f(beta)  (convexity of f),
// taken at the reference's own solution (for K <= kEnumerateMaxK, lower = upper).
struct MinNormReference {
  long double upper = 0;  // f at the reference's alpha
  long double lower = 0;  // <= f*
  bool exact = false;     // enumeration
  std::vector<double> alpha;
};
constexpr int kEnumerateMaxK = 10;
MinNormReference min_norm_reference(const std::vector<double>& M, int K);

// f(alpha) and the certified lower bound 2 min_t (M alpha)_t - f(alpha), in long double.
long double objective_ld(const std::vector<double>& M, const std::vector<double>& alpha);
long double lower_bound_ld(const std::vector<double>& M, const std::vector<double>& alpha);

}  // namespace mt
