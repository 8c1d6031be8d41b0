// SVG line and scatter plots (see svg_plot.h).
#include "apps/report/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "engine/error.h"

namespace mt::report {

namespace {

// Okabe-Ito without yellow (too faint on white), in the order the tasks take them.
const char* const kTask[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#999999"};
// Paul Tol's "muted" scheme.
const char* const kOther[] = {"#332288", "#88CCEE", "#44AA99", "#117733", "#999933",
                              "#DDCC77", "#CC6677", "#882255", "#AA4499"};
const char* const kDash[] = {"", "6,3", "2,2", "8,3,2,3"};

std::string f1(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

std::string g3(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

bool finite(double v) { return std::isfinite(v); }

// 1, 2, 5 x 10^k at or above x (round = false), or nearest (round = true).
double nice_number(double x, bool round) {
  const double e = std::floor(std::log10(x));
  const double f = x / std::pow(10.0, e);
  double n;
  if (round) n = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
  else n = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  return n * std::pow(10.0, e);
}

// A tick's text: as many decimals as the step needs, "%g" style for very large or small.
std::string tick_text(double v, double step) {
  if (std::fabs(v) < step * 1e-6) return "0";
  char b[32];
  const double a = std::max(std::fabs(v), step);
  if (a >= 1e5 || a < 1e-3) {
    std::snprintf(b, sizeof b, "%.3g", v);
  } else {
    const int dec = std::max(0, (int)std::ceil(-std::log10(step) - 1e-9));
    std::snprintf(b, sizeof b, "%.*f", dec, v);
  }
  return b;
}

// "1e-8", "0.01", "100", "2e+6" -> "2e6"
std::string log_tick_text(double v) {
  char b[32];
  const double e = std::floor(std::log10(v) + 1e-9);
  if (e >= -3 && e <= 4) std::snprintf(b, sizeof b, "%g", v);
  else std::snprintf(b, sizeof b, "%ge%d", std::round(v / std::pow(10.0, e)), (int)e);
  return b;
}

// Approximate width of text in pixels at a font size (sans-serif).
double text_width(const std::string& s, double size) {
  size_t chars = 0;
  for (unsigned char ch : s)
    if ((ch & 0xC0) != 0x80) chars++;  // UTF-8 lead bytes only
  return 0.6 * size * (double)chars;
}

// The legend entries, flowed into rows of at most `width` pixels: (row, x) per entry.
std::vector<std::pair<int, double>> flow(const std::vector<std::string>& labels, double width, int& rows) {
  std::vector<std::pair<int, double>> at;
  double x = 0;
  int row = 0;
  for (const auto& l : labels) {
    const double w = 34 + text_width(l, 12) + 18;
    if (x > 0 && x + w > width) {
      row++;
      x = 0;
    }
    at.emplace_back(row, x);
    x += w;
  }
  rows = labels.empty() ? 0 : row + 1;
  return at;
}

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  std::vector<double> ticks;
  double step = 1;  // linear ticks' step
};

Axis linear_axis(double lo, double hi, int n, bool pad) {
  if (!(hi - lo > 1e-12 * std::max(1.0, std::fabs(lo)))) {
    const double d = lo != 0 ? 0.1 * std::fabs(lo) : 1.0;
    lo -= d;
    hi += d;
  } else if (pad) {
    const double d = 0.05 * (hi - lo);
    lo -= d;
    hi += d;
  }
  Axis a;
  a.ticks = nice_ticks(lo, hi, n);
  a.step = a.ticks.size() > 1 ? a.ticks[1] - a.ticks[0] : 1;
  a.lo = a.ticks.front();
  a.hi = a.ticks.back();
  return a;
}

Axis log_axis(double lo, double hi) {
  Axis a;
  a.log = true;
  double e0 = std::floor(std::log10(lo) + 1e-9), e1 = std::ceil(std::log10(hi) - 1e-9);
  if (e1 <= e0) e1 = e0 + 1;
  a.lo = std::pow(10.0, e0);
  a.hi = std::pow(10.0, e1);
  a.ticks = log_ticks(a.lo, a.hi);
  return a;
}

// Maps data to pixels along one axis: [a.lo, a.hi] -> [p0, p1].
double to_px(const Axis& a, double v, double p0, double p1) {
  double t = a.log ? (std::log10(v) - std::log10(a.lo)) / (std::log10(a.hi) - std::log10(a.lo))
                   : (v - a.lo) / (a.hi - a.lo);
  t = std::min(1.02, std::max(-0.02, t));  // a value outside a fixed range is drawn at its edge
  return p0 + t * (p1 - p0);
}

std::string dash_attr(const std::string& dash) {
  return dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"";
}

// Frame, grid, ticks and axis labels of a plot area.
void draw_axes(std::ostringstream& s, const Axis& ax, const Axis& ay, double left, double top, double pw, double ph,
               const std::string& x_label, const std::string& y_label, double label_y, bool x_integer) {
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#333333\"/>\n";
  for (double v : ax.ticks) {
    if (x_integer && std::fabs(v - std::round(v)) > 1e-9) continue;
    const double x = to_px(ax, v, left, left + pw);
    s << "<line x1=\"" << f1(x) << "\" y1=\"" << top << "\" x2=\"" << f1(x) << "\" y2=\"" << top + ph
      << "\" stroke=\"#e0e0e0\"/>";
    s << "<line x1=\"" << f1(x) << "\" y1=\"" << top + ph << "\" x2=\"" << f1(x) << "\" y2=\"" << top + ph + 5
      << "\" stroke=\"#333333\"/>";
    s << "<text x=\"" << f1(x) << "\" y=\"" << top + ph + 18 << "\" text-anchor=\"middle\">"
      << (ax.log ? log_tick_text(v) : tick_text(v, ax.step)) << "</text>\n";
  }
  for (double v : ay.ticks) {
    const double y = to_px(ay, v, top + ph, top);
    s << "<line x1=\"" << left << "\" y1=\"" << f1(y) << "\" x2=\"" << left + pw << "\" y2=\"" << f1(y)
      << "\" stroke=\"#e0e0e0\"/>";
    s << "<line x1=\"" << left - 5 << "\" y1=\"" << f1(y) << "\" x2=\"" << left << "\" y2=\"" << f1(y)
      << "\" stroke=\"#333333\"/>";
    s << "<text x=\"" << left - 8 << "\" y=\"" << f1(y + 4) << "\" text-anchor=\"end\">"
      << (ay.log ? log_tick_text(v) : tick_text(v, ay.step)) << "</text>\n";
  }
  s << "<text x=\"" << f1(left + pw / 2) << "\" y=\"" << label_y << "\" text-anchor=\"middle\">"
    << xml_escape(x_label) << "</text>\n";
  const double cy = top + ph / 2;
  s << "<text x=\"16\" y=\"" << f1(cy) << "\" text-anchor=\"middle\" transform=\"rotate(-90 16 " << f1(cy) << ")\">"
    << xml_escape(y_label) << "</text>\n";
}

std::string svg_open(const std::string& cls, const std::string& id, double W, double H, const std::string& title) {
  std::ostringstream s;
  s << "<svg class=\"" << cls << "\" id=\"" << xml_escape(id) << "\" viewBox=\"0 0 " << W << ' ' << H
    << "\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n";
  s << "<title>" << xml_escape(title) << "</title>\n";
  s << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"white\"/>\n";
  s << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">"
    << xml_escape(title) << "</text>\n";
  return s.str();
}

// The body of a scatter plot (without the <svg> element), and its height.
std::string scatter_body(const ScatterPlot& p, double& H) {
  const double W = 460, left = 74, right = 20, top = 36, ph = 300;
  const double pw = W - left - right;
  std::vector<double> xs, ys;
  for (const auto& q : p.points)
    if (finite(q.x) && finite(q.y)) {
      xs.push_back(q.x);
      ys.push_back(q.y);
    }
  if (p.reference) {
    xs.push_back(p.reference->first);
    ys.push_back(p.reference->second);
  }
  const auto [xmin, xmax] = xs.empty() ? std::pair<double, double>{0, 1}
                                       : std::pair<double, double>{*std::min_element(xs.begin(), xs.end()),
                                                                   *std::max_element(xs.begin(), xs.end())};
  const auto [ymin, ymax] = ys.empty() ? std::pair<double, double>{0, 1}
                                       : std::pair<double, double>{*std::min_element(ys.begin(), ys.end()),
                                                                   *std::max_element(ys.begin(), ys.end())};
  const Axis ax = linear_axis(xmin, xmax, 5, true), ay = linear_axis(ymin, ymax, 6, true);
  const std::vector<std::string> legend = {"non-dominated", "dominated", "reference point"};
  H = top + ph + 52 + 22;
  std::ostringstream s;
  draw_axes(s, ax, ay, left, top, pw, ph, p.x_label, p.y_label, top + ph + 40, false);
  auto X = [&](double v) { return to_px(ax, v, left, left + pw); };
  auto Y = [&](double v) { return to_px(ay, v, top + ph, top); };
  if (p.staircase) {
    std::vector<std::pair<double, double>> front;
    for (const auto& q : p.points)
      if (q.highlight && finite(q.x) && finite(q.y)) front.emplace_back(q.x, q.y);
    std::sort(front.begin(), front.end());
    if (front.size() >= 2) {
      s << "<path class=\"staircase\" fill=\"none\" stroke=\"#0072B2\" stroke-width=\"1.5\" d=\"M "
        << f1(X(front[0].first)) << ' ' << f1(Y(front[0].second));
      for (size_t i = 1; i < front.size(); i++)
        s << " H " << f1(X(front[i].first)) << " V " << f1(Y(front[i].second));
      s << "\"/>\n";
    }
  }
  if (p.reference) {
    const double rx = X(p.reference->first), ry = Y(p.reference->second);
    s << "<g class=\"reference\" stroke=\"#D55E00\" stroke-width=\"2\"><title>reference point ("
      << g3(p.reference->first) << ", " << g3(p.reference->second) << ")</title><line x1=\"" << f1(rx - 6)
      << "\" y1=\"" << f1(ry - 6) << "\" x2=\"" << f1(rx + 6) << "\" y2=\"" << f1(ry + 6) << "\"/><line x1=\""
      << f1(rx - 6) << "\" y1=\"" << f1(ry + 6) << "\" x2=\"" << f1(rx + 6) << "\" y2=\"" << f1(ry - 6)
      << "\"/></g>\n";
  }
  for (int pass = 0; pass < 2; pass++)  // dominated first, non-dominated on top
    for (const auto& q : p.points) {
      if (q.highlight != (pass == 1) || !finite(q.x) || !finite(q.y)) continue;
      const double cx = X(q.x), cy = Y(q.y);
      if (!q.href.empty()) s << "<a href=\"" << xml_escape(q.href) << "\">";
      s << "<g class=\"" << (q.highlight ? "point nd" : "point dominated") << "\"><title>" << xml_escape(q.tooltip)
        << "</title>";
      if (q.highlight)
        s << "<circle cx=\"" << f1(cx) << "\" cy=\"" << f1(cy) << "\" r=\"6\" fill=\"#0072B2\" stroke=\"black\"/>";
      else
        s << "<circle cx=\"" << f1(cx) << "\" cy=\"" << f1(cy)
          << "\" r=\"4.5\" fill=\"white\" stroke=\"#777777\" stroke-width=\"1.5\"/>";
      if (!q.tag.empty())
        s << "<text x=\"" << f1(cx + 8) << "\" y=\"" << f1(cy - 6) << "\" font-size=\"11\" fill=\"#333333\">"
          << xml_escape(q.tag) << "</text>";
      s << "</g>";
      if (!q.href.empty()) s << "</a>";
      s << "\n";
    }
  // legend
  const double ly = top + ph + 64;
  s << "<g class=\"legend\">";
  s << "<circle cx=\"" << left + 6 << "\" cy=\"" << ly - 4 << "\" r=\"6\" fill=\"#0072B2\" stroke=\"black\"/>";
  s << "<text x=\"" << left + 16 << "\" y=\"" << ly << "\">" << legend[0] << "</text>";
  s << "<circle cx=\"" << left + 126 << "\" cy=\"" << ly - 4
    << "\" r=\"4.5\" fill=\"white\" stroke=\"#777777\" stroke-width=\"1.5\"/>";
  s << "<text x=\"" << left + 136 << "\" y=\"" << ly << "\">" << legend[1] << "</text>";
  if (p.reference) {
    const double rx = left + 226, ry = ly - 4;
    s << "<g stroke=\"#D55E00\" stroke-width=\"2\"><line x1=\"" << rx - 5 << "\" y1=\"" << ry - 5 << "\" x2=\""
      << rx + 5 << "\" y2=\"" << ry + 5 << "\"/><line x1=\"" << rx - 5 << "\" y1=\"" << ry + 5 << "\" x2=\"" << rx + 5
      << "\" y2=\"" << ry - 5 << "\"/></g>";
    s << "<text x=\"" << rx + 10 << "\" y=\"" << ly << "\">" << legend[2] << "</text>";
  }
  s << "</g>\n";
  return s.str();
}

}  // namespace

std::string xml_escape(const std::string& in) {
  std::string out;
  for (char ch : in) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string task_colour(int t) { return kTask[(size_t)t % 7]; }
std::string task_dash(int t) { return kDash[(size_t)(t / 7) % 4]; }
std::string other_colour(int i) { return kOther[(size_t)i % 9]; }
std::string other_dash(int i) { return kDash[(size_t)(i / 9) % 4]; }

std::vector<double> nice_ticks(double lo, double hi, int n) {
  if (!(hi > lo)) return {lo};
  const double step = nice_number(nice_number(hi - lo, false) / std::max(1, n - 1), true);
  const double t0 = std::floor(lo / step + 1e-9) * step, t1 = std::ceil(hi / step - 1e-9) * step;
  std::vector<double> t;
  for (int i = 0; t0 + i * step <= t1 + step * 1e-9; i++) {
    const double v = t0 + i * step;
    t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  }
  return t;
}

std::vector<double> log_ticks(double lo, double hi) {
  const int e0 = (int)std::floor(std::log10(lo) + 1e-9), e1 = (int)std::ceil(std::log10(hi) - 1e-9);
  std::vector<double> t;
  for (int e = e0; e <= e1; e++) {
    const double p = std::pow(10.0, e);
    t.push_back(p);
    if (e1 - e0 <= 2 && e < e1) {
      t.push_back(2 * p);
      t.push_back(5 * p);
    }
  }
  return t;
}

std::string line_plot_svg(const LinePlot& p) {
  const double W = 680, left = 78, right = 22, top = 44, ph = 230;
  const double pw = W - left - right;
  // data ranges
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  auto take_y = [&](double v) {
    if (!finite(v) || (p.log_y && v <= 0)) return;
    ymin = std::min(ymin, v);
    ymax = std::max(ymax, v);
  };
  for (const auto& s : p.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); i++) {
      if (!finite(s.x[i])) continue;
      xmin = std::min(xmin, s.x[i]);
      xmax = std::max(xmax, s.x[i]);
      take_y(s.y[i]);
      if (i < s.lo.size()) take_y(s.lo[i]);
      if (i < s.hi.size()) take_y(s.hi[i]);
    }
  if (!(xmin <= xmax)) xmin = 0, xmax = 1;
  if (!(ymin <= ymax)) ymin = p.log_y ? 0.1 : 0, ymax = 1;
  Axis ax;
  if (xmax - xmin < 1) {
    ax.lo = xmin - 0.5;
    ax.hi = xmax + 0.5;
    ax.ticks = {xmin};
  } else {
    ax.lo = xmin;
    ax.hi = xmax;
    ax.step = std::max(1.0, nice_number((xmax - xmin) / 8, true));
    for (double v = std::ceil(xmin / ax.step) * ax.step; v <= xmax + 1e-9; v += ax.step) ax.ticks.push_back(v);
    if (ax.ticks.empty() || ax.ticks.front() > xmin + ax.step / 2) ax.ticks.insert(ax.ticks.begin(), xmin);
  }
  Axis ay;
  if (p.y_range) {
    ay = linear_axis(p.y_range->first, p.y_range->second, 6, false);
  } else {
    ay = p.log_y ? log_axis(ymin, ymax) : linear_axis(ymin, ymax, 6, false);
  }
  // legend rows below the x label
  std::vector<std::string> labels;
  for (const auto& s : p.series) labels.push_back(s.label);
  int rows = 0;
  const auto at = flow(labels, W - left - 10, rows);
  const double legend_top = top + ph + 56;
  const double H = legend_top + rows * 18 + 6;

  std::ostringstream s;
  s << svg_open("plot", p.id, W, H, p.title);
  auto X = [&](double v) { return to_px(ax, v, left, left + pw); };
  auto Y = [&](double v) { return to_px(ay, v, top + ph, top); };
  for (const auto& sh : p.shades) {
    const double a = std::max(ax.lo, sh.x0), b = std::min(ax.hi, sh.x1);
    if (b <= a) continue;
    s << "<rect class=\"shade\" x=\"" << f1(X(a)) << "\" y=\"" << top << "\" width=\"" << f1(X(b) - X(a))
      << "\" height=\"" << ph << "\" fill=\"" << sh.fill << "\"/>";
  }
  draw_axes(s, ax, ay, left, top, pw, ph, p.x_label, p.y_label, top + ph + 36, true);
  for (const auto& sh : p.shades) {
    const double a = std::max(ax.lo, sh.x0), b = std::min(ax.hi, sh.x1);
    if (b <= a) continue;
    s << "<text class=\"phase\" x=\"" << f1((X(a) + X(b)) / 2) << "\" y=\"" << top - 6
      << "\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555555\">" << xml_escape(sh.label) << "</text>\n";
  }
  for (const auto& m : p.markers) {
    if (!(m.x >= ax.lo && m.x <= ax.hi)) continue;
    const double x = X(m.x);
    s << "<g class=\"marker\"><line x1=\"" << f1(x) << "\" y1=\"" << top << "\" x2=\"" << f1(x) << "\" y2=\""
      << top + ph << "\" stroke=\"" << m.colour << "\" stroke-width=\"1.5\"" << dash_attr(m.dash) << "/>";
    const bool right_side = x < left + pw * 0.8;
    s << "<text x=\"" << f1(right_side ? x + 4 : x - 4) << "\" y=\"" << top + 12 << "\" font-size=\"11\" fill=\""
      << m.colour << "\"" << (right_side ? "" : " text-anchor=\"end\"") << ">" << xml_escape(m.label)
      << "</text></g>\n";
  }
  auto valid = [&](double v) { return finite(v) && !(ay.log && v <= 0); };
  for (const auto& se : p.series) {
    const size_t n = std::min(se.x.size(), se.y.size());
    // band: one polygon per run of valid points
    if (se.lo.size() == n && se.hi.size() == n) {
      size_t i = 0;
      while (i < n) {
        while (i < n && !(valid(se.lo[i]) && valid(se.hi[i]) && finite(se.x[i]))) i++;
        size_t j = i;
        while (j < n && valid(se.lo[j]) && valid(se.hi[j]) && finite(se.x[j])) j++;
        if (j > i) {
          s << "<polygon class=\"band\" data-series=\"" << xml_escape(se.id) << "\" fill=\"" << se.colour
            << "\" fill-opacity=\"0.18\" stroke=\"none\" points=\"";
          for (size_t k = i; k < j; k++) s << f1(X(se.x[k])) << ',' << f1(Y(se.hi[k])) << ' ';
          for (size_t k = j; k-- > i;) s << f1(X(se.x[k])) << ',' << f1(Y(se.lo[k])) << ' ';
          s << "\"/>\n";
        }
        i = j;
      }
    }
    std::string d;
    bool pen = false;
    for (size_t i = 0; i < n; i++) {
      if (!valid(se.y[i]) || !finite(se.x[i])) {
        pen = false;
        continue;
      }
      d += (d.empty() ? "" : " ") + std::string(pen ? "L " : "M ") + f1(X(se.x[i])) + " " + f1(Y(se.y[i]));
      pen = true;
    }
    s << "<g class=\"series\" data-series=\"" << xml_escape(se.id) << "\"><title>" << xml_escape(se.label)
      << "</title>";
    if (!d.empty())
      s << "<path d=\"" << d << "\" fill=\"none\" stroke=\"" << se.colour << "\" stroke-width=\"2\""
        << dash_attr(se.dash) << "/>";
    if (se.markers && n <= 80)
      for (size_t i = 0; i < n; i++) {
        if (!valid(se.y[i]) || !finite(se.x[i])) continue;
        s << "<circle cx=\"" << f1(X(se.x[i])) << "\" cy=\"" << f1(Y(se.y[i])) << "\" r=\"2.6\" fill=\"" << se.colour
          << "\"><title>" << xml_escape(se.label) << ", epoch " << g3(se.x[i]) << ": " << g3(se.y[i]);
        if (i < se.lo.size() && i < se.hi.size() && finite(se.lo[i]) && finite(se.hi[i]))
          s << " (" << g3(se.lo[i]) << " .. " << g3(se.hi[i]) << ")";
        s << "</title></circle>";
      }
    s << "</g>\n";
  }
  // legend
  s << "<g class=\"legend\">";
  for (size_t i = 0; i < p.series.size(); i++) {
    const double x = left + at[i].second, y = legend_top + at[i].first * 18;
    const Series& se = p.series[i];
    if (se.lo.size() == se.y.size() && se.hi.size() == se.y.size() && !se.y.empty())
      s << "<rect x=\"" << f1(x) << "\" y=\"" << f1(y - 10) << "\" width=\"28\" height=\"12\" fill=\"" << se.colour
        << "\" fill-opacity=\"0.18\"/>";
    s << "<line x1=\"" << f1(x) << "\" y1=\"" << f1(y - 4) << "\" x2=\"" << f1(x + 28) << "\" y2=\"" << f1(y - 4)
      << "\" stroke=\"" << se.colour << "\" stroke-width=\"2.5\"" << dash_attr(se.dash) << "/>";
    s << "<text x=\"" << f1(x + 34) << "\" y=\"" << f1(y) << "\">" << xml_escape(se.label) << "</text>";
  }
  s << "</g>\n</svg>\n";
  return s.str();
}

std::string scatter_svg(const ScatterPlot& p) {
  double H = 0;
  const std::string body = scatter_body(p, H);
  return svg_open("scatter", p.id, 460, H, p.title) + body + "</svg>\n";
}

std::vector<ScatterPlot> front_pairs(const std::vector<std::vector<double>>& points, const std::vector<bool>& flags,
                                     const std::vector<std::string>& axis_labels,
                                     const std::vector<double>& reference, const std::vector<std::string>& hrefs,
                                     const std::vector<std::string>& tags, const std::vector<std::string>& tooltips) {
  const size_t n = points.size();
  if (flags.size() != n)
    throw Error("front plot: " + std::to_string(n) + " points but " + std::to_string(flags.size()) + " flags");
  for (const auto* v : {&hrefs, &tags, &tooltips})
    if (!v->empty() && v->size() != n)
      throw Error("front plot: " + std::to_string(n) + " points but " + std::to_string(v->size()) + " links or labels");
  const size_t d = n ? points[0].size() : (reference.empty() ? 2 : reference.size());
  if (d < 2) throw Error("front plot: needs 2 or more objectives, got " + std::to_string(d));
  if (!reference.empty() && reference.size() != d)
    throw Error("front plot: the reference point has " + std::to_string(reference.size()) + " values, expected " +
                std::to_string(d));
  for (size_t i = 0; i < n; i++) {
    if (points[i].size() != d)
      throw Error("front plot: point " + std::to_string(i) + " has " + std::to_string(points[i].size()) +
                  " objectives, expected " + std::to_string(d));
    for (double x : points[i])
      if (!finite(x)) throw Error("front plot: point " + std::to_string(i) + " is not finite");
  }
  auto label = [&](size_t j) { return j < axis_labels.size() ? axis_labels[j] : "f" + std::to_string(j + 1); };
  std::vector<ScatterPlot> plots;
  for (size_t a = 0; a < d; a++)
    for (size_t b = a + 1; b < d; b++) {
      ScatterPlot p;
      p.id = "front-" + std::to_string(a) + "-" + std::to_string(b);
      p.title = label(b) + " vs " + label(a);
      p.x_label = label(a);
      p.y_label = label(b);
      p.staircase = d == 2;
      if (!reference.empty()) p.reference = std::make_pair(reference[a], reference[b]);
      for (size_t i = 0; i < n; i++) {
        ScatterPoint q;
        q.x = points[i][a];
        q.y = points[i][b];
        q.highlight = flags[i];
        if (!hrefs.empty()) q.href = hrefs[i];
        if (!tags.empty()) q.tag = tags[i];
        q.tooltip = !tooltips.empty() ? tooltips[i]
                                      : "(" + g3(q.x) + ", " + g3(q.y) + ")" + (flags[i] ? " non-dominated" : "");
        p.points.push_back(q);
      }
      plots.push_back(std::move(p));
    }
  return plots;
}

std::string front_svg(const std::vector<std::vector<double>>& points, const std::vector<bool>& flags,
                      const std::vector<std::string>& axis_labels, const std::string& title,
                      const std::vector<double>& reference, const std::vector<std::string>& hrefs,
                      const std::vector<std::string>& tags) {
  const std::vector<ScatterPlot> plots = front_pairs(points, flags, axis_labels, reference, hrefs, tags, {});
  const size_t cols = std::min<size_t>(3, plots.size()), rows = (plots.size() + cols - 1) / cols;
  double h = 0;
  std::vector<std::string> bodies;
  for (const auto& p : plots) bodies.push_back(scatter_body(p, h));
  const double W = 460.0 * (double)cols, top = 40, H = top + h * (double)rows;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << ' ' << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  s << "<rect x=\"0\" y=\"0\" width=\"" << W << "\" height=\"" << H << "\" fill=\"white\"/>\n";
  s << "<text x=\"" << W / 2 << "\" y=\"26\" text-anchor=\"middle\" font-size=\"16\">" << xml_escape(title)
    << "</text>\n";
  for (size_t i = 0; i < plots.size(); i++) {
    s << "<g transform=\"translate(" << 460 * (i % cols) << ' ' << top - 10 + h * (double)(i / cols) << ")\">\n";
    s << "<text x=\"230\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(plots[i].title)
      << "</text>\n";
    s << bodies[i] << "</g>\n";
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace mt::report
