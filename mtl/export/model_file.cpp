// Reading a trained model for the export (see model_file.h).
#include "mtl/export/model_file.h"

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <cstring>

#include "datasets/multi_mnist.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "layers/serialize.h"
#include "mtl/export/layer_graph.h"
#include "mtl/sparsity/sparsity.h"
#include "mtl/train/data_sources.h"

namespace mt {

namespace {

const std::string* meta(const StFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? nullptr : &it->second;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); i++)
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

int parse_int(const std::string& s, const std::string& what, const std::string& path) {
  char* end = nullptr;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 1 || v > 1000000)
    throw Error(path + ": metadata '" + what + "' holds '" + s + "', not a positive whole number");
  return (int)v;
}

float parse_float(const std::string& s, const std::string& what, const std::string& path) {
  char* end = nullptr;
  const float v = std::strtof(s.c_str(), &end);
  if (s.empty() || *end != '\0' || !std::isfinite(v)) throw Error(path + ": metadata '" + what + "' holds '" + s + "', not a number");
  return v;
}

// The mask and tying a checkpoint carries (its "extra.mask.*", "extra.tie.*" tensors, as
// mtl/train/sparse_trainer.cpp saves them) must hold in its weights.
void check_sparse_state(const StFile& f, const MultiTaskModel& m, const std::string& extra, ModelFile& r) {
  const PruneMask mask = PruneMask::load(f, extra + "mask.", m, r.path);
  const ParameterTying tie = ParameterTying::load(f, extra + "tie.", m, r.path);
  const std::vector<WeightGroups> gs = weight_groups(m);
  auto groups_of = [&](const std::string& name) -> const WeightGroups& {
    for (const auto& g : gs)
      if (g.name == name) return g;
    throw Error(r.path + ": no grouped weight '" + name + "'");
  };
  for (const auto& e : mask.entries()) {
    const std::vector<bool> zero = zero_groups(groups_of(e.name));
    for (int gi : e.groups)
      if (!zero[(size_t)gi])
        throw Error(r.path + ": inconsistent prune mask: group " + std::to_string(gi) + " of " + e.name +
                    " is listed as pruned but holds non-zero weights");
    r.mask_groups += (int64_t)e.groups.size();
  }
  for (const auto& e : tie.entries()) {
    const WeightGroups& g = groups_of(e.name);
    const std::vector<float> w = group_matrix(g);
    const std::vector<bool> zero = zero_groups(g);
    const size_t S = (size_t)g.group_size;
    std::vector<int> first((size_t)g.groups, -1);  // per label: its first group
    for (int gi = 0; gi < g.groups; gi++) {
      const int label = e.labels[(size_t)gi];
      if (label < 0) {
        if (!zero[(size_t)gi])
          throw Error(r.path + ": inconsistent tying: group " + std::to_string(gi) + " of " + e.name +
                      " is marked pruned (-1) but holds non-zero weights");
        continue;
      }
      r.tied_groups++;
      int& f0 = first[(size_t)label];
      if (f0 < 0) {
        f0 = gi;
      } else if (std::memcmp(&w[(size_t)f0 * S], &w[(size_t)gi * S], S * sizeof(float)) != 0) {
        throw Error(r.path + ": inconsistent tying: groups " + std::to_string(f0) + " and " + std::to_string(gi) +
                    " of " + e.name + " share cluster " + std::to_string(label) + " but differ");
      }
    }
  }
}

}  // namespace

ModelFile read_model_file(const std::string& path, const DatasetPaths& paths) {
  const StFile f = load_safetensors(path);
  check_format(f, path);
  ModelFile r;
  r.path = path;
  r.metadata = f.metadata;
  auto need = [&](const std::string& key) -> std::string {
    const std::string* v = meta(f, key);
    if (!v) throw Error(path + ": metadata '" + key + "' is missing (not a model written by mtl train)");
    return *v;
  };
  r.architecture = need("architecture");
  const auto& ok = exportable_architectures();
  if (std::find(ok.begin(), ok.end(), r.architecture) == ok.end()) {
    std::string list;
    for (const auto& a : ok) list += (list.empty() ? "" : ", ") + a;
    throw Error(path + ": architecture '" + r.architecture + "' cannot be exported (supported: " + list + ")");
  }
  const std::vector<std::string> task_names = split(need("tasks"), ',');
  std::vector<int> classes;
  for (const auto& s : split(need("classes"), ',')) classes.push_back(parse_int(s, "classes", path));
  if (classes.size() != task_names.size())
    throw Error(path + ": metadata has " + std::to_string(task_names.size()) + " tasks but " +
                std::to_string(classes.size()) + " class counts");
  if (const std::string* d = meta(f, "dataset")) r.dataset = *d;
  if (const std::string* m = meta(f, "method")) r.method = *m;
  if (const std::string* s = meta(f, "data_seed")) r.data_seed = std::strtoull(s->c_str(), nullptr, 10);

  // the normalisation (and, for old files, the input shape) from the dataset when not stored
  const std::string* mean = meta(f, "input_mean");
  const std::string* sd = meta(f, "input_std");
  const std::string* shape = meta(f, "input_shape");
  MultiImageSet probe;
  const bool need_probe = !(mean && sd) || !shape;
  if (need_probe) {
    const auto& names = dataset_names();
    if (std::find(names.begin(), names.end(), r.dataset) != names.end()) {
      probe = make_dataset(r.dataset, false, paths, r.data_seed);
    } else if (meta(f, "data.mean") && meta(f, "data.std") && shape) {
      probe.mean = parse_float(*meta(f, "data.mean"), "data.mean", path);
      probe.std = parse_float(*meta(f, "data.std"), "data.std", path);
    } else {
      throw Error(path + ": no input normalisation in the metadata (input_mean, input_std) and dataset '" + r.dataset +
                  "' does not give one");
    }
  }
  r.input_mean = mean ? parse_float(*mean, "input_mean", path) : probe.mean;
  r.input_std = sd ? parse_float(*sd, "input_std", path) : probe.std;
  if (!(r.input_std > 0)) throw Error(path + ": input_std must be > 0");
  if (shape) {
    for (const auto& s : split(*shape, ',')) r.input_chw.push_back(parse_int(s, "input_shape", path));
    if (r.input_chw.size() != 3) throw Error(path + ": metadata 'input_shape' must be C,H,W, got '" + *shape + "'");
  } else {
    r.input_chw = {probe.c, probe.h, probe.w};
  }

  const std::string* bin = meta(f, "binary");
  const std::vector<Task> tasks =
      tasks_for_model(r.architecture, task_names, classes, bin ? parse_binary_flags(*bin) : std::vector<bool>{});
  try {
    r.model = make_model(r.architecture, tasks, r.input_chw);
  } catch (const Error& e) {
    throw Error(path + ": cannot build the model: " + e.what());
  }
  const std::string* kind = meta(f, "kind");
  const std::string prefix = (kind && *kind == "checkpoint") ? "model." : "";
  check_module_st(f, *r.model, prefix, path);
  copy_module_st(f, *r.model, prefix);
  r.model->eval();
  check_sparse_state(f, *r.model, prefix.empty() ? "" : "extra.", r);
  return r;
}

}  // namespace mt
