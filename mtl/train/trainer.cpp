// The one training loop (see trainer.h).
#include "mtl/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "layers/serialize.h"
#include "mtl/dist/comm.h"
#include "mtl/dist/data_parallel.h"
#include "mtl/dist/step_share.h"
#include "mtl/methods/chebyshev.h"
#include "mtl/methods/gram_method.h"
#include "mtl/models/model_file.h"
#include "mtl/train/recipe.h"
#include "mtl/train/run_dir.h"
#include "mtl/train/run_util.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/sgd.h"

namespace mt {

namespace {

using namespace run_util;

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, NamedParams params) {
  if (*c.optimizer == "sgd") return std::make_unique<SGD>(std::move(params), *c.lr, *c.momentum, 0.0, *c.weight_decay);
  if (*c.optimizer == "adam")
    return std::make_unique<Adam>(std::move(params), *c.lr, 0.9, 0.999, 1e-8, *c.weight_decay);
  return std::make_unique<AdamW>(std::move(params), *c.lr, 0.9, 0.999, 1e-8, *c.weight_decay);
}

std::string task_list(const std::vector<std::string>& tasks) { return join(tasks, ", "); }

// The data must be what the model was built for: same tasks, kinds and sizes.
void check_data_matches(const MultiTaskModel& m, const MultiImageSet& set, const std::string& which) {
  const std::vector<std::string> names = m.task_names();
  if (set.task_names != names)
    throw Error("the " + which + " set's tasks (" + task_list(set.task_names) + ") are not the model's (" +
                task_list(names) + ")");
  for (int t = 0; t < m.num_tasks(); t++) {
    const Task& k = m.task(t);
    if (k.is_regression() != set.is_regression(t))
      throw Error("task '" + k.name + "' is " + task_kind_name(k.kind) + " in the model but " +
                  (set.is_regression(t) ? "regression" : "classification") + " in the " + which + " set");
    if (k.is_regression() && set.n > 0 && set.outputs(t) != k.outputs)
      throw Error("regression task '" + k.name + "' has " + std::to_string(k.outputs) + " outputs in the model, " +
                  std::to_string(set.outputs(t)) + " values per image in the " + which + " set");
    if (!k.is_regression() && set.num_classes[(size_t)t] != k.num_classes)
      throw Error("task '" + k.name + "' has " + std::to_string(k.num_classes) + " classes in the model, " +
                  std::to_string(set.num_classes[(size_t)t]) + " in the " + which + " set");
  }
}

// metrics.csv
std::string metrics_header(const EpochRecord& r, const RunInfo& info, bool phases) {
  std::vector<std::string> cols = {"epoch"};
  if (phases) cols.push_back("phase");
  cols.push_back("lr");
  for (const auto& t : info.tasks) cols.push_back("train_loss_" + t);
  for (const auto& t : info.tasks) cols.push_back("weight_" + t);
  auto metric_cols = [&](const std::string& set) {
    for (size_t t = 0; t < info.tasks.size(); t++) cols.push_back(set + "_" + info.metrics[t] + "_" + info.tasks[t]);
    for (const auto& t : info.tasks) cols.push_back(set + "_loss_" + t);
  };
  if (!r.val_metric.empty()) metric_cols("val");
  metric_cols("test");
  for (const auto& [name, v] : r.extra) cols.push_back(name);
  for (const char* c : {"train_samples_per_s", "epoch_s"}) cols.push_back(c);
  if (phases) cols.push_back("phase_best");
  cols.push_back("best");
  return join(cols, ",");
}

std::string metrics_row(const EpochRecord& r, const RunInfo& info, bool phases) {
  std::vector<std::string> v = {std::to_string(r.epoch)};
  if (phases) v.push_back(r.phase);
  v.push_back(num("%.10g", r.lr));
  for (double x : r.train_loss) v.push_back(num("%.10g", x));
  for (double x : r.weight) v.push_back(num("%.10g", x));
  auto metric_vals = [&](const std::vector<double>& metric, const std::vector<double>& loss) {
    for (size_t t = 0; t < metric.size(); t++) v.push_back(num(info.metrics[t] == "acc" ? "%.6f" : "%.10g", metric[t]));
    for (double x : loss) v.push_back(num("%.10g", x));
  };
  if (!r.val_metric.empty()) metric_vals(r.val_metric, r.val_loss);
  metric_vals(r.test_metric, r.test_loss);
  for (const auto& [name, x] : r.extra) v.push_back(num("%.10g", x));
  v.push_back(num("%.1f", r.train_samples_per_s));
  v.push_back(num("%.3f", r.epoch_s));
  if (phases) v.push_back(r.improved ? "1" : "0");
  v.push_back(r.best ? "1" : "0");
  return join(v, ",");
}

nlohmann::ordered_json by_task(const std::vector<std::string>& tasks, const std::vector<double>& v, double scale) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++)
    j[tasks[t]] = scale > 0 ? std::round(v[t] * scale) / scale : v[t];
  return j;
}

