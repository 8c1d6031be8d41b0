// The Chebyshev-AL two-phase procedure with GrOWL sparsity (see sparse_recipe.h).
#include "mtl/train/sparse_recipe.h"

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "datasets/loader.h"
#include "mtl/methods/chebyshev.h"
#include "mtl/train/evaluate.h"
#include "mtl/train/run_util.h"
#include "mtl/train/trainer.h"

namespace mt {

namespace {

using namespace run_util;

// Checkpoint entries of the procedure.
constexpr const char* kSnapSparse = "snap.search_best.";        // search: best epoch meeting min sparsity
constexpr const char* kSnapFallback = "snap.search_fallback.";  // search: best epoch overall
constexpr const char* kSnapBest = "snap.best.";                 // what best.safetensors holds
constexpr const char* kMask = "mask.";
constexpr const char* kTie = "tie.";

// The model's tensors and the method's parameters (t) under a prefix, and back.
StFile snapshot(const RunContext& ctx, const std::string& prefix) {
  StFile f;
  module_to_st(ctx.model, prefix + "model.", f);
  for (const auto& [name, t] : ctx.method.parameters())
    f.tensors[prefix + name] = StTensor{"F32", std::vector<int64_t>(t.shape().begin(), t.shape().end()),
                                        t.to_vector(), {}};
  return f;
}

void check_snapshot(const StFile& f, const RunContext& ctx, const std::string& prefix, const std::string& path) {
  check_module_st(f, ctx.model, prefix + "model.", path);
  for (const auto& [name, t] : ctx.method.parameters()) {
    const StTensor& s = st_require(f, prefix + name, path);
    st_check_shape(s, std::vector<int64_t>(t.shape().begin(), t.shape().end()), prefix + name, path);
  }
}

void restore(const StFile& f, RunContext& ctx, const std::string& prefix, const std::string& what) {
  check_snapshot(f, ctx, prefix, what);
  copy_module_st(f, ctx.model, prefix + "model.");
  for (const auto& [name, t] : ctx.method.parameters()) {
    const StTensor& s = f.tensors.at(prefix + name);
    Tensor handle = t;  // the method's tensor itself (a handle to its storage)
    std::memcpy(handle.data(), s.f32.data(), s.f32.size() * sizeof(float));
  }
}

}  // namespace

std::vector<std::string> objective_names(const std::vector<std::string>& tasks) {
  std::vector<std::string> v = {"sparsity"};
  v.insert(v.end(), tasks.begin(), tasks.end());
  return v;
}

SparseRecipe::SparseRecipe(const TrainConfig& c)
    : c_(c),
      sparse_(!c.prefs.empty() && c.prefs[0] > 0),
      epi_(*c.epochs_per_iter),
      search_epochs_(*c.search_iters * *c.epochs_per_iter),
      total_epochs_((*c.search_iters + *c.retrain_iters) * *c.epochs_per_iter) {}

int SparseRecipe::outer_index(int e) const { return (e < search_epochs_ ? e : e - search_epochs_) / epi_; }

double SparseRecipe::lr_at(int e) const { return *c_.lr * std::pow(*c_.lr_decay, outer_index(e)); }

void SparseRecipe::start(RunContext& ctx) {
  if (!sparse_) return;
  // LSUV initialisation on the first `batch` training images (the search phase with k_0 > 0).
  Loader first(ctx.data.train, c_.batch, false, 0);
  first.start_epoch(0);
  Batch b;
  first.next(b);
  lsuv_init(ctx.model, Tensor::from({b.n, b.c, b.h, b.w}, b.x));
  ctx.note("LSUV initialisation on " + std::to_string(b.n) + " training images");
}

// Between the phases: the selected search model, mask, tying, fresh multipliers and Adam.
void SparseRecipe::start_retrain(RunContext& ctx) {
  const bool use_sparse = sparse_ && sparse_best_epoch_ > 0;
  restore(use_sparse ? snap_sparse_ : snap_fallback_, ctx, use_sparse ? kSnapSparse : kSnapFallback,
          "search selection");
  std::string note = "retrain phase: epoch " + std::to_string(use_sparse ? sparse_best_epoch_ : fallback_epoch_) +
                     " of the search phase reloaded";
  if (sparse_) {
    mask_ = PruneMask::record(ctx.model);
    TieOptions to;
    to.preference = *c_.sim_preference;
    tie_ = ParameterTying::cluster(ctx.model, to);
    tie_.apply(ctx.model);
    note += use_sparse ? " (best validation accuracy with group sparsity >= " + short_num(*c_.min_sparsity) + "%)"
                       : " (no epoch reached --min-sparsity " + short_num(*c_.min_sparsity) +
                             "%: the best validation accuracy overall)";
    note += "; " + std::to_string(mask_.pruned_groups()) + " groups pruned, " + std::to_string(tie_.tied_groups()) +
            " groups tied into " + std::to_string(tie_.clusters()) + " clusters";
  }
  ctx.method.reset_phase();
  ctx.optimizer = ctx.new_optimizer();
  phase_best_score_ = -1;
  snap_sparse_ = StFile{};
  snap_fallback_ = StFile{};
  transitioned_ = true;
  ctx.note(note);
}

void SparseRecipe::begin_epoch(int e, RunContext& ctx) {
  epoch_ = e;
  if (e >= search_epochs_ && !transitioned_) start_retrain(ctx);
}

void SparseRecipe::before_step(RunContext& ctx) {
  if (sparse_ && epoch_ >= search_epochs_) mask_.zero_grads(ctx.model);
}

void SparseRecipe::after_step(RunContext& ctx) {
  if (sparse_ && epoch_ >= search_epochs_) {
    mask_.apply(ctx.model);  // pruned groups stay exactly 0
    tie_.apply(ctx.model);   // clusters stay tied
  }
}

void SparseRecipe::end_training(int e, RunContext& ctx) {
  if (sparse_ && e < search_epochs_)
    apply_growl(ctx.model, 1.0, 0.8, 0.2, "spike", *c_.max_layer_sparsity, outer_index(e), *c_.search_iters);
}

Columns SparseRecipe::epoch_columns(RunContext& ctx) {
  report_ = sparsity_report(ctx.model);
  Columns c = {{"outer", outer_index(epoch_) + 1},
               {"outer_epoch", (epoch_ < search_epochs_ ? epoch_ : epoch_ - search_epochs_) % epi_ + 1},
               {"group_sparsity", report_.group_sparsity},
               {"param_sparsity", report_.param_sparsity},
               {"zero_groups", (double)report_.zero_groups}};
  for (const LayerSparsity& l : report_.layers)  // per layer: percent of its groups that are zero
    if (l.groups > 0) c.emplace_back("layer_sparsity_" + l.name, 100.0 * l.zero_groups / l.groups);
  return c;
}

// Selection (validation only; the test set is never used for it).
Selection SparseRecipe::select(const EpochRecord& rec, RunContext& ctx) {
  const double score = mean_of(rec.val_metric);
  Selection s;
  s.improved = phase_best_score_ < 0 || score > phase_best_score_;
  if (s.improved) phase_best_score_ = score;
  if (epoch_ < search_epochs_) {
    if (sparse_ && report_.group_sparsity >= *c_.min_sparsity && score > sparse_best_score_) {
      sparse_best_score_ = score;
      sparse_best_epoch_ = rec.epoch;
      snap_sparse_ = snapshot(ctx, kSnapSparse);
      s.best = true;
    }
    if (s.improved) {
      fallback_epoch_ = rec.epoch;
      snap_fallback_ = snapshot(ctx, kSnapFallback);
      if (sparse_best_epoch_ == 0) s.best = true;
    }
  } else {
    s.best = s.improved;
  }
  if (s.best) {
    best_epoch_ = rec.epoch;
    snap_best_ = snapshot(ctx, kSnapBest);
  }
  return s;
}

void SparseRecipe::epoch_files(const EpochRecord& rec, RunContext& ctx) {
  if (epoch_ >= search_epochs_) return;
  if (rec.best && sparse_best_epoch_ == rec.epoch) ctx.dir.save_model("search_best.safetensors", ctx.model, ctx.epoch_metadata);
  if (rec.improved) ctx.dir.save_model("search_fallback.safetensors", ctx.model, ctx.epoch_metadata);
}

void SparseRecipe::save_state(StFile& f) const {
  f.metadata["sparse.transitioned"] = transitioned_ ? "1" : "0";
  f.metadata["sparse.phase_best_score"] = exact_str(phase_best_score_);
  f.metadata["sparse.sparse_best_score"] = exact_str(sparse_best_score_);
  f.metadata["sparse.sparse_best_epoch"] = std::to_string(sparse_best_epoch_);
  f.metadata["sparse.fallback_epoch"] = std::to_string(fallback_epoch_);
  f.metadata["sparse.best_epoch"] = std::to_string(best_epoch_);
  f.metadata["retrain_iters"] = std::to_string(*c_.retrain_iters);  // informative; may change on resume
  if (transitioned_ && sparse_) {
    mask_.save(f, kMask);
    tie_.save(f, kTie);
  }
  for (const StFile* s : {&snap_best_, &snap_sparse_, &snap_fallback_})
    for (const auto& kv : s->tensors) f.tensors.insert(kv);
}

void SparseRecipe::load_state(const StFile& f, const std::string& path, RunContext& ctx) {
  auto need = [&](const char* key) -> std::string {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      throw Error(path + ": metadata '" + key + "' missing (not a chebyshev-al checkpoint of this version)");
    return it->second;
  };
  transitioned_ = need("sparse.transitioned") == "1";
  phase_best_score_ = std::strtod(need("sparse.phase_best_score").c_str(), nullptr);
  sparse_best_score_ = std::strtod(need("sparse.sparse_best_score").c_str(), nullptr);
  sparse_best_epoch_ = std::atoi(need("sparse.sparse_best_epoch").c_str());
  fallback_epoch_ = std::atoi(need("sparse.fallback_epoch").c_str());
  best_epoch_ = std::atoi(need("sparse.best_epoch").c_str());
  auto take = [&](const char* prefix, StFile& into) {
    into = StFile{};
    for (const auto& kv : f.tensors)
      if (kv.first.compare(0, std::strlen(prefix), prefix) == 0) into.tensors.insert(kv);
  };
  take(kSnapBest, snap_best_);
  take(kSnapSparse, snap_sparse_);
  take(kSnapFallback, snap_fallback_);
  if (best_epoch_ > 0) check_snapshot(snap_best_, ctx, kSnapBest, path);
  if (!transitioned_ && sparse_best_epoch_ > 0) check_snapshot(snap_sparse_, ctx, kSnapSparse, path);
  if (!transitioned_ && fallback_epoch_ > 0) check_snapshot(snap_fallback_, ctx, kSnapFallback, path);
  if (transitioned_ && sparse_) {
    mask_ = PruneMask::load(f, kMask, ctx.model, path);
    tie_ = ParameterTying::load(f, kTie, ctx.model, path);
  }
}

void SparseRecipe::finish(RunContext& ctx, nlohmann::ordered_json& j) {
  // The final model: best.safetensors (the retrain phase's best validation epoch).
  if (best_epoch_ > 0) restore(snap_best_, ctx, kSnapBest, "best model");
  const SetScores test = evaluate(ctx.model, ctx.data.test);
  const std::vector<std::string> tasks = ctx.model.task_names();
  std::vector<double> objectives = {group_norm_sum_value(ctx.model)};
  for (double l : test.loss) objectives.push_back(l);
  const SparsityReport s = sparsity_report(ctx.model);
  nlohmann::ordered_json acc = nlohmann::ordered_json::object(), loss = nlohmann::ordered_json::object();
  for (size_t t = 0; t < tasks.size(); t++) {
    acc[tasks[t]] = std::round(test.metric[t] * 1e4) / 1e4;
    loss[tasks[t]] = test.loss[t];
  }
  describe(j);          // the procedure's settings
  j["variant"] = *c_.al_variant;
  j["test_acc"] = acc;  // of the final model
  j["test_loss"] = loss;
  j["objective_names"] = objective_names(tasks);
  j["objectives"] = objectives;
  j["group_sparsity"] = std::round(s.group_sparsity * 1e4) / 1e4;
  j["param_sparsity"] = std::round(s.param_sparsity * 1e4) / 1e4;
  j["compression"] = std::round(s.compression_rate * 1e4) / 1e4;
  j["sharing"] = std::round(s.sharing_ratio * 1e4) / 1e4;
  j["zero_groups"] = s.zero_groups;
  j["groups"] = s.groups;
  j["params"] = s.params;
  j["stored_params"] = s.stored_params;
  j["flops"] = s.flops;
  j["dense_flops"] = s.dense_flops;
  j["bytes"] = s.bytes;
  j["dense_bytes"] = s.dense_bytes;
  j["pruned_groups"] = mask_.pruned_groups();
  j["clusters"] = tie_.clusters();
  j["tied_groups"] = tie_.tied_groups();
  j["sparsity_report"] = format_sparsity(s);
  j["search_found_sparse"] = sparse_best_epoch_ > 0;
  const Columns m = ctx.method.epoch_metrics(tasks);  // lambda, mu and t at the end
  std::vector<double> lambda;
  for (const auto& [name, v] : m) {
    if (name == "mu" || name == "t") j[name] = v;
    if (name.compare(0, 7, "lambda_") == 0) lambda.push_back(v);
  }
  j["lambda"] = lambda;
}

void SparseRecipe::describe(nlohmann::ordered_json& j) const {
  const size_t n = c_.prefs.size();
  j["al_variant"] = *c_.al_variant;
  j["prefs"] = c_.prefs;
  j["ref_point"] = c_.ref_point.empty() ? std::vector<double>(n, 0.0) : c_.ref_point;
  j["eps"] = *c_.eps;
  j["mu0"] = *c_.mu;
  j["rho"] = *c_.rho;
  j["lambda0"] = std::vector<double>(n, n ? 1.0 / (double)n : 0.0);
  j["search_iters"] = *c_.search_iters;
  j["retrain_iters"] = *c_.retrain_iters;
  j["epochs_per_iter"] = epi_;
  j["sparsity_phases"] = sparse_;
  j["min_sparsity"] = *c_.min_sparsity;
  j["max_layer_sparsity"] = *c_.max_layer_sparsity;
  j["growl"] = {{"type", "spike"}, {"eta", 1.0}, {"beta1", 0.8}, {"beta2", 0.2}};
  j["sim_preference"] = *c_.sim_preference;
  j["lr_decay"] = *c_.lr_decay;
  j["best_selection"] = "val_acc";
}

}  // namespace mt
