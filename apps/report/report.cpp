// The HTML report of a run or a sweep (see report.h).
#include "apps/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "apps/report/run_files.h"
#include "apps/report/svg_plot.h"
#include "mtl/methods/gram_method.h"  // gradient_mode_of
#include "mtl/text.h"
#include "mtl/train/config.h"   // UsageError
#include "mtl/train/run_dir.h"  // write_text_atomic

namespace mt::report {

namespace fs = std::filesystem;
using text::join;
using J = nlohmann::ordered_json;

namespace {

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}
std::string g4(double v) { return fmt("%.4g", v); }
std::string percent(double fraction) { return fmt("%.2f", 100 * fraction) + "%"; }
std::string esc(const std::string& s) { return xml_escape(s); }

// A JSON value as table text: strings bare, arrays of scalars joined, the rest compact JSON.
std::string json_text(const J& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array() && std::all_of(v.begin(), v.end(), [](const J& e) { return e.is_primitive(); })) {
    std::vector<std::string> parts;
    for (const auto& e : v) parts.push_back(json_text(e));
    return "[" + join(parts, ", ") + "]";
  }
  if (v.is_number_float()) return g4(v.get<double>());
  return v.dump();
}

std::string table_of(const J& obj, const std::string& cls) {
  std::ostringstream s;
  s << "<table class=\"" << cls << "\">\n";
  for (const auto& [k, v] : obj.items()) {
    std::string text = json_text(v);
    if (k == "data_files" && v.is_array()) {  // paths only: the hashes are in config.json
      std::vector<std::string> paths;
      for (const auto& f : v)
        if (f.contains("path")) paths.push_back(json_text(f["path"]));
      text = join(paths, ", ");
    }
    s << "<tr><th>" << esc(k) << "</th><td>" << esc(text) << "</td></tr>\n";
  }
  s << "</table>\n";
  return s.str();
}

std::string figure(const std::string& svg, const std::string& caption) {
  return "<figure>\n" + svg + "<figcaption>" + caption + "</figcaption>\n</figure>\n";
}

const char* const kStyle =
    "body{font-family:sans-serif;margin:24px;color:#222;max-width:1440px}"
    "h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ccc}"
    ".sub{color:#555;margin:0 0 12px}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}"
    ".fronts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}"
    "figure{margin:0;border:1px solid #ddd;padding:6px;background:#fff}"
    "figure svg{width:100%;height:auto;display:block}"
    "figcaption{font-size:12px;color:#444;margin-top:4px}"
    "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;"
    "vertical-align:top}th{background:#f4f4f4}table.kv td{max-width:900px;word-break:break-all}"
    "dl.summary{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:0}"
    "dl.summary dt{font-weight:bold}dl.summary dd{margin:0}";

std::string page(const std::string& title, const std::string& body) {
  return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>" + esc(title) +
         "</title>\n<style>" + kStyle + "</style>\n</head>\n<body>\n" + body +
         "<p class=\"sub\">Written by <code>mtl report</code> from the directory's own files.</p>\n</body>\n</html>\n";
}

// ---- a run ----------------------------------------------------------------------------

struct RunData {
  std::string dir;
  J config, result;
  bool has_result = false;
  MetricsTable m;
  std::vector<std::string> tasks, metric;  // metric[t]: "acc" or "mae"
  std::vector<double> x;                   // epochs
  int best_epoch = 0;
  bool has_val = false;
  std::vector<Shade> shades;
  std::vector<Marker> markers;
  std::string method;
};

