// The training loop and evaluation behind `mtl train` and `mtl eval` (see trainer.h).
#include "mtl/train/trainer.h"
#include "mtl/train/run_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "layers/serialize.h"
#include "mtl/train/data_sources.h"
#include "mtl/methods/method.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/schedule.h"
#include "optim/sgd.h"

namespace mt {

namespace fs = std::filesystem;

namespace {

using namespace run_util;  // seconds_between, join, num, ... (mtl/train/run_util.h)

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

// Writes PATH.tmp.<pid>, fsyncs it and renames it onto PATH.
void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error(path + ": cannot write: " + std::strerror(errno));
  size_t done = 0;
  bool ok = true;
  while (ok && done < text.size()) {
    ssize_t w = ::write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) ok = false; else done += (size_t)w;
  }
  const int err = ok ? 0 : errno;
  ok = ok && ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = err ? err : errno;
    ::unlink(tmp.c_str());
    throw Error(path + ": cannot write: " + std::strerror(e));
  }
}

bool is_mgda(const std::string& method) { return method == "mgda" || method == "mgda-ub"; }

// Where the run's files go must be usable before any work starts: a
// directory (or creatable as one) that is writable, and not another run's
// files unless --force or resuming that very run.
void check_out_dir(const TrainConfig& c) {
  std::error_code ec;
  const fs::path out(c.out);
  if (fs::exists(out, ec)) {
    if (!fs::is_directory(out, ec)) throw UsageError("--out " + c.out + " exists and is not a directory");
    const bool holds_run = fs::exists(out / "metrics.csv", ec) || fs::exists(out / "checkpoint.safetensors", ec);
    bool same_run = false;
    if (!c.resume.empty()) same_run = fs::equivalent(fs::path(parent_dir(c.resume)), out, ec);
    if (holds_run && !same_run && !c.force)
      throw UsageError("--out " + c.out + " already holds a run (metrics.csv, checkpoint.safetensors); continue it " +
                       "with --resume " + (out / "checkpoint.safetensors").string() +
                       ", replace it with --force, or choose another --out");
    if (::access(c.out.c_str(), W_OK) != 0) throw UsageError("--out " + c.out + " is not writable");
    return;
  }
  // The nearest existing ancestor must be a writable directory.
  fs::path p = fs::absolute(out, ec).parent_path();
  while (!p.empty() && !fs::exists(p, ec) && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec))
    throw UsageError("--out " + c.out + ": cannot be created (" + p.string() + " is not a directory)");
  if (::access(p.c_str(), W_OK) != 0)
    throw UsageError("--out " + c.out + ": cannot be created (" + p.string() + " is not writable)");
}

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& c, NamedParams params) {
  if (c.optimizer == "sgd") return std::make_unique<SGD>(std::move(params), c.lr, c.momentum, 0.0, c.weight_decay);
  if (c.optimizer == "adam") return std::make_unique<Adam>(std::move(params), c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
  return std::make_unique<AdamW>(std::move(params), c.lr, 0.9, 0.999, 1e-8, c.weight_decay);
}

std::string metrics_header(const std::vector<std::string>& tasks, bool has_val) {
  std::vector<std::string> cols = {"epoch", "lr"};
  for (const auto& t : tasks) cols.push_back("train_loss_" + t);
  for (const auto& t : tasks) cols.push_back("weight_" + t);
  if (has_val) {
    for (const auto& t : tasks) cols.push_back("val_acc_" + t);
    for (const auto& t : tasks) cols.push_back("val_loss_" + t);
  }
  for (const auto& t : tasks) cols.push_back("test_acc_" + t);
  for (const auto& t : tasks) cols.push_back("test_loss_" + t);
  cols.push_back("train_samples_per_s");
  cols.push_back("epoch_s");
  return join(cols, ",");
}

std::string metrics_row(const EpochRecord& r) {
  std::vector<std::string> v = {std::to_string(r.epoch), num("%.10g", r.lr)};
  for (double x : r.train_loss) v.push_back(num("%.10g", x));
  for (double x : r.weight) v.push_back(num("%.10g", x));
  for (double x : r.val_acc) v.push_back(num("%.6f", x));
  for (double x : r.val_loss) v.push_back(num("%.10g", x));
  for (double x : r.test_acc) v.push_back(num("%.6f", x));
  for (double x : r.test_loss) v.push_back(num("%.10g", x));
  v.push_back(num("%.1f", r.train_samples_per_s));
  v.push_back(num("%.3f", r.epoch_s));
  return join(v, ",");
}

}  // namespace