std::string stop_note(const std::string& last_ckpt) {
  return "; stopping \xe2\x80\x94 " + (last_ckpt.empty() ? std::string("no checkpoint yet")
                                                           : "last good checkpoint: " + last_ckpt);
}

void check_all_finite(const NamedTensors& params, int epoch, const std::string& last_ckpt) {
  for (const auto& [name, p] : params) {
    const float* d = p.data();
    for (int64_t i = 0; i < p.numel(); i++)
      if (!std::isfinite(d[i]))
        throw DivergedError("non-finite parameter '" + name + "' (" + nonfinite_name(d[i]) + ") after epoch " +
                            std::to_string(epoch) + stop_note(last_ckpt));
  }
}

}  // namespace

MethodOptions method_options(const TrainConfig& c) {
  MethodOptions mo;
  mo.weights = c.weights;
  mo.normalization = parse_grad_normalization(c.normalization.value_or("none"));
  mo.solver.algo = parse_min_norm_algo(c.solver.value_or("wolfe"));
  mo.heads = parse_head_weights(c.heads.value_or("alpha"));
  mo.gradnorm_alpha = c.gradnorm_alpha.value_or(1.5);
  mo.seed = c.seed;
  if (c.gradients) mo.gradients = parse_gradient_mode(*c.gradients);
  if (c.cagrad_c) mo.cagrad_c = *c.cagrad_c;
  if (c.nash_max_norm) mo.nash_max_norm = *c.nash_max_norm;
  if (c.upgrad_reg) mo.upgrad_reg = *c.upgrad_reg;
  if (c.dwa_temperature) mo.dwa_temperature = *c.dwa_temperature;
  if (c.famo_lr) mo.famo_lr = *c.famo_lr;
  if (c.famo_gamma) mo.famo_gamma = *c.famo_gamma;
  if (c.stch_mu) mo.stch_mu = *c.stch_mu;
  if (c.stch_warmup) mo.stch_warmup_epochs = *c.stch_warmup;
  if (c.method == "chebyshev-al") {
    ChebyshevOptions& ch = mo.chebyshev;
    ch.prefs = c.prefs;
    ch.ref_point = c.ref_point;
    ch.eps = *c.eps;
    ch.variant = *c.al_variant;
    ch.mu0 = *c.mu;
    ch.rho = *c.rho;
    ch.epochs_per_iter = *c.epochs_per_iter;
  }
  return mo;
}

TrainResult train(const TrainConfig& config, TrainObserver* observer) {
  validate_train_config(config);
  const TrainConfig c = resolve_train_config(config);
  if (c.threads) set_num_threads(*c.threads);
  RunDir::check(c.out, c.resume, c.force);  // --out is usable: checked before the data is read
  const TrainData data = load_train_data(c, *c.val, c.seed);
  const std::string arch = *c.model;
  const std::vector<Task> tasks = tasks_for_set(arch, data.train);
  const Shape chw = {data.train.c, data.train.h, data.train.w};
  return train([&] { return make_model(arch, tasks, chw); }, data, config, observer);
}

namespace {

// One run of the loop: the stages of train() (see trainer.h), one method each.
class Run {
 public:
  // Under mpirun (mtl/dist/) rank 0 alone prints and writes the run directory.
  Run(const TrainData& data_in, const TrainConfig& config, TrainObserver* obs)
      : t_start_(Clock::now()),
        c_(resolve_train_config(config)),
        comm_(dist::world()),
        obs_(comm_.root() ? obs : nullptr),
        dir_(c_.out, c_.resume, c_.force, /*writer=*/comm_.root()),
        data_(prepare_data(data_in)) {}

  TrainResult go(const ModelFactory& make_model_fn, const MethodFactory& make_method_fn) {
    build(make_model_fn, make_method_fn);
    if (!c_.resume.empty()) resume();
    Loader loader(data_.train, c_.batch, true, c_.seed);
    if (c_.resume.empty()) recipe_->start(*ctx_);  // LSUV (Chebyshev-AL)
    start_data_parallel(loader);
    start_result(loader);
    dir_.set_config(config_json().dump(2) + "\n");
    int e = start_epoch_;
    for (; e < recipe_->epochs(); e++) {
      if (c_.stop_after > 0 && e >= c_.stop_after) break;
      EpochRecord rec = train_epoch(e, loader);
      finish_epoch(rec);
    }
    return finish(e >= recipe_->epochs());
  }

