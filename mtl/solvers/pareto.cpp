// Pareto tools (see pareto.h).
#include "mtl/solvers/pareto.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"

namespace mt {

namespace {

// q dominates p (minimisation): q <= p everywhere and q < p somewhere
bool dominates(const std::vector<double>& q, const std::vector<double>& p) {
  bool strictly = false;
  for (std::size_t j = 0; j < p.size(); ++j) {
    if (q[j] > p[j]) return false;
    if (q[j] < p[j]) strictly = true;
  }
  return strictly;
}

// Area dominated by 2-D points (all strictly inside the reference box) up to (rx, ry):
// sweep in x, each point adds the strip between its y and the lowest y so far.
double area_2d(std::vector<std::pair<double, double>> pts, double rx, double ry) {
  std::sort(pts.begin(), pts.end());
  double area = 0.0, y_low = ry;
  for (const auto& p : pts)
    if (p.second < y_low) {
      area += (rx - p.first) * (y_low - p.second);
      y_low = p.second;
    }
  return area;
}

}  // namespace

std::vector<bool> non_dominated(const std::vector<std::vector<double>>& points) {
  const std::size_t n = points.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (points[i].size() != points[0].size())
      throw Error("non_dominated: point " + std::to_string(i) + " has " +
                  std::to_string(points[i].size()) + " objectives, point 0 has " +
                  std::to_string(points[0].size()));
    for (double x : points[i])
      if (std::isnan(x)) throw Error("non_dominated: point " + std::to_string(i) + " has a NaN");
  }
  std::vector<bool> flags(n, true);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n && flags[i]; ++j)
      if (j != i && dominates(points[j], points[i])) flags[i] = false;
  return flags;
}

double hypervolume(const std::vector<std::vector<double>>& points,
                   const std::vector<double>& reference) {
  const std::size_t d = reference.size();
  if (d != 2 && d != 3)
    throw Error("hypervolume: exact only in 2 or 3 dimensions, got " + std::to_string(d));
  for (double r : reference)
    if (!std::isfinite(r)) throw Error("hypervolume: reference point is not finite");
  // keep the points strictly inside the reference box
  std::vector<std::vector<double>> in;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != d)
      throw Error("hypervolume: point " + std::to_string(i) + " has " +
                  std::to_string(points[i].size()) + " objectives, reference has " +
                  std::to_string(d));
    bool inside = true;
    for (std::size_t j = 0; j < d; ++j) {
      if (std::isnan(points[i][j])) throw Error("hypervolume: point " + std::to_string(i) + " has a NaN");
      if (!(points[i][j] < reference[j])) inside = false;
    }
    if (inside) in.push_back(points[i]);
  }
  if (in.empty()) return 0.0;
  if (d == 2) {
    std::vector<std::pair<double, double>> p2;
    for (const auto& p : in) p2.emplace_back(p[0], p[1]);
    return area_2d(std::move(p2), reference[0], reference[1]);
  }
  // d == 3: sort by the third objective; between consecutive values z_i <= z < z_{i+1}
  // the cross-section is the 2-D region of the points with z_j <= z_i.
  std::sort(in.begin(), in.end(),
            [](const std::vector<double>& a, const std::vector<double>& b) { return a[2] < b[2]; });
  double volume = 0.0;
  std::vector<std::pair<double, double>> active;
  for (std::size_t i = 0; i < in.size(); ++i) {
    active.emplace_back(in[i][0], in[i][1]);
    const double z_next = i + 1 < in.size() ? in[i + 1][2] : reference[2];
    const double thickness = z_next - in[i][2];
    if (thickness > 0.0) volume += area_2d(active, reference[0], reference[1]) * thickness;
  }
  return volume;
}

}  // namespace mt
