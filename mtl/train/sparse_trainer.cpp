// The two-phase Chebyshev-AL training procedure with GrOWL sparsity (see sparse_trainer.h).
//
// metrics.csv columns (one row per epoch; objectives o = sparsity, then the tasks):
//   epoch (1-based over the run), phase (search | retrain), outer, outer_epoch, lr, mu, t,
//   lambda_<o>...  the multipliers and mu used during the epoch, t after it,
//   c_<o>...       constraint values c_i, mean over the epoch's batches,
//   f_<o>...       objective values f_i (f_0 = group-norm sum), mean over the epoch's batches,
//   group_sparsity, param_sparsity (percent), zero_groups (after the epoch and its GrOWL step),
//   val_acc_<task>..., val_loss_<task>..., test_acc_<task>..., test_loss_<task>...,
//   train_samples_per_s, epoch_s,
//   phase_best (1: best mean validation accuracy of the phase so far),
//   selected (1: best.safetensors was written from this epoch).
#include "mtl/train/sparse_trainer.h"

#include "mtl/train/run_util.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "layers/serialize.h"
#include "mtl/methods/chebyshev.h"
#include "mtl/methods/chebyshev_al.h"
#include "mtl/train/data_sources.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"

namespace mt {

namespace fs = std::filesystem;

namespace {

using namespace run_util;  // seconds_between, join, num, ... (mtl/train/run_util.h)

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const std::vector<std::string>& sparse_models() {
  static const std::vector<std::string> names = {"mdmtn", "hps", "mdmtn-cifar", "hps-cifar"};
  return names;
}

TrainConfig as_train_config(const SparseTrainConfig& c) {
  TrainConfig t;
  t.dataset = c.dataset;
  t.model = c.model;
  t.method = "chebyshev-al";
  t.batch = c.batch;
  t.seed = c.seed;
  t.data_seed = c.data_seed;
  t.threads = c.threads;
  t.out = c.out;
  t.resume = c.resume;
  t.force = c.force;
  t.val = c.val;
  t.train_limit = c.train_limit;
  t.test_limit = c.test_limit;
  t.data_dir = c.data_dir;
  t.fashion_dir = c.fashion_dir;
  t.cifar_dir = c.cifar_dir;
  t.source = c.source;
  return t;
}

std::string metrics_header(const std::vector<std::string>& objectives, const std::vector<std::string>& tasks) {
  std::vector<std::string> cols = {"epoch", "phase", "outer", "outer_epoch", "lr", "mu", "t"};
  for (const char* p : {"lambda_", "c_", "f_"})
    for (const auto& o : objectives) cols.push_back(p + o);
  for (const char* p : {"group_sparsity", "param_sparsity", "zero_groups"}) cols.push_back(p);
  for (const char* p : {"val_acc_", "val_loss_", "test_acc_", "test_loss_"})
    for (const auto& t : tasks) cols.push_back(p + t);
  for (const char* p : {"train_samples_per_s", "epoch_s", "phase_best", "selected"}) cols.push_back(p);
  return join(cols, ",");
}

std::string metrics_row(const SparseEpochRecord& r) {
  std::vector<std::string> v = {std::to_string(r.epoch),       r.phase,          std::to_string(r.outer),
                                std::to_string(r.outer_epoch), num("%.10g", r.lr), num("%.10g", r.mu),
                                num("%.10g", r.t)};
  for (const auto* list : {&r.lambda, &r.c_mean, &r.f_mean})
    for (double x : *list) v.push_back(num("%.10g", x));
  v.push_back(num("%.4f", r.group_sparsity));
  v.push_back(num("%.4f", r.param_sparsity));
  v.push_back(std::to_string(r.zero_groups));
  for (double x : r.val_acc) v.push_back(num("%.6f", x));
  for (double x : r.val_loss) v.push_back(num("%.10g", x));
  for (double x : r.test_acc) v.push_back(num("%.6f", x));
  for (double x : r.test_loss) v.push_back(num("%.10g", x));
  v.push_back(num("%.1f", r.train_samples_per_s));
  v.push_back(num("%.3f", r.epoch_s));
  v.push_back(r.phase_best ? "1" : "0");
  v.push_back(r.selected ? "1" : "0");
  return join(v, ",");
}

// A copy of a model's tensors (parameters and buffers) under a prefix, and back.
StFile snapshot(const MultiTaskModel& m, const std::string& prefix) {
  StFile f;
  module_to_st(m, prefix, f);
  return f;
}

void restore(const StFile& f, MultiTaskModel& m, const std::string& prefix, const std::string& path) {
  check_module_st(f, m, prefix, path);
  copy_module_st(f, m, prefix);
}

// The keys of the procedure's counters in the checkpoint metadata.
constexpr const char* kSnapSparse = "snap.search_best.";     // search phase: best epoch meeting min sparsity
constexpr const char* kSnapFallback = "snap.search_fallback.";  // search phase: best epoch overall
constexpr const char* kSnapBest = "snap.best.";              // what best.safetensors holds
constexpr const char* kMask = "mask.";
constexpr const char* kTie = "tie.";

}  // namespace

// ---- settings --------------------------------------------------------------------

std::string default_sparse_model_for(const std::string& dataset) {
  return dataset == "cifar10-mnist" ? "mdmtn-cifar" : "mdmtn";
}

SparseTrainConfig resolve_sparse_config(const SparseTrainConfig& in) {
  SparseTrainConfig c = in;
  const bool cifar = ends_with(c.model, "-cifar");
  const bool hps = c.model.compare(0, 3, "hps") == 0;
  // the reference's config.py (MultiMnist / Cifar10Mnist) for the published variant
  if (!c.mu) c.mu = c.variant == "standard" ? 1.0 : (cifar ? 6.8e-8 : 2.5e-8);
  if (!c.min_sparsity) c.min_sparsity = cifar ? (hps ? 5.0 : 10.0) : (hps ? 10.0 : 20.0);
  if (!c.max_layer_sparsity) c.max_layer_sparsity = cifar ? (hps ? 0.15 : 0.3) : 0.8;
  if (!c.sim_preference) c.sim_preference = cifar ? 0.8 : 0.7;
  if (!c.lr) c.lr = cifar ? 1e-4 : 2.5e-3;
  if (!c.lr_decay) c.lr_decay = cifar ? 0.98 : 0.5;
  if (c.out.empty())
    c.out = c.resume.empty() ? "runs/" + c.dataset + "-chebyshev-al-s" + std::to_string(c.seed) : parent_dir(c.resume);
  return c;
}

void validate_sparse_config(const SparseTrainConfig& in) {
  const SparseTrainConfig c = resolve_sparse_config(in);
  if (std::find(train_dataset_names().begin(), train_dataset_names().end(), c.dataset) == train_dataset_names().end())
    throw UsageError("unknown dataset '" + c.dataset + "' (valid: " + join(train_dataset_names(), ", ") + ")");
  validate_data_source(as_train_config(c));
  if (std::find(sparse_models().begin(), sparse_models().end(), c.model) == sparse_models().end())
    throw UsageError("--method chebyshev-al needs --model " + join(sparse_models(), ", ") + " (got '" + c.model + "')");
  if (c.batch < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(c.batch));
  if (c.threads < 0) throw UsageError("--threads must be >= 1, got " + std::to_string(c.threads));
  if (c.val < 1)
    throw UsageError("--val must be >= 1 for --method chebyshev-al (the model selection uses a validation set), got " +
                     std::to_string(c.val));
  if (c.train_limit < 0) throw UsageError("--train-limit must be >= 1 (or 0 for all), got " + std::to_string(c.train_limit));
  if (c.test_limit < 0) throw UsageError("--test-limit must be >= 1 (or 0 for all), got " + std::to_string(c.test_limit));
  if (c.stop_after < 0) throw UsageError("--stop-after must be >= 1, got " + std::to_string(c.stop_after));
  // the preference vector: length checked against the data set later
  if (c.prefs.empty()) throw UsageError("--prefs needs K+1 values (k_0 for sparsity, then one per task)");
  for (size_t i = 0; i < c.prefs.size(); i++) {
    if (!std::isfinite(c.prefs[i])) throw UsageError("--prefs entry k_" + std::to_string(i) + " is not a finite number");
    if (c.prefs[i] < 0)
      throw UsageError("--prefs has a negative entry k_" + std::to_string(i) + " = " + short_num(c.prefs[i]) +
                       " (preferences must be >= 0)");
  }
  if (std::all_of(c.prefs.begin(), c.prefs.end(), [](double k) { return k == 0; }))
    throw UsageError("--prefs are all zero (at least one preference must be > 0)");
  if (!c.ref_point.empty() && c.ref_point.size() != c.prefs.size())
    throw UsageError("--ref-point needs one value per objective like --prefs (" + std::to_string(c.prefs.size()) +
                     "), got " + std::to_string(c.ref_point.size()));
  for (double a : c.ref_point)
    if (!std::isfinite(a)) throw UsageError("--ref-point must be finite");
  if (!(c.eps >= 0) || !std::isfinite(c.eps)) throw UsageError("--eps must be >= 0, got " + short_num(c.eps));
  if (!(*c.mu > 0) || !std::isfinite(*c.mu)) throw UsageError("--mu must be > 0, got " + short_num(*c.mu));
  if (!(c.rho >= 1) || !std::isfinite(c.rho)) throw UsageError("--rho must be >= 1, got " + short_num(c.rho));
  try {
    parse_al_variant(c.variant);
  } catch (const Error&) {
    throw UsageError("unknown --al-variant '" + c.variant + "' (valid: published, standard)");
  }
  try {
    ChebyshevConfig{c.prefs, c.ref_point, c.eps}.validate((int)c.prefs.size());
  } catch (const Error& e) {
    throw UsageError(std::string("--prefs: ") + e.what());
  }
  if (c.search_iters < 1) throw UsageError("--search-iters must be >= 1, got " + std::to_string(c.search_iters));
  if (c.retrain_iters < 0) throw UsageError("--retrain-iters must be >= 0, got " + std::to_string(c.retrain_iters));
  if (c.epochs_per_iter < 1)
    throw UsageError("--epochs-per-iter must be >= 1, got " + std::to_string(c.epochs_per_iter));
  if (!(*c.min_sparsity >= 0 && *c.min_sparsity <= 100))
    throw UsageError("--min-sparsity must be a percentage in [0, 100], got " + short_num(*c.min_sparsity));
  if (!(*c.max_layer_sparsity >= 0 && *c.max_layer_sparsity <= 1))
    throw UsageError("--max-layer-sparsity must be in [0, 1], got " + short_num(*c.max_layer_sparsity));
  if (!std::isfinite(*c.sim_preference))
    throw UsageError("--sim-preference must be finite, got " + short_num(*c.sim_preference));
  if (!(*c.lr > 0) || !std::isfinite(*c.lr)) throw UsageError("--lr must be > 0, got " + short_num(*c.lr));
  if (!(*c.lr_decay > 0) || !std::isfinite(*c.lr_decay))
    throw UsageError("--lr-decay must be > 0, got " + short_num(*c.lr_decay));
  if (c.data_dir.empty()) throw UsageError("--data-dir must not be empty");
  if (!c.resume.empty()) {
    std::error_code ec;
    if (!fs::exists(c.resume, ec)) throw UsageError("--resume " + c.resume + ": no such file");
    if (!fs::is_regular_file(c.resume, ec)) throw UsageError("--resume " + c.resume + ": not a regular file");
  }
}

std::vector<std::string> objective_names(const std::vector<std::string>& tasks) {
  std::vector<std::string> v = {"sparsity"};
  v.insert(v.end(), tasks.begin(), tasks.end());
  return v;
}

SparseData load_sparse_data(const SparseTrainConfig& c) {
  TrainTestSets sets = load_train_test(as_train_config(c));
  SparseData d;
  d.metadata = sets.metadata;
  d.train = take_first(sets.train, c.train_limit);
  d.test = take_first(sets.test, c.test_limit);
  sets = TrainTestSets{};
  if (c.val >= d.train.n)
    throw UsageError("--val " + std::to_string(c.val) + " must be smaller than the training set (" +
                     std::to_string(d.train.n) + " images)");
  auto parts = split_validation(d.train, c.val, c.seed);  // (train, validation)
  d.train = std::move(parts.first);
  d.val = std::move(parts.second);
  return d;
}

// ---- training -----------------------------------------------------------------------

SparseTrainResult train_chebyshev_al(const SparseTrainConfig& config, SparseTrainObserver* obs,
                                     const SparseData* data_in) {
  const auto t_start = Clock::now();
  validate_sparse_config(config);
  const SparseTrainConfig c = resolve_sparse_config(config);
  if (c.threads > 0) set_num_threads(c.threads);
  check_run_out_dir(as_train_config(c));

  // Data: read and checked before any file is written.
  SparseData own;
  if (!data_in) own = load_sparse_data(c);
  const SparseData& data = data_in ? *data_in : own;
  const int K = data.train.num_tasks();
  const std::vector<std::string>& task_names = data.train.task_names;
  const std::vector<std::string> obj_names = objective_names(task_names);
  if ((int)c.prefs.size() != K + 1)
    throw UsageError("--prefs has " + std::to_string(c.prefs.size()) + " values; dataset " + c.dataset + " has " +
                     std::to_string(K) + " task" + (K == 1 ? "" : "s") + " (" + join(task_names, ", ") +
                     "), so it needs " + std::to_string(K + 1) + ": k_0 for sparsity, then one per task");

  // Model, method, optimizer.
  const std::string arch = c.model;
  const bool sparse = c.prefs[0] > 0;  // k_0 > 0: LSUV, GrOWL, mask and tying (as the reference)
  const std::vector<Task> tasks = tasks_for_model(arch, task_names, data.train.num_classes, data.train.binary);
  manual_seed(c.seed);
  std::shared_ptr<MultiTaskModel> model = make_model(arch, tasks, {data.train.c, data.train.h, data.train.w});
  const ChebyshevConfig ccfg{c.prefs, c.ref_point, c.eps};
  const AlVariant variant = parse_al_variant(c.variant);
  std::unique_ptr<ChebyshevAL> method = make_chebyshev_al(K, ccfg, variant, *c.mu, c.rho);
  auto make_optimizer = [&] {
    NamedTensors params = model->named_parameters();
    for (const auto& p : method->parameters()) params.push_back(p);
    return std::make_unique<Adam>(params, *c.lr);
  };
  std::unique_ptr<Optimizer> opt = make_optimizer();

  const int epi = c.epochs_per_iter;
  const int search_epochs = c.search_iters * epi;
  const int total_epochs = search_epochs + c.retrain_iters * epi;

  std::vector<std::string> classes;
  for (int n : data.train.num_classes) classes.push_back(std::to_string(n));
  Metadata meta = {{"architecture", arch},
                   {"tasks", join(task_names, ",")},
                   {"classes", join(classes, ",")},
                   {"dataset", c.dataset},
                   {"input_shape", std::to_string(data.train.c) + "," + std::to_string(data.train.h) + "," +
                                       std::to_string(data.train.w)},
                   {"method", "chebyshev-al"},
                   {"seed", std::to_string(c.seed)},
                   {"data_seed", std::to_string(c.data_seed)},
                   {"prefs", exact_list(c.prefs)},
                   {"ref_point", exact_list(c.ref_point)},
                   {"eps", exact_str(c.eps)},
                   {"al_variant", c.variant},
                   {"mu0", exact_str(*c.mu)},
                   {"rho", exact_str(c.rho)},
                   {"lr0", exact_str(*c.lr)},
                   {"lr_decay", exact_str(*c.lr_decay)},
                   {"search_iters", std::to_string(c.search_iters)},
                   {"epochs_per_iter", std::to_string(epi)},
                   {"min_sparsity", exact_str(*c.min_sparsity)},
                   {"max_layer_sparsity", exact_str(*c.max_layer_sparsity)},
                   {"sim_preference", exact_str(*c.sim_preference)},
                   {"batch", std::to_string(c.batch)}};
  for (const Task& t : tasks)
    if (t.loss == TaskLoss::BinaryLogits) meta["binary"] = binary_flags_str(data.train.binary, (size_t)K);
  for (const auto& kv : data.metadata) meta[kv.first] = kv.second;

  // The procedure's state (all of it in the checkpoint).
  int done = 0;                     // epochs completed
  int64_t global_step = 0;
  bool transitioned = false;        // the retrain phase has been set up
  double phase_best_score = -1;     // best mean validation accuracy of the current phase (-1: none yet)
  std::vector<double> best_c_sum((size_t)K + 1, 0.0);  // epoch_constraint_sum of that epoch
  double sparse_best_score = -1;    // search: best mean val accuracy with group sparsity >= min
  int sparse_best_epoch = 0, fallback_epoch = 0, best_epoch = 0;
  double sparse_best_t = 0, fallback_t = 0;  // t of those epochs (it goes with their model)
  std::vector<double> best_test_acc;
  StFile snap_sparse, snap_fallback, snap_best;
  PruneMask mask;
  ParameterTying tie;
  const std::string header = metrics_header(obj_names, task_names);
  std::vector<std::string> rows;

  if (!c.resume.empty()) {
    CheckpointExtra ex;
    StFile st;
    try {
      Metadata expect = meta;
      ex = load_checkpoint(c.resume, *model, *opt, expect);
      st.metadata = ex.metadata;
      st.tensors = ex.tensors;
      method->load_state(st, c.resume);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw Error(std::string("cannot resume: ") + e.what());
    }
    auto need = [&](const char* key) -> std::string {
      const std::string* v = find_meta(ex.metadata, key);
      if (!v) throw Error("cannot resume: " + c.resume + ": metadata '" + key + "' missing (not a chebyshev-al checkpoint)");
      return *v;
    };
    done = (int)ex.epoch;
    global_step = ex.step;
    transitioned = need("sparse.transitioned") == "1";
    phase_best_score = std::strtod(need("sparse.phase_best_score").c_str(), nullptr);
    best_c_sum = parse_doubles(need("sparse.best_c_sum"));
    sparse_best_score = std::strtod(need("sparse.sparse_best_score").c_str(), nullptr);
    sparse_best_epoch = std::atoi(need("sparse.sparse_best_epoch").c_str());
    fallback_epoch = std::atoi(need("sparse.fallback_epoch").c_str());
    sparse_best_t = std::strtod(need("sparse.sparse_best_t").c_str(), nullptr);
    fallback_t = std::strtod(need("sparse.fallback_t").c_str(), nullptr);
    best_epoch = std::atoi(need("sparse.best_epoch").c_str());
    best_test_acc = parse_doubles(need("sparse.best_test_acc"));
    if (best_c_sum.size() != (size_t)K + 1) throw Error("cannot resume: " + c.resume + ": bad sparse.best_c_sum");
    auto take = [&](const char* prefix, StFile& into) {
      for (const auto& kv : st.tensors)
        if (kv.first.compare(0, std::strlen(prefix), prefix) == 0) into.tensors.insert(kv);
    };
    take(kSnapBest, snap_best);
    take(kSnapSparse, snap_sparse);
    take(kSnapFallback, snap_fallback);
    try {
      if (best_epoch > 0) check_module_st(snap_best, *model, kSnapBest, c.resume);
      if (!transitioned && sparse_best_epoch > 0) check_module_st(snap_sparse, *model, kSnapSparse, c.resume);
      if (!transitioned && fallback_epoch > 0) check_module_st(snap_fallback, *model, kSnapFallback, c.resume);
      if (transitioned && sparse) {
        mask = PruneMask::load(st, kMask, *model, c.resume);
        tie = ParameterTying::load(st, kTie, *model, c.resume);
      }
    } catch (const Error& e) {
      throw Error(std::string("cannot resume: ") + e.what());
    }
    if (done >= total_epochs)
      throw UsageError("--resume " + c.resume + " has already trained all " + std::to_string(done) +
                       " epochs of the procedure (" + std::to_string(c.search_iters) + " search + " +
                       std::to_string(c.retrain_iters) + " retrain iterations of " + std::to_string(epi) +
                       " epochs); pass a larger --retrain-iters to continue");
    rows = previous_rows((fs::path(parent_dir(c.resume)) / "metrics.csv").string(), header, done);
  }

  Loader train_loader(data.train, c.batch, true, c.seed);

  SparseTrainResult res;
  res.config = c;
  const fs::path out(c.out);
  res.metrics_path = (out / "metrics.csv").string();
  res.config_path = (out / "config.json").string();
  res.last_path = (out / "last.safetensors").string();
  res.best_path = (out / "best.safetensors").string();
  res.checkpoint_path = (out / "checkpoint.safetensors").string();
  res.result_path = (out / "result.json").string();
  const std::string search_best_path = (out / "search_best.safetensors").string();
  const std::string search_fallback_path = (out / "search_fallback.safetensors").string();

  RunInfo& info = res.info;
  info.tasks = task_names;
  info.model = arch;
  info.start_epoch = done;
  info.epochs = total_epochs;
  info.batches_per_epoch = train_loader.batches_per_epoch();
  info.train_n = data.train.n;
  info.val_n = data.val.n;
  info.test_n = data.test.n;
  info.threads = num_threads();
  info.num_parameters = model->num_parameters();
  info.out = c.out;
  info.resumed_from = c.resume;
  if (obs) obs->on_start(info);

  nlohmann::ordered_json cfg;
  cfg["command"] = "train";
  cfg["method"] = "chebyshev-al";
  cfg["al_variant"] = c.variant;
  cfg["dataset"] = c.dataset;
  cfg["model"] = arch;
  cfg["tasks"] = task_names;
  cfg["classes"] = data.train.num_classes;
  cfg["input_shape"] = {data.train.c, data.train.h, data.train.w};
  cfg["num_parameters"] = info.num_parameters;
  cfg["prefs"] = c.prefs;
  cfg["objectives"] = obj_names;
  cfg["ref_point"] = c.ref_point.empty() ? std::vector<double>((size_t)K + 1, 0.0) : c.ref_point;
  cfg["eps"] = c.eps;
  cfg["mu0"] = *c.mu;
  cfg["rho"] = c.rho;
  cfg["lambda0"] = std::vector<double>((size_t)K + 1, 1.0 / (K + 1));
  cfg["search_iters"] = c.search_iters;
  cfg["retrain_iters"] = c.retrain_iters;
  cfg["epochs_per_iter"] = epi;
  cfg["epochs"] = total_epochs;
  cfg["sparsity_phases"] = sparse;
  cfg["min_sparsity"] = *c.min_sparsity;
  cfg["max_layer_sparsity"] = *c.max_layer_sparsity;
  cfg["growl"] = {{"type", "spike"}, {"eta", 1.0}, {"beta1", 0.8}, {"beta2", 0.2}};
  cfg["sim_preference"] = *c.sim_preference;
  cfg["optimizer"] = "adam";
  cfg["lr"] = *c.lr;
  cfg["lr_decay"] = *c.lr_decay;
  cfg["batch"] = c.batch;
  cfg["seed"] = c.seed;
  cfg["data_seed"] = c.data_seed;
  cfg["threads"] = info.threads;
  cfg["val"] = c.val;
  cfg["best_selection"] = "val_acc";
  cfg["train_limit"] = c.train_limit;
  cfg["test_limit"] = c.test_limit;
  cfg["train_images"] = data.train.n;
  cfg["val_images"] = data.val.n;
  cfg["test_images"] = data.test.n;
  cfg["data_dir"] = c.data_dir;
  cfg["fashion_dir"] = c.fashion_dir;
  if (c.dataset == "cifar10-mnist") cfg["cifar_dir"] = cifar_dir_or_default(c.cifar_dir);
  for (const auto& kv : data.metadata) cfg[kv.first] = kv.second;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& f : dataset_files(c.dataset, c.data_dir, c.fashion_dir))
    files.push_back({{"path", f.path}, {"sha256", f.sha256}});
  cfg["data_files"] = files;
  cfg["out"] = c.out;
  if (!c.resume.empty()) {
    cfg["resumed_from"] = c.resume;
    cfg["start_epoch"] = done;
  }
  cfg["format"] = kFormatName;