std::string cfg_string(const J& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

// The architecture; runs written before issue 11 name it "model" only.
std::string architecture(const J& c) {
  const std::string a = cfg_string(c, "architecture");
  return a.empty() ? cfg_string(c, "model") : a;
}

RunData load_run(const std::string& dir) {
  RunData r;
  r.dir = dir;
  r.m = read_metrics_csv((fs::path(dir) / "metrics.csv").string());
  const std::string cfg_path = (fs::path(dir) / "config.json").string();
  std::error_code ec;
  if (!fs::is_regular_file(cfg_path, ec))
    throw Error(cfg_path + ": missing (a run directory holds config.json beside metrics.csv)");
  r.config = read_json_file(cfg_path);
  if (!r.config.is_object()) throw Error(cfg_path + ": not a JSON object");
  const std::string res_path = (fs::path(dir) / "result.json").string();
  if (fs::is_regular_file(res_path, ec)) {
    r.result = read_json_file(res_path);
    r.has_result = r.result.is_object();
  }
  r.method = cfg_string(r.config, "method");
  if (r.config.contains("tasks") && r.config["tasks"].is_array())
    for (const auto& t : r.config["tasks"]) r.tasks.push_back(json_text(t));
  else
    r.tasks = r.m.suffixes("train_loss_");
  for (size_t t = 0; t < r.tasks.size(); t++) {
    const std::string& name = r.tasks[t];
    std::string kind = r.config.contains("metrics") && r.config["metrics"].is_array() &&
                               t < r.config["metrics"].size()
                           ? json_text(r.config["metrics"][t])
                           : (r.m.has("test_mae_" + name) ? "mae" : "acc");
    const std::string col = "test_" + kind + "_" + name;
    if (!r.m.has(col)) throw Error(r.m.path + ": no column '" + col + "' for task '" + name + "' of " + cfg_path);
    r.metric.push_back(kind);
  }
  if (r.tasks.empty()) throw Error(r.m.path + ": no train_loss_<task> columns and no tasks in " + cfg_path);
  r.x = r.m.numbers("epoch");
  r.has_val = r.m.has("val_" + r.metric[0] + "_" + r.tasks[0]);
  // "best": the epoch best.safetensors holds (the last 1); runs written before the one
  // training loop (issue 11) called it "selected"
  const std::string best_col = r.m.has("best") ? "best" : "selected";
  if (r.m.has(best_col)) {
    const auto b = r.m.numbers(best_col);
    for (size_t i = 0; i < b.size(); i++)
      if (b[i] == 1) r.best_epoch = (int)r.x[i];
  }
  if (r.m.has("phase")) {
    const auto ph = r.m.text("phase");
    size_t i = 0;
    while (i < ph.size()) {
      size_t j = i;
      while (j < ph.size() && ph[j] == ph[i]) j++;
      Shade s;
      s.x0 = r.x[i] - 0.5;
      s.x1 = r.x[j - 1] + 0.5;
      s.label = ph[i] + " phase";
      s.fill = ph[i] == "search" ? "#e6e6e6" : "#ffffff";
      r.shades.push_back(s);
      if (i > 0) r.markers.push_back(Marker{s.x0, "", "#555555", ""});
      i = j;
    }
  }
  if (r.best_epoch > 0) r.markers.push_back(Marker{(double)r.best_epoch, "best: epoch " + std::to_string(r.best_epoch)});
  return r;
}

LinePlot plot_for(const RunData& r, const std::string& id, const std::string& title, const std::string& y_label) {
  LinePlot p;
  p.id = id;
  p.title = title;
  p.x_label = "epoch";
  p.y_label = y_label;
  p.shades = r.shades;
  p.markers = r.markers;
  return p;
}

Series column_series(const RunData& r, const std::string& col, const std::string& label, const std::string& colour,
                     const std::string& dash = "", double scale = 1) {
  Series s;
  s.id = col;
  s.label = label;
  s.colour = colour;
  s.dash = dash;
  s.x = r.x;
  s.y = r.m.numbers(col);
  for (double& v : s.y) v *= scale;
  return s;
}

// Task t's series of a column family ("train_loss_" + task); dashed for validation.
Series task_series(const RunData& r, int t, const std::string& col, const std::string& label, bool val = false,
                   double scale = 1) {
  Series s = column_series(r, col, label, task_colour(t), val ? "6,3" : task_dash(t), scale);
  if (val) s.markers = false;
  return s;
}

std::string loss_unit(const RunData& r) {
  std::vector<std::string> kinds;
  if (r.config.contains("task_kinds") && r.config["task_kinds"].is_array())
    for (const auto& k : r.config["task_kinds"]) kinds.push_back(json_text(k));
  const bool all_cls = std::all_of(r.metric.begin(), r.metric.end(), [](const std::string& m) { return m == "acc"; });
  if (all_cls) return "cross-entropy (nats)";
  return "loss (each task's own: cross-entropy in nats, squared or absolute error in target units)";
}

bool varies(const std::vector<double>& v) {
  if (v.empty()) return false;
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return *hi - *lo > 1e-12 * std::max(1.0, std::fabs(*hi));
}

bool all_positive(const std::vector<double>& v) {
  return !v.empty() && std::all_of(v.begin(), v.end(), [](double x) { return x > 0 && std::isfinite(x); });
}

std::string weight_name(const std::string& method) {
  if (method == "mgda" || method == "mgda-ub") return "α_t (the min-norm solver's weights)";
  if (method == "chebyshev-al") return "∂L/∂f_t (each task loss's weight in the augmented Lagrangian)";
  if (method == "uncertainty") return "w_t (uncertainty weighting)";
  if (method == "gradnorm") return "w_t (GradNorm's learned weights)";
  return "w_t";
}

// The summary: what was run, how far, the best epoch and the scores.
std::string run_summary(const RunData& r) {
  std::ostringstream s;
  const J& c = r.config;
  const size_t n = r.m.rows();
  const int total = c.contains("epochs") && c["epochs"].is_number() ? c["epochs"].get<int>() : (int)r.x.back();
  auto scores = [&](size_t row, const std::string& set) {
    std::vector<std::string> v;
    for (size_t t = 0; t < r.tasks.size(); t++) {
      const auto col = r.m.numbers(set + "_" + r.metric[t] + "_" + r.tasks[t]);
      if (row < col.size())
        v.push_back(r.tasks[t] + " " + (r.metric[t] == "acc" ? percent(col[row]) : "MAE " + g4(col[row])));
    }
    return join(v, ", ");
  };
  s << "<dl class=\"summary\">\n";
  s << "<dt>run</dt><dd>" << esc(r.dir) << "</dd>\n";
  s << "<dt>what</dt><dd>" << esc(r.method) << " on " << esc(cfg_string(c, "dataset")) << ", model "
    << esc(architecture(c)) << ", tasks " << esc(join(r.tasks, ", ")) << "</dd>\n";
  s << "<dt>epochs</dt><dd>" << (int)r.x.back() << " of " << total << " in metrics.csv ("
    << (r.has_result ? "finished: result.json" : "not finished: no result.json") << ")</dd>\n";
  s << "<dt>final test</dt><dd>epoch " << (int)r.x.back() << ": " << esc(scores(n - 1, "test")) << "</dd>\n";
  if (r.best_epoch > 0) {
    size_t row = 0;
    for (size_t i = 0; i < n; i++)
      if ((int)r.x[i] == r.best_epoch) row = i;
    std::string rule = r.has_result && r.result.contains("best_selection") ? json_text(r.result["best_selection"]) : "";
    s << "<dt>best epoch</dt><dd>" << r.best_epoch << (rule.empty() ? "" : " (selected by " + esc(rule) + ")")
      << ": test " << esc(scores(row, "test")) << (r.has_val ? "; validation " + esc(scores(row, "val")) : "")
      << " &#8212; best.safetensors</dd>\n";
  }
  if (r.m.has("train_samples_per_s")) {
    const auto sps = r.m.numbers("train_samples_per_s");
    double mean = 0;
    for (double v : sps) mean += v / (double)sps.size();
    s << "<dt>throughput</dt><dd>" << fmt("%.0f", mean) << " training samples/s (mean over the epochs)";
    if (r.has_result && r.result.contains("wall_s")) s << "; wall time " << g4(r.result["wall_s"].get<double>()) << " s";
    s << "</dd>\n";
  }
  if (r.has_result && r.result.contains("group_sparsity")) {
    const J& q = r.result;
    s << "<dt>final model</dt><dd>group sparsity " << g4(q["group_sparsity"].get<double>()) << "%, parameter sparsity "
      << g4(q.value("param_sparsity", 0.0)) << "%, compression " << g4(q.value("compression", 1.0));
    if (q.contains("objectives")) s << "; objectives f = " << esc(json_text(q["objectives"]));
    if (q.contains("lambda")) s << "; λ = " << esc(json_text(q["lambda"]));
    if (q.contains("mu")) s << "; μ = " << g4(q["mu"].get<double>());
    if (q.contains("t")) s << "; t = " << g4(q["t"].get<double>());
    s << "</dd>\n";
  }
  s << "</dl>\n";
  return s.str();
}

}  // namespace

