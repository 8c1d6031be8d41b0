// The command-line front ends of the sparse multi-task procedure, included once by
// apps/mtl.cpp (the Makefile builds one object for the `mtl` command):
//
//   mtl train --method chebyshev-al [flags]   mtl/train/sparse_trainer.h
//   mtl sweep (--prefs-file FILE | --grid N)  apps/experiments/sweep.h
//
// Same conventions as the rest of `mtl`: errors are thrown (UsageError -> exit 2,
// other mt::Error -> exit 1, printed as one line by main), results go to stdout, with
// --json the last line of stdout is one JSON object.
#pragma once
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

#include "apps/cli_util.h"
#include "engine/error.h"
#include "mtl/train/sparse_trainer.h"
#include "apps/experiments/sweep.h"
#include "mtl/train/trainer.h"

namespace mt::sparse_cli {

namespace detail {

using namespace mt::cli;  // parse_int, parse_flags, pct, ... (apps/cli_util.h)

inline std::vector<double> parse_doubles(const std::string& flag, const std::string& s) {
  std::vector<double> v;
  size_t start = 0;
  while (true) {
    size_t comma = s.find(',', start);
    std::string tok = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    v.push_back(parse_double(flag, tok));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return v;
}

inline std::string short_num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

inline std::string list(const std::vector<double>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); i++) s += (i ? "," : "") + short_num(v[i]);
  return s;
}

// "left 93.12%  right 91.03%"
inline std::string per_task(const std::vector<std::string>& tasks, const std::vector<double>& v) {
  std::string s;
  for (size_t t = 0; t < tasks.size() && t < v.size(); t++) s += (t ? "  " : "") + tasks[t] + " " + pct(v[t]);
  return s;
}

// Progress of one run: a bar on a terminal, one line per epoch and per note.
class Console : public SparseTrainObserver {
 public:
  Console(bool quiet, std::string prefix = "") : quiet_(quiet), bar_(quiet), prefix_(std::move(prefix)) {}
  void set_prefix(const std::string& p) { prefix_ = p; }

  void on_start(const RunInfo& info) override {
    info_ = info;
    if (quiet_) return;
    std::printf("%smtl train: %s, chebyshev-al, %d tasks (%s); %d train / %d val / %d test images; %lld parameters; "
                "%d thread%s\n",
                prefix_.c_str(), info.model.c_str(), (int)info.tasks.size(), join(info.tasks, ", ").c_str(),
                info.train_n, info.val_n, info.test_n, (long long)info.num_parameters, info.threads,
                info.threads == 1 ? "" : "s");
    if (!info.resumed_from.empty())
      std::printf("%sresuming from %s after epoch %d\n", prefix_.c_str(), info.resumed_from.c_str(), info.start_epoch);
    std::fflush(stdout);
  }

  void on_batch(const BatchInfo& b) override {
    std::string head;
    if (bar_.due(b, head)) bar_.draw(prefix_ + head + "  loss " + list(b.loss));
  }

  void on_epoch(const SparseEpochRecord& r) override {
    clear();
    if (quiet_) return;
    std::string s = prefix_ + r.phase + " " + std::to_string(r.outer) + "/" + std::to_string(r.outers) + " epoch " +
                    std::to_string(r.outer_epoch) + " (" + std::to_string(r.epoch) + "/" + std::to_string(r.epochs) +
                    ")  lr " + short_num(r.lr) + "  lambda " + list(r.lambda) + "  mu " + short_num(r.mu) + "  t " +
                    short_num(r.t) + "  c " + list(r.c_mean) + "  f " + list(r.f_mean) + "  group sparsity " +
                    fixed(r.group_sparsity, 2) + "%  val acc " + per_task(info_.tasks, r.val_acc) + "  test acc " +
                    per_task(info_.tasks, r.test_acc) + "  " + fixed(r.epoch_s, 1) + " s" +
                    (r.selected ? "  (selected)" : r.phase_best ? "  (phase best)" : "");
    std::printf("%s\n", s.c_str());
    std::fflush(stdout);
  }

