// mtl eval and mtl predict: a saved model on its dataset's test split.
#include <cstdio>

#include "apps/commands.h"
#include "mtl/train/evaluate.h"

namespace mt::cli {

namespace {

struct EvalArgs {
  EvalConfig c;
  bool json = false;
};
using A = EvalArgs;

std::vector<Flag<A>> eval_flags(bool predict) {
  const char* g = predict ? "predict" : "eval";
  std::vector<Flag<A>> flags = {
      field<A>("weights", "FILE", g, "the model file (required): best.safetensors, last.safetensors or a checkpoint",
               [](A& a) -> auto& { return a.c.weights; }),
      field<A>("dataset", "NAME", g, "evaluate on another dataset with the same tasks  [the file's]",
               [](A& a) -> auto& { return a.c.dataset; }),
      field<A>("data-dir", "DIR", g, "MNIST is read from DIR/mnist", [](A& a) -> auto& { return a.c.data_dir; }),
      field<A>("fashion-dir", "DIR", g, "Fashion-MNIST .gz files", [](A& a) -> auto& { return a.c.fashion_dir; }),
      field<A>("cifar-dir", "DIR", g, "cifar10-mnist: the CIFAR-10 binary files  [data/cifar10]",
               [](A& a) -> auto& { return a.c.cifar_dir; }),
      field<A>("data-seed", "N", g, "seed of the Multi* image composition  [the file's]",
               [](A& a) -> auto& { return a.c.data_seed_override; }),
      field<A>("images", "DIR", g, "imagefolder, celeba: read the images from DIR  [the file's]",
               [](A& a) -> auto& { return a.c.source.images; }),
      field<A>("labels", "FILE", g,
               "imagefolder: use this attribute file (split as in training,\n"
               "by --partition or the held-out fraction)  [the file's]",
               [](A& a) -> auto& { return a.c.source.labels; }),
      field<A>("partition", "FILE", g, "imagefolder: with --labels, its partition file  [none]",
               [](A& a) -> auto& { return a.c.source.partition; }),
      field<A>("test-limit", "N", g, "use only the first N test images  [all]", [](A& a) -> auto& { return a.c.test_limit; }),
      field<A>("threads", "N", g, "[MTL_THREADS, else all cores]", [](A& a) -> auto& { return a.c.threads; }),
      toggle<A>("json", g, "print one JSON object as the last line on stdout", [](A& a) -> auto& { return a.json; }),
  };
  if (predict)
    flags.insert(flags.begin() + 1, field<A>("out", "FILE", g, "the CSV file to write (required)",
                                             [](A& a) -> auto& { return a.c.out; }));
  return flags;
}

int run(int argc, char** argv, bool predict) {
  const char* cmd = predict ? "predict" : "eval";
  const FlagTable<A> table(cmd, eval_flags(predict));
  A a;
  if (!table.parse(argc, argv, a)) {
    if (predict)
      std::printf(
          "usage: mtl predict --weights FILE --out preds.csv [flags]\n\n"
          "Write a saved model's outputs on its dataset's test split, one CSV row per image:\n"
          "index, then per task <task>_pred, <task>_true and <task>_p (the predicted class and\n"
          "its probability) for classification, or <task>_pred and <task>_true per output for\n"
          "regression. The model, its input normalisation and its dataset come from the file.\n\n%s"
          "  -h, --help            this text\n",
          table.help().c_str());
    else
      std::printf(
          "usage: mtl eval --weights FILE [flags]\n\n"
          "Evaluate a model saved by `mtl train` (best.safetensors, last.safetensors or a\n"
          "checkpoint) on the test set: its architecture, tasks, input normalisation, dataset\n"
          "and data seed come from the file's metadata.\n\n%s"
          "  -h, --help            this text\n",
          table.help().c_str());
    return 0;
  }
  if (a.c.weights.empty()) throw UsageError(std::string("mtl ") + cmd + " needs --weights FILE (see 'mtl " + cmd + " --help')");
  const EvalResult e = predict ? predict_weights(a.c) : evaluate_weights(a.c);
  std::printf("%s (%s%s) on %s test, %d images: %s\n", e.weights.c_str(), e.architecture.c_str(),
              e.method.empty() ? "" : (", " + e.method).c_str(), e.dataset.c_str(), e.test.n,
              per_task(e.tasks, e.metrics, e.test.metric).c_str());
  if (predict) std::printf("wrote %lld rows to %s\n", (long long)e.rows_written, a.c.out.c_str());
  if (a.json) std::printf("%s\n", eval_json(e, cmd).dump().c_str());
  return 0;
}

}  // namespace

int cmd_eval(int argc, char** argv) { return run(argc, argv, false); }
int cmd_predict(int argc, char** argv) { return run(argc, argv, true); }

}  // namespace mt::cli