std::string run_report_html(const std::string& run_dir, const std::string& back) {
  const RunData r = load_run(run_dir);
  const int K = (int)r.tasks.size();
  std::ostringstream b;
  const std::string title = r.method + " on " + cfg_string(r.config, "dataset") + " (" +
                            architecture(r.config) + "): run report";
  if (!back.empty()) b << "<p><a href=\"" << esc(back) << "\">&#8592; the sweep's report</a></p>\n";
  b << "<h1>" << esc(title) << "</h1>\n";
  b << run_summary(r);
  const std::string marks =
      std::string(r.best_epoch > 0 ? " The dashed vertical line marks the best epoch (best.safetensors)." : "") +
      (r.shades.empty() ? "" : " Shaded: the search phase; unshaded: the retraining phase.");

  // losses and scores
  b << "<h2>Losses and scores</h2>\n<div class=\"grid\">\n";
  if (r.m.has("train_loss_" + r.tasks[0])) {
    LinePlot p = plot_for(r, "plot-train-loss", "Training loss per task", loss_unit(r));
    for (int t = 0; t < K; t++) p.series.push_back(task_series(r, t, "train_loss_" + r.tasks[t], r.tasks[t]));
    b << figure(line_plot_svg(p), "Mean over the epoch's batches (in training mode)." + marks);
  } else {  // Chebyshev-AL runs written before the one training loop (issue 11): f_t only
    b << "<p>This metrics.csv has no train_loss_&lt;task&gt; columns (a run written before the one training "
         "loop); the training loss per task is f_t in the Chebyshev-AL section.</p>\n";
  }
  for (const std::string kind : {"acc", "mae"}) {
    if (std::find(r.metric.begin(), r.metric.end(), kind) == r.metric.end()) continue;
    const bool acc = kind == "acc";
    LinePlot p = plot_for(r, acc ? "plot-test-acc" : "plot-test-mae",
                          std::string(acc ? "Test accuracy" : "Test MAE") + " per task" +
                              (r.has_val ? " (dashed: validation)" : ""),
                          acc ? "accuracy (%)" : "mean absolute error (target units)");
    for (int t = 0; t < K; t++) {
      if (r.metric[t] != kind) continue;
      p.series.push_back(task_series(r, t, "test_" + kind + "_" + r.tasks[t], r.tasks[t], false, acc ? 100 : 1));
      if (r.has_val)
        p.series.push_back(task_series(r, t, "val_" + kind + "_" + r.tasks[t], r.tasks[t] + " (validation)", true,
                                       acc ? 100 : 1));
    }
    b << figure(line_plot_svg(p), std::string("After each epoch, in evaluation mode, on the whole test set") +
                                      (r.has_val ? " and validation set (selection uses validation only)." : ".") +
                                      marks);
  }
  {
    LinePlot p = plot_for(r, "plot-test-loss", std::string("Test loss per task") + (r.has_val ? " (dashed: validation)" : ""),
                          loss_unit(r));
    for (int t = 0; t < K; t++) {
      p.series.push_back(task_series(r, t, "test_loss_" + r.tasks[t], r.tasks[t]));
      if (r.has_val) p.series.push_back(task_series(r, t, "val_loss_" + r.tasks[t], r.tasks[t] + " (validation)", true));
    }
    b << figure(line_plot_svg(p), "Mean loss over the set after each epoch." + marks);
  }
  b << "</div>\n";

  // optimisation
  b << "<h2>Optimisation</h2>\n<div class=\"grid\">\n";
  {
    LinePlot p = plot_for(r, "plot-lr", "Learning rate", "learning rate (per optimizer step)");
    p.series.push_back(column_series(r, "lr", "lr", "#000000"));
    const auto lr = r.m.numbers("lr");
    if (all_positive(lr) && *std::max_element(lr.begin(), lr.end()) > 20 * *std::min_element(lr.begin(), lr.end()))
      p.log_y = true;
    b << figure(line_plot_svg(p), "The epoch's learning rate (the schedule's)." + marks);
  }
  if (r.m.has("train_samples_per_s")) {
    LinePlot p = plot_for(r, "plot-throughput", "Training throughput", "training samples / s");
    p.series.push_back(column_series(r, "train_samples_per_s", "samples/s", "#000000"));
    b << figure(line_plot_svg(p), "Images per second of the training loop alone (no evaluation, no files)." + marks);
  }
  b << "</div>\n";

  // task weights and the solver
  std::vector<std::string> weight_cols;
  bool weights_vary = false;
  for (const auto& t : r.tasks) {
    weight_cols.push_back("weight_" + t);
    weights_vary = weights_vary || varies(r.m.numbers("weight_" + t)) ||
                   (r.m.has("weight_std_" + t) && varies(r.m.numbers("weight_std_" + t)));
  }
  const bool has_weights = r.m.has(weight_cols[0]);
  const bool solver = r.m.has("solver_iterations");
  if (has_weights || solver) {
    b << "<h2>Task weights" << (solver ? " and the min-norm solver" : "") << "</h2>\n";
    if (has_weights && !weights_vary) {
      std::vector<std::string> w;
      for (const auto& c : weight_cols) w.push_back(g4(r.m.numbers(c)[0]));
      b << "<p>The task weights are constant: " << esc(weight_name(r.method)) << " = (" << esc(join(w, ", "))
        << ").</p>\n";
    }
    b << "<div class=\"grid\">\n";
    if (has_weights && weights_vary) {
      LinePlot p = plot_for(r, "plot-weights", "Task weights", weight_name(r.method));
      bool band = false;
      for (int t = 0; t < K; t++) {
        Series s = task_series(r, t, weight_cols[t], r.tasks[t]);
        if (r.m.has("weight_std_" + r.tasks[t])) {
          const auto sd = r.m.numbers("weight_std_" + r.tasks[t]);
          for (size_t i = 0; i < s.y.size(); i++) {
            s.lo.push_back(s.y[i] - sd[i]);
            s.hi.push_back(s.y[i] + sd[i]);
          }
          band = true;
        }
        p.series.push_back(s);
      }
      b << figure(line_plot_svg(p), std::string("Line: the mean over the epoch's optimizer steps") +
                                        (band ? "; band: ±1 standard deviation over the steps." : ".") +
                                        marks);
    }
    if (r.m.has("grad_norm_" + r.tasks[0])) {  // the Gram methods: what the weights answer to
      LinePlot p = plot_for(r, "plot-grad-norms", "Task gradient norms", "||g_t|| (epoch mean)");
      std::vector<double> all;
      for (int t = 0; t < K; t++) {
        p.series.push_back(task_series(r, t, "grad_norm_" + r.tasks[t], r.tasks[t]));
        const auto v = r.m.numbers("grad_norm_" + r.tasks[t]);
        all.insert(all.end(), v.begin(), v.end());
      }
      p.log_y = all_positive(all);
      const std::string asked = cfg_string(r.config, "gradients");  // set for the methods with both modes
      const GradientMode mode =
          gradient_mode_of(r.method, asked == "parameters" ? GradientMode::Parameters : GradientMode::Representation);
      b << figure(line_plot_svg(p), "The norm of each task's gradient g_t as the weighting saw it (√M_tt of "
                                    "the Gram matrix; " +
                                        std::string(mode == GradientMode::Parameters ? "at the shared parameters" : "at Z, per sample") +
                                        "), mean over the epoch's steps: read it beside the task weights (MGDA's "
                                        "alpha answers to these norms and to the angles between the gradients)." +
                                        std::string(p.log_y ? " Log axis." : "") + marks);
    }
    if (solver) {
      LinePlot p = plot_for(r, "plot-solver-iterations", "Min-norm solver iterations", "iterations per step (epoch mean)");
      p.series.push_back(column_series(r, "solver_iterations", "iterations", "#000000"));
      const std::string algo = cfg_string(r.config, "solver");
      b << figure(line_plot_svg(p), "Iterations of each step's min-norm solve" +
                                        (algo.empty() ? std::string() : " (" + esc(algo) + ")") +
                                        "; 0: the closed form (two tasks)." + marks);
      LinePlot g = plot_for(r, "plot-solver-gap", "Min-norm solver optimality gap",
                            "duality gap (relative to αᵀMα)");
      g.series.push_back(column_series(r, "solver_gap_mean", "mean over the steps", "#000000"));
      g.series.push_back(column_series(r, "solver_gap_max", "max over the steps", "#777777", "6,3"));
      g.log_y = all_positive(r.m.numbers("solver_gap_mean")) && all_positive(r.m.numbers("solver_gap_max"));
      b << figure(line_plot_svg(g),
                  "The certificate (αᵀMα − min_i (Mα)_i) / αᵀMα ≥ 0 of each step's solve, 0 at the "
                  "optimum (runs written before the min-norm solver work of issue 13 hold it unscaled, "
                  "in squared gradient norm units)" +
                      std::string(g.log_y ? "; log axis." : ".") + marks);
    }
    b << "</div>\n";
  }

  // Chebyshev-AL
  if (r.m.has("mu")) {
    std::vector<std::string> objectives = {"sparsity"};
    objectives.insert(objectives.end(), r.tasks.begin(), r.tasks.end());
    auto obj_colour = [&](size_t o) { return o == 0 ? std::string(kSparsityColour) : task_colour((int)o - 1); };
    auto obj_dash = [&](size_t o) { return o == 0 ? std::string("2,2") : task_dash((int)o - 1); };
    b << "<h2>Chebyshev-AL: sparsity, multipliers, objectives</h2>\n<div class=\"grid\">\n";
    if (r.m.has("group_sparsity")) {
      LinePlot p = plot_for(r, "plot-sparsity", "Group sparsity per layer", "zero groups (% of the layer's groups)");
      const auto layers = r.m.suffixes("layer_sparsity_");
      for (size_t i = 0; i < layers.size(); i++)
        p.series.push_back(column_series(r, "layer_sparsity_" + layers[i], layers[i], other_colour((int)i),
                                         other_dash((int)i)));
      Series all = column_series(r, "group_sparsity", "all layers", "#000000");
      p.series.push_back(all);
      if (r.m.has("param_sparsity"))
        p.series.push_back(column_series(r, "param_sparsity", "zero weights (% of all)", "#000000", "2,2"));
      b << figure(line_plot_svg(p),
                  std::string("After each epoch's GrOWL step (search) or with the pruning mask (retraining).") +
                      (layers.empty() ? " (This run's metrics.csv has no per-layer columns.)" : "") + marks);
    }
    {
      LinePlot p = plot_for(r, "plot-lambda", "Multipliers λ per objective", "λ_o (Lagrange multiplier)");
      for (size_t o = 0; o < objectives.size(); o++)
        if (r.m.has("lambda_" + objectives[o]))
          p.series.push_back(column_series(r, "lambda_" + objectives[o], objectives[o], obj_colour(o), obj_dash(o)));
      b << figure(line_plot_svg(p), "The multipliers used during the epoch; they change at the end of an outer "
                                    "iteration and restart at the retraining phase." + marks);
    }
    {
      LinePlot p = plot_for(r, "plot-mu", "Penalty μ", "μ (penalty parameter, log axis)");
      p.series.push_back(column_series(r, "mu", "μ", "#000000"));
      p.log_y = all_positive(r.m.numbers("mu"));
      if (!p.log_y) p.y_label = "μ (penalty parameter)";
      b << figure(line_plot_svg(p), "μ ← ρμ after each outer iteration." + marks);
    }
    {
      LinePlot p = plot_for(r, "plot-t", "Level variable t", "t (the scalarisation's level, a trained scalar)");
      p.series.push_back(column_series(r, "t", "t", "#000000"));
      b << figure(line_plot_svg(p), "t after the epoch." + marks);
    }
    if (r.m.has("f_sparsity")) {
      LinePlot p = plot_for(r, "plot-f0", "Sparsity objective f_0", "f_0 = Σ_g ‖w_g‖ (group-norm sum)");
      p.series.push_back(column_series(r, "f_sparsity", "f_0", kSparsityColour));
      b << figure(line_plot_svg(p), "The group-norm sum of the model's weights, mean over the epoch's batches." + marks);
    }
    {
      LinePlot p = plot_for(r, "plot-f-tasks", "Task objectives f_t", loss_unit(r));
      for (int t = 0; t < K; t++)
        if (r.m.has("f_" + r.tasks[t])) p.series.push_back(task_series(r, t, "f_" + r.tasks[t], r.tasks[t]));
      b << figure(line_plot_svg(p), "Each task's loss as the method saw it, mean over the epoch's batches." + marks);
    }
    {
      LinePlot p = plot_for(r, "plot-c", "Constraint values c_o", "c_o = k_o(f_o − a_o) + … − t");
      for (size_t o = 0; o < objectives.size(); o++)
        if (r.m.has("c_" + objectives[o]))
          p.series.push_back(column_series(r, "c_" + objectives[o], objectives[o], obj_colour(o), obj_dash(o)));
      b << figure(line_plot_svg(p), "Mean over the epoch's batches; c_o ≤ 0 when objective o is within the "
                                    "level t." + marks);
    }
    b << "</div>\n";
  }

  b << "<h2>Configuration (config.json)</h2>\n" << table_of(r.config, "kv");
  if (r.has_result) b << "<h2>Result (result.json)</h2>\n" << table_of(r.result, "kv");
  return page(title, b.str());
}

