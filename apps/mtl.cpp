// The `mtl` command: a small dispatcher with one function per subcommand.
//
//   mtl train [flags]            train a multi-task model (mtl/train/trainer.h)
//   mtl eval --weights FILE      evaluate a saved model on the test set
//   mtl bench                    training/inference speed and memory (apps/experiments/bench.h)
//   mtl train --method chebyshev-al, mtl sweep   sparse MTL (apps/sparse_commands.h)
//
// Errors are one line on stderr, "mtl: error: ...", with exit status 2 for a
// bad command line or setting and 1 for anything that goes wrong at run time
// (data, files, divergence). Results go to stdout; with --json its last line
// is one JSON object. To add a subcommand, write `int cmd_NAME(int argc,
// char** argv)` (argv[0] is the subcommand's name) and list it in kCommands.
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "datasets/multi_mnist.h"
#include "engine/error.h"
#include "apps/experiments/bench.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "apps/experiments/scaling.h"
#include "mtl/train/trainer.h"
#include "apps/cli_util.h"
#include "apps/sparse_commands.h"  // mtl train --method chebyshev-al, mtl sweep

using namespace mt;

int cmd_export(int argc, char** argv);  // apps/cmd_export.cpp

namespace {

using namespace mt::cli;  // parse_int, parse_flags, pct, ... (apps/cli_util.h)

// ---- small helpers --------------------------------------------------------------

std::vector<double> parse_doubles(const std::string& flag, const std::string& s) {
  std::vector<double> v;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    v.push_back(parse_double(flag, s.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return v;
}

double round_to(double v, double scale) { return std::round(v * scale) / scale; }

// "left 93.12%  right 91.03%"
std::string per_task(const std::vector<std::string>& tasks, const std::vector<double>& v, bool percent, int digits = 4) {
  std::string s;
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++)
    s += (t ? "  " : "") + tasks[t] + " " + (percent ? pct(v[t]) : fixed(v[t], digits));
  return s;
}

nlohmann::ordered_json by_task(const std::vector<std::string>& tasks, const std::vector<double>& v, double scale) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++) j[tasks[t]] = scale > 0 ? round_to(v[t], scale) : v[t];
  return j;
}

nlohmann::ordered_json percent_by_task(const std::vector<std::string>& tasks, const std::vector<double>& v) {
  nlohmann::ordered_json j = nlohmann::ordered_json::object();
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++) j[tasks[t]] = round_to(100.0 * v[t], 100.0);
  return j;
}

bool given(const cxxopts::ParseResult& r, const char* flag) { return r.count(flag) > 0; }

// ---- progress and results of `mtl train` -------------------------------------------

class ConsoleObserver : public TrainObserver {
 public:
  ConsoleObserver(bool quiet, std::string method) : quiet_(quiet), bar_(quiet), method_(std::move(method)) {
    weight_name_ = (method_ == "mgda" || method_ == "mgda-ub") ? "alpha" : "weight";
  }

  void on_start(const RunInfo& info) override {
    info_ = info;
    if (quiet_) return;
    std::printf("mtl train: %s, %s, %d tasks (%s); %d train / %d val / %d test images; %lld parameters; %d thread%s\n",
                info.model.c_str(), method_.c_str(), (int)info.tasks.size(), join(info.tasks, ", ").c_str(),
                info.train_n, info.val_n, info.test_n, (long long)info.num_parameters, info.threads,
                info.threads == 1 ? "" : "s");
    if (!info.resumed_from.empty())
      std::printf("resuming from %s after epoch %d\n", info.resumed_from.c_str(), info.start_epoch);
    std::fflush(stdout);
  }

  void on_batch(const BatchInfo& b) override {
    std::string head;
    if (!bar_.due(b, head)) return;
    bar_.draw(head + "  loss " + per_task(info_.tasks, b.loss, false, 3) + "  " + weight_name_ + " " +
              per_task(info_.tasks, b.weight, false, 2));
  }