// ---- helpers ------------------------------------------------------------------

void write_text_atomic(const std::string& path, const std::string& text) { write_file_atomic(path, text); }
void check_run_out_dir(const TrainConfig& c) { check_out_dir(c); }

std::string default_out_dir(const TrainConfig& c) {
  return "runs/" + c.dataset + "-" + c.method + "-s" + std::to_string(c.seed);
}

TaskLoss task_loss_for_model(const std::string&) {
  // Every architecture of the registry builds its heads for the Task's loss;
  // log-softmax heads with NLL (the MGDA paper's code) for all of them.
  return TaskLoss::LogProbNll;
}

MultiImageSet take_first(const MultiImageSet& set, int n) {
  if (n <= 0 || n >= set.n) return set;
  MultiImageSet o;
  o.n = n;
  o.c = set.c;
  o.h = set.h;
  o.w = set.w;
  o.pixels.assign(set.pixels.begin(), set.pixels.begin() + (ptrdiff_t)(set.image_size() * (size_t)n));
  o.task_names = set.task_names;
  o.num_classes = set.num_classes;
  o.binary = set.binary;
  for (const auto& l : set.labels) o.labels.emplace_back(l.begin(), l.begin() + n);
  o.mean = set.mean;
  o.std = set.std;
  return o;
}

std::vector<DataFileRecord> dataset_files(const std::string& dataset, const std::string& data_dir,
                                          const std::string& fashion_dir) {
  // cifar10-mnist: only its MNIST files; the CIFAR-10 files have no catalogued sha256 (they are
  // read unverified from cifar_dir, which config.json records)
  const bool mnist = dataset == "multimnist" || dataset == "mnist" || dataset == "multifashion-mnist" ||
                     dataset == "mnist-grid" || dataset == "cifar10-mnist";
  const bool fashion = dataset == "fashion" || dataset == "multifashion" || dataset == "multifashion-mnist";
  std::vector<DataFileRecord> out;
  for (bool train : {true, false})
    for (bool images : {true, false}) {
      if (mnist) {
        DataFile f = mnist_file(train, images);
        out.push_back({join_path(mnist_dir(data_dir), f.name), f.sha256});
      }
      if (fashion) {
        DataFile f = fashion_file(train, images);
        out.push_back({join_path(fashion_dir, f.name), f.sha256});
      }
    }
  return out;
}

