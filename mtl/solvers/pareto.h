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

// A plain SVG scatter plot of 2-D or 3-D points (one <circle> per point).
// 2-D: x = objective 1, y = objective 2. 3-D: x, y = objectives 1, 2, the fill
// colour encodes objective 3 (blue = low, red = high, with a colour bar).
// Non-dominated points (flags[i] true) are drawn larger with a black outline; in 2-D
// they are also joined by the step line of their attainment boundary.
// axis_labels: one per objective (fewer -> "f1", "f2", ... for the rest).
// Written atomically (a temporary file in the same directory, then rename).
// Throws mt::Error for flags.size() != points.size(), a dimension other than 2 or 3,
// a non-finite coordinate, or a file that cannot be written.
void write_front_svg(const std::string& path, const std::vector<std::vector<double>>& points,
                     const std::vector<bool>& flags, const std::vector<std::string>& axis_labels,
                     const std::string& title);

}  // namespace mt