  void on_epoch(const EpochRecord& r) override {
    clear();
    if (quiet_) return;
    std::string s = "epoch " + std::to_string(r.epoch) + "/" + std::to_string(info_.epochs) + "  lr " +
                    short_num(r.lr) + "  train loss " + per_task(info_.tasks, r.train_loss, false) + "  " +
                    weight_name_ + " " + per_task(info_.tasks, r.weight, false, 3);
    if (!r.val_acc.empty()) s += "  val acc " + per_task(info_.tasks, r.val_acc, true);
    s += "  test acc " + per_task(info_.tasks, r.test_acc, true) + "  " + fixed(r.train_samples_per_s, 0) +
         " samples/s  " + fixed(r.epoch_s, 2) + " s" + (r.best ? "  (best)" : "");
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  }

  // Removes the progress bar (before an epoch line or an error message).
  void clear() { bar_.clear(); }

 private:
  static std::string short_num(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
  }

  bool quiet_;
  ProgressBar bar_;
  std::string method_, weight_name_;
  RunInfo info_;
};

// ---- mtl train ---------------------------------------------------------------

const char* kTrainHelp = R"(usage: mtl train [flags]

Train a multi-task model; per epoch, write to --out: metrics.csv (one row per
epoch), config.json, last.safetensors, best.safetensors and
checkpoint.safetensors (all replaced atomically; nothing is written before the
first epoch completes). best.safetensors is the epoch with the highest mean
validation accuracy when --val > 0, otherwise the one with the lowest mean
training loss (the test set is never used for selection).

