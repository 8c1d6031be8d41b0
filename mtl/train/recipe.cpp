// The standard recipe and the recipe factory (see recipe.h).
#include "mtl/train/recipe.h"

#include <cstdlib>

#include "mtl/train/run_util.h"
#include "mtl/train/sparse_recipe.h"
#include "mtl/train/trainer.h"
#include "optim/schedule.h"

namespace mt {

void RunContext::note(const std::string& line) const {
  if (observer) observer->on_note(line);
}

StandardRecipe::StandardRecipe(const TrainConfig& c, bool has_val, bool all_classification)
    : epochs_(*c.epochs),
      lr_(*c.lr),
      gamma_(*c.lr_gamma),
      step_(c.lr_step.value_or(0)),
      first_step_(c.lr_first_step.value_or(0)),
      criterion_(has_val ? (all_classification ? "val_acc" : "val_loss") : "train_loss") {}

double StandardRecipe::lr_at(int epoch) const {
  return step_ > 0 ? StepLR(lr_, step_, gamma_, first_step_).lr_at(epoch) : lr_;
}

Selection StandardRecipe::select(const EpochRecord& r, RunContext&) {
  using run_util::mean_of;
  const double score = criterion_ == "val_acc"    ? mean_of(r.val_metric)
                       : criterion_ == "val_loss" ? -mean_of(r.val_loss)
                                                  : -mean_of(r.train_loss);
  Selection s;
  s.improved = s.best = !have_best_ || score > best_score_;
  if (s.best) {
    have_best_ = true;
    best_score_ = score;
  }
  return s;
}

void StandardRecipe::save_state(StFile& f) const {
  f.metadata["best_criterion"] = criterion_;
  if (have_best_) f.metadata["best_score"] = exact_str(best_score_);
}

void StandardRecipe::load_state(const StFile& f, const std::string&, RunContext&) {
  // A checkpoint selected by another criterion (--val changed): the selection starts afresh.
  auto crit = f.metadata.find("best_criterion");
  auto score = f.metadata.find("best_score");
  have_best_ = crit != f.metadata.end() && crit->second == criterion_ && score != f.metadata.end();
  best_score_ = have_best_ ? std::strtod(score->second.c_str(), nullptr) : 0.0;
}

void StandardRecipe::describe(nlohmann::ordered_json& j) const {
  if (step_ > 0)
    j["lr_schedule"] = {{"type", "StepLR"}, {"step", step_}, {"gamma", gamma_},
                        {"first_step", first_step_ > 0 ? first_step_ : step_}};
  else
    j["lr_schedule"] = {{"type", "constant"}};
  j["best_selection"] = criterion_;
}

std::unique_ptr<Recipe> make_recipe(const TrainConfig& c, const TrainData& data) {
  if (c.method == "chebyshev-al") return std::make_unique<SparseRecipe>(c);
  bool all_classification = true;
  for (int t = 0; t < data.train.num_tasks(); t++) all_classification = all_classification && !data.train.is_regression(t);
  return std::make_unique<StandardRecipe>(c, data.val.n > 0, all_classification);
}

}  // namespace mt