  // LSUV initialisation on the first `batch` training images (the search phase with k_0 > 0).
  if (done == 0 && sparse) {
    Loader first(data.train, c.batch, false, 0);
    first.start_epoch(0);
    Batch b;
    first.next(b);
    lsuv_init(*model, Tensor::from({b.n, b.c, b.h, b.w}, b.x));
    if (obs) obs->on_note("LSUV initialisation on " + std::to_string(b.n) + " training images");
  }

  // Between the phases: the selected search model, mask, tying, fresh multipliers and Adam.
  auto start_retrain = [&]() {
    const bool use_sparse = sparse && sparse_best_epoch > 0;
    if (use_sparse) restore(snap_sparse, *model, kSnapSparse, "search selection");
    else restore(snap_fallback, *model, kSnapFallback, "search selection");
    const double t_keep = use_sparse ? sparse_best_t : fallback_t;  // the selected epoch's t
    std::string note = "retrain phase: epoch " + std::to_string(use_sparse ? sparse_best_epoch : fallback_epoch) +
                       " of the search phase reloaded";
    if (sparse) {
      mask = PruneMask::record(*model);
      TieOptions to;
      to.preference = *c.sim_preference;
      tie = ParameterTying::cluster(*model, to);
      tie.apply(*model);
      note += use_sparse ? " (best validation accuracy with group sparsity >= " + short_num(*c.min_sparsity) + "%)"
                         : " (no epoch reached --min-sparsity " + short_num(*c.min_sparsity) +
                               "%: the best validation accuracy overall)";
      note += "; " + std::to_string(mask.pruned_groups()) + " groups pruned, " + std::to_string(tie.tied_groups()) +
              " groups tied into " + std::to_string(tie.clusters()) + " clusters";
    }
    method = std::make_unique<ChebyshevAL>(K, ccfg, variant, make_al_state(K + 1, *c.mu, c.rho), t_keep);
    opt = make_optimizer();
    phase_best_score = -1;
    best_c_sum.assign((size_t)K + 1, 0.0);
    snap_sparse = StFile{};
    snap_fallback = StFile{};
    transitioned = true;
    if (obs) obs->on_note(note);
  };

