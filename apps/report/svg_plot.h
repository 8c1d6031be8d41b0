// A small SVG plotting kit for the run report (apps/report/report.h) and the sweep's
// front.svg: line plots over epochs and scatter plots of objective pairs, as plain SVG
// text (no script, no external reference), well-formed XML.
//
// Colours are colour-blind safe: the tasks take Okabe & Ito's palette (Okabe, Ito,
// "Color Universal Design", 2002) in a fixed order, so task t has the same colour in
// every plot of every report; beyond 7 tasks the colours repeat with a dash pattern.
// Other families of lines (layers of a network) take Paul Tol's "muted" scheme.
// Every point carries a <title> (the browser shows it as a tooltip).
#pragma once
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mt::report {

std::string xml_escape(const std::string& s);

// Task t's colour and dash pattern ("" = solid); objective "sparsity" (f_0) is black.
std::string task_colour(int t);
std::string task_dash(int t);
const char* const kSparsityColour = "#000000";
// The i-th colour of a family that is not tasks (layers), and its dash.
std::string other_colour(int i);
std::string other_dash(int i);

struct Series {
  std::string id;                // data-series="id" (what tests and tools look for)
  std::string label;             // legend text
  std::string colour = "#000000";
  std::string dash;              // stroke-dasharray, "" = solid
  std::vector<double> x, y;      // a non-finite y (or <= 0 on a log axis) leaves a gap
  std::vector<double> lo, hi;    // optional band drawn behind the line (same size as y)
  bool markers = true;           // a dot (with its tooltip) per point
};

struct Marker {                  // a vertical line at x, labelled at the top of the plot
  double x = 0;
  std::string label, colour = "#444444", dash = "5,3";
};

struct Shade {                   // a shaded x-interval, labelled at the top (a phase)
  double x0 = 0, x1 = 0;
  std::string label, fill = "#ececec";
};

struct LinePlot {
  std::string id, title, x_label, y_label;  // labels carry the units: "accuracy (%)"
  bool log_y = false;
  std::optional<std::pair<double, double>> y_range;  // fixed y limits (else from the data)
  std::vector<Series> series;
  std::vector<Marker> markers;
  std::vector<Shade> shades;
};

// <svg class="plot" ...> of width 680 (viewBox; scales with its container).
std::string line_plot_svg(const LinePlot& p);

struct ScatterPoint {
  double x = 0, y = 0;
  bool highlight = false;        // non-dominated: filled, outlined; else a hollow grey ring
  std::string tag;               // drawn beside the point ("3": run 3)
  std::string tooltip;
  std::string href;              // the point links here when not empty
};

struct ScatterPlot {
  std::string id, title, x_label, y_label;
  std::vector<ScatterPoint> points;
  std::optional<std::pair<double, double>> reference;  // drawn as a cross, inside the axes
  bool staircase = false;        // join the highlighted points by their attainment boundary
};

// <svg class="scatter" ...> of width 460.
std::string scatter_svg(const ScatterPlot& p);

// The scatter plot of every pair (i < j) of d >= 2 objectives (minimised), side by side in
// one standalone SVG document (xmlns set): the sweep's front.svg. flags[i]: point i is
// non-dominated; hrefs (may be empty) link each point; reference (may be empty) is drawn.
// Throws mt::Error for flags or hrefs of the wrong size, d < 2, a point of another
// dimension or a non-finite coordinate.
std::string front_svg(const std::vector<std::vector<double>>& points, const std::vector<bool>& flags,
                      const std::vector<std::string>& axis_labels, const std::string& title,
                      const std::vector<double>& reference = {}, const std::vector<std::string>& hrefs = {},
                      const std::vector<std::string>& tags = {});

// The pairs' plots alone (front_svg draws these), for a page that lays them out itself.
std::vector<ScatterPlot> front_pairs(const std::vector<std::vector<double>>& points, const std::vector<bool>& flags,
                                     const std::vector<std::string>& axis_labels,
                                     const std::vector<double>& reference, const std::vector<std::string>& hrefs,
                                     const std::vector<std::string>& tags, const std::vector<std::string>& tooltips);

// "Nice" tick values covering [lo, hi] (about n of them; 1-2-5 steps), and on a log axis
// the powers of ten (with 2 and 5 between them when the range is short).
std::vector<double> nice_ticks(double lo, double hi, int n);
std::vector<double> log_ticks(double lo, double hi);

}  // namespace mt::report