 private:
  // Checked before any file is written; the validation images split off when asked for.
  const TrainData& prepare_data(const TrainData& in) {
    in.train.validate("the training set");
    in.test.validate("the test set");
    if (in.val.n > 0) in.val.validate("the validation set");
    const int K = in.train.num_tasks();
    const std::vector<std::string>& names = in.train.task_names;
    if (c_.method == "fixed" && (int)c_.weights.size() != K)
      throw UsageError("--weights needs " + std::to_string(K) + " values (one per task: " + task_list(names) +
                       "), got " + std::to_string(c_.weights.size()));
    if (c_.method == "chebyshev-al" && (int)c_.prefs.size() != K + 1)
      throw UsageError("--prefs has " + std::to_string(c_.prefs.size()) + " values; dataset " + c_.dataset + " has " +
                       std::to_string(K) + " task" + (K == 1 ? "" : "s") + " (" + task_list(names) +
                       "), so it needs " + std::to_string(K + 1) + ": k_0 for sparsity, then one per task");
    if (*c_.val <= 0 || in.val.n > 0) return in;
    own_ = in;
    split_off_validation(own_, *c_.val, c_.seed);
    return own_;
  }

  // Data parallelism (mtl/dist/data_parallel.h): the loader's batches split by sample
  // index, rank 0's weights and state on every rank (the seed makes them equal already;
  // the broadcast makes sure), then checked by hash.
  void start_data_parallel(Loader& loader) {
    if (!comm_.parallel()) return;
    const int N = comm_.size();
    // What runs data-parallel: methods linear in the losses, Chebyshev-AL (global f_t), and
    // the Gram methods at Z (global Gram matrix and losses, gram_method.cpp). The Gram
    // matrix of parameter gradients is not a sum of the ranks' (mgda, aligned-mtl,
    // --gradients parameters), and the loss-only weightings keep per-rank state from the
    // losses (dwa, rlw, famo, stch, gradnorm): refused rather than run divergent.
    const bool linear = c_.method == "uniform" || c_.method == "fixed" || c_.method == "uncertainty" ||
                        c_.method == "single-task" || c_.method == "chebyshev-al";
    const bool at_z = c_.method == "mgda-ub" || c_.method == "aligned-mtl-ub" ||
                      (takes_gradient_mode(c_.method) && c_.gradients.value_or("representation") == "representation");
    if (!linear && !at_z)
      throw UsageError("--method " + c_.method + (c_.gradients ? " --gradients " + *c_.gradients : std::string()) +
                       " does not run data-parallel (under mpirun: uniform, fixed, uncertainty, single-task, "
                       "chebyshev-al, and mgda-ub, aligned-mtl-ub, pcgrad, cagrad, imtl-g, nash-mtl, upgrad with "
                       "--gradients representation)");
    const int last = data_.train.n % c_.batch == 0 ? c_.batch : data_.train.n % c_.batch;
    if (std::min(c_.batch, last) < N)
      throw UsageError("--batch " + std::to_string(c_.batch) + " over " + std::to_string(data_.train.n) +
                       " training images leaves a batch of " + std::to_string(std::min(c_.batch, last)) +
                       " samples for " + std::to_string(N) + " ranks: every rank needs at least one");
    loader.shard(comm_.rank(), N);
    dist::broadcast_tensors(comm_, replicated());
    dist::check_replicas(comm_, replicated(), "the start");
  }

  // Every tensor the ranks must hold identically: the model's parameters and buffers,
  // the method's parameters.
  NamedTensors replicated() const {
    NamedTensors all = model_->named_parameters();
    for (auto& b : model_->named_buffers()) all.push_back(std::move(b));
    for (auto& p : method_->parameters()) all.push_back(std::move(p));
    return all;
  }

  // Model, method, optimizer, recipe (the global RNG seeded first: initialisation, t).
  void build(const ModelFactory& make_model_fn, const MethodFactory& make_method_fn) {
    manual_seed(c_.seed);
    model_ = make_model_fn();
    if (!model_) throw Error("the model factory returned no model");
    model_->check_parameter_split();
    check_data_matches(*model_, data_.train, "training");
    check_data_matches(*model_, data_.test, "test");
    if (data_.val.n > 0) check_data_matches(*model_, data_.val, "validation");
    const int K = data_.train.num_tasks();
    method_ = make_method_fn ? make_method_fn(K) : make_method(c_.method, K, method_options(c_));
    if (!method_) throw Error("the method factory returned no method");
    opt_ = new_optimizer();
    recipe_ = make_recipe(c_, data_);
    meta_ = run_metadata();
    ctx_ = std::make_unique<RunContext>(
        RunContext{*model_, *method_, opt_, [this] { return new_optimizer(); }, c_, data_, dir_, meta_, obs_, {}});
  }

