// Recipes: what differs between training procedures, plugged into the one loop
// (mtl/train/trainer.cpp), in the spirit of LibMTL's Trainer hooks and Keras' callbacks.
// A recipe owns the learning-rate schedule, the work around the optimizer step, the
// end-of-epoch work, the model-selection rule and the state a checkpoint must carry;
// the method (mtl/methods/) owns the objective and its own state.
//
//   StandardRecipe  (every method but chebyshev-al) StepLR or a constant lr; selection
//                   by the mean validation accuracy (the mean validation loss when a task
//                   is a regression), or without a validation set the lowest mean
//                   training loss.
//   SparseRecipe    (chebyshev-al; mtl/train/sparse_recipe.h) the reference's two phases:
//                   GrOWL search, then pruning, tying and retraining.
#pragma once
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "layers/serialize.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "mtl/train/config.h"
#include "mtl/train/data_sources.h"
#include "mtl/train/run_dir.h"
#include "optim/optimizer.h"

namespace mt {

class TrainObserver;
struct EpochRecord;

// What a recipe may use and change during a run.
struct RunContext {
  MultiTaskModel& model;
  Method& method;
  std::unique_ptr<Optimizer>& optimizer;                    // a recipe may replace it (fresh Adam)
  std::function<std::unique_ptr<Optimizer>()> new_optimizer;  // the config's, over model + method parameters
  const TrainConfig& config;                                // resolved
  const TrainData& data;
  RunDir& dir;
  const Metadata& metadata;                                 // the run's model-file metadata
  TrainObserver* observer;
  Metadata epoch_metadata;                                  // metadata + this epoch's (trained_epochs, phase)
  void note(const std::string& line) const;                 // observer->on_note
};

struct Selection {
  bool improved = false;  // the best validation score of the current phase so far
  bool best = false;      // write best.safetensors from this epoch
};

class Recipe {
 public:
  virtual ~Recipe() = default;
  virtual int epochs() const = 0;                  // total
  virtual double lr_at(int epoch) const = 0;       // 0-based epoch
  virtual std::string phase_at(int /*epoch*/) const { return ""; }
  virtual bool has_phases() const { return false; }
  virtual std::string criterion() const = 0;       // the selection score's name ("val_acc", ...)

  virtual void start(RunContext&) {}               // a fresh run, before its first epoch
  virtual void begin_epoch(int /*epoch*/, RunContext&) {}
  virtual void before_step(RunContext&) {}         // gradients computed, optimizer not yet stepped
  virtual void after_step(RunContext&) {}
  virtual void end_training(int /*epoch*/, RunContext&) {}  // after the batches, before evaluation
  virtual Columns epoch_columns(RunContext&) { return {}; }  // after evaluation
  virtual Selection select(const EpochRecord& rec, RunContext&) = 0;
  virtual void epoch_files(const EpochRecord&, RunContext&) {}  // the recipe's own files
  virtual void save_state(StFile&) const {}
  virtual void load_state(const StFile&, const std::string& /*path*/, RunContext&) {}
  // The run is complete: may reload the final model; adds to result.json.
  virtual void finish(RunContext&, nlohmann::ordered_json& /*result*/) {}
  virtual void describe(nlohmann::ordered_json& /*config_json*/) const {}
};

// The standard recipe of a resolved config, for data with or without a validation set.
class StandardRecipe : public Recipe {
 public:
  StandardRecipe(const TrainConfig& c, bool has_val, bool all_classification);
  int epochs() const override { return epochs_; }
  double lr_at(int epoch) const override;
  std::string criterion() const override { return criterion_; }
  Selection select(const EpochRecord& rec, RunContext&) override;
  void save_state(StFile&) const override;
  void load_state(const StFile&, const std::string& path, RunContext&) override;
  void describe(nlohmann::ordered_json& j) const override;

 private:
  int epochs_;
  double lr_, gamma_;
  int step_, first_step_;
  std::string criterion_;
  bool have_best_ = false;
  double best_score_ = 0;  // higher is better: mean val accuracy, or minus a mean loss
};

// StandardRecipe, or SparseRecipe for chebyshev-al.
std::unique_ptr<Recipe> make_recipe(const TrainConfig& resolved, const TrainData& data);

}  // namespace mt
