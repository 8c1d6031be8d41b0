// Model metadata and load_model (see model_file.h).
#include "mtl/models/model_file.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "datasets/multi_mnist.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "layers/serialize.h"
#include "mtl/models/resnet.h"
#include "mtl/text.h"

namespace mt {

namespace {

std::vector<std::string> split_commas(const std::string& s) { return text::split(s, ','); }
std::string join_commas(const std::vector<std::string>& v) { return text::join(v, ","); }

std::string float_text(float v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.9g", (double)v);
  return b;
}

const std::string* find(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

}  // namespace

std::map<std::string, std::string> model_metadata(const MultiTaskModel& m, const Shape& chw, float mean, float std) {
  std::vector<std::string> names, kinds, losses, classes, outputs, shape;
  for (const Task& t : m.tasks()) {
    names.push_back(t.name);
    kinds.push_back(task_kind_name(t.kind));
    losses.push_back(task_loss_name(t.loss));
    classes.push_back(std::to_string(t.is_regression() ? 0 : t.num_classes));
    outputs.push_back(std::to_string(t.output_size()));
  }
  for (int d : chw) shape.push_back(std::to_string(d));
  return {{"architecture", m.arch()},        {"tasks", join_commas(names)},
          {"task_kinds", join_commas(kinds)}, {"task_losses", join_commas(losses)},
          {"classes", join_commas(classes)},  {"outputs", join_commas(outputs)},
          {"input_shape", join_commas(shape)}, {"input_mean", float_text(mean)},
          {"input_std", float_text(std)}};
}

ModelInfo read_model_info(const std::map<std::string, std::string>& meta, const std::string& path) {
  auto need = [&](const std::string& key) -> std::string {
    const std::string* v = find(meta, key);
    if (!v) throw Error(path + ": metadata '" + key + "' is missing (not a model written by mtl train)");
    return *v;
  };
  auto whole = [&](const std::string& key, const std::string& s) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(s.c_str(), &end, 10);
    if (s.empty() || *end != 0 || errno != 0 || v < 0 || v > 1000000)
      throw Error(path + ": metadata '" + key + "' holds '" + s + "', not a whole number");
    return (int)v;
  };
  auto number = [&](const std::string& key, const std::string& s) {
    char* end = nullptr;
    const float v = std::strtof(s.c_str(), &end);
    if (s.empty() || *end != 0 || !std::isfinite(v))
      throw Error(path + ": metadata '" + key + "' holds '" + s + "', not a finite number");
    return v;
  };
  ModelInfo info;
  info.architecture = need("architecture");
  if (!is_model_name(info.architecture))
    throw Error(path + ": architecture '" + info.architecture + "' is not a model this engine knows (valid: " +
                join_commas(model_names()) + ")");
  const std::vector<std::string> names = split_commas(need("tasks"));
  const size_t K = names.size();
  auto list = [&](const std::string& key) {
    std::vector<std::string> v = split_commas(need(key));
    if (v.size() != K)
      throw Error(path + ": metadata '" + key + "' has " + std::to_string(v.size()) + " entries for " +
                  std::to_string(K) + " tasks");
    return v;
  };
  const std::vector<std::string> classes = list("classes");
  for (const std::string& d : split_commas(need("input_shape"))) info.input_chw.push_back(whole("input_shape", d));
  if (info.input_chw.size() != 3) throw Error(path + ": metadata 'input_shape' must be C,H,W");

  if (find(meta, "task_kinds")) {
    const std::vector<std::string> kinds = list("task_kinds"), losses = list("task_losses"), outs = list("outputs");
    for (size_t t = 0; t < K; t++) {
      Task task;
      task.name = names[t];
      try {
        task.kind = parse_task_kind(kinds[t]);
        task.loss = parse_task_loss(losses[t]);
      } catch (const Error& e) {
        throw Error(path + ": " + e.what());
      }
      task.num_classes = whole("classes", classes[t]);
      task.outputs = task.is_regression() ? whole("outputs", outs[t]) : 1;
      // a custom loss has no function here: the same heads, with the built-in loss of the kind
      if (task.loss == TaskLoss::Custom) task.loss = task.is_regression() ? TaskLoss::MSE : TaskLoss::CrossEntropy;
      info.tasks.push_back(task);
    }
  } else {  // before task kinds: classification, losses by the architecture
    std::vector<int> cls;
    for (const auto& c : classes) cls.push_back(whole("classes", c));
    std::vector<bool> binary;
    if (const std::string* b = find(meta, "binary"))
      for (const auto& v : split_commas(*b)) binary.push_back(v == "1");
    const bool resnet = info.architecture.compare(0, 8, "resnet18") == 0;
    info.tasks = make_tasks(names, cls, binary, TaskLoss::LogProbNll, /*binary_logits=*/resnet);
  }
  for (const Task& t : info.tasks) {
    try {
      t.validate();
    } catch (const Error& e) {
      throw Error(path + ": " + e.what());
    }
  }

  if (find(meta, "input_mean")) {
    info.input_mean = number("input_mean", need("input_mean"));
    info.input_std = number("input_std", need("input_std"));
  } else if (find(meta, "data.mean")) {  // image folders, before input_mean existed
    info.input_mean = number("data.mean", need("data.mean"));
    info.input_std = number("data.std", need("data.std"));
  } else if (!dataset_normalization(find(meta, "dataset") ? *find(meta, "dataset") : "", info.input_mean,
                                    info.input_std)) {
    throw Error(path + ": metadata 'input_mean' is missing (the input normalisation is unknown)");
  }
  if (!(info.input_std > 0)) throw Error(path + ": metadata 'input_std' must be > 0");
  return info;
}

LoadedModel load_model(const std::string& path) {
  const StFile f = load_safetensors(path);
  check_format(f, path);
  LoadedModel r;
  r.metadata = f.metadata;
  r.info = read_model_info(f.metadata, path);
  try {
    r.model = make_model(r.info.architecture, r.info.tasks, r.info.input_chw);
  } catch (const Error& e) {
    throw Error(path + ": cannot build the model: " + e.what());
  }
  const std::string* kind = find(f.metadata, "kind");
  const std::string prefix = (kind && *kind == "checkpoint") ? "model." : "";
  check_module_st(f, *r.model, prefix, path);
  copy_module_st(f, *r.model, prefix);
  r.model->eval();
  return r;
}

}  // namespace mt