  std::unique_ptr<Optimizer> new_optimizer() const {
    NamedParams params = model_->named_parameters();
    for (const auto& p : method_->parameters()) params.push_back(p);
    return make_optimizer(c_, params);
  }

  // What a model file of this run says (mtl/models/model_file.h), and the run's identity
  // (a checkpoint resumes only a run with the same entries).
  Metadata run_metadata() const {
    const MultiImageSet& t = data_.train;
    Metadata meta = model_metadata(*model_, {t.c, t.h, t.w}, t.mean, t.std);
    meta["dataset"] = c_.dataset;
    meta["method"] = method_->name();
    if (takes_gradient_mode(c_.method)) meta["gradients"] = gradient_mode_name(method_options(c_).gradients);
    meta["seed"] = std::to_string(c_.seed);
    meta["data_seed"] = std::to_string(c_.data_seed);
    for (const auto& kv : data_.metadata) meta[kv.first] = kv.second;  // "data.*": how to reread the test set
    if (c_.method == "chebyshev-al") {
      meta["prefs"] = exact_list(c_.prefs);
      meta["ref_point"] = exact_list(c_.ref_point);
      meta["eps"] = exact_str(*c_.eps);
      meta["al_variant"] = *c_.al_variant;
      meta["mu0"] = exact_str(*c_.mu);
      meta["rho"] = exact_str(*c_.rho);
      meta["lr0"] = exact_str(*c_.lr);
      meta["lr_decay"] = exact_str(*c_.lr_decay);
      meta["search_iters"] = std::to_string(*c_.search_iters);
      meta["epochs_per_iter"] = std::to_string(*c_.epochs_per_iter);
      meta["min_sparsity"] = exact_str(*c_.min_sparsity);
      meta["max_layer_sparsity"] = exact_str(*c_.max_layer_sparsity);
      meta["sim_preference"] = exact_str(*c_.sim_preference);
      meta["batch"] = std::to_string(c_.batch);
    }
    return meta;
  }

  // Everything restored and checked before anything is written.
  void resume() {
    try {
      CheckpointExtra ex = load_checkpoint(c_.resume, *model_, *opt_, meta_);
      const StFile state{ex.metadata, ex.tensors};
      method_->load_state(state, c_.resume);
      recipe_->load_state(state, c_.resume, *ctx_);
      start_epoch_ = (int)ex.epoch;
      global_step_ = ex.step;
      auto crit = ex.metadata.find("best_criterion");
      auto be = ex.metadata.find("best_epoch");
      if (crit != ex.metadata.end() && crit->second == recipe_->criterion() && be != ex.metadata.end()) {
        best_epoch_ = std::atoi(be->second.c_str());
        if (auto bt = ex.metadata.find("best_test_acc"); bt != ex.metadata.end()) best_test_ = parse_doubles(bt->second);
      }
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      // Resuming needs the flags the run started with (unset ones take their defaults).
      const std::string cfg = run_util::parent_dir(c_.resume) + "/config.json";
      throw Error(std::string("cannot resume: ") + e.what() +
                  "; --resume continues a run with the flags it was started with" +
                  (std::filesystem::exists(cfg) ? " (they are in " + cfg + ")" : std::string()));
    }
    if (start_epoch_ >= recipe_->epochs())
      throw UsageError("--resume " + c_.resume + " has already trained " + std::to_string(start_epoch_) + " of " +
                       std::to_string(recipe_->epochs()) + " epochs; " +
                       (c_.method == "chebyshev-al" ? "pass a larger --retrain-iters to continue"
                                                    : "pass --epochs greater than that to continue"));
    last_ckpt_ = c_.resume;
  }

  void start_result(const Loader& loader) {
    res_.config = c_;
    res_.model = model_;
    res_.best_criterion = recipe_->criterion();
    res_.metrics_path = dir_.path("metrics.csv");
    res_.config_path = dir_.path("config.json");
    res_.last_path = dir_.path("last.safetensors");
    res_.best_path = dir_.path("best.safetensors");
    res_.checkpoint_path = dir_.path("checkpoint.safetensors");
    res_.result_path = dir_.path("result.json");
    RunInfo& info = res_.info;
    info.tasks = data_.train.task_names;
    for (const Task& t : model_->tasks()) info.metrics.push_back(t.metric());
    info.model = model_->arch();
    info.method = method_->name();
    info.start_epoch = start_epoch_;
    info.epochs = recipe_->epochs();
    info.batches_per_epoch = loader.batches_per_epoch();
    info.train_n = data_.train.n;
    info.val_n = data_.val.n;
    info.test_n = data_.test.n;
    info.threads = num_threads();
    info.num_parameters = model_->num_parameters();
    info.out = c_.out;
    info.resumed_from = c_.resume;
    info.removed_temporaries = dir_.removed_temporaries();
    if (obs_) obs_->on_start(info);
  }