void validate_train_config(const TrainConfig& c) {
  if (!contains(train_dataset_names(), c.dataset))
    throw UsageError("unknown dataset '" + c.dataset + "' (valid: " + join(train_dataset_names(), ", ") + ")");
  validate_data_source(c);
  if (!is_model_name(c.model))
    throw UsageError("unknown model '" + c.model + "' (valid: " + join(model_names(), ", ") + ")");
  if (!contains(method_names(), c.method))
    throw UsageError("unknown method '" + c.method + "' (valid: " + join(method_names(), ", ") + ")");
  try {
    model_for_method(c.method, c.model);
  } catch (const Error& e) {
    throw UsageError(e.what());
  }
  if (c.epochs < 1) throw UsageError("--epochs must be >= 1, got " + std::to_string(c.epochs));
  if (c.batch < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(c.batch));
  if (!(c.lr > 0) || !std::isfinite(c.lr)) throw UsageError("--lr must be > 0, got " + short_num(c.lr));
  if (c.optimizer != "sgd" && c.optimizer != "adam" && c.optimizer != "adamw")
    throw UsageError("unknown optimizer '" + c.optimizer + "' (valid: sgd, adam, adamw)");
  if (!(c.momentum >= 0) || !std::isfinite(c.momentum))
    throw UsageError("--momentum must be >= 0, got " + short_num(c.momentum));
  if (!(c.weight_decay >= 0) || !std::isfinite(c.weight_decay))
    throw UsageError("--weight-decay must be >= 0, got " + short_num(c.weight_decay));
  if (c.lr_step < 0) throw UsageError("--lr-step must be >= 1 (or 0 for a constant lr), got " + std::to_string(c.lr_step));
  if (!(c.lr_gamma > 0) || !std::isfinite(c.lr_gamma))
    throw UsageError("--lr-gamma must be > 0, got " + short_num(c.lr_gamma));
  if (c.lr_first_step < 0)
    throw UsageError("--lr-first-step must be >= 1, got " + std::to_string(c.lr_first_step));
  if (c.threads < 0) throw UsageError("--threads must be >= 1, got " + std::to_string(c.threads));
  if (c.val < 0) throw UsageError("--val must be >= 0, got " + std::to_string(c.val));
  if (c.train_limit < 0) throw UsageError("--train-limit must be >= 1 (or 0 for all), got " + std::to_string(c.train_limit));
  if (c.test_limit < 0) throw UsageError("--test-limit must be >= 1 (or 0 for all), got " + std::to_string(c.test_limit));
  if (c.method == "fixed") {
    if (c.weights.empty()) throw UsageError("--method fixed needs --weights w1,w2,... (one per task)");
    double total = 0;
    for (double w : c.weights) {
      if (!(w >= 0) || !std::isfinite(w)) throw UsageError("--weights must be finite and >= 0, got " + short_num(w));
      total += w;
    }
    if (!(total > 0)) throw UsageError("--weights are all zero");
  } else if (!c.weights.empty()) {
    throw UsageError("--weights is only used by --method fixed (got --method " + c.method + ")");
  }
  try {
    parse_grad_normalization(c.normalization);
  } catch (const Error&) {
    throw UsageError("unknown --normalization '" + c.normalization + "' (valid: none, l2, loss, loss+)");
  }
  try {
    parse_min_norm_algo(c.solver);
  } catch (const Error& e) {
    throw UsageError(std::string("--solver: ") + e.what());
  }
  if (!is_mgda(c.method) && c.normalization != "none")
    throw UsageError("--normalization is only used by --method mgda and mgda-ub (got --method " + c.method + ")");
  if (!is_mgda(c.method) && c.solver != "frank-wolfe")
    throw UsageError("--solver is only used by --method mgda and mgda-ub (got --method " + c.method + ")");
  if (c.data_dir.empty()) throw UsageError("--data-dir must not be empty");
  if (c.fashion_dir.empty()) throw UsageError("--fashion-dir must not be empty");
  if (!c.resume.empty()) {
    std::error_code ec;
    if (!fs::exists(c.resume, ec)) throw UsageError("--resume " + c.resume + ": no such file");
    if (!fs::is_regular_file(c.resume, ec)) throw UsageError("--resume " + c.resume + ": not a regular file");
  }
}

// ---- evaluation ---------------------------------------------------------------

