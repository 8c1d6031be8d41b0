// Reading the model to export (see trained_model.h).
#include "mtl/export/trained_model.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "engine/error.h"
#include "engine/safetensors.h"
#include "mtl/export/layer_graph.h"
#include "mtl/sparsity/sparsity.h"

namespace mt {

namespace {

const std::string* meta(const std::map<std::string, std::string>& m, const std::string& key) {
  auto it = m.find(key);
  return it == m.end() ? nullptr : &it->second;
}

// The mask and tying a checkpoint carries (its "extra.mask.*", "extra.tie.*" tensors, as
// the Chebyshev-AL recipe saves them) must hold in its weights.
void check_sparse_state(const StFile& f, TrainedModel& r) {
  const MultiTaskModel& m = r.model();
  const PruneMask mask = PruneMask::load(f, "extra.mask.", m, r.path);
  const ParameterTying tie = ParameterTying::load(f, "extra.tie.", m, r.path);
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

TrainedModel read_trained_model(const std::string& path) {
  // the architecture first, so an unsupported model is named before it is built
  const StFile f = load_safetensors(path);
  if (const std::string* a = meta(f.metadata, "architecture")) {
    const auto& ok = exportable_architectures();
    if (std::find(ok.begin(), ok.end(), *a) == ok.end()) {
      std::string list;
      for (const auto& x : ok) list += (list.empty() ? "" : ", ") + x;
      throw Error(path + ": architecture '" + *a + "' cannot be exported (supported: " + list + ")");
    }
  }
  TrainedModel r;
  r.path = path;
  r.loaded = load_model(path);
  const auto& md = r.loaded.metadata;
  if (const std::string* d = meta(md, "dataset")) r.dataset = *d;
  if (const std::string* m = meta(md, "method")) r.method = *m;
  if (const std::string* s = meta(md, "data_seed")) r.data_seed = std::strtoull(s->c_str(), nullptr, 10);
  check_sparse_state(f, r);
  return r;
}

}  // namespace mt