  // config.json, written with the first epoch's files.
  nlohmann::ordered_json config_json() const {
    const MultiImageSet& t = data_.train;
    nlohmann::ordered_json cfg;
    cfg["command"] = "train";
    cfg["dataset"] = c_.dataset;
    cfg["model"] = c_.model ? *c_.model : res_.info.model;
    cfg["architecture"] = res_.info.model;
    cfg["method"] = c_.method;
    cfg["tasks"] = t.task_names;
    cfg["task_kinds"] = split(meta_.at("task_kinds"), ',');
    cfg["classes"] = t.num_classes;
    cfg["metrics"] = res_.info.metrics;
    cfg["input_shape"] = {t.c, t.h, t.w};
    cfg["input_mean"] = t.mean;
    cfg["input_std"] = t.std;
    cfg["num_parameters"] = res_.info.num_parameters;
    cfg["epochs"] = recipe_->epochs();
    cfg["batch"] = c_.batch;
    cfg["optimizer"] = *c_.optimizer;
    cfg["lr"] = *c_.lr;
    if (*c_.optimizer == "sgd") cfg["momentum"] = *c_.momentum;
    cfg["weight_decay"] = *c_.weight_decay;
    if (c_.method == "fixed") cfg["weights"] = c_.weights;
    if (c_.method == "mgda" || c_.method == "mgda-ub") {
      cfg["normalization"] = *c_.normalization;
      cfg["solver"] = *c_.solver;
      cfg["heads"] = *c_.heads;
    }
    if (c_.method == "gradnorm") cfg["gradnorm_alpha"] = *c_.gradnorm_alpha;
    const MethodOptions mo = method_options(c_);
    if (takes_gradient_mode(c_.method)) cfg["gradients"] = gradient_mode_name(mo.gradients);
    if (c_.method == "cagrad") cfg["cagrad_c"] = mo.cagrad_c;
    if (c_.method == "nash-mtl") cfg["nash_max_norm"] = mo.nash_max_norm;
    if (c_.method == "upgrad") cfg["upgrad_reg"] = mo.upgrad_reg;
    if (c_.method == "dwa") cfg["dwa_temperature"] = mo.dwa_temperature;
    if (c_.method == "famo") cfg["famo_lr"] = mo.famo_lr, cfg["famo_gamma"] = mo.famo_gamma;
    if (c_.method == "stch") cfg["stch_mu"] = mo.stch_mu, cfg["stch_warmup"] = mo.stch_warmup_epochs;
    recipe_->describe(cfg);
    cfg["seed"] = c_.seed;
    cfg["data_seed"] = c_.data_seed;
    cfg["threads"] = res_.info.threads;
    if (comm_.parallel()) cfg["ranks"] = comm_.size();
    cfg["val"] = *c_.val;
    cfg["train_limit"] = c_.train_limit;
    cfg["test_limit"] = c_.test_limit;
    cfg["train_images"] = t.n;
    cfg["val_images"] = data_.val.n;
    cfg["test_images"] = data_.test.n;
    cfg["data_dir"] = c_.data_dir;
    cfg["fashion_dir"] = c_.fashion_dir;
    if (c_.dataset == "cifar10-mnist") cfg["cifar_dir"] = cifar_dir_or_default(c_.cifar_dir);
    for (const auto& kv : data_.metadata) cfg[kv.first] = kv.second;
    nlohmann::ordered_json files = nlohmann::ordered_json::array();
    for (const auto& f : dataset_files(c_.dataset, c_.data_dir, c_.fashion_dir))
      files.push_back({{"path", f.path}, {"sha256", f.sha256}});
    cfg["data_files"] = files;  // verified against these hashes when the data was loaded
    cfg["out"] = c_.out;
    if (!c_.resume.empty()) {
      cfg["resumed_from"] = c_.resume;
      cfg["start_epoch"] = start_epoch_;
    }
    cfg["format"] = kFormatName;
    return cfg;
  }

  DivergedError diverged(const std::string& what, int t, double v, int epoch, int step) const {
    return DivergedError("non-finite " + what + " (" + nonfinite_name(v) + ") in task '" +
                         data_.train.task_names[(size_t)t] + "' at epoch " + std::to_string(epoch) + ", step " +
                         std::to_string(step) + " (global step " + std::to_string(global_step_) + ")" +
                         stop_note(last_ckpt_));
  }