SetScores evaluate(MultiTaskModel& model, const MultiImageSet& set, int batch) {
  const bool was_training = model.is_training();
  model.eval();
  const int K = model.num_tasks();
  check(set.num_tasks() == K, "evaluate",
        "the set has " + std::to_string(set.num_tasks()) + " tasks, the model " + std::to_string(K));
  std::vector<int64_t> correct(K, 0);
  std::vector<double> loss_sum(K, 0.0);
  Loader loader(set, batch, false, 0);
  loader.start_epoch(0);
  {
    NoGrad no_grad;
    Batch b;
    while (loader.next(b)) {
      Tensor x = Tensor::from({b.n, b.c, b.h, b.w}, b.x);
      Tensor z = model.shared(x);
      for (int t = 0; t < K; t++) {
        Tensor out = model.head(t, z, x);
        correct[t] += model.correct(t, out, b.y[t]);
        loss_sum[t] += (double)model.task_loss(t, out, b.y[t]).item() * b.n;
      }
    }
  }
  model.train(was_training);
  SetScores s;
  s.n = set.n;
  for (int t = 0; t < K; t++) {
    s.acc.push_back((double)correct[t] / set.n);
    s.loss.push_back(loss_sum[t] / set.n);
  }
  return s;
}

EvalResult evaluate_weights(const EvalConfig& c) {
  if (c.weights.empty()) throw UsageError("--weights FILE is required");
  if (c.test_limit < 0) throw UsageError("--test-limit must be >= 1 (or 0 for all), got " + std::to_string(c.test_limit));
  if (c.threads < 0) throw UsageError("--threads must be >= 1, got " + std::to_string(c.threads));
  if (!c.dataset.empty() && !contains(train_dataset_names(), c.dataset))
    throw UsageError("unknown dataset '" + c.dataset + "' (valid: " + join(train_dataset_names(), ", ") + ")");
  if (c.threads > 0) set_num_threads(c.threads);

  const std::string& path = c.weights;
  const StFile f = load_safetensors(path);
  check_format(f, path);
  auto need = [&](const std::string& key) -> std::string {
    const std::string* v = find_meta(f.metadata, key);
    if (!v) throw Error(path + ": metadata '" + key + "' is missing (not a model written by mtl train)");
    return *v;
  };
  EvalResult r;
  r.weights = path;
  r.metadata = f.metadata;
  r.architecture = need("architecture");
  r.tasks = split(need("tasks"), ',');
  r.dataset = c.dataset.empty() ? need("dataset") : c.dataset;
  if (!contains(train_dataset_names(), r.dataset))
    throw Error(path + ": metadata 'dataset' is '" + r.dataset + "', not a known dataset (pass --dataset)");
  if (!c.cifar_dir.empty() && r.dataset != "cifar10-mnist")
    throw UsageError("--cifar-dir is only used by --dataset cifar10-mnist (--dataset " + r.dataset + ")");
  if (const std::string* m = find_meta(f.metadata, "method")) r.method = *m;
  uint64_t data_seed = 0;
  if (c.data_seed >= 0) {
    data_seed = (uint64_t)c.data_seed;
  } else if (const std::string* s = find_meta(f.metadata, "data_seed")) {
    data_seed = std::strtoull(s->c_str(), nullptr, 10);
  }
  r.threads = num_threads();

  MultiImageSet test = load_eval_test(r.dataset, f.metadata, c, data_seed, path);  // mtl/train/data_sources.h
  if (test.task_names != r.tasks)
    throw Error(path + ": the model's tasks (" + join(r.tasks, ",") + ") are not those of dataset '" + r.dataset +
                "' (" + join(test.task_names, ",") + ")");
  std::vector<int> classes = test.num_classes;
  if (const std::string* s = find_meta(f.metadata, "classes")) {
    std::vector<int> cls;
    for (const auto& p : split(*s, ',')) cls.push_back(std::atoi(p.c_str()));
    if (cls != classes)
      throw Error(path + ": the model's classes per task (" + *s + ") are not those of dataset '" + r.dataset + "'");
  }
  if (const std::string* s = find_meta(f.metadata, "input_shape")) {
    const std::string want = std::to_string(test.c) + "," + std::to_string(test.h) + "," + std::to_string(test.w);
    if (*s != want)
      throw Error(path + ": the model's input shape " + *s + " is not the dataset's " + want);
  }
  const std::string* bin = find_meta(f.metadata, "binary");  // one-logit heads (written when a task is binary)
  const std::vector<Task> tasks =
      tasks_for_model(r.architecture, r.tasks, classes, bin ? parse_binary_flags(*bin) : test.binary);
  std::shared_ptr<MultiTaskModel> model;
  try {
    model = make_model(r.architecture, tasks, {test.c, test.h, test.w});
  } catch (const Error& e) {
    throw Error(path + ": cannot build the model: " + e.what());
  }
  const std::string* kind = find_meta(f.metadata, "kind");
  const std::string prefix = (kind && *kind == "checkpoint") ? "model." : "";
  check_module_st(f, *model, prefix, path);
  copy_module_st(f, *model, prefix);
  r.test = evaluate(*model, test, 1000);
  return r;
}

