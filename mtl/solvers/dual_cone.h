// Projection onto the dual cone of the task gradients, in Gram form
// (Quinton & Rey 2024, "Jacobian Descent for Multi-Objective Optimization",
// Proposition 1). With g_1..g_K the rows of G and M = G G^T their Gram matrix,
// the projection of G^T u onto the dual cone { v : <g_j, v> >= 0 for all j } is
// G^T w with
//   w = argmin_{w >= u} w^T M w      (componentwise w_j >= u_j).
// Written as lambda = w - u >= 0 this is a convex quadratic programme with
// non-negativity constraints only, solved exactly by the active-set method of
// Lawson & Hanson (1974) in the normal-equation form of Bro & De Jong (1997).
// Its KKT conditions are what UPGrad relies on:
//   w >= u,  (M w)_j >= 0 (no conflict with any g_j),  (w_j - u_j) (M w)_j = 0.
#pragma once
#include <vector>

namespace mt {

struct DualConeResult {
  std::vector<double> w;  // K weights, w >= u
  int iterations = 0;     // active-set changes
};

// M: K x K row-major, symmetric positive definite (the caller regularises a
// semi-definite Gram matrix); u: K weights. Throws mt::Error for bad sizes, a
// non-finite entry or an M the method finds singular.
DualConeResult project_dual_cone(const std::vector<double>& M, int K, const std::vector<double>& u);

}  // namespace mt