  // The method's gradients of one batch; a non-finite loss is named by its task.
  StepStats gradients(const Tensor& x, const Batch& b, int epoch, int step) {
    const int K = model_->num_tasks();
    StepStats st;
    try {
      st = method_->compute_gradients(*model_, x, b.y);
    } catch (const Error&) {
      // Some methods refuse non-finite numbers (the min-norm solver) before they can
      // report the losses: find the task whose loss went bad.
      int bad = -1;
      double v = 0;
      try {
        NoGrad no_grad;
        Tensor z = model_->shared(x);
        for (int t = 0; t < K && bad < 0; t++) {
          v = model_->task_loss(t, model_->head(t, z, x), b.y[t]).item();
          if (!std::isfinite(v)) bad = t;
        }
      } catch (const Error&) {
      }
      if (bad >= 0) throw diverged("loss", bad, v, epoch, step);
      throw;
    }
    for (int t = 0; t < K; t++)
      if (!std::isfinite(st.loss[t])) throw diverged("loss", t, st.loss[t], epoch, step);
    for (int t = 0; t < K; t++)
      if (!std::isfinite(st.weight[t])) throw diverged("task weight", t, st.weight[t], epoch, step);
    return st;
  }

  // The batches of epoch e.
  EpochRecord train_epoch(int e, Loader& loader) {
    recipe_->begin_epoch(e, *ctx_);  // may replace the optimizer (a new phase)
    epoch_start_ = Clock::now();
    const int K = model_->num_tasks();
    EpochRecord rec;
    rec.epoch = e + 1;
    rec.epochs = recipe_->epochs();
    rec.phase = recipe_->phase_at(e);
    rec.lr = recipe_->lr_at(e);
    opt_->set_lr(rec.lr);
    model_->train();
    method_->begin_epoch();
    loader.start_epoch(e);
    std::vector<double> loss_sum(K, 0.0), weight_sum(K, 0.0), weight_sq(K, 0.0), norm_sum(K, 0.0);
    int64_t samples = 0;
    int step = 0, solver_steps = 0, norm_steps = 0;
    double iterations_sum = 0, gap_sum = 0, gap_max = 0;
    Batch b;
    const double comm_s0 = comm_.seconds();
    const uint64_t bytes0 = comm_.bytes_sent();
    while (loader.next(b)) {
      step++;
      global_step_++;
      Tensor x = Tensor::from({b.n, b.c, b.h, b.w}, b.x);
      opt_->zero_grad();  // the model's and the method's parameters
      StepStats st;
      {
        const dist::BatchShare share{b.offset, b.n, b.global_n};  // this rank's rows of the batch
        dist::StepScope scope(comm_, share);
        st = gradients(x, b, e + 1, step);
        // the global batch's gradient and losses: one fused allreduce (no-op without mpirun)
        reducer_.allreduce(comm_, opt_->params(), share.share(), st.loss);
      }
      recipe_->before_step(*ctx_);
      opt_->step();
      method_->after_step();
      recipe_->after_step(*ctx_);
      for (int t = 0; t < K; t++) {
        loss_sum[t] += st.loss[t] * b.global_n;
        weight_sum[t] += st.weight[t];
        weight_sq[t] += st.weight[t] * st.weight[t];
        if (!st.grad_norm.empty()) norm_sum[t] += st.grad_norm[t];
      }
      if (!st.grad_norm.empty()) norm_steps++;
      if (st.solver) {
        solver_steps++;
        iterations_sum += st.solver_iterations;
        gap_sum += st.solver_gap;
        gap_max = std::max(gap_max, st.solver_gap);
      }
      samples += b.global_n;
      if (obs_) {
        BatchInfo bi;
        bi.epoch = e + 1;
        bi.epochs = rec.epochs;
        bi.batch = step;
        bi.batches = loader.batches_per_epoch();
        bi.global_step = global_step_;
        bi.loss = st.loss;
        bi.weight = st.weight;
        bi.samples = samples;
        bi.seconds = seconds_between(epoch_start_, Clock::now());
        obs_->on_batch(bi);
      }
    }
    rec.train_s = seconds_between(epoch_start_, Clock::now());
    train_s_ += rec.train_s;
    comm_s_ += comm_.seconds() - comm_s0;
    step_bytes_ += comm_.bytes_sent() - bytes0;
    steps_ += step;
    rec.train_samples_per_s = rec.train_s > 0 ? samples / rec.train_s : 0.0;
    rec.global_step = global_step_;
    for (int t = 0; t < K; t++) {
      rec.train_loss.push_back(loss_sum[t] / (double)samples);
      rec.weight.push_back(weight_sum[t] / (double)step);
    }
    rec.extra = method_->epoch_metrics(data_.train.task_names);
    for (int t = 0; t < K; t++) {  // the spread of the task weights over the epoch's steps (population s.d.)
      const double mean = rec.weight[t];
      rec.extra.emplace_back("weight_std_" + data_.train.task_names[t],
                             std::sqrt(std::max(0.0, weight_sq[t] / (double)step - mean * mean)));
    }
    if (norm_steps > 0)
      for (int t = 0; t < K; t++)  // the Gram methods: the epoch's mean ||g_t||, what the weights answer to
        rec.extra.emplace_back("grad_norm_" + data_.train.task_names[t], norm_sum[t] / (double)norm_steps);
    if (solver_steps > 0) {  // the min-norm solver's work and certificate (MGDA methods)
      rec.extra.emplace_back("solver_iterations", iterations_sum / solver_steps);
      rec.extra.emplace_back("solver_gap_mean", gap_sum / solver_steps);
      rec.extra.emplace_back("solver_gap_max", gap_max);
    }
    return rec;
  }

