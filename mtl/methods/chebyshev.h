// The modified weighted Chebyshev scalarisation and its augmented Lagrangian, as in
// Hotegni, Berkemeier, Peitz, "Multi-Objective Optimization for Sparse Deep
// Multi-Task Learning" (IJCNN 2024; reference code github.com/salomonhotegni/MDMTN,
// src/utils/WCsAL_utils.py and WCsAL_Train.py). Plain functions of the objective values
// f = (f_0 = sparsity, f_1..f_K = task losses); an autograd version builds on them.
//
//   weighted Chebyshev:  min_x max_i k_i [ (f_i - a_i) + eps sum_j (f_j - a_j) ]
//   epigraph form:       min_{x,t} t  s.t.  c_i(x, t) <= 0,
//                        c_i = k_i (f_i - a_i) + k_i eps sum_j (f_j - a_j) - t
//   k = preference vector (k_i >= 0, not all 0), a = reference point, eps = augmentation.
#pragma once
#include <string>
#include <vector>

namespace mt {

struct ChebyshevConfig {
  std::vector<double> k;  // preference, one per objective
  std::vector<double> a;  // reference point; empty = zeros
  double eps = 1e-4;      // augmentation coefficient epsilon

  // Throws mt::Error (one line) for: k of the wrong length, a negative or non-finite
  // entry ("preference k has a negative entry k_1 = -0.2", 0-based index), k all
  // zeros, a of the wrong length (if not empty), eps < 0 or non-finite.
  void validate(int num_objectives) const;
};

enum class AlVariant {
  // as the reference code: L = t + sum_i lambda_i c_i + (mu/2) sum_i c_i^2;
  // after an outer iteration lambda <- lambda + mu c (no clipping), mu <- rho mu.
  Published,
  // textbook augmented Lagrangian for inequality constraints c_i <= 0 (Nocedal &
  // Wright, Numerical Optimization, 2nd ed., Sec. 17.4; Bertsekas, Constrained
  // Optimization and Lagrange Multiplier Methods, 1982, Sec. 3.1):
  // L = t + 1/(2 mu) sum_i ( max(0, lambda_i + mu c_i)^2 - lambda_i^2 );
  // lambda <- max(0, lambda + mu c), mu <- rho mu.
  Standard,
};

// "published" / "standard" -> AlVariant; anything else -> mt::Error naming it.
AlVariant parse_al_variant(const std::string& name);
const char* al_variant_name(AlVariant v);

struct AlState {
  std::vector<double> lambda;  // Lagrange multipliers, one per constraint
  double mu = 1.0;             // penalty parameter
  double rho = 2.0;            // growth factor of mu per outer iteration

  // Throws mt::Error for lambda of the wrong length or non-finite, mu <= 0
  // ("mu must be > 0, got ..."), rho < 1 ("rho must be >= 1, got ...").
  void validate(int num_objectives) const;
};

// The reference code's start: lambda_i = 1 / (K + 1) for every objective.
AlState make_al_state(int num_objectives, double mu, double rho);

// c_i = k_i (f_i - a_i) + k_i eps sum_j (f_j - a_j) - t
std::vector<double> chebyshev_constraints(const ChebyshevConfig& cfg, const std::vector<double>& f,
                                          double t);

// The augmented Lagrangian L(f, t) of the chosen variant.
double al_objective(AlVariant variant, const ChebyshevConfig& cfg, const AlState& state,
                    const std::vector<double>& f, double t);

// Analytic dL/df_j and dL/dt. With g_i = dL/dc_i (published: lambda_i + mu c_i,
// standard: max(0, lambda_i + mu c_i)):
//   dL/df_j = k_j g_j + eps sum_i k_i g_i,   dL/dt = 1 - sum_i g_i.
void al_gradient(AlVariant variant, const ChebyshevConfig& cfg, const AlState& state,
                 const std::vector<double>& f, double t, std::vector<double>& dL_df, double& dL_dt);

// Outer-iteration update from the constraint values c (the caller's choice; see
// mtl/train/sparse_trainer.cpp): lambda and then mu <- rho mu.
void al_update(AlVariant variant, AlState& state, const std::vector<double>& c);

// max_i k_i [ (f_i - a_i) + eps sum_j (f_j - a_j) ]
double weighted_chebyshev_value(const ChebyshevConfig& cfg, const std::vector<double>& f);

// "0.01,0.8,0.19" -> {0.01, 0.8, 0.19} (commas; spaces around numbers allowed).
// A token that is not a finite number -> mt::Error naming it.
std::vector<double> parse_prefs(const std::string& text);

// One preference vector per line, numbers separated by commas and/or whitespace,
// '#' starts a comment, blank lines skipped. Errors name the file and line: a bad
// number, a line with a different count than the first, no vectors, unreadable file.
std::vector<std::vector<double>> parse_pref_file(const std::string& path);

// All k on the simplex grid {k_i = n_i / steps, n_i >= 0 integers, sum n_i = steps},
// C(steps + m - 1, m - 1) vectors in lexicographic order of (n_0, n_1, ...).
// Throws mt::Error for num_objectives < 1 or steps < 1.
std::vector<std::vector<double>> pref_grid(int num_objectives, int steps);

}  // namespace mt
