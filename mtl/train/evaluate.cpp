// Evaluation, mtl eval and mtl predict (see evaluate.h).
#include "mtl/train/evaluate.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "datasets/loader.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/safetensors.h"
#include "mtl/models/model_file.h"
#include "mtl/train/data_sources.h"
#include "mtl/train/run_dir.h"
#include "mtl/train/run_util.h"

namespace mt {

using run_util::join;

void predict(MultiTaskModel& model, const MultiImageSet& set, int batch,
             const std::function<void(int first, const std::vector<Tensor>& outputs)>& on_batch) {
  const bool was_training = model.is_training();
  model.eval();
  Loader loader(set, batch, false, 0);
  loader.start_epoch(0);
  {
    NoGrad no_grad;
    Batch b;
    int first = 0;
    while (loader.next(b)) {
      Tensor x = Tensor::from({b.n, b.c, b.h, b.w}, b.x);
      Tensor z = model.shared(x);
      std::vector<Tensor> outs;
      for (int t = 0; t < model.num_tasks(); t++) outs.push_back(model.head(t, z, x));
      on_batch(first, outs);
      first += b.n;
    }
  }
  model.train(was_training);
}

SetScores evaluate(MultiTaskModel& model, const MultiImageSet& set, int batch) {
  const bool was_training = model.is_training();
  model.eval();
  const int K = model.num_tasks();
  check(set.num_tasks() == K, "evaluate",
        "the set has " + std::to_string(set.num_tasks()) + " tasks, the model " + std::to_string(K));
  std::vector<double> metric_sum(K, 0.0), loss_sum(K, 0.0);
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
        metric_sum[t] += model.metric_sum(t, out, b.y[t]);
        loss_sum[t] += (double)model.task_loss(t, out, b.y[t]).item() * b.n;
      }
    }
  }
  model.train(was_training);
  SetScores s;
  s.n = set.n;
  for (int t = 0; t < K; t++) {
    s.metric.push_back(metric_sum[t] / set.n);
    s.loss.push_back(loss_sum[t] / set.n);
  }
  return s;
}