  // After the batches: the recipe's end of training, evaluation, selection, the files.
  void finish_epoch(EpochRecord& rec) {
    recipe_->end_training(rec.epoch - 1, *ctx_);
    if (comm_.parallel()) {
      dist::average_buffers(comm_, model_->named_buffers());  // BatchNorm's running statistics
      dist::check_replicas(comm_, replicated(), "epoch " + std::to_string(rec.epoch));
    }
    check_all_finite(model_->named_parameters(), rec.epoch, last_ckpt_);
    check_all_finite(method_->parameters(), rec.epoch, last_ckpt_);
    if (data_.val.n > 0) {
      const SetScores v = evaluate(*model_, data_.val);
      rec.val_metric = v.metric;
      rec.val_loss = v.loss;
    }
    const SetScores ts = evaluate(*model_, data_.test);
    rec.test_metric = ts.metric;
    rec.test_loss = ts.loss;
    for (auto& col : recipe_->epoch_columns(*ctx_)) rec.extra.push_back(std::move(col));
    const Selection sel = recipe_->select(rec, *ctx_);
    rec.improved = sel.improved;
    rec.best = sel.best;
    if (rec.best) {
      best_epoch_ = rec.epoch;
      best_test_ = rec.test_metric;
    }
    method_->end_epoch(EpochEnd{rec.epoch, rec.improved});
    write_epoch_files(rec);
    res_.epochs.push_back(rec);
    if (obs_) obs_->on_epoch(rec);
  }

  // Each file replaced atomically; the checkpoint last, so that it never claims an
  // epoch whose other files are missing.
  void write_epoch_files(EpochRecord& rec) {
    const bool phases = recipe_->has_phases();
    ctx_->epoch_metadata = meta_;
    ctx_->epoch_metadata["trained_epochs"] = std::to_string(rec.epoch);
    if (phases) ctx_->epoch_metadata["phase"] = rec.phase;
    dir_.save_model("last.safetensors", *model_, ctx_->epoch_metadata);
    if (rec.best) dir_.save_model("best.safetensors", *model_, ctx_->epoch_metadata);
    recipe_->epoch_files(rec, *ctx_);
    rec.epoch_s = seconds_between(epoch_start_, Clock::now());
    if (header_.empty()) {
      header_ = metrics_header(rec, res_.info, phases);
      if (!c_.resume.empty()) rows_ = RunDir::previous_rows(res_.metrics_path, header_, start_epoch_);
    }
    rows_.push_back(metrics_row(rec, res_.info, phases));
    dir_.write_metrics(header_, rows_);
    CheckpointExtra ex;
    ex.step = global_step_;
    ex.epoch = rec.epoch;
    ex.metadata = meta_;
    ex.metadata["best_criterion"] = recipe_->criterion();
    ex.metadata["best_epoch"] = std::to_string(best_epoch_);
    ex.metadata["best_test_acc"] = exact_list(best_test_);
    StFile state;
    method_->save_state(state);
    recipe_->save_state(state);
    for (const auto& kv : state.metadata) ex.metadata[kv.first] = kv.second;
    ex.tensors = std::move(state.tensors);
    dir_.save_checkpoint(*model_, *opt_, ex);
    last_ckpt_ = res_.checkpoint_path;
  }

