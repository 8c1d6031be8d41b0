// Min-norm solver of MGDA / MGDA-UB (Sener & Koltun, NeurIPS 2018, "Multi-Task
// Learning as Multi-Objective Optimization").
//
// Given task gradients g_1..g_K, find alpha on the simplex
//   Delta = { alpha : alpha_t >= 0, sum_t alpha_t = 1 }
// minimising || sum_t alpha_t g_t ||^2 = alpha^T M alpha, where M_ij = <g_i, g_j>
// is the Gram matrix. Everything below works on M (in double); the gradients
// themselves are only touched by gram_matrix().
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace mt {

// How each task gradient g_t is normalised before the Gram matrix is formed
// (the reference code's "normalization_type"): "none", "l2", "loss", "loss+".
enum class GradNormalization { None, L2, Loss, LossPlus };

// Parses "none" | "l2" | "loss" | "loss+"; anything else throws mt::Error naming
// the bad value and the allowed ones.
GradNormalization parse_grad_normalization(const std::string& s);

// Scale factor per task; the reference code uses g_t / scale_t:
//   none -> 1,  l2 -> ||g_t||,  loss -> L_t,  loss+ -> L_t * ||g_t||.
// losses (L_t) and grad_norms (||g_t||) must both have K entries, finite and
// >= 0, otherwise mt::Error. A scale can be 0 (zero gradient or zero loss); the
// value is returned as is and the caller must not divide by it (for l2 / loss+
// with ||g_t|| = 0 the normalised gradient is simply the zero vector).
std::vector<double> normalization_scales(GradNormalization n,
                                         const std::vector<double>& losses,
                                         const std::vector<double>& grad_norms);

// Solver for K >= 3 (K = 1 and K = 2 are solved exactly whatever is chosen).
// All three start from the best pair (closed form over all pairs).
enum class MinNormAlgo {
  Wolfe,              // Wolfe's minimum-norm-point algorithm (active set, exact on a face,
                      // finite); stops on the duality gap: the default
  FrankWolfe,         // the paper's Algorithm 2 (as the reference code); O(1/k), it can zig-zag
                      // for thousands of iterations when the optimal support is a strict face
  ProjectedGradient,  // spectral projected gradient on Delta with exact line search; often
                      // accurate, but its stopping test (below) is not an optimality test
};

// The solver names of the command line, in MinNormAlgo order: "wolfe",
// "frank-wolfe", "projected-gradient".
const std::vector<std::string>& min_norm_algo_names();
// Parses one of min_norm_algo_names(); anything else throws mt::Error naming
// the bad value and the allowed ones.
MinNormAlgo parse_min_norm_algo(const std::string& name);
const std::string& min_norm_algo_name(MinNormAlgo algo);

struct MinNormOptions {
  MinNormAlgo algo = MinNormAlgo::Wolfe;
  int max_iter = 250;     // hard cap on iterations (reference MAX_ITER); must be >= 0
  double tol = 1e-5;      // frank-wolfe, projected-gradient: stop when sum_t |alpha_t(new) -
                          // alpha_t(old)| < tol (reference STOP_CRIT; not an optimality test)
  double gap_tol = 1e-10; // wolfe: the relative duality gap it stops at (MinNormResult::converged)
};

struct MinNormResult {
  std::vector<double> alpha;  // alpha on the simplex, K entries, sums to 1 within 1e-12
  double norm_sq = 0;         // f(alpha) = alpha^T M alpha = || sum_t alpha_t g_t ||^2 (>= 0)
  int iterations = 0;         // iterations run (0 for the closed forms K <= 2), <= max_iter
  // wolfe: the duality gap test passed, f(alpha) - min_t (M alpha)_t <=
  // gap_tol f(alpha) + 4 K eps max_t M_tt (the absolute term is for a zero optimum,
  // 0 in the hull, where no relative test can pass); frank-wolfe and
  // projected-gradient: their step test passed before max_iter.
  bool converged = true;
  // The relative duality gap (f(alpha) - min_t (M alpha)_t) / f(alpha), for every
  // algorithm. It certifies alpha: f(alpha) - f* <= 2 gap f(alpha), f* the optimum
  // (convexity: f(b) >= f(a) + 2 (M a)^T (b - a) for all b on the simplex). It is 0
  // when f(alpha) - min_t (M alpha)_t is within the rounding error bound of its
  // own computation, 4 K eps max_t sum_s |M_ts| alpha_s. Near a zero optimum f is
  // itself rounding noise and the ratio can be large (+inf for f = 0): there
  // `converged` says whether alpha is optimal to working precision.
  double gap = 0;
};

// Gram matrix M_ij = <g_i, g_j> of K vectors of n floats each, row-major K x K.
// Sums in double in index order, so the result is deterministic and exactly
// symmetric.
std::vector<double> gram_matrix(const std::vector<const float*>& g, size_t n);

// Closed form for two tasks: alpha_1 = argmin_{c in [0,1]} ||c g_1 + (1-c) g_2||^2
// from v11 = <g1,g1>, v12 = <g1,g2>, v22 = <g2,g2>. Returns alpha = {alpha_1, 1 - alpha_1}.
MinNormResult min_norm_2(double v11, double v12, double v22);

// Min-norm element of the convex hull of the gradients given their Gram matrix
// M (row-major K x K; only its symmetric part matters). Throws mt::Error for
// K < 1, gram.size() != K*K, a non-finite entry or invalid options.
MinNormResult min_norm(const std::vector<double>& gram, int K, const MinNormOptions& opt = {});

}  // namespace mt