// ---- a sweep ------------------------------------------------------------------------------

// A front axis as sweep.json names it, with what it measures and its unit.
std::string axis_label(const std::string& a) {
  if (a == "f_sparsity") return "f_0: group-norm sum Σ‖w_g‖";
  if (a.rfind("f_", 0) == 0) return a + ": test loss (cross-entropy, nats)";
  if (a == "group density") return "group density (fraction of groups not zero)";
  if (a.rfind("error ", 0) == 0) return a + " (fraction of test images)";
  return a;
}

std::string sweep_report_html(const std::string& sweep_dir, const std::string& report_dir) {
  const std::string path = (fs::path(sweep_dir) / "sweep.json").string();
  const J j = read_json_file(path);
  if (!j.is_object() || !j.contains("runs") || !j["runs"].is_array())
    throw Error(path + ": not a sweep.json (no \"runs\" array)");
  std::vector<std::string> axes, tasks;
  if (j.contains("front_axes"))
    for (const auto& a : j["front_axes"]) axes.push_back(json_text(a));
  if (j.contains("tasks"))
    for (const auto& t : j["tasks"]) tasks.push_back(json_text(t));
  std::vector<double> ref;
  if (j.contains("reference_point") && j["reference_point"].is_array())
    for (const auto& v : j["reference_point"]) ref.push_back(v.get<double>());

  std::vector<std::vector<double>> pts;
  std::vector<bool> flags;
  std::vector<std::string> hrefs, tags, tips;
  std::ostringstream rows;
  const fs::path rep = fs::absolute(report_dir).lexically_normal();
  for (const auto& run : j["runs"]) {
    const int i = run.value("run", 0);
    const fs::path run_dir = fs::path(sweep_dir) / ("run-" + std::to_string(i));
    std::string href;
    if (dir_kind(run_dir.string()) == DirKind::Run)
      href = (fs::absolute(run_dir / "report.html").lexically_normal()).lexically_relative(rep).string();
    const std::string status = run.value("status", std::string("?"));
    const bool ok = status == "ok" && run.contains("point") && run["point"].is_array() && !run["point"].empty();
    const bool nd = run.value("non_dominated", false);
    const std::string k = run.contains("prefs") ? json_text(run["prefs"]) : "";
    std::string point = ok ? json_text(run["point"]) : "";
    if (ok) {
      pts.push_back(run["point"].get<std::vector<double>>());
      flags.push_back(nd);
      hrefs.push_back(href);
      tags.push_back(std::to_string(i));
      tips.push_back("run " + std::to_string(i) + ": k = " + k + "; point " + point +
                     (nd ? "; non-dominated" : "; dominated"));
    }
    rows << "<tr><td>" << (href.empty() ? std::to_string(i) : "<a href=\"" + esc(href) + "\">run " + std::to_string(i) + "</a>")
         << "</td><td>" << esc(k) << "</td><td>" << esc(status) << "</td><td>" << esc(point) << "</td>";
    const J res = run.contains("result") ? run["result"] : J::object();
    for (const auto& t : tasks)
      rows << "<td>"
           << (res.contains("test_acc") && res["test_acc"].contains(t) ? percent(res["test_acc"][t].get<double>()) : "")
           << "</td>";
    rows << "<td>" << (res.contains("group_sparsity") ? g4(res["group_sparsity"].get<double>()) + "%" : "") << "</td>";
    rows << "<td>" << (ok ? (nd ? "yes" : "no") : "") << "</td></tr>\n";
  }

  std::ostringstream b;
  const std::string title = "Chebyshev-AL sweep on " + json_text(j.value("dataset", J(""))) + " (" +
                            json_text(j.value("model", J(""))) + "): " + std::to_string(j["runs"].size()) + " runs";
  b << "<h1>" << esc(title) << "</h1>\n<dl class=\"summary\">\n";
  b << "<dt>sweep</dt><dd>" << esc(sweep_dir) << "</dd>\n";
  b << "<dt>front space</dt><dd>" << esc(json_text(j.value("front", J("")))) << ": (" << esc(join(axes, ", "))
    << "), all minimised</dd>\n";
  b << "<dt>hypervolume</dt><dd>"
    << (j.contains("hypervolume") && j["hypervolume"].is_number() ? g4(j["hypervolume"].get<double>())
                                                                   : std::string("n/a"))
    << " with reference point r = " << esc(json_text(j.value("reference_point", J::array()))) << " ("
    << esc(json_text(j.value("reference_rule", J("")))) << ")</dd>\n";
  b << "<dt>non-dominated</dt><dd>runs " << esc(json_text(j.value("non_dominated", J::array()))) << "</dd>\n";
  b << "<dt>runs</dt><dd>" << j.value("runs_done", (int)j["runs"].size()) << " of "
    << j.value("runs_total", (int)j["runs"].size()) << " done</dd>\n</dl>\n";
  b << "<h2>The front, per pair of objectives</h2>\n";
  if (pts.empty()) {
    b << "<p>No run finished: nothing to plot.</p>\n";
  } else {
    b << "<div class=\"fronts\">\n";
    auto plots = front_pairs(pts, flags, axes, ref.size() == pts[0].size() ? ref : std::vector<double>{}, hrefs,
                                   tags, tips);
    for (auto& p : plots) {  // short titles, axes with their units
      p.x_label = axis_label(p.x_label);
      p.y_label = axis_label(p.y_label);
      b << figure(scatter_svg(p), "");
    }
    b << "</div>\n<p class=\"sub\">Filled: non-dominated in the full " << pts[0].size()
      << "-objective space (a point may look dominated in one pair's projection); hollow: dominated. "
         "The cross is the hypervolume's reference point. Each point links to its run's report; its "
         "number is the run.</p>\n";
  }
  b << "<h2>Runs</h2>\n<table>\n<tr><th>run</th><th>k</th><th>status</th><th>point</th>";
  for (const auto& t : tasks) b << "<th>test acc " << esc(t) << "</th>";
  b << "<th>group sparsity</th><th>non-dominated</th></tr>\n" << rows.str() << "</table>\n";
  J settings = j;
  settings.erase("runs");
  b << "<h2>Settings (sweep.json without the runs)</h2>\n" << table_of(settings, "kv");
  return page(title, b.str());
}

