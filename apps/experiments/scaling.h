// How each method's training-step cost grows with the number of tasks K
// (`mtl scale`; issue "Many tasks"). For every K, a MNIST grid with K tasks
// (datasets/grid_mnist.h, 56x56 for every K, so the trunk's cost is the same
// and only the task-dependent work changes); for every method, a fresh model
// (same seed) is trained for `warmup` untimed and `steps` timed SGD steps on
// distinct batches prepared beforehand. The methods take turns step by step
// (round-robin), so a slow spell of a shared machine hits them alike and the
// ratios stay meaningful. Per (K, method):
//
//   step_s          median wall time of one step: zero_grad, the method's
//                   forward/backward (compute_gradients), the SGD update
//   gram_s, solver_s  of which (MGDA methods): forming the K x K Gram matrix of
//                   the task gradients, and the min-norm solver on it
//                   (StepStats::gram_seconds / solver_seconds, mtl/methods/mgda.cpp)
//   solver_iterations  mean iterations of the solver per step (0 for K <= 2)
//   cpu_s           median process CPU time of one step: at --threads 1 it
//                   barely moves when other jobs share the cores, wall time does
//   ratio, cpu_ratio  step_s (cpu_s) / uniform's at the same K
//
// exact MGDA needs one backward pass through the trunk per task and a Gram
// matrix over all shared parameters (K(K+1)/2 dot products of that length);
// MGDA-UB one trunk backward and a Gram matrix over Z (batch x features).
// A benchmark, not a test: run it on a quiet machine, with a fixed --threads.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mt {

struct ScaleConfig {
  std::vector<int> tasks = {2, 4, 9, 16, 40};                    // K values, each in 1..48
  std::vector<std::string> methods = {"uniform", "mgda-ub", "mgda"};
  std::string model = "resnet18";                                // any make_model name ("resnet18-w8", "multilenet")
  int image_size = 56;
  int batch = 64;
  int warmup = 1;
  int steps = 5;
  int threads = 0;                                               // 0: keep the engine's setting
  std::string solver = "wolfe";                                  // one of min_norm_algo_names()
  double lr = 0.01;                                              // SGD with momentum 0.9
  uint64_t seed = 0;
  std::string data_dir = "data";
};

struct ScaleRow {
  int tasks = 0;
  int grid = 0;
  std::string method;
  int64_t parameters = 0;
  double step_s = 0;            // median over the timed steps
  double step_s_mean = 0, step_s_min = 0;
  double cpu_s = 0;             // median process CPU seconds per step (robust on a shared machine at 1 thread)
  double gram_s = 0;            // mean per step
  double solver_s = 0;          // mean per step
  double solver_iterations = 0; // mean per step
  double ratio = 0;             // step_s / uniform's at the same K (0 without a uniform row)
  double cpu_ratio = 0;         // cpu_s / uniform's at the same K
  double final_loss = 0;        // mean task loss of the last timed step (a sanity check)
};

struct ScaleResult {
  ScaleConfig config;
  int threads = 1;
  std::vector<ScaleRow> rows;   // K-major, methods in the configured order
};

// Throws UsageError (mtl/train/trainer.h) for bad settings, mt::Error for data errors.
// on_row is called after each row is measured (for progress output).
ScaleResult run_scale(const ScaleConfig& cfg, const std::function<void(const ScaleRow&)>& on_row = {});

// The table as printed by `mtl scale`: a header line, then one line per row.
std::string scale_table_header();
std::string scale_table_row(const ScaleRow& r);
// Least-squares line s = a + b K over a method's rows (s: step_s, or cpu_s
// when cpu), with R^2.
struct LinearFit {
  double intercept = 0, slope = 0, r2 = 0;
};
LinearFit fit_step_cost(const ScaleResult& r, const std::string& method, bool cpu = false);
// One JSON object: the settings, every row, the ratios per K and the fits.
nlohmann::ordered_json scale_json(const ScaleResult& r);

}  // namespace mt