data
  --dataset NAME        @DATASETS@  [multimnist]
  --data-dir DIR        MNIST is read from DIR/mnist (`make data` fetches it)  [data]
  --fashion-dir DIR     Fashion-MNIST .gz files  [/usr/share/datasets/fashion-mnist]
  --cifar-dir DIR       cifar10-mnist: the CIFAR-10 binary files (data_batch_1.bin, ..., test_batch.bin,
                        in DIR or DIR/cifar-10-batches-bin; cifar-10-binary.tar.gz from
                        https://www.cs.toronto.edu/~kriz/cifar.html)  [data/cifar10]
  --val N               hold N training images out for validation (split by --seed)  [0]
  --train-limit N       use only the first N training images (quick runs)  [all]
  --test-limit N        use only the first N test images  [all]
  --data-seed N         seed of the Multi* image composition (mnist-grid: of the grid; image
                        folders: of the held-out test split)  [0]
many-task data (mnist-grid, imagefolder, celeba)
  --tasks K | A,B,...   mnist-grid: K tasks, 2..48 (or task names such as digit_0_0,even_1_1)  [4];
                        imagefolder, celeba: the attribute columns to learn  [all]
  --images DIR          imagefolder: the folder the attribute file names images in;
                        celeba: the root holding img_align_celeba/ and the list_*.txt files
  --labels FILE         imagefolder: attribute file, CSV "file,task1,..." or CelebA's layout
  --partition FILE      imagefolder: rows "file 0|1|2"; train on 0, test on 2  [none: hold out
                        --test-fraction of the images as test set, split by --data-seed]
  --test-fraction X     [0.2]
  --image-size N        side of the square input  [56 for mnist-grid, 64 for folders]
  --channels 1|3        folders: grey or RGB input  [3]
  --max-images N        folders: read only the first N images (per partition)  [all]
model and method
  --model NAME          @MODELS@ | resnet18-w<N>
                        [multilenet; resnet18 for mnist-grid, imagefolder, celeba;
                        mdmtn-cifar for cifar10-mnist]
  --width N             ResNet-18 width (resnet18-w<N>; resnet18 is width 16)
  --method NAME         @METHODS@  [mgda-ub]
                        (single-task trains one MultiLeNet per task: model multilenet-stl;
                        chebyshev-al has its own flags: mtl train --method chebyshev-al --help)
  --weights W1,W2,...   the task weights of --method fixed
  --normalization N     mgda, mgda-ub: none | l2 | loss | loss+, scaling of each task
                        gradient before the min-norm solver  [none, as in the paper]
  --solver NAME         mgda, mgda-ub with 3+ tasks: frank-wolfe | projected-gradient  [frank-wolfe]
optimisation
  --epochs N            total epochs, counting those of a --resume checkpoint  [10]
  --batch N             mini-batch size  [256]
  --optimizer NAME      sgd | adam | adamw  [sgd]
  --lr X                learning rate  [0.05]
  --momentum X          SGD momentum  [0.9]
  --weight-decay X      [0]
  --lr-step N           StepLR: multiply the lr by --lr-gamma every N epochs  [off]
  --lr-gamma X          [0.1]  (the MGDA paper: --lr-step 10 --lr-gamma 0.85)
  --lr-first-step N     the first decay after N epochs, then every --lr-step  [--lr-step]
                        (the MGDA code decays when (epoch+1) % 10 == 0: --lr-first-step 9)
  --seed N              initialisation, dropout, shuffling, validation split  [0]
  --threads N           worker threads  [MTL_THREADS, else all cores]
run
  --out DIR             [runs/<dataset>-<method>-s<seed>; with --resume, the checkpoint's directory]
  --resume FILE         continue from a checkpoint.safetensors (same model, tasks, dataset,
                        method and seed); numbers are identical to an uninterrupted run
  --force               allow replacing another run's files in --out
  --json                print one JSON object with the results as the last line on stdout
  --quiet               no progress, no per-epoch lines, no summary
  -h, --help            this text
)";

int cmd_train(int argc, char** argv) {
  if (sparse_cli::is_chebyshev_al(argc, argv)) return sparse_cli::cmd_train_chebyshev_al(argc, argv);
  cxxopts::Options opts("mtl train", "");
  const auto str = [](const char* d) { return cxxopts::value<std::string>()->default_value(d); };
  opts.add_options()("dataset", "", str("multimnist"))("model", "", str("multilenet"))("method", "", str("mgda-ub"))(
      "epochs", "", str("10"))("batch", "", str("256"))("lr", "", str("0.05"))("optimizer", "", str("sgd"))(
      "momentum", "", str("0.9"))("weight-decay", "", str("0"))("lr-step", "", str("0"))("lr-gamma", "", str("0.1"))("lr-first-step", "", str("0"))(
      "seed", "", str("0"))("data-seed", "", str("0"))("threads", "", cxxopts::value<std::string>())(
      "out", "", cxxopts::value<std::string>())("resume", "", cxxopts::value<std::string>())("val", "", str("0"))(
      "weights", "", cxxopts::value<std::string>())("normalization", "", str("none"))(
      "solver", "", str("frank-wolfe"))("train-limit", "", str("0"))("test-limit", "", str("0"))(
      "data-dir", "", str("data"))("fashion-dir", "", str("/usr/share/datasets/fashion-mnist"))(
      "cifar-dir", "", cxxopts::value<std::string>())("force", "")("json", "")("quiet", "")("h,help", "");
  opts.add_options()("images", "", cxxopts::value<std::string>())("labels", "", cxxopts::value<std::string>())(
      "partition", "", cxxopts::value<std::string>())("tasks", "", cxxopts::value<std::string>())(
      "image-size", "", cxxopts::value<std::string>())("channels", "", cxxopts::value<std::string>())(
      "max-images", "", cxxopts::value<std::string>())("test-fraction", "", cxxopts::value<std::string>())(
      "width", "", cxxopts::value<std::string>());
  const cxxopts::ParseResult r = parse_flags(opts, argc, argv, "train");
  if (given(r, "help")) {
    std::string help = kTrainHelp;
    help = replace_all(help, "@DATASETS@", join(train_dataset_names(), " | "));
    help = replace_all(help, "@MODELS@", join(model_names(), " | "));
    help = replace_all(help, "@METHODS@", join(method_names(), " | "));
    std::fputs(help.c_str(), stdout);
    return 0;
  }

  TrainConfig c;
  const auto s = [&](const char* flag) { return r[flag].as<std::string>(); };
  c.dataset = s("dataset");
  c.model = given(r, "model") ? s("model") : default_model_for(c.dataset);  // resnet18, mdmtn-cifar or multilenet
  if (given(r, "width")) {
    const int w = parse_int("width", s("width"));
    if (w < 1 || w > 999) throw UsageError("--width must be in 1..999, got " + s("width"));
    if (given(r, "model") && s("model") != "resnet18")
      throw UsageError("--width sets the width of resnet18; it cannot be combined with --model " + s("model"));
    c.model = w == 16 ? "resnet18" : "resnet18-w" + std::to_string(w);
  }
  c.method = s("method");
  c.epochs = parse_int("epochs", s("epochs"));
  c.batch = parse_int("batch", s("batch"));
  c.lr = parse_double("lr", s("lr"));
  c.optimizer = s("optimizer");
  c.momentum = parse_double("momentum", s("momentum"));
  c.weight_decay = parse_double("weight-decay", s("weight-decay"));
  c.lr_step = parse_int("lr-step", s("lr-step"));
  c.lr_gamma = parse_double("lr-gamma", s("lr-gamma"));
  c.lr_first_step = parse_int("lr-first-step", s("lr-first-step"));
  c.seed = parse_u64("seed", s("seed"));
  c.data_seed = parse_u64("data-seed", s("data-seed"));
  if (given(r, "threads")) {
    c.threads = parse_int("threads", s("threads"));
    if (c.threads < 1) throw UsageError("--threads must be >= 1, got " + s("threads"));
  }
  if (given(r, "out")) {
    c.out = s("out");
    if (c.out.empty()) throw UsageError("--out must not be empty");
  }
  if (given(r, "resume")) {
    c.resume = s("resume");
    if (c.resume.empty()) throw UsageError("--resume must not be empty");
  }
  c.val = parse_int("val", s("val"));
  if (given(r, "weights")) c.weights = parse_doubles("weights", s("weights"));
  c.normalization = s("normalization");
  c.solver = s("solver");
  c.train_limit = parse_int("train-limit", s("train-limit"));
  c.test_limit = parse_int("test-limit", s("test-limit"));
  if (given(r, "train-limit") && c.train_limit < 1)
    throw UsageError("--train-limit must be >= 1, got " + s("train-limit"));
  if (given(r, "test-limit") && c.test_limit < 1) throw UsageError("--test-limit must be >= 1, got " + s("test-limit"));
  c.data_dir = s("data-dir");
  c.fashion_dir = s("fashion-dir");
  if (given(r, "cifar-dir")) {
    c.cifar_dir = s("cifar-dir");
    if (c.cifar_dir.empty()) throw UsageError("--cifar-dir must not be empty");
  }
  DataSourceOptions& src = c.source;  // mtl/train/data_sources.h
  if (given(r, "images")) src.images = s("images");
  if (given(r, "labels")) src.labels = s("labels");
  if (given(r, "partition")) src.partition = s("partition");
  if (given(r, "tasks")) {
    src.tasks = s("tasks");
    if (src.tasks.empty()) throw UsageError("--tasks must not be empty");
  }
  if (given(r, "image-size")) {
    src.image_size = parse_int("image-size", s("image-size"));
    if (src.image_size < 1) throw UsageError("--image-size must be >= 1, got " + s("image-size"));
  }
  if (given(r, "channels")) {
    src.channels = parse_int("channels", s("channels"));
    if (c.dataset != "imagefolder" && c.dataset != "celeba")
      throw UsageError("--channels is only used by --dataset imagefolder and celeba (--dataset " + c.dataset + ")");
  }
  if (given(r, "max-images")) {
    src.max_images = parse_int("max-images", s("max-images"));
    if (src.max_images < 1) throw UsageError("--max-images must be >= 1, got " + s("max-images"));
  }
  if (given(r, "test-fraction")) {
    src.test_fraction = parse_double("test-fraction", s("test-fraction"));
    if (c.dataset != "imagefolder" && c.dataset != "celeba")
      throw UsageError("--test-fraction is only used by --dataset imagefolder and celeba (--dataset " + c.dataset + ")");
  }
  c.force = given(r, "force");
  if (c.optimizer != "sgd" && given(r, "momentum"))
    throw UsageError("--momentum is only used by --optimizer sgd (got --optimizer " + c.optimizer + ")");
  if (given(r, "lr-gamma") && !given(r, "lr-step")) throw UsageError("--lr-gamma needs --lr-step");
  if (given(r, "lr-step") && c.lr_step < 1) throw UsageError("--lr-step must be >= 1, got " + s("lr-step"));
  if (given(r, "lr-first-step") && !given(r, "lr-step")) throw UsageError("--lr-first-step needs --lr-step");
  if (given(r, "lr-first-step") && c.lr_first_step < 1)
    throw UsageError("--lr-first-step must be >= 1, got " + s("lr-first-step"));
  const bool json = given(r, "json"), quiet = given(r, "quiet");
  validate_train_config(c);

  ConsoleObserver obs(quiet, c.method);
  TrainResult res;
  try {
    res = train(c, &obs);
  } catch (...) {
    obs.clear();
    throw;
  }
  const RunInfo& info = res.info;
  const EpochRecord* last = res.epochs.empty() ? nullptr : &res.epochs.back();
  if (!quiet && last) {
    std::printf("done: epochs %d-%d of %s in %.1f s (training %.0f samples/s)\n", info.start_epoch + 1, last->epoch,
                c.method.c_str(), res.wall_s, res.train_samples_per_s);
    std::printf("test accuracy after epoch %d: %s\n", last->epoch, per_task(info.tasks, last->test_acc, true).c_str());
    std::printf("best model: epoch %d by %s (test accuracy %s): %s\n", res.best_epoch,
                res.best_criterion == "val_acc" ? "mean validation accuracy" : "lowest mean training loss",
                per_task(info.tasks, res.best_test_acc, true).c_str(), res.best_path.c_str());
    std::printf("files: %s, %s, %s, %s\n", res.metrics_path.c_str(), res.config_path.c_str(), res.last_path.c_str(),
                res.checkpoint_path.c_str());
  }
  if (json && last) {
    nlohmann::ordered_json j;
    j["command"] = "train";
    j["dataset"] = c.dataset;
    j["model"] = info.model;
    j["method"] = c.method;
    j["tasks"] = info.tasks;
    j["epochs"] = c.epochs;
    j["start_epoch"] = info.start_epoch;
    j["seed"] = c.seed;
    j["threads"] = info.threads;
    j["batch"] = c.batch;
    j["lr"] = c.lr;
    j["train_images"] = info.train_n;
    j["val_images"] = info.val_n;
    j["test_images"] = info.test_n;
    j["test_acc"] = by_task(info.tasks, last->test_acc, 1e4);
    j["test_acc_percent"] = percent_by_task(info.tasks, last->test_acc);
    j["test_loss"] = by_task(info.tasks, last->test_loss, 0);
    if (!last->val_acc.empty()) j["val_acc"] = by_task(info.tasks, last->val_acc, 1e4);
    j["train_loss"] = by_task(info.tasks, last->train_loss, 0);
    j["weight"] = by_task(info.tasks, last->weight, 0);
    j["best_epoch"] = res.best_epoch;
    j["best_selection"] = res.best_criterion;
    j["best_test_acc"] = by_task(info.tasks, res.best_test_acc, 1e4);
    j["train_samples_per_s"] = round_to(res.train_samples_per_s, 10.0);
    j["wall_s"] = round_to(res.wall_s, 1000.0);
    j["out"] = res.config.out;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

// ---- mtl eval ----------------------------------------------------------------

const char* kEvalHelp = R"(usage: mtl eval --weights FILE [flags]

Evaluate a model saved by `mtl train` (best.safetensors, last.safetensors or a
checkpoint) on the test set: its architecture, tasks, dataset and data seed
come from the file's metadata.

  --weights FILE        the model file (required)
  --dataset NAME        evaluate on another dataset with the same tasks  [the file's]
  --data-dir DIR        [data]
  --fashion-dir DIR     [/usr/share/datasets/fashion-mnist]
  --cifar-dir DIR       cifar10-mnist: the CIFAR-10 binary files  [data/cifar10]
  --data-seed N         seed of the Multi* image composition  [the file's]
  --images DIR          imagefolder, celeba: read the images from DIR  [the file's]
  --labels FILE         imagefolder: evaluate on this attribute file (split as in training,
                        by --partition or the held-out fraction)  [the file's]
  --partition FILE      imagefolder: with --labels, its partition file  [none]
  --test-limit N        use only the first N test images  [all]
  --threads N           [MTL_THREADS, else all cores]
  --json                print one JSON object as the last line on stdout
  -h, --help            this text
)";

int cmd_eval(int argc, char** argv) {
  cxxopts::Options opts("mtl eval", "");
  opts.add_options()("weights", "", cxxopts::value<std::string>())("dataset", "", cxxopts::value<std::string>())(
      "data-dir", "", cxxopts::value<std::string>()->default_value("data"))(
      "fashion-dir", "", cxxopts::value<std::string>()->default_value("/usr/share/datasets/fashion-mnist"))(
      "cifar-dir", "", cxxopts::value<std::string>())("data-seed", "", cxxopts::value<std::string>())(
      "test-limit", "", cxxopts::value<std::string>())("threads", "", cxxopts::value<std::string>())("json", "")(
      "h,help", "");
  opts.add_options()("images", "", cxxopts::value<std::string>())("labels", "", cxxopts::value<std::string>())(
      "partition", "", cxxopts::value<std::string>());
  const cxxopts::ParseResult r = parse_flags(opts, argc, argv, "eval");
  if (given(r, "help")) {
    std::fputs(kEvalHelp, stdout);
    return 0;
  }
  if (!given(r, "weights")) throw UsageError("mtl eval needs --weights FILE (see 'mtl eval --help')");
  EvalConfig c;
  c.weights = r["weights"].as<std::string>();
  if (given(r, "dataset")) c.dataset = r["dataset"].as<std::string>();
  c.data_dir = r["data-dir"].as<std::string>();
  c.fashion_dir = r["fashion-dir"].as<std::string>();
  if (given(r, "cifar-dir")) {
    c.cifar_dir = r["cifar-dir"].as<std::string>();
    if (c.cifar_dir.empty()) throw UsageError("--cifar-dir must not be empty");
  }
  if (given(r, "images")) c.source.images = r["images"].as<std::string>();
  if (given(r, "labels")) c.source.labels = r["labels"].as<std::string>();
  if (given(r, "partition")) {
    if (!given(r, "labels")) throw UsageError("--partition needs --labels (the file's own partition is used otherwise)");
    c.source.partition = r["partition"].as<std::string>();
  }
  if (given(r, "data-seed")) c.data_seed = (int64_t)parse_u64("data-seed", r["data-seed"].as<std::string>());
  if (given(r, "test-limit")) {
    c.test_limit = parse_int("test-limit", r["test-limit"].as<std::string>());
    if (c.test_limit < 1) throw UsageError("--test-limit must be >= 1, got " + r["test-limit"].as<std::string>());
  }
  if (given(r, "threads")) {
    c.threads = parse_int("threads", r["threads"].as<std::string>());
    if (c.threads < 1) throw UsageError("--threads must be >= 1, got " + r["threads"].as<std::string>());
  }
  const EvalResult e = evaluate_weights(c);
  std::printf("%s (%s%s) on %s test, %d images: %s\n", e.weights.c_str(), e.architecture.c_str(),
              e.method.empty() ? "" : (", " + e.method).c_str(), e.dataset.c_str(), e.test.n,
              per_task(e.tasks, e.test.acc, true).c_str());
  if (given(r, "json")) {
    nlohmann::ordered_json j;
    j["command"] = "eval";
    j["weights"] = e.weights;
    j["model"] = e.architecture;
    j["method"] = e.method;
    j["dataset"] = e.dataset;
    j["tasks"] = e.tasks;
    j["test_images"] = e.test.n;
    j["threads"] = e.threads;
    j["test_acc"] = by_task(e.tasks, e.test.acc, 1e4);
    j["test_acc_percent"] = percent_by_task(e.tasks, e.test.acc);
    j["test_loss"] = by_task(e.tasks, e.test.loss, 0);
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

// ---- bench -------------------------------------------------------------------

const char* kBenchHelp = R"(usage: mtl bench [flags]

Training throughput (samples/s) of MultiLeNet with uniform scaling, MGDA-UB and
exact MGDA, and of MDMTN with Chebyshev-AL, on MultiMNIST batches; the MGDA-UB /
uniform step-cost ratio; batch-1 inference latency and batch-256 throughput;
the effective FLOP rate as a fraction of sgemm's; peak resident memory. Prints
one JSON object. A benchmark, not a test: run it on a quiet machine.

  --data-dir DIR        [data]
  --threads N           [MTL_THREADS, else all cores]
  --batch N             [256]
  --steps N             timed training steps per method  [60]
  --json                (accepted; the output is always JSON)
  -h, --help            this text
)";

int cmd_bench(int argc, char** argv) {
  cxxopts::Options opts("mtl bench", "");
  opts.add_options()("data-dir", "", cxxopts::value<std::string>()->default_value("data"))(
      "threads", "", cxxopts::value<std::string>())("batch", "", cxxopts::value<std::string>()->default_value("256"))(
      "steps", "", cxxopts::value<std::string>()->default_value("60"))("json", "")("h,help", "");
  const cxxopts::ParseResult r = parse_flags(opts, argc, argv, "bench");
  if (given(r, "help")) {
    std::fputs(kBenchHelp, stdout);
    return 0;
  }
  BenchConfig c;
  c.data_dir = r["data-dir"].as<std::string>();
  c.batch = parse_int("batch", r["batch"].as<std::string>());
  if (c.batch < 1) throw UsageError("--batch must be >= 1, got " + r["batch"].as<std::string>());
  c.steps = parse_int("steps", r["steps"].as<std::string>());
  if (c.steps < 1) throw UsageError("--steps must be >= 1, got " + r["steps"].as<std::string>());
  if (given(r, "threads")) {
    c.threads = parse_int("threads", r["threads"].as<std::string>());
    if (c.threads < 1) throw UsageError("--threads must be >= 1, got " + r["threads"].as<std::string>());
  }
  std::printf("%s\n", run_bench(c).dump().c_str());
  return 0;
}

// ---- scale -------------------------------------------------------------------

const char* kScaleHelp = R"(usage: mtl scale [flags]

How the cost of a training step grows with the number of tasks K: for each K,
a MNIST grid with K tasks (56x56 for every K); for each method, a fresh model
trained for --warmup untimed and --steps timed SGD steps. Prints seconds per
step (median), the ratio to uniform at the same K, the time of the Gram matrix
and of the min-norm solver per step and the solver's iterations (apps/experiments/scaling.h).
A benchmark, not a test: run it on a quiet machine with a fixed --threads.

  --tasks K1,K2,...     numbers of tasks, each 1..48  [2,4,9,16,40]
  --methods M1,M2,...   uniform | mgda-ub | mgda | uncertainty | gradnorm  [uniform,mgda-ub,mgda]
  --model NAME          resnet18 | resnet18-w<N> | multilenet | ...  [resnet18]
  --width N             ResNet-18 width (resnet18-w<N>)  [16]
  --image-size N        [56]
  --batch N             [64]
  --steps N             timed steps per (K, method)  [5]
  --warmup N            untimed steps first  [1]
  --solver NAME         frank-wolfe | projected-gradient  [frank-wolfe]
  --seed N              [0]
  --data-dir DIR        MNIST is read from DIR/mnist  [data]
  --threads N           [MTL_THREADS, else all cores]
  --json                print one JSON object as the last line on stdout
  -h, --help            this text
)";

int cmd_scale(int argc, char** argv) {
  cxxopts::Options opts("mtl scale", "");
  const auto str = [](const char* d) { return cxxopts::value<std::string>()->default_value(d); };
  opts.add_options()("tasks", "", str("2,4,9,16,40"))("methods", "", str("uniform,mgda-ub,mgda"))(
      "model", "", str("resnet18"))("width", "", cxxopts::value<std::string>())("image-size", "", str("56"))(
      "batch", "", str("64"))("steps", "", str("5"))("warmup", "", str("1"))("solver", "", str("frank-wolfe"))(
      "seed", "", str("0"))("data-dir", "", str("data"))("threads", "", cxxopts::value<std::string>())("json", "")(
      "h,help", "");
  const cxxopts::ParseResult r = parse_flags(opts, argc, argv, "scale");
  if (given(r, "help")) {
    std::fputs(kScaleHelp, stdout);
    return 0;
  }
  const auto s = [&](const char* flag) { return r[flag].as<std::string>(); };
  ScaleConfig c;
  c.tasks.clear();
  for (double k : parse_doubles("tasks", s("tasks"))) {
    if (k != std::floor(k)) throw UsageError("--tasks values must be whole numbers, got " + s("tasks"));
    c.tasks.push_back((int)k);
  }
  c.methods.clear();
  for (size_t start = 0;;) {
    const size_t comma = s("methods").find(',', start);
    c.methods.push_back(s("methods").substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  c.model = s("model");
  if (given(r, "width")) {
    const int w = parse_int("width", s("width"));
    if (w < 1 || w > 999) throw UsageError("--width must be in 1..999, got " + s("width"));
    if (given(r, "model") && c.model != "resnet18")
      throw UsageError("--width sets the width of resnet18; it cannot be combined with --model " + c.model);
    c.model = w == 16 ? "resnet18" : "resnet18-w" + std::to_string(w);
  }
  c.image_size = parse_int("image-size", s("image-size"));
  c.batch = parse_int("batch", s("batch"));
  c.steps = parse_int("steps", s("steps"));
  c.warmup = parse_int("warmup", s("warmup"));
  c.solver = s("solver");
  c.seed = parse_u64("seed", s("seed"));
  c.data_dir = s("data-dir");
  if (given(r, "threads")) {
    c.threads = parse_int("threads", s("threads"));
    if (c.threads < 1) throw UsageError("--threads must be >= 1, got " + s("threads"));
  }
  std::printf("mtl scale: %s at %dx%d on mnist-grid, batch %d, %d timed step%s after %d warm-up\n%s\n",
              c.model.c_str(), c.image_size, c.image_size, c.batch, c.steps, c.steps == 1 ? "" : "s", c.warmup,
              scale_table_header().c_str());
  std::fflush(stdout);
  const ScaleResult res = run_scale(c, [](const ScaleRow& row) {
    std::printf("%s\n", scale_table_row(row).c_str());
    std::fflush(stdout);
  });
  for (const auto& m : c.methods) {
    const LinearFit f = fit_step_cost(res, m, false), fc = fit_step_cost(res, m, true);
    if (c.tasks.size() >= 2)
      std::printf("fit %-9s wall s/step = %.4f + %.4f K (R^2 %.3f)   cpu s/step = %.4f + %.4f K (R^2 %.3f)\n",
                  m.c_str(), f.intercept, f.slope, f.r2, fc.intercept, fc.slope, fc.r2);
  }
  if (given(r, "json")) std::printf("%s\n", scale_json(res).dump().c_str());
  return 0;
}

// ---- dispatch -----------------------------------------------------------------

struct Command {
  const char* name;
  int (*run)(int argc, char** argv);
  const char* summary;
};

const Command kCommands[] = {
    {"train", cmd_train, "train a multi-task model (MultiLeNet on MultiMNIST with MGDA-UB by default)"},
    {"eval", cmd_eval, "evaluate a saved model on the test set"},
    {"bench", cmd_bench, "measure training/inference speed and memory (one JSON object)"},
    {"sweep", sparse_cli::cmd_sweep, "chebyshev-al runs over preference vectors, Pareto front, hypervolume"},
    {"scale", cmd_scale, "step cost of uniform, MGDA-UB and MGDA as the number of tasks grows"},
    {"export", cmd_export, "write a trained model as dependency-free C (fp32 or int8), pruned groups removed"},
};

void usage(FILE* f) {
  std::fprintf(f, "usage: mtl COMMAND [flags]\n\ncommands:\n");
  for (const Command& c : kCommands) std::fprintf(f, "  %-8s %s\n", c.name, c.summary);
  std::fprintf(f, "\n'mtl COMMAND --help' describes a command's flags.\n");
}

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    usage(stdout);
    return 0;
  }
  for (const Command& c : kCommands)
    if (cmd == c.name) return c.run(argc - 1, argv + 1);
  std::string names;
  for (const Command& c : kCommands) names += (names.empty() ? "" : ", ") + std::string(c.name);
  throw UsageError("unknown command '" + cmd + "' (commands: " + names + "; see 'mtl --help')");
}

void report(const std::string& what) {
  std::fflush(stdout);
  std::fprintf(stderr, "mtl: error: %s\n", one_line(what).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const UsageError& e) {
    report(e.what());
    return 2;
  } catch (const Error& e) {
    report(e.what());
    return 1;
  } catch (const std::exception& e) {
    report(std::string("internal error: ") + e.what());
    return 1;
  }
}