// ---- training -----------------------------------------------------------------

TrainResult train(const TrainConfig& config, TrainObserver* observer) {
  const auto t_start = Clock::now();
  TrainConfig c = config;
  validate_train_config(c);
  if (c.threads > 0) set_num_threads(c.threads);
  const int threads = num_threads();
  const std::string arch = model_for_method(c.method, c.model);
  if (c.out.empty()) c.out = c.resume.empty() ? default_out_dir(c) : parent_dir(c.resume);
  check_out_dir(c);

  // Data: everything is read and checked before any file is written.
  TrainTestSets sets = load_train_test(c);  // make_dataset's sets, the MNIST grid, image folders
  MultiImageSet train_set = take_first(sets.train, c.train_limit);
  MultiImageSet test_set = take_first(sets.test, c.test_limit);
  const std::map<std::string, std::string> sets_metadata = sets.metadata;
  sets = TrainTestSets{};  // free the full sets
  MultiImageSet val_set;
  const bool has_val = c.val > 0;
  if (has_val) {
    if (c.val >= train_set.n)
      throw UsageError("--val " + std::to_string(c.val) + " must be smaller than the training set (" +
                       std::to_string(train_set.n) + " images)");
    auto parts = split_validation(train_set, c.val, c.seed);  // (train, validation)
    train_set = std::move(parts.first);
    val_set = std::move(parts.second);
  }
  const int K = train_set.num_tasks();
  if (c.method == "fixed" && (int)c.weights.size() != K)
    throw UsageError("--weights needs " + std::to_string(K) + " values (one per task: " +
                     join(train_set.task_names, ", ") + "), got " + std::to_string(c.weights.size()));

  // Model, method, optimizer, schedule.
  const std::vector<Task> tasks =
      tasks_for_model(arch, train_set.task_names, train_set.num_classes, train_set.binary);
  manual_seed(c.seed);
  std::shared_ptr<MultiTaskModel> model = make_model(arch, tasks, {train_set.c, train_set.h, train_set.w});
  MethodOptions mo;
  mo.weights = c.weights;
  mo.normalization = parse_grad_normalization(c.normalization);
  mo.solver.algo = parse_min_norm_algo(c.solver);
  std::unique_ptr<Method> method = make_method(c.method, K, mo);
  NamedParams params = model->named_parameters();
  for (const auto& p : method->parameters()) params.push_back(p);
  std::unique_ptr<Optimizer> opt = make_optimizer(c, params);
  std::unique_ptr<LrSchedule> schedule;
  if (c.lr_step > 0) schedule = std::make_unique<StepLR>(c.lr, c.lr_step, c.lr_gamma, c.lr_first_step);

  std::vector<std::string> classes;
  for (int n : train_set.num_classes) classes.push_back(std::to_string(n));
  const std::string input_shape =
      std::to_string(train_set.c) + "," + std::to_string(train_set.h) + "," + std::to_string(train_set.w);
  Metadata meta = {{"architecture", arch},
                   {"tasks", join(train_set.task_names, ",")},
                   {"classes", join(classes, ",")},
                   {"dataset", c.dataset},
                   {"input_shape", input_shape},
                   {"method", c.method},
                   {"seed", std::to_string(c.seed)},
                   {"data_seed", std::to_string(c.data_seed)}};
  for (const Task& t : tasks)
    if (t.loss == TaskLoss::BinaryLogits) meta["binary"] = binary_flags_str(train_set.binary, (size_t)K);
  for (const auto& kv : sets_metadata) meta[kv.first] = kv.second;  // "data.*": how to reread the test set
  const std::string criterion = has_val ? "val_acc" : "train_loss";

  // Resume: everything restored and checked before anything is written.
  int start_epoch = 0;
  int64_t global_step = 0;
  int best_epoch = 0;
  double best_score = 0;  // higher is better: mean val accuracy, or minus the mean training loss
  std::vector<double> best_test_acc;
  const std::string header = metrics_header(train_set.task_names, has_val);
  std::vector<std::string> rows;
  if (!c.resume.empty()) {
    CheckpointExtra ex;
    try {
      ex = load_checkpoint(c.resume, *model, *opt, meta);
      StFile method_state;
      method_state.metadata = ex.metadata;
      method_state.tensors = ex.tensors;
      method->load_state(method_state, c.resume);
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw Error(std::string("cannot resume: ") + e.what());
    }
    start_epoch = (int)ex.epoch;
    global_step = ex.step;
    if (start_epoch >= c.epochs)
      throw UsageError("--resume " + c.resume + " has already trained " + std::to_string(start_epoch) +
                       " epochs; pass --epochs greater than that to continue");
    const std::string* crit = find_meta(ex.metadata, "best_criterion");
    const std::string* be = find_meta(ex.metadata, "best_epoch");
    const std::string* bs = find_meta(ex.metadata, "best_score");
    if (crit && be && bs && *crit == criterion) {
      best_epoch = std::atoi(be->c_str());
      best_score = std::strtod(bs->c_str(), nullptr);
      if (const std::string* bt = find_meta(ex.metadata, "best_test_acc")) best_test_acc = parse_doubles(*bt);
    }
    rows = previous_rows((fs::path(parent_dir(c.resume)) / "metrics.csv").string(), header, start_epoch);
  }

  Loader train_loader(train_set, c.batch, true, c.seed);

  TrainResult res;
  res.config = c;
  res.best_criterion = criterion;
  const fs::path out(c.out);
  res.metrics_path = (out / "metrics.csv").string();
  res.config_path = (out / "config.json").string();
  res.last_path = (out / "last.safetensors").string();
  res.best_path = (out / "best.safetensors").string();
  res.checkpoint_path = (out / "checkpoint.safetensors").string();

  RunInfo& info = res.info;
  info.tasks = train_set.task_names;
  info.model = arch;
  info.start_epoch = start_epoch;
  info.epochs = c.epochs;
  info.batches_per_epoch = train_loader.batches_per_epoch();
  info.train_n = train_set.n;
  info.val_n = has_val ? val_set.n : 0;
  info.test_n = test_set.n;
  info.threads = threads;
  info.num_parameters = model->num_parameters();
  info.out = c.out;
  info.resumed_from = c.resume;
  if (observer) observer->on_start(info);

  // config.json, written with the first epoch's files.
  nlohmann::ordered_json cfg;
  cfg["command"] = "train";
  cfg["dataset"] = c.dataset;
  cfg["model"] = c.model;
  cfg["architecture"] = arch;
  cfg["method"] = c.method;
  cfg["tasks"] = train_set.task_names;
  cfg["classes"] = train_set.num_classes;
  cfg["input_shape"] = {train_set.c, train_set.h, train_set.w};
  cfg["num_parameters"] = info.num_parameters;
  cfg["epochs"] = c.epochs;
  cfg["batch"] = c.batch;
  cfg["optimizer"] = c.optimizer;
  cfg["lr"] = c.lr;
  if (c.optimizer == "sgd") cfg["momentum"] = c.momentum;
  cfg["weight_decay"] = c.weight_decay;
  if (c.lr_step > 0)
    cfg["lr_schedule"] = {{"type", "StepLR"},
                          {"step", c.lr_step},
                          {"gamma", c.lr_gamma},
                          {"first_step", c.lr_first_step > 0 ? c.lr_first_step : c.lr_step}};
  else
    cfg["lr_schedule"] = {{"type", "constant"}};
  if (c.method == "fixed") cfg["weights"] = c.weights;
  if (is_mgda(c.method)) {
    cfg["normalization"] = c.normalization;
    cfg["solver"] = c.solver;
  }
  cfg["seed"] = c.seed;
  cfg["data_seed"] = c.data_seed;
  cfg["threads"] = threads;
  cfg["val"] = c.val;
  cfg["best_selection"] = criterion;
  cfg["train_limit"] = c.train_limit;
  cfg["test_limit"] = c.test_limit;
  cfg["train_images"] = train_set.n;
  cfg["val_images"] = info.val_n;
  cfg["test_images"] = test_set.n;
  cfg["data_dir"] = c.data_dir;
  cfg["fashion_dir"] = c.fashion_dir;
  if (c.dataset == "cifar10-mnist") cfg["cifar_dir"] = cifar_dir_or_default(c.cifar_dir);
  for (const auto& kv : sets_metadata) cfg[kv.first] = kv.second;
  nlohmann::ordered_json files = nlohmann::ordered_json::array();
  for (const auto& f : dataset_files(c.dataset, c.data_dir, c.fashion_dir))
    files.push_back({{"path", f.path}, {"sha256", f.sha256}});
  cfg["data_files"] = files;  // verified against these hashes when the data was loaded
  cfg["out"] = c.out;
  if (!c.resume.empty()) {
    cfg["resumed_from"] = c.resume;
    cfg["start_epoch"] = start_epoch;
  }
  cfg["format"] = kFormatName;

  std::string last_ckpt = c.resume;  // the last checkpoint a user can go back to
  bool out_ready = false;
  double samples_per_s_sum = 0;
  const NamedTensors model_params = model->named_parameters();

  for (int e = start_epoch; e < c.epochs; e++) {
    const auto t0 = Clock::now();
    EpochRecord rec;
    rec.epoch = e + 1;
    rec.lr = schedule ? schedule->lr_at(e) : c.lr;
    opt->set_lr(rec.lr);
    model->train();
    train_loader.start_epoch(e);
    std::vector<double> loss_sum(K, 0.0), weight_sum(K, 0.0);
    int64_t samples = 0;
    int step = 0;
    Batch b;
    while (train_loader.next(b)) {
      step++;
      global_step++;
      Tensor x = Tensor::from({b.n, b.c, b.h, b.w}, b.x);
      opt->zero_grad();  // the model's and the method's parameters
      StepStats st;
      auto diverged = [&](const std::string& what, int t, double v) {
        return DivergedError("non-finite " + what + " (" + nonfinite_name(v) + ") in task '" + train_set.task_names[t] +
                             "' at epoch " + std::to_string(e + 1) + ", step " + std::to_string(step) +
                             " (global step " + std::to_string(global_step) + "); stopping \xe2\x80\x94 " +
                             (last_ckpt.empty() ? "no checkpoint yet" : "last good checkpoint: " + last_ckpt));
      };
      try {
        st = method->compute_gradients(*model, x, b.y);
      } catch (const Error&) {
        // Some methods refuse non-finite numbers (the min-norm solver) before
        // they can report the losses: find the task whose loss went bad.
        int bad = -1;
        double v = 0;
        try {
          NoGrad no_grad;
          Tensor z = model->shared(x);
          for (int t = 0; t < K && bad < 0; t++) {
            v = model->task_loss(t, model->head(t, z, x), b.y[t]).item();
            if (!std::isfinite(v)) bad = t;
          }
        } catch (const Error&) {
        }
        if (bad >= 0) throw diverged("loss", bad, v);
        throw;
      }
      for (int t = 0; t < K; t++)
        if (!std::isfinite(st.loss[t])) throw diverged("loss", t, st.loss[t]);
      for (int t = 0; t < K; t++)
        if (!std::isfinite(st.weight[t])) throw diverged("task weight", t, st.weight[t]);
      opt->step();
      method->after_step();
      for (int t = 0; t < K; t++) {
        loss_sum[t] += st.loss[t] * b.n;
        weight_sum[t] += st.weight[t];
      }
      samples += b.n;
      if (observer)
        observer->on_batch(batch_info(e + 1, c.epochs, step, train_loader.batches_per_epoch(), global_step, st,
                                      samples, t0));
    }
    rec.train_s = seconds_between(t0, Clock::now());
    rec.train_samples_per_s = rec.train_s > 0 ? samples / rec.train_s : 0.0;
    rec.global_step = global_step;
    for (int t = 0; t < K; t++) {
      rec.train_loss.push_back(loss_sum[t] / (double)samples);
      rec.weight.push_back(weight_sum[t] / (double)step);
    }
    check_all_finite(model_params, e + 1, last_ckpt);
    check_all_finite(method->parameters(), e + 1, last_ckpt);

    if (has_val) {
      SetScores v = evaluate(*model, val_set);
      rec.val_acc = v.acc;
      rec.val_loss = v.loss;
    }
    SetScores ts = evaluate(*model, test_set);
    rec.test_acc = ts.acc;
    rec.test_loss = ts.loss;

    const double score = has_val ? mean_of(rec.val_acc) : -mean_of(rec.train_loss);
    rec.best = best_epoch == 0 || score > best_score;
    if (rec.best) {
      best_epoch = rec.epoch;
      best_score = score;
      best_test_acc = rec.test_acc;
    }

    // Files, each replaced atomically; the checkpoint last, so that it never
    // claims an epoch whose other files are missing.
    make_out_dir_once(out_ready, out, res.config_path, cfg.dump(2) + "\n");
    Metadata model_meta = meta;
    model_meta["trained_epochs"] = std::to_string(rec.epoch);
    save_module(res.last_path, *model, model_meta);
    if (rec.best) save_module(res.best_path, *model, model_meta);
    rec.epoch_s = seconds_between(t0, Clock::now());
    rows.push_back(metrics_row(rec));
    write_metrics_csv(res.metrics_path, header, rows);
    CheckpointExtra ex;
    ex.step = global_step;
    ex.epoch = rec.epoch;
    ex.metadata = meta;
    ex.metadata["best_criterion"] = criterion;
    ex.metadata["best_epoch"] = std::to_string(best_epoch);
    ex.metadata["best_score"] = exact_str(best_score);
    ex.metadata["best_test_acc"] = exact_list(best_test_acc);
    StFile method_state;
    method->save_state(method_state);
    for (const auto& kv : method_state.metadata) ex.metadata[kv.first] = kv.second;
    ex.tensors = method_state.tensors;
    save_checkpoint(res.checkpoint_path, *model, *opt, ex);
    last_ckpt = res.checkpoint_path;

    samples_per_s_sum += rec.train_samples_per_s;
    res.epochs.push_back(rec);
    if (observer) observer->on_epoch(rec);
  }

  res.best_epoch = best_epoch;
  res.best_test_acc = best_test_acc;
  res.train_samples_per_s = res.epochs.empty() ? 0.0 : samples_per_s_sum / (double)res.epochs.size();
  res.wall_s = seconds_between(t_start, Clock::now());
  return res;
}

}  // namespace mt