  // result.json: what the run returns (the recipe may reload its final model first).
  TrainResult finish(bool finished) {
    res_.finished = finished;
    res_.best_epoch = best_epoch_;
    res_.best_test_metric = best_test_;
    double sps = 0;
    for (const auto& r : res_.epochs) sps += r.train_samples_per_s;
    res_.train_samples_per_s = res_.epochs.empty() ? 0.0 : sps / (double)res_.epochs.size();
    const std::vector<std::string>& tasks = res_.info.tasks;
    nlohmann::ordered_json& j = res_.result;
    j["command"] = "train";
    j["dataset"] = c_.dataset;
    j["model"] = res_.info.model;
    j["method"] = c_.method;
    j["tasks"] = tasks;
    j["metrics"] = res_.info.metrics;
    j["epochs"] = recipe_->epochs();
    j["start_epoch"] = start_epoch_;
    j["finished"] = finished;
    j["seed"] = c_.seed;
    j["threads"] = res_.info.threads;
    j["batch"] = c_.batch;
    j["lr"] = *c_.lr;
    j["train_images"] = res_.info.train_n;
    j["val_images"] = res_.info.val_n;
    j["test_images"] = res_.info.test_n;
    if (!res_.epochs.empty()) {
      const EpochRecord& last = res_.epochs.back();
      j["test_acc"] = by_task(tasks, last.test_metric, 1e4);  // per task: accuracy, or MAE for regression
      std::vector<double> percent;
      for (double m : last.test_metric) percent.push_back(100 * m);
      j["test_acc_percent"] = by_task(tasks, percent, 1e2);
      j["test_loss"] = by_task(tasks, last.test_loss, 0);
      if (!last.val_metric.empty()) j["val_acc"] = by_task(tasks, last.val_metric, 1e4);
      j["train_loss"] = by_task(tasks, last.train_loss, 0);
      j["weight"] = by_task(tasks, last.weight, 0);
    }
    j["best_epoch"] = best_epoch_;
    j["best_selection"] = recipe_->criterion();
    j["best_test_acc"] = by_task(tasks, best_test_, 1e4);
    j["train_samples_per_s"] = std::round(res_.train_samples_per_s * 10) / 10;
    if (comm_.parallel() && steps_ > 0) {  // the cost of data parallelism (rank 0's view)
      nlohmann::ordered_json& d = j["data_parallel"];
      d["ranks"] = comm_.size();
      d["steps"] = steps_;
      d["step_s"] = train_s_ / (double)steps_;                    // the loop: data, compute, communication
      d["comm_s_per_step"] = comm_s_ / (double)steps_;            // inside MPI (waiting included)
      d["gradient_allreduce_s_per_step"] = reducer_.allreduce_seconds() / (double)steps_;
      if (reducer_.profiling()) d["wait_s_per_step"] = reducer_.wait_seconds() / (double)steps_;
      d["gradient_allreduce_floats"] = reducer_.floats();
      d["bytes_sent_per_step"] = (double)step_bytes_ / (double)steps_;  // by rank 0, in the steps
    }
    if (finished) recipe_->finish(*ctx_, j);
    res_.wall_s = seconds_between(t_start_, Clock::now());
    j["wall_s"] = std::round(res_.wall_s * 1000) / 1000;
    j["out"] = c_.out;
    if (finished && !res_.epochs.empty()) dir_.write_text("result.json", j.dump(2) + "\n");
    return std::move(res_);
  }

  const Clock::time_point t_start_;
  const TrainConfig c_;  // resolved
  dist::Comm& comm_;
  dist::GradientReducer reducer_;
  double train_s_ = 0, comm_s_ = 0;  // this call's training loops, and their communication
  int64_t steps_ = 0;
  uint64_t step_bytes_ = 0;
  TrainObserver* const obs_;
  RunDir dir_;
  TrainData own_;  // the data with the validation split, when train() makes it
  const TrainData& data_;
  std::shared_ptr<MultiTaskModel> model_;
  std::unique_ptr<Method> method_;
  std::unique_ptr<Optimizer> opt_;
  std::unique_ptr<Recipe> recipe_;
  Metadata meta_;
  std::unique_ptr<RunContext> ctx_;
  TrainResult res_;
  int start_epoch_ = 0, best_epoch_ = 0;
  int64_t global_step_ = 0;
  std::vector<double> best_test_;
  std::string last_ckpt_;  // the last checkpoint a user can go back to
  std::string header_;
  std::vector<std::string> rows_;
  Clock::time_point epoch_start_;
};

}  // namespace

TrainResult train(const ModelFactory& make_model, const TrainData& data, const TrainConfig& config,
                  TrainObserver* observer, const MethodFactory& make_method) {
  validate_train_config(config, /*named=*/false);
  const TrainConfig c = resolve_train_config(config);
  if (c.threads) set_num_threads(*c.threads);
  return Run(data, config, observer).go(make_model, make_method);
}

}  // namespace mt