  void on_note(const std::string& note) override {
    clear();
    if (quiet_) return;
    std::printf("%s%s\n", prefix_.c_str(), note.c_str());
    std::fflush(stdout);
  }

  void clear() { bar_.clear(); }

 private:
  bool quiet_;
  ProgressBar bar_;
  std::string prefix_;
  RunInfo info_;
};

// Flags of plain `mtl train` this procedure does not use: accepted, then refused with a reason.
inline const char* const kUnusedTrainFlags[] = {"epochs",  "optimizer", "momentum",      "weight-decay",
                                                "lr-step", "lr-gamma",  "lr-first-step", "weights",
                                                "normalization", "solver"};

// The flags `mtl train --method chebyshev-al` and `mtl sweep` share.
inline void add_common_flags(cxxopts::Options& opts) {
  const auto str = [](const char* d) { return cxxopts::value<std::string>()->default_value(d); };
  const auto opt = [] { return cxxopts::value<std::string>(); };
  opts.add_options()("dataset", "", str("multimnist"))("data-dir", "", str("data"))(
      "fashion-dir", "", str("/usr/share/datasets/fashion-mnist"))("cifar-dir", "", opt())("data-seed", "", str("0"))(
      "val", "", str("10000"))("train-limit", "", str("0"))("test-limit", "", str("0"))("model", "", opt())(
      "ref-point", "", opt())("eps", "", str("1e-4"))("mu", "", opt())("rho", "", str("2"))(
      "al-variant", "", str("published"))("search-iters", "", str("3"))("retrain-iters", "", str("10"))("epochs-per-iter", "", str("3"))(
      "min-sparsity", "", opt())("max-layer-sparsity", "", opt())("sim-preference", "", opt())("lr", "", opt())(
      "lr-decay", "", opt())("batch", "", str("256"))("seed", "", str("0"))("threads", "", opt())("out", "", opt())(
      "force", "")("json", "")("quiet", "")("h,help", "");
  for (const char* f : kUnusedTrainFlags) opts.add_options()(f, "", opt());
}

inline void refuse_unused(const cxxopts::ParseResult& r, const std::string& cmd) {
  for (const char* f : kUnusedTrainFlags) {
    if (!r.count(f)) continue;
    const std::string flag = f;
    std::string why = "the procedure's own schedule is set by --search-iters, --retrain-iters, --epochs-per-iter, "
                      "--lr and --lr-decay (Adam)";
    if (flag == "weights") why = "the preference vector is --prefs";
    if (flag == "normalization" || flag == "solver") why = "it belongs to --method mgda / mgda-ub";
    throw UsageError("--" + flag + " is not used by " + cmd + ": " + why);
  }
}

inline SparseTrainConfig common_config(const cxxopts::ParseResult& r) {
  const auto s = [&](const char* flag) { return r[flag].as<std::string>(); };
  const auto given = [&](const char* flag) { return r.count(flag) > 0; };
  SparseTrainConfig c;
  c.dataset = s("dataset");
  c.data_dir = s("data-dir");
  c.fashion_dir = s("fashion-dir");
  if (given("cifar-dir")) {
    c.cifar_dir = s("cifar-dir");
    if (c.cifar_dir.empty()) throw UsageError("--cifar-dir must not be empty");
  }
  c.data_seed = parse_u64("data-seed", s("data-seed"));
  c.val = parse_int("val", s("val"));
  c.train_limit = parse_int("train-limit", s("train-limit"));
  c.test_limit = parse_int("test-limit", s("test-limit"));
  if (given("train-limit") && c.train_limit < 1) throw UsageError("--train-limit must be >= 1, got " + s("train-limit"));
  if (given("test-limit") && c.test_limit < 1) throw UsageError("--test-limit must be >= 1, got " + s("test-limit"));
  c.model = given("model") ? s("model") : default_sparse_model_for(c.dataset);  // mdmtn-cifar or mdmtn
  if (given("ref-point")) c.ref_point = parse_doubles("ref-point", s("ref-point"));
  c.eps = parse_double("eps", s("eps"));
  if (given("mu")) c.mu = parse_double("mu", s("mu"));
  c.rho = parse_double("rho", s("rho"));
  c.variant = s("al-variant");
  c.search_iters = parse_int("search-iters", s("search-iters"));
  c.retrain_iters = parse_int("retrain-iters", s("retrain-iters"));
  c.epochs_per_iter = parse_int("epochs-per-iter", s("epochs-per-iter"));
  if (given("min-sparsity")) c.min_sparsity = parse_double("min-sparsity", s("min-sparsity"));
  if (given("max-layer-sparsity")) c.max_layer_sparsity = parse_double("max-layer-sparsity", s("max-layer-sparsity"));
  if (given("sim-preference")) c.sim_preference = parse_double("sim-preference", s("sim-preference"));
  if (given("lr")) c.lr = parse_double("lr", s("lr"));
  if (given("lr-decay")) c.lr_decay = parse_double("lr-decay", s("lr-decay"));
  c.batch = parse_int("batch", s("batch"));
  c.seed = parse_u64("seed", s("seed"));
  if (given("threads")) {
    c.threads = parse_int("threads", s("threads"));
    if (c.threads < 1) throw UsageError("--threads must be >= 1, got " + s("threads"));
  }
  if (given("out")) {
    c.out = s("out");
    if (c.out.empty()) throw UsageError("--out must not be empty");
  }
  c.force = given("force");
  return c;
}

const char* const kCommonHelp = R"(data
  --dataset NAME        multimnist | multifashion | multifashion-mnist | mnist | fashion | cifar10-mnist
                        [multimnist]
  --data-dir DIR        [data]
  --fashion-dir DIR     [/usr/share/datasets/fashion-mnist]
  --cifar-dir DIR       cifar10-mnist: the CIFAR-10 binary files (data_batch_1.bin, ..., test_batch.bin,
                        in DIR or DIR/cifar-10-batches-bin; cifar-10-binary.tar.gz from
                        https://www.cs.toronto.edu/~kriz/cifar.html)  [data/cifar10]
  --data-seed N         seed of the Multi* image composition  [0]
  --val N               validation images held out of the training set (the selection uses them)  [10000]
  --train-limit N       use only the first N training images (before the validation split)  [all]
  --test-limit N        use only the first N test images  [all]
model and method (defaults: the reference's MultiMNIST settings; -cifar models: Cifar10Mnist's)
  --model NAME          mdmtn | hps | mdmtn-cifar | hps-cifar  [mdmtn; mdmtn-cifar for cifar10-mnist]
  --ref-point A0,A1,..  reference point a  [0,...]
  --eps X               augmentation epsilon  [1e-4]
  --al-variant NAME     published (as the reference code: f_0 a number in c_0, not
                        differentiated) | standard (textbook inequality AL, lambda
                        clipped at 0, f_0 differentiated)  [published]
  --mu X                initial penalty mu0 > 0  [published 2.5e-8 (-cifar 6.8e-8); standard 1]
  --rho X               mu <- rho mu after each outer iteration, >= 1  [2]
  --search-iters N      outer iterations of the search (GrOWL) phase  [3]
  --retrain-iters N     outer iterations of the retraining phase  [10]
  --epochs-per-iter N   epochs per outer iteration  [3]
  --min-sparsity P      search-phase selection: group sparsity >= P percent  [mdmtn 20, hps 10; -cifar 10, 5]
  --max-layer-sparsity X  GrOWL cap on a layer's pruned groups (ramped over the search)  [0.8; -cifar 0.3, 0.15]
  --sim-preference X    Affinity Propagation preference of the parameter tying  [0.7; -cifar 0.8]
optimisation (Adam)
  --lr X                initial learning rate of each phase  [2.5e-3; -cifar 1e-4]
  --lr-decay X          lr <- lr * X after each outer iteration  [0.5; -cifar 0.98]
  --batch N             [256]
  --seed N              initialisation, t, shuffling, validation split  [0]
  --threads N           [MTL_THREADS, else all cores]
)";

}  // namespace detail