  std::string last_ckpt = c.resume;
  bool out_ready = false;
  int e = done;
  for (; e < total_epochs; e++) {
    if (c.stop_after > 0 && e >= c.stop_after) break;
    const bool search = e < search_epochs;
    if (!search && !transitioned) start_retrain();
    const auto t0 = Clock::now();
    SparseEpochRecord rec;
    rec.epoch = e + 1;
    rec.epochs = total_epochs;
    rec.phase = search ? "search" : "retrain";
    const int k = (search ? e : e - search_epochs) / epi;  // outer iteration in the phase, 0-based
    rec.outer = k + 1;
    rec.outers = search ? c.search_iters : c.retrain_iters;
    rec.outer_epoch = (search ? e : e - search_epochs) % epi + 1;
    rec.lr = *c.lr * std::pow(*c.lr_decay, k);
    rec.lambda = method->state().lambda;
    rec.mu = method->state().mu;
    opt->set_lr(rec.lr);
    method->reset_epoch();
    model->train();
    train_loader.start_epoch(e);
    std::vector<double> f_sum((size_t)K + 1, 0.0);
    int64_t samples = 0;
    int step = 0;
    Batch b;
    while (train_loader.next(b)) {
      step++;
      global_step++;
      Tensor x = Tensor::from({b.n, b.c, b.h, b.w}, b.x);
      opt->zero_grad();
      const StepStats st = method->compute_gradients(*model, x, b.y);
      const std::vector<double>& f = method->last_objectives();
      for (int i = 0; i <= K; i++)
        if (!std::isfinite(f[i]))
          throw DivergedError("non-finite objective f_" + std::to_string(i) + " (" + obj_names[i] + ": " +
                              nonfinite_name(f[i]) + ") at epoch " + std::to_string(e + 1) + ", step " +
                              std::to_string(step) + "; stopping \xe2\x80\x94 " +
                              (last_ckpt.empty() ? "no checkpoint yet" : "last good checkpoint: " + last_ckpt));
      if (!std::isfinite(method->last_value()))
        throw DivergedError("non-finite augmented Lagrangian at epoch " + std::to_string(e + 1) + ", step " +
                            std::to_string(step) + "; stopping \xe2\x80\x94 " +
                            (last_ckpt.empty() ? "no checkpoint yet" : "last good checkpoint: " + last_ckpt));
      if (!search && sparse) mask.zero_grads(*model);
      opt->step();
      if (!search && sparse) {
        mask.apply(*model);  // pruned groups stay exactly 0
        tie.apply(*model);   // clusters stay tied
      }
      for (int i = 0; i <= K; i++) f_sum[i] += f[i];
      samples += b.n;
      if (obs)
        obs->on_batch(batch_info(e + 1, total_epochs, step, train_loader.batches_per_epoch(), global_step, st,
                                 samples, t0));
    }
    rec.train_s = seconds_between(t0, Clock::now());
    rec.train_samples_per_s = rec.train_s > 0 ? samples / rec.train_s : 0.0;
    const int64_t nb = std::max<int64_t>(1, method->epoch_batches());
    for (int i = 0; i <= K; i++) {
      rec.c_mean.push_back(method->epoch_constraint_sum()[i] / (double)nb);
      rec.f_mean.push_back(f_sum[i] / (double)nb);
    }
    if (search && sparse)
      apply_growl(*model, 1.0, 0.8, 0.2, "spike", *c.max_layer_sparsity, k, c.search_iters);
    check_all_finite(model->named_parameters(), e + 1, last_ckpt);
    check_all_finite(method->parameters(), e + 1, last_ckpt);
    rec.t = method->t();

    const SetScores v = evaluate(*model, data.val);
    const SetScores ts = evaluate(*model, data.test);
    rec.val_acc = v.acc;
    rec.val_loss = v.loss;
    rec.test_acc = ts.acc;
    rec.test_loss = ts.loss;
    const SparsityReport rep = sparsity_report(*model);
    rec.group_sparsity = rep.group_sparsity;
    rec.param_sparsity = rep.param_sparsity;
    rec.zero_groups = rep.zero_groups;
    rec.groups = rep.groups;

    // Selection (validation only; the test set is never used for it).
    const double score = mean_of(v.acc);
    rec.phase_best = phase_best_score < 0 || score > phase_best_score;
    if (rec.phase_best) {
      phase_best_score = score;
      best_c_sum = method->epoch_constraint_sum();
    }
    if (search) {
      if (sparse && rep.group_sparsity >= *c.min_sparsity && score > sparse_best_score) {
        sparse_best_score = score;
        sparse_best_epoch = e + 1;
        sparse_best_t = rec.t;
        snap_sparse = snapshot(*model, kSnapSparse);
        rec.selected = true;
      }
      if (rec.phase_best) {
        fallback_epoch = e + 1;
        fallback_t = rec.t;
        snap_fallback = snapshot(*model, kSnapFallback);
        if (sparse_best_epoch == 0) rec.selected = true;
      }
    } else {
      rec.selected = rec.phase_best;
    }
    if (rec.selected) {
      best_epoch = e + 1;
      best_test_acc = ts.acc;
      snap_best = snapshot(*model, kSnapBest);
    }
    // End of an outer iteration: lambda <- lambda + mu c, mu <- rho mu, with c
    //   published: as the reference, summed over the batches of the best-validation epoch so far;
    //   standard:  the textbook update at the current iterate: c averaged over this epoch's batches.
    if (rec.outer_epoch == epi)
      method->outer_update(method->variant() == AlVariant::Standard ? rec.c_mean : best_c_sum);

    // Files, each replaced atomically; the checkpoint last.
    make_out_dir_once(out_ready, out, res.config_path, cfg.dump(2) + "\n");
    Metadata model_meta = meta;
    model_meta["trained_epochs"] = std::to_string(rec.epoch);
    model_meta["phase"] = rec.phase;
    save_module(res.last_path, *model, model_meta);
    if (rec.selected) save_module(res.best_path, *model, model_meta);
    if (search && rec.selected && sparse_best_epoch == e + 1) save_module(search_best_path, *model, model_meta);
    if (search && rec.phase_best) save_module(search_fallback_path, *model, model_meta);
    rec.epoch_s = seconds_between(t0, Clock::now());
    rows.push_back(metrics_row(rec));
    write_metrics_csv(res.metrics_path, header, rows);

    CheckpointExtra ex;
    ex.step = global_step;
    ex.epoch = rec.epoch;
    ex.metadata = meta;
    ex.metadata["sparse.transitioned"] = transitioned ? "1" : "0";
    ex.metadata["sparse.phase_best_score"] = exact_str(phase_best_score);
    ex.metadata["sparse.best_c_sum"] = exact_list(best_c_sum);
    ex.metadata["sparse.sparse_best_score"] = exact_str(sparse_best_score);
    ex.metadata["sparse.sparse_best_epoch"] = std::to_string(sparse_best_epoch);
    ex.metadata["sparse.fallback_epoch"] = std::to_string(fallback_epoch);
    ex.metadata["sparse.sparse_best_t"] = exact_str(sparse_best_t);
    ex.metadata["sparse.fallback_t"] = exact_str(fallback_t);
    ex.metadata["sparse.best_epoch"] = std::to_string(best_epoch);
    ex.metadata["sparse.best_test_acc"] = exact_list(best_test_acc);
    ex.metadata["retrain_iters"] = std::to_string(c.retrain_iters);  // informative; may change on resume
    StFile st;
    method->save_state(st);
    if (transitioned && sparse) {
      mask.save(st, kMask);
      tie.save(st, kTie);
    }
    for (const StFile* s : {&snap_best, &snap_sparse, &snap_fallback})
      for (const auto& kv : s->tensors) st.tensors.insert(kv);
    for (const auto& kv : st.metadata) ex.metadata[kv.first] = kv.second;
    ex.tensors = std::move(st.tensors);
    save_checkpoint(res.checkpoint_path, *model, *opt, ex);
    last_ckpt = res.checkpoint_path;

    res.epochs.push_back(rec);
    if (obs) obs->on_epoch(rec);
  }

