// Affinity Propagation (Frey & Dueck, "Clustering by passing messages between data
// points", Science 2007) and the parameter-tying step of Hotegni, Berkemeier, Peitz
// (IJCNN 2024; reference code github.com/salomonhotegni/MDMTN, GrOWL_utils.py:
// similarity_info + force_sharing), which clusters the rows of each weight matrix
// after the GrOWL search phase and replaces every row by its cluster's mean.
#pragma once
#include <vector>

namespace mt {

struct ApResult {
  std::vector<int> labels;     // labels[i] in [0, exemplars.size()): cluster of point i
  std::vector<int> exemplars;  // exemplars[c] = index of the exemplar of cluster c, ascending
  int iterations = 0;          // message-passing iterations run
  bool converged = false;      // exemplar set stable for conv_iter iterations
};

// S: n x n row-major similarities (larger = more similar); the diagonal is ignored
// and replaced by `preference` (larger preference -> more clusters).
// Messages (Frey & Dueck), damped with factor `damping` (new = d * old + (1-d) * update):
//   r(i,k) = s(i,k) - max_{k' != k} [a(i,k') + s(i,k')]
//   a(i,k) = min(0, r(k,k) + sum_{i' not in {i,k}} max(0, r(i',k)))   (i != k)
//   a(k,k) = sum_{i' != k} max(0, r(i',k))
// Exemplars: points with a(k,k) + r(k,k) > 0. Stops when the exemplar set has been
// unchanged for conv_iter iterations (and is non-empty), or after max_iter.
// Then, as scikit-learn does, each cluster's exemplar is refined to the member with
// the largest summed similarity to the cluster, and points are reassigned.
// Deterministic: ties are broken with a fixed pseudo-random perturbation of S of
// relative size 1e-12 (seeded splitmix64; scikit-learn uses the same idea with
// machine-eps noise), so identical runs give identical results.
// Degenerate cases (as scikit-learn): n == 1, or all off-diagonal similarities equal:
// every point its own cluster if preference > that similarity, else one cluster.
// If no exemplar emerges, every point is its own cluster (no tying) and
// converged = false.
// Throws mt::Error for n < 1, S.size() != n*n, a non-finite similarity or
// preference, damping outside [0.5, 1), max_iter < 1 or conv_iter < 1.
ApResult affinity_propagation(const std::vector<double>& S, int n, double preference,
                              double damping = 0.5, int max_iter = 200, int conv_iter = 15);

// The method's similarity of the rows of a row-major rows x cols matrix:
//   s_ij = <w_i, w_j> / max(||w_i||^2, ||w_j||^2),
// in [-1, 1], 1 exactly for equal rows; 0 when both rows are zero (the reference
// code maps that 0/0 to 1.0; with 0 a pruned row is similar to nothing).
std::vector<double> row_similarity(const float* W, int rows, int cols);

// Parameter tying: every row with label c >= 0 is replaced by the mean of the rows
// labelled c (rows with label -1 are left alone). labels.size() must equal rows.
void tie_rows_to_cluster_means(float* W, int rows, int cols, const std::vector<int>& labels);

}  // namespace mt
