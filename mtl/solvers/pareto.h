// Pareto tools for multi-objective results (all objectives minimised).
#pragma once
#include <string>
#include <vector>

namespace mt {

// flags[i] = no other point dominates points[i]. q dominates p when q_j <= p_j for
// all j and q_j < p_j for some j; equal points do not dominate each other, so
// duplicates of a non-dominated point are all kept. Throws mt::Error when the
// points have different dimensions or contain a NaN.
std::vector<bool> non_dominated(const std::vector<std::vector<double>>& points);

// Hypervolume (Lebesgue measure) of the region dominated by the points and bounded
// by the reference point: vol( union_p [p_1, r_1] x ... x [p_d, r_d] ). Exact for
// d = 2 (sweep, O(n log n)) and d = 3 (slices along the third objective, each a 2-D
// sweep, O(n^2 log n)). Points with p_j >= r_j for some j add nothing and are
// ignored; the empty set gives 0. Other d -> mt::Error("hypervolume: exact only in
// 2 or 3 dimensions, got d"); a point of the wrong dimension -> mt::Error.
double hypervolume(const std::vector<std::vector<double>>& points,
                   const std::vector<double>& reference);

}  // namespace mt