// `mtl train ... --method chebyshev-al ...`?
inline bool is_chebyshev_al(int argc, char** argv) {
  for (int i = 1; i < argc; i++) {
    const std::string a = argv[i];
    if (a == "--method=chebyshev-al") return true;
    if (a == "--method" && i + 1 < argc && std::string(argv[i + 1]) == "chebyshev-al") return true;
  }
  return false;
}

inline const char* train_help() {
  static const std::string help = std::string(R"(usage: mtl train --method chebyshev-al [flags]

Sparse multi-task learning with the modified weighted Chebyshev scalarisation and an
augmented Lagrangian (Hotegni, Berkemeier, Peitz, IJCNN 2024), as the reference code runs
it: a search phase (LSUV init; per epoch Adam on the AL objective, then a GrOWL prox step;
the best-validation model with group sparsity >= --min-sparsity is kept), then the pruned
groups are fixed, similar groups tied (Affinity Propagation), and the model is retrained.
After each outer iteration: lambda <- lambda + mu c, mu <- rho mu, lr <- lr * --lr-decay, with c
summed over the batches of the best-validation epoch so far (published, as the reference) or
averaged over the last epoch's batches, and lambda clipped at 0 (standard).
With k_0 = 0 the same schedule runs without LSUV, GrOWL, mask and tying.
Per epoch, --out gets metrics.csv, config.json, last/best.safetensors, checkpoint.safetensors;
at the end result.json (test accuracy, sparsity, compression, FLOPs, objectives, lambda, mu, t).

  --prefs K0,K1,..,KK   preference k: k_0 for sparsity, then one per task (>= 0, not all 0)  [0.01,0.8,0.19]
)") + detail::kCommonHelp + R"(run
  --out DIR             [runs/<dataset>-chebyshev-al-s<seed>; with --resume, the checkpoint's directory]
  --resume FILE         continue from a checkpoint.safetensors (same settings; --retrain-iters may grow)
  --stop-after N        stop after N epochs in total (continue later with --resume)
  --force               allow replacing another run's files in --out
  --json                print one JSON object with the results as the last line on stdout
  --quiet               no progress, no per-epoch lines, no summary
  -h, --help            this text
)";
  return help.c_str();
}

inline int cmd_train_chebyshev_al(int argc, char** argv) {
  const std::string cmd = "train --method chebyshev-al";
  cxxopts::Options opts("mtl train", "");
  detail::add_common_flags(opts);
  opts.add_options()("method", "", cxxopts::value<std::string>())(
      "prefs", "", cxxopts::value<std::string>()->default_value("0.01,0.8,0.19"))(
      "resume", "", cxxopts::value<std::string>())("stop-after", "", cxxopts::value<std::string>());
  const cxxopts::ParseResult r = detail::parse_flags(opts, argc, argv, "train");
  if (r.count("help")) {
    std::fputs(train_help(), stdout);
    return 0;
  }
  detail::refuse_unused(r, "--method chebyshev-al");
  SparseTrainConfig c = detail::common_config(r);
  c.prefs = detail::parse_doubles("prefs", r["prefs"].as<std::string>());
  if (r.count("resume")) {
    c.resume = r["resume"].as<std::string>();
    if (c.resume.empty()) throw UsageError("--resume must not be empty");
  }
  if (r.count("stop-after")) {
    c.stop_after = detail::parse_int("stop-after", r["stop-after"].as<std::string>());
    if (c.stop_after < 1) throw UsageError("--stop-after must be >= 1, got " + r["stop-after"].as<std::string>());
  }
  const bool json = r.count("json") > 0, quiet = r.count("quiet") > 0;
  validate_sparse_config(c);

  detail::Console con(quiet);
  SparseTrainResult res;
  try {
    res = train_chebyshev_al(c, &con);
  } catch (...) {
    con.clear();
    throw;
  }
  const std::vector<std::string>& tasks = res.info.tasks;
  if (!quiet) {
    if (!res.finished) {
      std::printf("stopped after epoch %d of %d (--stop-after); continue with --resume %s\n",
                  res.epochs.empty() ? res.info.start_epoch : res.epochs.back().epoch, res.info.epochs,
                  res.checkpoint_path.c_str());
    } else {
      std::printf("done: epochs %d-%d of chebyshev-al (%s) in %.1f s\n", res.info.start_epoch + 1, res.info.epochs,
                  res.config.variant.c_str(), res.wall_s);
      std::printf("final model: epoch %d (best validation accuracy of the %s phase): test accuracy %s\n",
                  res.best_epoch, res.config.retrain_iters > 0 ? "retraining" : "search",
                  detail::per_task(tasks, res.test.acc).c_str());
      std::printf("sparsity: %s\n", res.sparsity_text.c_str());
      std::string obj;
      const std::vector<std::string> names = objective_names(tasks);
      for (size_t i = 0; i < res.objectives.size(); i++)
        obj += (i ? "  " : "") + names[i] + " " + detail::short_num(res.objectives[i]);
      std::printf("objectives (f_0 group-norm sum, task test losses): %s\n", obj.c_str());
      std::printf("lambda %s  mu %s  t %s\n", detail::list(res.lambda).c_str(), detail::short_num(res.mu).c_str(),
                  detail::short_num(res.t).c_str());
      std::printf("files: %s, %s, %s, %s, %s\n", res.best_path.c_str(), res.metrics_path.c_str(),
                  res.config_path.c_str(), res.result_path.c_str(), res.checkpoint_path.c_str());
    }
  }
  if (json) std::printf("%s\n", sparse_result_json(res).dump().c_str());
  return 0;
}

inline const char* sweep_help() {
  static const std::string help = std::string(R"(usage: mtl sweep (--prefs-file FILE | --grid N) [flags]

One `mtl train --method chebyshev-al` run per preference vector k = (k_0 sparsity, k_1..k_K),
each into OUT/run-<i>/, then OUT/sweep.csv (one row per vector: k, final objectives, test
accuracies, group sparsity, non-dominated flag), OUT/sweep.json (hypervolume and its
reference point, every run's result) and OUT/front.svg (2 or 3 objectives).

vectors
  --prefs-file FILE     one vector per line (commas or spaces, '#' comments)
  --grid N              the simplex grid {n_i / N}: C(N+K, K) vectors
  --sparsity-pref K0    with --grid: fix k_0 and grid the task weights, k = (K0, (1-K0) g)
front
  --front SPACE         objectives: (f_0 group-norm sum, test loss per task) |
                        metrics: (1 - group sparsity, test error per task)  [objectives]
  --hv-ref R0,R1,..     hypervolume reference point  [1.1 x the per-objective max over the runs]
)") + detail::kCommonHelp + R"(run
  --out DIR             [runs/<dataset>-sweep-s<seed>]
  --force               replace an earlier sweep's files in --out
  --json                print one JSON object (sweep.json without the runs) as the last line
  --quiet               no progress lines
  -h, --help            this text
)";
  return help.c_str();
}

class SweepConsole : public SweepObserver {
 public:
  explicit SweepConsole(bool quiet) : quiet_(quiet), run_(quiet) {}
  void on_sweep_start(int runs, const std::vector<std::string>& names) override {
    if (quiet_) return;
    std::printf("mtl sweep: %d preference vectors over (%s)\n", runs, detail::join(names, ", ").c_str());
    std::fflush(stdout);
  }
  void on_run_start(int run, int runs, const std::vector<double>& prefs) override {
    run_.set_prefix("[" + std::to_string(run + 1) + "/" + std::to_string(runs) + "] ");
    if (quiet_) return;
    std::printf("[%d/%d] k = (%s)\n", run + 1, runs, detail::list(prefs).c_str());
    std::fflush(stdout);
  }
  void on_run_end(const SweepRow& row) override {
    run_.clear();
    if (quiet_) return;
    if (row.status != "ok") {
      std::printf("[%d] %s\n", row.run + 1, row.status.c_str());
    } else {
      std::printf("[%d] test accuracy %s  group sparsity %.2f%%  objectives %s\n", row.run + 1,
                  detail::per_task(row.result.info.tasks, row.result.test.acc).c_str(),
                  row.result.sparsity.group_sparsity, detail::list(row.result.objectives).c_str());
    }
    std::fflush(stdout);
  }
  SparseTrainObserver* run_observer() override { return &run_; }
  void clear() { run_.clear(); }

 private:
  bool quiet_;
  detail::Console run_;
};

inline int cmd_sweep(int argc, char** argv) {
  cxxopts::Options opts("mtl sweep", "");
  detail::add_common_flags(opts);
  opts.add_options()("prefs-file", "", cxxopts::value<std::string>())("grid", "", cxxopts::value<std::string>())(
      "sparsity-pref", "", cxxopts::value<std::string>())("front", "", cxxopts::value<std::string>()->default_value(
                                                                          "objectives"))(
      "hv-ref", "", cxxopts::value<std::string>())("method", "", cxxopts::value<std::string>());
  const cxxopts::ParseResult r = detail::parse_flags(opts, argc, argv, "sweep");
  if (r.count("help")) {
    std::fputs(sweep_help(), stdout);
    return 0;
  }
  detail::refuse_unused(r, "mtl sweep");
  if (r.count("method") && r["method"].as<std::string>() != "chebyshev-al")
    throw UsageError("mtl sweep trains --method chebyshev-al only (got --method " + r["method"].as<std::string>() + ")");
  SweepConfig c;
  c.base = detail::common_config(r);
  c.out = c.base.out;
  c.force = c.base.force;
  if (r.count("prefs-file")) {
    c.prefs_file = r["prefs-file"].as<std::string>();
    if (c.prefs_file.empty()) throw UsageError("--prefs-file must not be empty");
  }
  if (r.count("grid")) {
    c.grid = detail::parse_int("grid", r["grid"].as<std::string>());
    if (c.grid < 1) throw UsageError("--grid must be >= 1, got " + r["grid"].as<std::string>());
  }
  if (r.count("sparsity-pref")) c.sparsity_pref = detail::parse_double("sparsity-pref", r["sparsity-pref"].as<std::string>());
  c.front = r["front"].as<std::string>();
  if (r.count("hv-ref")) c.hv_ref = detail::parse_doubles("hv-ref", r["hv-ref"].as<std::string>());
  const bool json = r.count("json") > 0, quiet = r.count("quiet") > 0;
  validate_sweep_config(c);

  SweepConsole con(quiet);
  SweepResult res;
  try {
    res = run_sweep(c, &con);
  } catch (...) {
    con.clear();
    throw;
  }
  if (!quiet) {
    int nd = 0;
    for (const auto& row : res.rows) nd += row.non_dominated;
    std::printf("done: %zu runs in %.1f s; %d non-dominated in the %s space; hypervolume %s (reference %s)\n",
                res.rows.size(), res.wall_s, nd, c.front.c_str(),
                res.hypervolume ? detail::short_num(*res.hypervolume).c_str() : "n/a",
                detail::list(res.reference).c_str());
    std::printf("files: %s, %s%s%s\n", res.csv_path.c_str(), res.json_path.c_str(), res.svg_path.empty() ? "" : ", ",
                res.svg_path.c_str());
  }
  if (json) {
    nlohmann::ordered_json j;
    j["command"] = "sweep";
    j["runs"] = res.rows.size();
    j["objective_names"] = res.objective_names;
    j["front"] = c.front;
    j["reference_point"] = res.reference;
    if (res.hypervolume) j["hypervolume"] = *res.hypervolume;
    else j["hypervolume"] = nullptr;
    std::vector<int> front;
    for (const auto& row : res.rows)
      if (row.non_dominated) front.push_back(row.run);
    j["non_dominated"] = front;
    j["csv"] = res.csv_path;
    j["json"] = res.json_path;
    j["svg"] = res.svg_path;
    j["wall_s"] = std::round(res.wall_s * 1000) / 1000;
    std::printf("%s\n", j.dump().c_str());
  }
  return 0;
}

}  // namespace mt::sparse_cli
