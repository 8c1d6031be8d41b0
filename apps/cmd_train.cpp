// mtl train: the flag table of a training run and its console output.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/report/report.h"
#include "mtl/dist/comm.h"
#include "mtl/methods/gram_method.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "mtl/train/trainer.h"

namespace mt::cli {

namespace {

using A = TrainArgs;
const char* const kData = "data";
const char* const kMany = "many-task data (mnist-grid, imagefolder, celeba)";
const char* const kModel = "model and method";
const char* const kCheb = "chebyshev-al (--method chebyshev-al; defaults: the reference's MultiMNIST settings,\n"
                          "the -cifar models' Cifar10Mnist settings)";
const char* const kBal = "gradient balancing (mtl/methods/gram_method.h, loss_method.h)";
const char* const kOpt = "optimisation";
const char* const kRun = "run";

template <class Get>
Flag<A> f(const char* name, const char* arg, const char* group, const std::string& help, Get get) {
  return field<A>(name, arg, group, help, get);
}

}  // namespace

const std::vector<Flag<TrainArgs>>& train_flags() {
  static const std::vector<Flag<A>> flags = {
      f("dataset", "NAME", kData, join(train_dataset_names(), " | "), [](A& a) -> auto& { return a.c.dataset; }),
      f("data-dir", "DIR", kData, "MNIST is read from DIR/mnist (`make data` fetches it)",
        [](A& a) -> auto& { return a.c.data_dir; }),
      f("fashion-dir", "DIR", kData, "Fashion-MNIST .gz files", [](A& a) -> auto& { return a.c.fashion_dir; }),
      f("cifar-dir", "DIR", kData,
        "cifar10-mnist: the CIFAR-10 binary files (data_batch_1.bin, ..., test_batch.bin,\n"
        "in DIR or DIR/cifar-10-batches-bin; cifar-10-binary.tar.gz from\n"
        "https://www.cs.toronto.edu/~kriz/cifar.html)  [data/cifar10]",
        [](A& a) -> auto& { return a.c.cifar_dir; }),
      f("val", "N", kData, "hold N training images out for validation (split by --seed)  [0; chebyshev-al 10000]",
        [](A& a) -> auto& { return a.c.val; }),
      f("train-limit", "N", kData, "use only the first N training images (quick runs)  [all]",
        [](A& a) -> auto& { return a.c.train_limit; }),
      f("test-limit", "N", kData, "use only the first N test images  [all]", [](A& a) -> auto& { return a.c.test_limit; }),
      f("data-seed", "N", kData,
        "seed of the Multi* image composition (mnist-grid: of the grid; image\n"
        "folders: of the held-out test split)",
        [](A& a) -> auto& { return a.c.data_seed; }),
      f("tasks", "K|A,B,..", kMany,
        "mnist-grid: K tasks, 2..48 (or task names such as digit_0_0,even_1_1)  [4];\n"
        "imagefolder, celeba: the attribute columns to learn  [all]",
        [](A& a) -> auto& { return a.c.source.tasks; }),
      f("images", "DIR", kMany,
        "imagefolder: the folder the attribute file names images in;\n"
        "celeba: the root holding img_align_celeba/ and the list_*.txt files",
        [](A& a) -> auto& { return a.c.source.images; }),
      f("labels", "FILE", kMany, "imagefolder: attribute file, CSV \"file,task1,...\" or CelebA's layout",
        [](A& a) -> auto& { return a.c.source.labels; }),
      f("partition", "FILE", kMany,
        "imagefolder: rows \"file 0|1|2\"; train on 0, test on 2  [none: hold out\n"
        "--test-fraction of the images as test set, split by --data-seed]",
        [](A& a) -> auto& { return a.c.source.partition; }),
      f("test-fraction", "X", kMany, "[0.2]", [](A& a) -> auto& { return a.c.source.test_fraction; }),
      f("image-size", "N", kMany, "side of the square input  [56 for mnist-grid, 64 for folders]",
        [](A& a) -> auto& { return a.c.source.image_size; }),
      f("channels", "1|3", kMany, "folders: grey or RGB input  [3]", [](A& a) -> auto& { return a.c.source.channels; }),
      f("max-images", "N", kMany, "folders: read only the first N images (per partition)  [all]",
        [](A& a) -> auto& { return a.c.source.max_images; }),
      f("model", "NAME", kModel,
        join(model_names(), " | ") + " | resnet18-w<N>\n"
        "[multilenet; resnet18 for mnist-grid, imagefolder, celeba; mdmtn-cifar for\n"
        "cifar10-mnist; chebyshev-al: mdmtn (mdmtn-cifar)]",
        [](A& a) -> auto& { return a.c.model; }),
      f("width", "N", kModel, "ResNet-18 width (resnet18-w<N>; resnet18 is width 16)", [](A& a) -> auto& { return a.c.width; }),
      f("method", "NAME", kModel,
        join(method_names(), " | ") + "\n(single-task trains one MultiLeNet per task: model multilenet-stl)",
        [](A& a) -> auto& { return a.c.method; }),
      f("weights", "W1,W2,...", kModel, "the task weights of --method fixed", [](A& a) -> auto& { return a.c.weights; }),
      f("normalization", "N", kModel,
        "mgda, mgda-ub: none | l2 | loss | loss+, scaling of each task\n"
        "gradient before the min-norm solver  [none, as in the paper]",
        [](A& a) -> auto& { return a.c.normalization; }),
      f("solver", "NAME", kModel, "mgda, mgda-ub with 3+ tasks: wolfe | frank-wolfe | projected-gradient  [wolfe]",
        [](A& a) -> auto& { return a.c.solver; }),
      f("heads", "H", kModel,
        "mgda, mgda-ub: alpha (head t trains on alpha_t L_t, as the reference code) |\n"
        "own (head t on its own loss L_t, as the paper's Algorithm 2, lines 1-3) |\n"
        "mean (head t on L_t / K, the head rates of weights 1/K)  [alpha]",
        [](A& a) -> auto& { return a.c.heads; }),
      f("gradnorm-alpha", "X", kModel, "gradnorm: the asymmetry alpha  [1.5]",
        [](A& a) -> auto& { return a.c.gradnorm_alpha; }),
      f("gradients", "MODE", kBal,
        join(gradient_mode_methods(), ", ") + ": where the task gradients g_t are taken,\n"
        "representation (dL_t/dZ: one trunk forward and backward, as mgda-ub) | parameters\n"
        "(every shared parameter: one trunk backward per task, as mgda)  [representation]\n"
        "(mgda, aligned-mtl: parameters; mgda-ub, aligned-mtl-ub: representation)",
        [](A& a) -> auto& { return a.c.gradients; }),
      f("cagrad-c", "X", kBal, "cagrad: radius c of the ball around the mean gradient  [0.4]",
        [](A& a) -> auto& { return a.c.cagrad_c; }),
      f("nash-max-norm", "X", kBal, "nash-mtl: clip the shared gradient to this norm, 0 off  [1]",
        [](A& a) -> auto& { return a.c.nash_max_norm; }),
      f("upgrad-reg", "X", kBal, "upgrad: ridge added to the trace-normalised Gram matrix  [1e-4]",
        [](A& a) -> auto& { return a.c.upgrad_reg; }),
      f("dwa-temperature", "T", kBal, "dwa: softmax temperature  [2]", [](A& a) -> auto& { return a.c.dwa_temperature; }),
      f("famo-lr", "X", kBal, "famo: Adam step size of the task logits  [0.025]", [](A& a) -> auto& { return a.c.famo_lr; }),
      f("famo-gamma", "X", kBal, "famo: weight decay of the task logits  [1e-3]",
        [](A& a) -> auto& { return a.c.famo_gamma; }),
      f("stch-mu", "X", kBal, "stch: smoothing mu  [1]", [](A& a) -> auto& { return a.c.stch_mu; }),
      f("stch-warmup", "N", kBal, "stch: warm-up epochs on sum_t log L_t; the last sets the nadir point  [1]",
        [](A& a) -> auto& { return a.c.stch_warmup; }),
      f("prefs", "K0,K1,..,KK", kCheb, "preference k: k_0 for sparsity, then one per task (>= 0, not all 0)  [0.01,0.8,0.19]",
        [](A& a) -> auto& { return a.c.prefs; }),
      f("ref-point", "A0,A1,..", kCheb, "reference point a  [0,...]", [](A& a) -> auto& { return a.c.ref_point; }),
      f("eps", "X", kCheb, "augmentation epsilon  [1e-4]", [](A& a) -> auto& { return a.c.eps; }),
      f("al-variant", "NAME", kCheb,
        "published (as the reference code: f_0 a number in c_0, not\n"
        "differentiated; lambda updated with c of the best-validation epoch) |\n"
        "standard (textbook inequality AL: lambda clipped at 0, updated with the last\n"
        "epoch's mean c; f_0 differentiated)  [published]",
        [](A& a) -> auto& { return a.c.al_variant; }),
      f("mu", "X", kCheb, "initial penalty mu0 > 0  [published 2.5e-8 (-cifar 6.8e-8); standard 1]",
        [](A& a) -> auto& { return a.c.mu; }),
      f("rho", "X", kCheb, "mu <- rho mu after each outer iteration, >= 1  [2]", [](A& a) -> auto& { return a.c.rho; }),
      f("search-iters", "N", kCheb, "outer iterations of the search (GrOWL) phase  [3]",
        [](A& a) -> auto& { return a.c.search_iters; }),
      f("retrain-iters", "N", kCheb, "outer iterations of the retraining phase  [10]",
        [](A& a) -> auto& { return a.c.retrain_iters; }),
      f("epochs-per-iter", "N", kCheb, "epochs per outer iteration  [3]", [](A& a) -> auto& { return a.c.epochs_per_iter; }),
      f("min-sparsity", "P", kCheb, "search-phase selection: group sparsity >= P percent  [mdmtn 20, hps 10; -cifar 10, 5]",
        [](A& a) -> auto& { return a.c.min_sparsity; }),
      f("max-layer-sparsity", "X", kCheb, "GrOWL cap on a layer's pruned groups (ramped over the search)  [0.8; -cifar 0.3, 0.15]",
        [](A& a) -> auto& { return a.c.max_layer_sparsity; }),
      f("sim-preference", "X", kCheb, "Affinity Propagation preference of the parameter tying  [0.7; -cifar 0.8]",
        [](A& a) -> auto& { return a.c.sim_preference; }),
      f("lr-decay", "X", kCheb, "lr <- lr * X after each outer iteration  [0.5; -cifar 0.98]",
        [](A& a) -> auto& { return a.c.lr_decay; }),
      f("epochs", "N", kOpt, "total epochs, counting those of a --resume checkpoint  [10; chebyshev-al: its schedule's]",
        [](A& a) -> auto& { return a.c.epochs; }),
      f("batch", "N", kOpt, "mini-batch size", [](A& a) -> auto& { return a.c.batch; }),
      f("optimizer", "NAME", kOpt, "sgd | adam | adamw  [sgd; chebyshev-al adam]", [](A& a) -> auto& { return a.c.optimizer; }),
      f("lr", "X", kOpt, "learning rate  [0.05; chebyshev-al 2.5e-3 (-cifar 1e-4), each phase]",
        [](A& a) -> auto& { return a.c.lr; }),
      f("momentum", "X", kOpt, "SGD momentum  [0.9]", [](A& a) -> auto& { return a.c.momentum; }),
      f("weight-decay", "X", kOpt, "[0]", [](A& a) -> auto& { return a.c.weight_decay; }),
      f("lr-step", "N", kOpt, "StepLR: multiply the lr by --lr-gamma every N epochs  [off]",
        [](A& a) -> auto& { return a.c.lr_step; }),
      f("lr-gamma", "X", kOpt, "[0.1]  (the MGDA paper: --lr-step 10 --lr-gamma 0.85)", [](A& a) -> auto& { return a.c.lr_gamma; }),
      f("lr-first-step", "N", kOpt,
        "the first decay after N epochs, then every --lr-step  [--lr-step]\n"
        "(the MGDA code decays when (epoch+1) % 10 == 0: --lr-first-step 9)",
        [](A& a) -> auto& { return a.c.lr_first_step; }),
      f("seed", "N", kOpt, "initialisation, dropout, t, shuffling, validation split", [](A& a) -> auto& { return a.c.seed; }),
      f("threads", "N", kOpt, "worker threads  [MTL_THREADS, else all cores]", [](A& a) -> auto& { return a.c.threads; }),
      f("out", "DIR", kRun, "[runs/<dataset>-<method>-s<seed>; with --resume, the checkpoint's directory]",
        [](A& a) -> auto& { return a.c.out; }),
      f("resume", "FILE", kRun,
        "continue from a checkpoint.safetensors (same model, tasks, dataset,\n"
        "method and seed); numbers are identical to an uninterrupted run",
        [](A& a) -> auto& { return a.c.resume; }),
      f("stop-after", "N", kRun, "stop after N epochs in total (continue later with --resume)",
        [](A& a) -> auto& { return a.c.stop_after; }),
      toggle<A>("force", kRun, "allow replacing another run's files in --out", [](A& a) -> auto& { return a.c.force; }),
      toggle<A>("json", kRun, "print one JSON object with the results as the last line on stdout",
                [](A& a) -> auto& { return a.json; }),
      toggle<A>("quiet", kRun, "no progress, no per-epoch lines, no summary", [](A& a) -> auto& { return a.quiet; }),
      toggle<A>("report", kRun, "write OUT/report.html at the end (plots of the run: see 'mtl report --help')",
                [](A& a) -> auto& { return a.report; }),
  };
  return flags;
}

// ---- console ------------------------------------------------------------------------------

Console::Console(bool quiet, std::string prefix) : quiet_(quiet), bar_(quiet), prefix_(std::move(prefix)) {}

Console::~Console() {
  if (steps_) std::fclose(steps_);
}

void Console::on_start(const RunInfo& info) {
  info_ = info;
  if (!steps_path_.empty()) {
    steps_ = std::fopen(steps_path_.c_str(), "w");
    if (!steps_) throw Error("--steps-csv " + steps_path_ + ": cannot write the file");
    std::string head = "global_step,epoch,batch";
    for (const auto& t : info.tasks) head += ",loss_" + t;
    for (const auto& t : info.tasks) head += ",weight_" + t;
    std::fprintf(steps_, "%s\n", head.c_str());
  }
  weight_name_ = (info.method == "mgda" || info.method == "mgda-ub") ? "alpha" : "weight";
  if (quiet_) return;
  std::printf("%smtl train: %s, %s, %d tasks (%s); %d train / %d val / %d test images; %lld parameters; %d thread%s\n",
              prefix_.c_str(), info.model.c_str(), info.method.c_str(), (int)info.tasks.size(),
              join(info.tasks, ", ").c_str(), info.train_n, info.val_n, info.test_n, (long long)info.num_parameters,
              info.threads, info.threads == 1 ? "" : "s");
  if (!info.resumed_from.empty())
    std::printf("%sresuming from %s after epoch %d\n", prefix_.c_str(), info.resumed_from.c_str(), info.start_epoch);
  if (!info.removed_temporaries.empty())
    std::printf("%sremoved %zu temporary file%s a killed run left in %s\n", prefix_.c_str(),
                info.removed_temporaries.size(), info.removed_temporaries.size() == 1 ? "" : "s", info.out.c_str());
  std::fflush(stdout);
}

void Console::on_batch(const BatchInfo& b) {
  if (steps_) {
    std::fprintf(steps_, "%lld,%d,%d", (long long)b.global_step, b.epoch, b.batch);
    for (double v : b.loss) std::fprintf(steps_, ",%.9g", v);
    for (double v : b.weight) std::fprintf(steps_, ",%.9g", v);
    std::fprintf(steps_, "\n");
  }
  std::string head;
  if (!bar_.due(b, head)) return;
  bar_.draw(prefix_ + head + "  loss " + per_task_numbers(info_.tasks, b.loss, 3) + "  " + weight_name_ + " " +
            per_task_numbers(info_.tasks, b.weight, 2));
}

void Console::on_epoch(const EpochRecord& r) {
  clear();
  if (quiet_) return;
  std::string s = prefix_ + "epoch " + std::to_string(r.epoch) + "/" + std::to_string(r.epochs);
  if (!r.phase.empty()) s += " (" + r.phase + ")";
  s += "  lr " + short_num(r.lr) + "  train loss " + per_task_numbers(info_.tasks, r.train_loss, 4) + "  " +
       weight_name_ + " " + per_task_numbers(info_.tasks, r.weight, 3);
  std::vector<std::string> lambda;
  for (const auto& [name, v] : r.extra) {
    if (name.compare(0, 7, "lambda_") == 0) lambda.push_back(short_num(v));
    if (name == "mu" || name == "t") s += "  " + name + " " + short_num(v);
    if (name == "group_sparsity") s += "  group sparsity " + fixed(v, 2) + "%";
    if (name == "solver_gap_max") s += "  solver gap " + short_num(v);
  }
  if (!lambda.empty()) s += "  lambda " + join(lambda, ",");
  if (!r.val_metric.empty()) s += "  val " + per_task(info_.tasks, info_.metrics, r.val_metric);
  s += "  test " + per_task(info_.tasks, info_.metrics, r.test_metric) + "  " + fixed(r.train_samples_per_s, 0) +
       " samples/s  " + fixed(r.epoch_s, 2) + " s" + (r.best ? "  (best)" : r.improved ? "  (phase best)" : "");
  std::printf("%s\n", s.c_str());
  std::fflush(stdout);
}

void Console::on_note(const std::string& note) {
  clear();
  if (quiet_) return;
  std::printf("%s%s\n", prefix_.c_str(), note.c_str());
  std::fflush(stdout);
}

// ---- mtl train ------------------------------------------------------------------------------

int cmd_train(int argc, char** argv) {
  static const FlagTable<A> table("train", [] {
    std::vector<Flag<A>> flags = train_flags();  // (mtl sweep shares these; --steps-csv is train's own)
    flags.push_back(f("steps-csv", "FILE", kRun,
                      "write every step's losses and task weights to FILE (CSV; of the\n"
                      "global batch, by rank 0, under mpirun)",
                      [](A& a) -> auto& { return a.steps_csv; }));
    return flags;
  }());
  A a;
  if (!table.parse(argc, argv, a)) {
    std::printf(
        "usage: mtl train [flags]\n\n"
        "Train a multi-task model; per epoch, write to --out: metrics.csv (one row per\n"
        "epoch), config.json, last.safetensors, best.safetensors and\n"
        "checkpoint.safetensors (all replaced atomically; nothing is written before the\n"
        "first epoch completes), and result.json at the end. best.safetensors is the epoch\n"
        "with the highest mean validation accuracy when --val > 0 (the lowest mean\n"
        "validation loss when a task is a regression), otherwise the one with the lowest\n"
        "mean training loss (the test set is never used for selection).\n\n"
        "--method chebyshev-al runs the two-phase procedure of Hotegni et al. (IJCNN 2024):\n"
        "a search phase (LSUV init; per epoch Adam on the augmented Lagrangian of the\n"
        "modified weighted Chebyshev scalarisation, then a GrOWL prox step; the\n"
        "best-validation model with group sparsity >= --min-sparsity is kept), then the\n"
        "pruned groups are fixed, similar groups tied (Affinity Propagation) and the\n"
        "model retrained; with k_0 = 0 the same schedule without LSUV, GrOWL, mask and tying.\n\n"
        "%s  -h, --help            this text\n",
        table.help().c_str());
    return 0;
  }
  validate_train_config(a.c);
  Console con(a.quiet);
  if (!a.steps_csv.empty()) con.log_steps(a.steps_csv);
  TrainResult res;
  try {
    res = train(a.c, &con);
  } catch (...) {
    con.clear();
    throw;
  }
  if (!dist::world().root()) return 0;  // under mpirun rank 0 alone reports (mtl/dist/)
  const RunInfo& info = res.info;
  const EpochRecord* last = res.epochs.empty() ? nullptr : &res.epochs.back();
  if (!a.quiet && last) {
    if (!res.finished) {
      std::printf("stopped after epoch %d of %d (--stop-after); continue with --resume %s\n", last->epoch, info.epochs,
                  res.checkpoint_path.c_str());
    } else {
      std::printf("done: epochs %d-%d of %s in %.1f s (training %.0f samples/s)\n", info.start_epoch + 1, last->epoch,
                  res.config.method.c_str(), res.wall_s, res.train_samples_per_s);
      std::printf("test after epoch %d: %s\n", last->epoch, per_task(info.tasks, info.metrics, last->test_metric).c_str());
      std::printf("best model: epoch %d by %s (test %s): %s\n", res.best_epoch, res.best_criterion.c_str(),
                  per_task(info.tasks, info.metrics, res.best_test_metric).c_str(), res.best_path.c_str());
      if (res.result.contains("sparsity_report"))
        std::printf("final model (best.safetensors): sparsity: %s\n",
                    res.result["sparsity_report"].get<std::string>().c_str());
      std::printf("files: %s, %s, %s, %s, %s\n", res.metrics_path.c_str(), res.config_path.c_str(),
                  res.last_path.c_str(), res.checkpoint_path.c_str(), res.result_path.c_str());
    }
  }
  if (a.report && last) {
    const std::string path = report::write_report(res.config.out).back();
    if (!a.quiet) std::printf("report: %s\n", path.c_str());
  }
  if (a.json && last) std::printf("%s\n", res.result.dump().c_str());
  return 0;
}

}  // namespace mt::cli
