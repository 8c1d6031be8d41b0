// `mtl report`: one self-contained HTML file per run or sweep directory, with the plots
// a person studying the methods looks at (inline SVG from apps/report/svg_plot.h; no
// script, no style sheet, font or image fetched: it opens from disk in any browser).
// It reads only the directory's own files, so it works on any run written by RunDir.
//
// A run (metrics.csv, config.json, result.json when finished):
//   a summary (epochs, best epoch and its rule, final and best test scores, throughput;
//   Chebyshev-AL: sparsity, compression, objectives, lambda, mu, t), then per epoch
//   - training loss per task; test (dashed: validation) accuracy in % or MAE per task;
//     test (dashed: validation) loss per task
//   - learning rate; training samples/s
//   - the task weights per task (mean over the epoch's steps, band: +-1 s.d.), when
//     they vary; MGDA methods: the min-norm solver's iterations and optimality gap
//   - Chebyshev-AL: group sparsity per layer (and overall, parameter sparsity); lambda
//     per objective; mu (log axis) and t; f_0 (group-norm sum); f_t per task
//   with the best epoch (best.safetensors) marked on every plot and the search and
//   retrain phases shaded; then config.json and result.json as tables.
// A sweep (sweep.json, run-<i>/): the front in every pair of objectives (non-dominated
//   points filled, dominated ones hollow, the hypervolume's reference point drawn, each
//   point linked to its run's report), the hypervolume and reference point, a table of
//   the runs; each run's report is written too (run-<i>/report.html).
// Task t has the same colour everywhere (svg_plot.h). Every <g class="series"> carries
// data-series="<column>" naming the metrics.csv column it draws.
#pragma once
#include <string>
#include <vector>

namespace mt::report {

// The HTML of a run directory. `back` (may be empty) is a link shown at the top (the sweep's report).
// mt::Error naming the file for a missing or damaged metrics.csv / config.json / result.json.
std::string run_report_html(const std::string& run_dir, const std::string& back = "");

// The HTML of a sweep directory, with links to run-<i>/report.html relative to the
// directory the report is written to.
std::string sweep_report_html(const std::string& sweep_dir, const std::string& report_dir);

// Writes the report of DIR (a run or a sweep directory) to `out` (default DIR/report.html)
// and, for a sweep, every run's report into its run-<i>/; returns the files written.
// UsageError when DIR does not exist or is neither a run nor a sweep.
std::vector<std::string> write_report(const std::string& dir, const std::string& out = "");

}  // namespace mt::report