  res.finished = e >= total_epochs;
  res.best_epoch = best_epoch;
  res.search_found_sparse = sparse_best_epoch > 0;
  res.lambda = method->state().lambda;
  res.mu = method->state().mu;
  res.t = method->t();
  res.pruned_groups = mask.pruned_groups();
  res.clusters = tie.clusters();
  res.tied_groups = tie.tied_groups();
  if (res.finished) {
    // The final model: best.safetensors (the retrain phase's best validation epoch).
    if (best_epoch > 0) restore(snap_best, *model, kSnapBest, "best model");
    res.test = evaluate(*model, data.test);
    res.objectives = {group_norm_sum_value(*model)};
    for (double l : res.test.loss) res.objectives.push_back(l);
    res.sparsity = sparsity_report(*model);
    res.sparsity_text = format_sparsity(res.sparsity);
    res.wall_s = seconds_between(t_start, Clock::now());
    write_text_atomic(res.result_path, sparse_result_json(res).dump(2) + "\n");
  }
  res.wall_s = seconds_between(t_start, Clock::now());
  return res;
}

nlohmann::ordered_json sparse_result_json(const SparseTrainResult& r) {
  const SparseTrainConfig& c = r.config;
  const std::vector<std::string>& tasks = r.info.tasks;
  nlohmann::ordered_json j;
  j["command"] = "train";
  j["method"] = "chebyshev-al";
  j["variant"] = c.variant;
  j["dataset"] = c.dataset;
  j["model"] = r.info.model;
  j["tasks"] = tasks;
  j["prefs"] = c.prefs;
  j["ref_point"] = c.ref_point.empty() ? std::vector<double>(tasks.size() + 1, 0.0) : c.ref_point;
  j["eps"] = c.eps;
  j["mu0"] = c.mu ? *c.mu : 0.0;
  j["rho"] = c.rho;
  j["search_iters"] = c.search_iters;
  j["retrain_iters"] = c.retrain_iters;
  j["epochs_per_iter"] = c.epochs_per_iter;
  j["epochs"] = r.info.epochs;
  j["start_epoch"] = r.info.start_epoch;
  j["finished"] = r.finished;
  j["seed"] = c.seed;
  j["threads"] = r.info.threads;
  j["batch"] = c.batch;
  j["lr"] = c.lr ? *c.lr : 0.0;
  j["train_images"] = r.info.train_n;
  j["val_images"] = r.info.val_n;
  j["test_images"] = r.info.test_n;
  if (r.finished) {
    nlohmann::ordered_json acc = nlohmann::ordered_json::object(), loss = nlohmann::ordered_json::object();
    for (size_t t = 0; t < tasks.size() && t < r.test.acc.size(); t++) {
      acc[tasks[t]] = std::round(r.test.acc[t] * 1e4) / 1e4;
      loss[tasks[t]] = r.test.loss[t];
    }
    j["test_acc"] = acc;
    j["test_loss"] = loss;
    j["objective_names"] = objective_names(tasks);
    j["objectives"] = r.objectives;
    const SparsityReport& s = r.sparsity;
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
    j["pruned_groups"] = r.pruned_groups;
    j["clusters"] = r.clusters;
    j["tied_groups"] = r.tied_groups;
    j["sparsity_report"] = r.sparsity_text;
  }
  j["lambda"] = r.lambda;
  j["mu"] = r.mu;
  j["t"] = r.t;
  j["best_epoch"] = r.best_epoch;
  j["search_found_sparse"] = r.search_found_sparse;
  j["wall_s"] = std::round(r.wall_s * 1000) / 1000;
  j["out"] = c.out;
  return j;
}

}  // namespace mt
