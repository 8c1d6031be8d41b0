// Pareto tools (see pareto.h).
#include "mtl/solvers/pareto.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

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

std::string fmt(double x, const char* f = "%.2f") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, x);
  return buf;
}

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += ch;
    }
  }
  return out;
}

// data range [lo, hi] padded by 5%, never empty
void axis_range(double lo, double hi, double& a, double& b) {
  double span = hi - lo;
  if (!(span > 0.0)) span = std::max(std::fabs(lo), 1.0) * 0.1;
  a = lo - 0.05 * span;
  b = hi + 0.05 * span;
}

// blue (t = 0) -> red (t = 1)
std::string colour(double t) {
  t = std::min(1.0, std::max(0.0, t));
  const int r = int(std::lround(44 + t * (215 - 44)));
  const int g = int(std::lround(123 + t * (25 - 123)));
  const int b = int(std::lround(182 + t * (28 - 182)));
  char buf[16];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", r, g, b);
  return buf;
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

void write_front_svg(const std::string& path, const std::vector<std::vector<double>>& points,
                     const std::vector<bool>& flags, const std::vector<std::string>& axis_labels,
                     const std::string& title) {
  if (flags.size() != points.size())
    throw Error("write_front_svg: " + std::to_string(points.size()) + " points but " +
                std::to_string(flags.size()) + " flags");
  const std::size_t d = points.empty() ? 2 : points[0].size();
  if (d != 2 && d != 3)
    throw Error("write_front_svg: can plot 2 or 3 objectives, got " + std::to_string(d));
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (points[i].size() != d)
      throw Error("write_front_svg: point " + std::to_string(i) + " has " +
                  std::to_string(points[i].size()) + " objectives, expected " + std::to_string(d));
    for (double x : points[i])
      if (!std::isfinite(x))
        throw Error("write_front_svg: point " + std::to_string(i) + " is not finite");
  }
  auto label = [&](std::size_t j) {
    return j < axis_labels.size() ? axis_labels[j] : "f" + std::to_string(j + 1);
  };

  // data ranges
  std::vector<double> lo(d, 0.0), hi(d, 1.0);
  if (!points.empty()) {
    lo = hi = points[0];
    for (const auto& p : points)
      for (std::size_t j = 0; j < d; ++j) {
        lo[j] = std::min(lo[j], p[j]);
        hi[j] = std::max(hi[j], p[j]);
      }
  }
  double x0, x1, y0, y1;
  axis_range(lo[0], hi[0], x0, x1);
  axis_range(lo[1], hi[1], y0, y1);

  // plot area in pixels
  const double W = 640, H = 480, left = 80, right = d == 3 ? 110 : 30, top = 50, bottom = 60;
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - (y - y0) / (y1 - y0) * ph; };

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" viewBox=\"0 0 " << W << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"white\"/>\n";
  s << "<text x=\"" << W / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"16\">"
    << xml_escape(title) << "</text>\n";
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"black\"/>\n";
  // ticks and labels: 5 intervals per axis
  for (int t = 0; t <= 5; ++t) {
    const double xv = x0 + (x1 - x0) * t / 5.0, yv = y0 + (y1 - y0) * t / 5.0;
    s << "<line x1=\"" << fmt(px(xv)) << "\" y1=\"" << top + ph << "\" x2=\"" << fmt(px(xv))
      << "\" y2=\"" << top + ph + 5 << "\" stroke=\"black\"/>\n";
    s << "<text x=\"" << fmt(px(xv)) << "\" y=\"" << top + ph + 18
      << "\" text-anchor=\"middle\">" << fmt(xv, "%.3g") << "</text>\n";
    s << "<line x1=\"" << left - 5 << "\" y1=\"" << fmt(py(yv)) << "\" x2=\"" << left
      << "\" y2=\"" << fmt(py(yv)) << "\" stroke=\"black\"/>\n";
    s << "<text x=\"" << left - 8 << "\" y=\"" << fmt(py(yv) + 4)
      << "\" text-anchor=\"end\">" << fmt(yv, "%.3g") << "</text>\n";
  }
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 15 << "\" text-anchor=\"middle\">"
    << xml_escape(label(0)) << "</text>\n";
  s << "<text x=\"20\" y=\"" << top + ph / 2 << "\" text-anchor=\"middle\" transform=\"rotate(-90 20 "
    << top + ph / 2 << ")\">" << xml_escape(label(1)) << "</text>\n";

  // 2-D: step line through the non-dominated points (sorted by objective 1)
  if (d == 2) {
    std::vector<std::pair<double, double>> front;
    for (std::size_t i = 0; i < points.size(); ++i)
      if (flags[i]) front.emplace_back(points[i][0], points[i][1]);
    std::sort(front.begin(), front.end());
    if (front.size() >= 2) {
      s << "<path fill=\"none\" stroke=\"#d7191c\" stroke-width=\"1.5\" d=\"M "
        << fmt(px(front[0].first)) << ' ' << fmt(py(front[0].second));
      for (std::size_t i = 1; i < front.size(); ++i)
        s << " H " << fmt(px(front[i].first)) << " V " << fmt(py(front[i].second));
      s << "\"/>\n";
    }
  }
  // 3-D: colour bar for objective 3
  double z0 = 0.0, z1 = 1.0;
  if (d == 3) {
    z0 = lo[2];
    z1 = hi[2] > lo[2] ? hi[2] : lo[2] + 1.0;
    const double bx = left + pw + 30, bw = 16;
    s << "<defs><linearGradient id=\"zbar\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">"
      << "<stop offset=\"0\" stop-color=\"" << colour(0) << "\"/>"
      << "<stop offset=\"1\" stop-color=\"" << colour(1) << "\"/></linearGradient></defs>\n";
    s << "<rect x=\"" << bx << "\" y=\"" << top << "\" width=\"" << bw << "\" height=\"" << ph
      << "\" fill=\"url(#zbar)\" stroke=\"black\"/>\n";
    s << "<text x=\"" << bx + bw + 4 << "\" y=\"" << top + 10 << "\">" << fmt(z1, "%.3g")
      << "</text>\n";
    s << "<text x=\"" << bx + bw + 4 << "\" y=\"" << top + ph << "\">" << fmt(z0, "%.3g")
      << "</text>\n";
    s << "<text x=\"" << bx + bw / 2 << "\" y=\"" << top - 8 << "\" text-anchor=\"middle\">"
      << xml_escape(label(2)) << "</text>\n";
  }
  // points: dominated first, non-dominated on top
  for (int pass = 0; pass < 2; ++pass)
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (flags[i] != (pass == 1)) continue;
      const std::string fill =
          d == 3 ? colour((points[i][2] - z0) / (z1 - z0)) : (flags[i] ? "#d7191c" : "#9e9e9e");
      s << "<circle cx=\"" << fmt(px(points[i][0])) << "\" cy=\"" << fmt(py(points[i][1]))
        << "\" r=\"" << (flags[i] ? 5 : 3) << "\" fill=\"" << fill << "\""
        << (flags[i] ? " stroke=\"black\" stroke-width=\"1.5\"" : " fill-opacity=\"0.7\"")
        << "/>\n";
    }
  s << "</svg>\n";

  // atomic write: temporary file next to the target, then rename
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("write_front_svg: cannot write " + tmp);
    out << s.str();
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      throw Error("write_front_svg: error writing " + tmp);
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw Error("write_front_svg: cannot rename " + tmp + " to " + path);
  }
}

}  // namespace mt
