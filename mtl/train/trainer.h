// The one training loop. Every method runs through it, the built-in models and data
// sets by name (the command line's path) and the user's own model and data alike;
// what differs between a plain run and Chebyshev-AL's two phases is a Recipe plugged
// into it (mtl/train/recipe.h). Nothing here prints: progress goes to a TrainObserver,
// errors are thrown (UsageError for a bad setting, DivergedError for a non-finite
// loss, weight or parameter, mt::Error otherwise).
//
// One epoch e (0-based; users and files see e + 1):
//   recipe.begin_epoch(e)           a phase switch (reload the selected model, fresh
//                                   optimizer, method.reset_phase())
//   lr = recipe.lr_at(e); model.train(); method.begin_epoch()
//   the loader visits the training set in the order fixed by (seed, e)
//   per batch: zero the gradients; method.compute_gradients(); every L_t and task
//              weight finite (DivergedError otherwise); recipe.before_step();
//              optimizer step; method.after_step(); recipe.after_step()
//   method.epoch_metrics() and weight_std_<task> (the s.d. of the task weight over the
//   epoch's steps; weight_<task> is their mean); recipe.end_training(e) (the GrOWL
//   step); parameters finite
//   model.eval(): the per-task metric (accuracy, or MAE for regression) and mean loss
//              on the validation set (if any) and on the test set, without a tape
//   recipe.select(record): improved (best validation score of the phase so far) and
//              best (best.safetensors is written from this epoch)
//   method.end_epoch(improved) (Chebyshev-AL's multiplier update)
//   files (RunDir): last.safetensors, best.safetensors when best, metrics.csv,
//              checkpoint.safetensors last (config.json with the first epoch)
// At the end (or at stop_after): recipe.finish(); result.json when the run is complete.
//
// Nothing is written to --out before the first epoch of a run has completed (every
// setting, the data and a --resume checkpoint are validated first).
//
// Reproducibility: the global RNG is seeded with `seed` before the model is built
// (the model factory runs after manual_seed) and the method is made; the loader order
// depends only on (seed, epoch); a checkpoint holds the model, the optimizer, the RNG,
// the method's and the recipe's state and the counters. So a run resumed from the
// checkpoint of epoch k reproduces the uninterrupted run's numbers exactly, and (the
// engine's reductions being in a fixed order) so does any thread count.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "mtl/train/config.h"
#include "mtl/train/data_sources.h"
#include "mtl/train/evaluate.h"

namespace mt {

struct RunInfo {
  std::vector<std::string> tasks;
  std::vector<std::string> metrics;    // per task: "acc" or "mae"
  std::string model;                   // the architecture
  std::string method;
  int start_epoch = 0;                 // epochs done before this run (resume)
  int epochs = 0;                      // total
  int batches_per_epoch = 0;
  int train_n = 0, val_n = 0, test_n = 0;
  int threads = 1;
  int64_t num_parameters = 0;
  std::string out, resumed_from;
  std::vector<std::string> removed_temporaries;  // stale *.tmp.<pid> files removed from out
};

struct BatchInfo {
  int epoch = 0;                        // 1-based
  int epochs = 0;
  int batch = 0, batches = 0;           // 1-based index, batches per epoch
  int64_t global_step = 0;
  std::vector<double> loss, weight;     // this batch's L_t and the weight each got
  int64_t samples = 0;                  // done in this epoch
  double seconds = 0;                   // training time in this epoch so far
};

struct EpochRecord {
  int epoch = 0;                        // 1-based
  int epochs = 0;                       // total
  std::string phase;                    // the recipe's phase ("" for single-phase recipes)
  double lr = 0;
  std::vector<double> train_loss;       // mean batch loss per task
  std::vector<double> weight;           // mean weight (alpha_t for MGDA) per task
  std::vector<double> val_metric, val_loss;    // empty without a validation set
  std::vector<double> test_metric, test_loss;  // metric: accuracy (fraction) or MAE, per task
  Columns extra;                        // the method's, the solver's and the recipe's columns
  double train_samples_per_s = 0;       // the training loop alone
  double train_s = 0, epoch_s = 0;      // epoch_s: training, evaluation and the files
  int64_t global_step = 0;              // optimizer steps after this epoch
  bool improved = false;                // best validation score of its phase so far
  bool best = false;                    // best.safetensors was written from this epoch
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const RunInfo&) {}
  virtual void on_batch(const BatchInfo&) {}
  virtual void on_epoch(const EpochRecord&) {}
  // Phase changes and notable events, one line each ("retrain phase: 123 groups pruned, ...").
  virtual void on_note(const std::string&) {}
};

struct TrainResult {
  TrainConfig config;                   // resolved: out set
  RunInfo info;
  std::vector<EpochRecord> epochs;      // the epochs run by this call
  bool finished = false;                // false when stopped by stop_after
  int best_epoch = 0;                   // 1-based, possibly from before a resume
  std::string best_criterion;           // "val_acc", "val_loss" or "train_loss"
  std::vector<double> best_test_metric; // test metric of best.safetensors when it was written
  SetScores final_test;                 // the final model's test scores (recipes that reload it; else empty)
  nlohmann::ordered_json result;        // result.json (when finished)
  double train_samples_per_s = 0;       // mean over this call's epochs
  double wall_s = 0;
  std::shared_ptr<MultiTaskModel> model;  // the trained model (the final model of the recipe)
  std::string metrics_path, config_path, last_path, best_path, checkpoint_path, result_path;
};

// Builds the model. train() calls it once, after manual_seed(config.seed).
using ModelFactory = std::function<std::shared_ptr<MultiTaskModel>()>;
// Builds the method for K tasks (default: make_method(config.method, K, options of config)).
using MethodFactory = std::function<std::unique_ptr<Method>(int num_tasks)>;

// The command line's path: the dataset and model named in the config.
TrainResult train(const TrainConfig& config, TrainObserver* observer = nullptr);

// The user's model and data through the same loop. data.val may be empty: with
// config.val > 0 the validation images are then split off data.train (by seed).
// `method` replaces make_method when given. The model's tasks must match the data's
// (names, kinds, classes).
TrainResult train(const ModelFactory& model, const TrainData& data, const TrainConfig& config,
                  TrainObserver* observer = nullptr, const MethodFactory& method = {});

// The options of make_method from a resolved config.
MethodOptions method_options(const TrainConfig& resolved);

}  // namespace mt