namespace {

struct Loaded {
  LoadedModel m;
  EvalResult r;
  MultiImageSet test;
};

Loaded load_for_eval(const EvalConfig& c) {
  if (c.weights.empty()) throw UsageError("--weights FILE is required");
  if (c.test_limit < 0) throw UsageError("--test-limit must be >= 1 (or 0 for all), got " + std::to_string(c.test_limit));
  if (c.threads && (*c.threads < 1 || *c.threads > kMaxThreads))
    throw UsageError("--threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(*c.threads));
  if (!c.dataset.empty()) validate_data_config(c);
  if (!c.source.partition.empty() && c.source.labels.empty())
    throw UsageError("--partition needs --labels (the file's own partition is used otherwise)");
  if (c.threads) set_num_threads(*c.threads);

  Loaded L;
  const std::string& path = c.weights;
  L.m = load_model(path);
  EvalResult& r = L.r;
  r.weights = path;
  r.metadata = L.m.metadata;
  r.architecture = L.m.info.architecture;
  for (const Task& t : L.m.info.tasks) {
    r.tasks.push_back(t.name);
    r.metrics.push_back(t.metric());
  }
  const std::string* ds = run_util::find_meta(r.metadata, "dataset");
  if (c.dataset.empty() && !ds) throw Error(path + ": metadata 'dataset' is missing (pass --dataset)");
  r.dataset = c.dataset.empty() ? *ds : c.dataset;
  const auto& names = train_dataset_names();
  if (std::find(names.begin(), names.end(), r.dataset) == names.end())
    throw Error(path + ": metadata 'dataset' is '" + r.dataset + "', not a known dataset (pass --dataset)");
  if (!c.cifar_dir.empty() && r.dataset != "cifar10-mnist")
    throw UsageError("--cifar-dir is only used by --dataset cifar10-mnist (--dataset " + r.dataset + ")");
  if (const std::string* m = run_util::find_meta(r.metadata, "method")) r.method = *m;
  uint64_t data_seed = 0;
  if (c.data_seed_override) {
    data_seed = *c.data_seed_override;
  } else if (const std::string* s = run_util::find_meta(r.metadata, "data_seed")) {
    data_seed = std::strtoull(s->c_str(), nullptr, 10);
  }
  r.threads = num_threads();

  L.test = load_eval_test(r.dataset, r.metadata, c, data_seed, path);  // mtl/train/data_sources.h
  if (L.test.task_names != r.tasks)
    throw Error(path + ": the model's tasks (" + join(r.tasks, ",") + ") are not those of dataset '" + r.dataset +
                "' (" + join(L.test.task_names, ",") + ")");
  for (size_t t = 0; t < r.tasks.size(); t++) {
    const Task& k = L.m.info.tasks[t];
    if (k.is_regression() != L.test.is_regression((int)t) ||
        (!k.is_regression() && k.num_classes != L.test.num_classes[t]))
      throw Error(path + ": the model's task '" + k.name + "' (" + task_kind_name(k.kind) +
                  (k.is_regression() ? "" : ", " + std::to_string(k.num_classes) + " classes") +
                  ") is not dataset '" + r.dataset + "''s");
  }
  const Shape chw = {L.test.c, L.test.h, L.test.w};
  if (L.m.info.input_chw != chw)
    throw Error(path + ": the model's input shape " + shape_str(L.m.info.input_chw) + " is not the dataset's " +
                shape_str(chw));
  // the model file's normalisation (it is the training set's)
  L.test.mean = L.m.info.input_mean;
  L.test.std = L.m.info.input_std;
  return L;
}

std::string num(const char* f, double v) {
  char b[48];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

EvalResult evaluate_weights(const EvalConfig& c) {
  Loaded L = load_for_eval(c);
  L.r.test = evaluate(*L.m.model, L.test, 1000);
  return L.r;
}

EvalResult predict_weights(const EvalConfig& c) {
  if (c.out.empty()) throw UsageError("mtl predict needs --out FILE (the CSV to write)");
  Loaded L = load_for_eval(c);
  const std::vector<Task>& tasks = L.m.info.tasks;
  std::vector<std::string> cols = {"index"};
  for (const Task& t : tasks) {
    if (t.is_regression()) {
      for (int j = 0; j < t.outputs; j++) cols.push_back(t.name + "_pred" + (t.outputs > 1 ? "_" + std::to_string(j) : ""));
      for (int j = 0; j < t.outputs; j++) cols.push_back(t.name + "_true" + (t.outputs > 1 ? "_" + std::to_string(j) : ""));
    } else {
      cols.push_back(t.name + "_pred");
      cols.push_back(t.name + "_true");
      cols.push_back(t.name + "_p");
    }
  }
  std::string csv = join(cols, ",") + "\n";
  MultiTaskModel& model = *L.m.model;
  const MultiImageSet& set = L.test;
  predict(model, set, 1000, [&](int first, const std::vector<Tensor>& outs) {
    const int n = outs.empty() ? 0 : outs[0].size(0);
    for (int i = 0; i < n; i++) {
      const int idx = first + i;
      std::vector<std::string> v = {std::to_string(idx)};
      for (size_t t = 0; t < tasks.size(); t++) {
        const Task& k = tasks[t];
        const float* o = outs[t].data();
        if (k.is_regression()) {
          for (int j = 0; j < k.outputs; j++) v.push_back(num("%.9g", o[(size_t)i * k.outputs + j]));
          for (int j = 0; j < k.outputs; j++)
            v.push_back(num("%.9g", set.values[t][(size_t)idx * k.outputs + j]));
          continue;
        }
        int pred = 0;
        double p = 0;
        if (k.loss == TaskLoss::BinaryLogits) {
          p = 1.0 / (1.0 + std::exp(-(double)o[i]));
          pred = p > 0.5;
          if (!pred) p = 1 - p;
        } else {
          const int C = k.num_classes;
          const float* row = o + (size_t)i * C;
          for (int j = 1; j < C; j++)
            if (row[j] > row[pred]) pred = j;
          // probabilities: the head gives log-probabilities (nll) or logits
          double z = 0;
          for (int j = 0; j < C; j++) z += std::exp((double)row[j] - row[pred]);
          p = 1.0 / z;
        }
        v.push_back(std::to_string(pred));
        v.push_back(std::to_string(set.labels[t][(size_t)idx]));
        v.push_back(num("%.6f", p));
      }
      csv += join(v, ",") + "\n";
    }
  });
  write_text_atomic(c.out, csv);
  L.r.rows_written = set.n;
  L.r.test = evaluate(model, set, 1000);
  return L.r;
}

nlohmann::ordered_json eval_json(const EvalResult& e, const std::string& command) {
  nlohmann::ordered_json j;
  j["command"] = command;
  j["weights"] = e.weights;
  j["model"] = e.architecture;
  j["method"] = e.method;
  j["dataset"] = e.dataset;
  j["tasks"] = e.tasks;
  j["metrics"] = e.metrics;
  j["test_images"] = e.test.n;
  j["threads"] = e.threads;
  nlohmann::ordered_json acc = nlohmann::ordered_json::object(), pct = nlohmann::ordered_json::object(),
                         loss = nlohmann::ordered_json::object();
  for (size_t t = 0; t < e.tasks.size() && t < e.test.metric.size(); t++) {
    acc[e.tasks[t]] = std::round(e.test.metric[t] * 1e4) / 1e4;
    pct[e.tasks[t]] = std::round(e.test.metric[t] * 1e4) / 100.0;
    loss[e.tasks[t]] = e.test.loss[t];
  }
  j["test_acc"] = acc;
  j["test_acc_percent"] = pct;
  j["test_loss"] = loss;
  if (command == "predict") j["rows"] = e.rows_written;
  return j;
}

}  // namespace mt
