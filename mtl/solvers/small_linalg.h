// Dense linear algebra on the small K x K matrices the gradient-balancing
// methods work on (K = number of tasks, at most a few dozen). Everything is in
// double, row-major, serial and in a fixed order, so the same input gives the
// same bits on every machine and at any thread count.
#pragma once
#include <vector>

namespace mt {

// Solves A x = b (A n x n, row-major) by Gaussian elimination with partial
// pivoting. Returns false, leaving b unspecified, when a pivot is smaller than
// 1e-13 times the largest |A_ij| (A singular to working precision); on success
// b holds x.
bool lu_solve(std::vector<double> A, std::vector<double>& b, int n);

// Eigen-decomposition of a symmetric n x n matrix A (only its upper triangle
// is read) by cyclic Jacobi rotations: A = V diag(lambda) V^T, lambda in
// ascending order, V's columns the orthonormal eigenvectors (V row-major,
// V[i * n + k] = component i of eigenvector k). Accurate to a few ulps of
// max |lambda| (Demmel & Veselic 1992).
void sym_eig(const std::vector<double>& A, int n, std::vector<double>& lambda, std::vector<double>& V);

// Euclidean projection of u onto the simplex { w : w_i >= 0, sum_i w_i = 1 },
// the sort-based algorithm of Held, Wolfe & Crowder (1974) (see Duchi et al. 2008).
std::vector<double> project_to_simplex(const std::vector<double>& u);

}  // namespace mt
