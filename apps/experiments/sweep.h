// `mtl sweep`: one Chebyshev-AL run (mtl/train/sparse_recipe.h, through mtl/train/trainer.h) per preference vector k,
// then the Pareto front of the runs.
//
// Vectors: a file (parse_pref_file: one vector per line, '#' comments) or the simplex
// grid pref_grid(K + 1, N); with a fixed sparsity preference k_0 the grid covers the task
// weights only: k = (k_0, (1 - k_0) g) for g in pref_grid(K, N).
//
// Run i trains into OUT/run-<i>/ (all of `mtl train --method chebyshev-al`'s files) on the
// data read once for the sweep. Then, rewritten after every run (atomically):
//   OUT/sweep.csv   one row per vector: run, k_<o>..., status, the final objectives
//                   f_<o>... (f_0 = group-norm sum of the final model, f_t = its test loss
//                   on task t), test_acc_<task>..., group_sparsity, param_sparsity,
//                   compression, non_dominated (1/0), out
//   OUT/sweep.json  the settings, the front space, the reference point, the hypervolume
//                   and every run's result.json
//   OUT/front.svg   the points in every pair of objectives (non-dominated ones filled,
//                   the reference point drawn; apps/report/svg_plot.h front_svg)
// Front space (all minimised):
//   "objectives" (default)  (f_0, f_1..f_K): the values the method trades off;
//   "metrics"               (1 - group_sparsity / 100, 1 - acc_1, ..., 1 - acc_K): the share
//                           of groups kept and the test errors of the final models
// Hypervolume: exact (mtl/solvers/pareto.h) for 2 or 3 objectives (else null), of the runs that
// finished, with the reference point `hv_ref` or, by default, r_j = 1.1 * max_j over the
// runs (max_j + 0.1 when max_j <= 0), recorded in sweep.json.
// A run that diverges (DivergedError) is recorded with status "diverged: ..." and left
// out of the front; other errors stop the sweep.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "mtl/train/sparse_recipe.h"
#include "mtl/train/trainer.h"

namespace mt {

inline TrainConfig chebyshev_base() {
  TrainConfig c;
  c.method = "chebyshev-al";
  return c;
}

struct SweepConfig {
  TrainConfig base = chebyshev_base();  // every run's settings; prefs, out are per run
  std::string out;                      // empty: runs/<dataset>-sweep-s<seed>
  std::string prefs_file;               // exactly one of prefs_file and grid
  int grid = 0;                         // simplex grid steps N
  std::optional<double> sparsity_pref;  // with grid: k_0 fixed in [0, 1)
  std::string front = "objectives";     // objectives | metrics
  std::vector<double> hv_ref;           // empty: 1.1 x the per-objective maximum
  bool force = false;                   // replace an earlier sweep's files in out
};

// Checks needing no data (UsageError naming the flag); the file is parsed here too,
// so a bad line fails before any work: "FILE:LINE: ...".
void validate_sweep_config(const SweepConfig& c);

// The preference vectors for K tasks (K + 1 entries each). Errors name the file and line
// (UsageError): a line that does not parse, a negative or all-zero vector, the wrong length.
std::vector<std::vector<double>> sweep_vectors(const SweepConfig& c, int K);

struct SweepRow {
  int run = 0;
  std::vector<double> prefs;
  std::string status;                   // "ok" | "diverged: ..."
  std::vector<double> point;            // in the front space (empty unless ok)
  bool non_dominated = false;
  TrainResult result;                   // result.result: the run's result.json
};

struct SweepResult {
  SweepConfig config;                   // out resolved
  std::vector<std::string> tasks, objective_names, front_axes;
  std::vector<SweepRow> rows;
  std::vector<double> reference;        // hypervolume reference point
  std::optional<double> hypervolume;    // null: fewer than 1 ok run or not 2-D/3-D
  std::string csv_path, json_path, svg_path;  // svg_path empty when no run finished
  double wall_s = 0;
};

class SweepObserver {
 public:
  virtual ~SweepObserver() = default;
  virtual void on_sweep_start(int /*runs*/, const std::vector<std::string>& /*objective_names*/) {}
  virtual void on_run_start(int /*run*/, int /*runs*/, const std::vector<double>& /*prefs*/) {}
  virtual void on_run_end(const SweepRow&) {}
  // Progress of the run in flight (may be null).
  virtual TrainObserver* run_observer() { return nullptr; }
};

SweepResult run_sweep(const SweepConfig& c, SweepObserver* observer = nullptr);

}  // namespace mt