std::vector<std::string> write_report(const std::string& dir, const std::string& out) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) throw UsageError(dir + ": no such directory");
  if (!fs::is_directory(dir, ec)) throw UsageError(dir + ": not a directory");
  const DirKind kind = dir_kind(dir);
  if (kind == DirKind::Neither)
    throw UsageError(dir + ": not a run directory (no metrics.csv) nor a sweep directory (no sweep.json)");
  const std::string target = out.empty() ? (fs::path(dir) / "report.html").string() : out;
  std::string parent = fs::path(target).parent_path().string();
  if (parent.empty()) parent = ".";
  if (!fs::is_directory(parent, ec)) throw UsageError("--out " + target + ": " + parent + " is not a directory");
  std::vector<std::string> written;
  if (kind == DirKind::Run) {
    write_text_atomic(target, run_report_html(dir));
    written.push_back(target);
    return written;
  }
  // a sweep: every page made first (nothing is written when one fails), then every run's
  // report, then the sweep's (its points link to them)
  const J j = read_json_file((fs::path(dir) / "sweep.json").string());
  const std::string html = sweep_report_html(dir, parent);
  std::vector<std::pair<std::string, std::string>> pages;
  if (j.contains("runs") && j["runs"].is_array())
    for (const auto& run : j["runs"]) {
      const fs::path run_dir = fs::path(dir) / ("run-" + std::to_string(run.value("run", 0)));
      if (dir_kind(run_dir.string()) != DirKind::Run) continue;
      const std::string back =
          (fs::absolute(target).lexically_normal()).lexically_relative(fs::absolute(run_dir).lexically_normal()).string();
      pages.emplace_back((run_dir / "report.html").string(), run_report_html(run_dir.string(), back));
    }
  for (const auto& [path, text] : pages) {
    write_text_atomic(path, text);
    written.push_back(path);
  }
  write_text_atomic(target, html);
  written.push_back(target);
  return written;
}

}  // namespace mt::report
