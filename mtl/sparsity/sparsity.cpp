// Group sparsity, GrOWL, prune mask, tying, LSUV and the sparsity metrics (see sparsity.h).
#include "mtl/sparsity/sparsity.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <numeric>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "layers/conv2d.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "mtl/sparsity/affinity_propagation.h"
#include "mtl/sparsity/owl_prox.h"

namespace mt {

namespace {

struct LayerRef {
  std::string name;  // "trunk.conv1"
  Conv2d* conv = nullptr;
  Linear* linear = nullptr;
};

void walk(const Module& m, const std::string& prefix, std::vector<LayerRef>& out) {
  for (const auto& [name, child] : m.children()) {
    const std::string full = prefix + name;
    if (auto* c = dynamic_cast<Conv2d*>(child.get())) out.push_back({full, c, nullptr});
    if (auto* l = dynamic_cast<Linear*>(child.get())) out.push_back({full, nullptr, l});
    walk(*child, full + ".", out);
  }
}

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }

// The 2-D view of a grouped tensor: R = size(0), C = numel / R. Rows: group g = row g
// (C elements); Columns: group g = column g (R elements).
struct View {
  GroupKind kind;
  int64_t R, C;
  View(GroupKind k, const Tensor& t) : kind(k), R(t.size(0)), C(t.numel() / t.size(0)) {}
  int64_t groups() const { return kind == GroupKind::Rows ? R : C; }
  int64_t size() const { return kind == GroupKind::Rows ? C : R; }
  // index of element e of group g
  int64_t at(int64_t g, int64_t e) const { return kind == GroupKind::Rows ? g * C + e : e * C + g; }
};

void zero_group(float* d, const View& v, int64_t g) {
  for (int64_t e = 0; e < v.size(); e++) d[v.at(g, e)] = 0.f;
}

Tensor find_param(const MultiTaskModel& m, const std::string& name, const char* who) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  throw Error(std::string(who) + ": the model has no parameter '" + name + "'");
}

const WeightGroups* find_groups(const std::vector<WeightGroups>& gs, const std::string& name) {
  for (const auto& g : gs)
    if (g.name == name) return &g;
  return nullptr;
}

std::string num(double x) {
  char b[64];
  std::snprintf(b, sizeof b, "%.4g", x);
  return b;
}

}  // namespace

// ---- groups --------------------------------------------------------------------------

std::vector<WeightGroups> weight_groups(const MultiTaskModel& m) {
  std::vector<LayerRef> layers;
  walk(m, "", layers);
  // channels of the input image: the tracer's shape, else the first trunk conv's input
  int input_channels = -1;
  if (auto* tr = dynamic_cast<const LayerTracer*>(&m)) {
    input_channels = tr->input_chw().at(0);
  } else {
    for (const auto& l : layers)
      if (l.conv && starts_with(l.name, "trunk.")) {
        input_channels = l.conv->in_channels;
        break;
      }
  }
  // the output layer of each head: its last Conv2d/Linear in registration order
  std::map<std::string, std::string> last_of_head;  // "heads.<t>." -> layer name
  for (const auto& l : layers)
    if (starts_with(l.name, "heads.")) {
      const size_t dot = l.name.find('.', 6);
      if (dot != std::string::npos) last_of_head[l.name.substr(0, dot + 1)] = l.name;
    }
  std::map<std::string, const LayerRef*> by_weight;
  for (const auto& l : layers) by_weight[l.name + ".weight"] = &l;

  std::vector<WeightGroups> out;
  for (const auto& [name, p] : m.named_parameters()) {
    if (p.dim() < 2) continue;
    WeightGroups g;
    g.name = name;
    g.weight = p;
    auto it = by_weight.find(name);
    const LayerRef* layer = it == by_weight.end() ? nullptr : it->second;
    if (layer && layer->linear) {
      g.kind = GroupKind::Columns;
    } else {
      g.kind = GroupKind::Rows;
      g.conv = layer && layer->conv;
    }
    const View v(g.kind, p);
    g.groups = (int)v.groups();
    g.group_size = (int)v.size();
    if (layer) {
      const bool reads_input = layer->conv && layer->conv->in_channels == input_channels;
      bool output_layer = false;
      for (const auto& [head, last] : last_of_head) output_layer = output_layer || last == layer->name;
      g.regularized = !reads_input && !output_layer;
    }
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<WeightGroups> regularized_groups(const MultiTaskModel& m) {
  std::vector<WeightGroups> all = weight_groups(m), out;
  for (auto& g : all)
    if (g.regularized) out.push_back(std::move(g));
  return out;
}

std::vector<float> group_matrix(const WeightGroups& g) {
  const View v(g.kind, g.weight);
  const float* d = g.weight.data();
  std::vector<float> m((size_t)g.weight.numel());
  for (int64_t r = 0; r < v.groups(); r++)
    for (int64_t e = 0; e < v.size(); e++) m[(size_t)(r * v.size() + e)] = d[v.at(r, e)];
  return m;
}

void set_group_matrix(const WeightGroups& g, const std::vector<float>& m) {
  check((int64_t)m.size() == g.weight.numel(), "set_group_matrix",
        "matrix of " + std::to_string(m.size()) + " values for " + g.name + " " + shape_str(g.weight.shape()));
  const View v(g.kind, g.weight);
  Tensor w = g.weight;
  float* d = w.data();
  for (int64_t r = 0; r < v.groups(); r++)
    for (int64_t e = 0; e < v.size(); e++) d[v.at(r, e)] = m[(size_t)(r * v.size() + e)];
}

std::vector<double> group_norms(const WeightGroups& g) {
  const View v(g.kind, g.weight);
  const float* d = g.weight.data();
  std::vector<double> n((size_t)v.groups(), 0.0);
  for (int64_t i = 0; i < v.R; i++)
    for (int64_t j = 0; j < v.C; j++) {
      const double x = d[i * v.C + j];
      n[(size_t)(v.kind == GroupKind::Rows ? i : j)] += x * x;
    }
  for (double& x : n) x = std::sqrt(x);
  return n;
}

std::vector<bool> zero_groups(const WeightGroups& g) {
  const View v(g.kind, g.weight);
  const float* d = g.weight.data();
  std::vector<bool> z((size_t)v.groups(), true);
  for (int64_t i = 0; i < v.R; i++)
    for (int64_t j = 0; j < v.C; j++)
      if (d[i * v.C + j] != 0.f) z[(size_t)(v.kind == GroupKind::Rows ? i : j)] = false;
  return z;
}

// ---- f_0 -------------------------------------------------------------------------------

Tensor group_l2_sum(const Tensor& W, GroupKind kind) {
  check(W.defined() && W.dim() >= 2, "group_l2_sum",
        "needs a weight of rank >= 2, got " + (W.defined() ? shape_str(W.shape()) : std::string("undefined")));
  check(kind == GroupKind::Rows || W.dim() == 2, "group_l2_sum",
        "column groups need a matrix, got " + shape_str(W.shape()));
  const View v(kind, W);
  std::vector<double> norms((size_t)v.groups(), 0.0);
  const float* d = W.data();
  for (int64_t i = 0; i < v.R; i++)
    for (int64_t j = 0; j < v.C; j++) {
      const double x = d[i * v.C + j];
      norms[(size_t)(kind == GroupKind::Rows ? i : j)] += x * x;
    }
  double total = 0;
  for (double& n : norms) {
    n = std::sqrt(n);
    total += n;
  }
  Tensor out = Tensor::scalar((float)total);
  if (any_requires_grad({&W})) {
    auto gw = grad_target(W);
    Tensor w = W.detach();  // the input's values (same storage), no history
    record(out, "group_l2_sum", [gw, w, v, norms](const Tensor& g) {
      // d/dW_g ||W_g|| = W_g / ||W_g||, and 0 (the minimum-norm subgradient) for W_g = 0
      const double go = g.data()[0];
      float* dW = acc_grad(gw);
      const float* x = w.data();
      for (int64_t i = 0; i < v.R; i++)
        for (int64_t j = 0; j < v.C; j++) {
          const double n = norms[(size_t)(v.kind == GroupKind::Rows ? i : j)];
          if (n > 0) dW[i * v.C + j] += (float)(go * x[i * v.C + j] / n);
        }
    });
  }
  return out;
}

Tensor group_norm_sum(const MultiTaskModel& m) {
  Tensor total;
  for (const auto& g : regularized_groups(m)) {
    Tensor s = group_l2_sum(g.weight, g.kind);
    total = total.defined() ? total + s : s;
  }
  return total.defined() ? total : Tensor::scalar(0.f);
}

double group_norm_sum_value(const MultiTaskModel& m) {
  double total = 0;
  for (const auto& g : regularized_groups(m))
    for (double n : group_norms(g)) total += n;
  return total;
}

// ---- GrOWL -----------------------------------------------------------------------------

GrowlStats apply_growl(const MultiTaskModel& m, double eta, double beta1, double beta2, const std::string& type,
                       double max_layer_sparsity, int iter, int num_iters) {
  check(std::isfinite(eta) && eta >= 0, "apply_growl", "step size eta must be finite and >= 0, got " + num(eta));
  GrowlStats st;
  for (const auto& g : regularized_groups(m)) {
    std::vector<double> theta = growl_weights(g.groups, type, beta1, beta2);
    for (double& t : theta) t *= eta;
    const int cap = growl_zero_cap(g.groups, max_layer_sparsity, iter, num_iters);
    std::vector<float> w = group_matrix(g);
    growl_prox_rows(w.data(), g.groups, g.group_size, theta, cap);
    set_group_matrix(g, w);
    for (bool z : zero_groups(g)) st.zero_groups += z;
    st.total_groups += g.groups;
  }
  return st;
}

// ---- PruneMask -------------------------------------------------------------------------

PruneMask PruneMask::record(const MultiTaskModel& m) {
  PruneMask pm;
  for (const auto& g : weight_groups(m)) {
    Entry e{g.name, g.kind, {}};
    const std::vector<bool> z = zero_groups(g);
    for (int i = 0; i < g.groups; i++)
      if (z[i]) e.groups.push_back(i);
    if (!e.groups.empty()) pm.entries_.push_back(std::move(e));
  }
  return pm;
}

void PruneMask::apply(const MultiTaskModel& m) const {
  for (const auto& e : entries_) {
    Tensor p = find_param(m, e.name, "PruneMask");
    const View v(e.kind, p);
    for (int g : e.groups) zero_group(p.data(), v, g);
  }
}

void PruneMask::zero_grads(const MultiTaskModel& m) const {
  for (const auto& e : entries_) {
    Tensor gp = find_param(m, e.name, "PruneMask").grad();
    if (!gp.defined()) continue;
    const View v(e.kind, gp);
    for (int g : e.groups) zero_group(gp.data(), v, g);
  }
}

int64_t PruneMask::pruned_groups() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += (int64_t)e.groups.size();
  return n;
}

static StTensor i64_tensor(const std::vector<int>& v) {
  StTensor t;
  t.dtype = "I64";
  t.shape = {(int64_t)v.size()};
  t.i64.assign(v.begin(), v.end());
  return t;
}

void PruneMask::save(StFile& f, const std::string& prefix) const {
  for (const auto& e : entries_) f.tensors[prefix + e.name] = i64_tensor(e.groups);
}

PruneMask PruneMask::load(const StFile& f, const std::string& prefix, const MultiTaskModel& m,
                          const std::string& path) {
  const std::vector<WeightGroups> gs = weight_groups(m);
  PruneMask pm;
  for (const auto& [key, t] : f.tensors) {
    if (!starts_with(key, prefix)) continue;
    const std::string name = key.substr(prefix.size());
    const WeightGroups* g = find_groups(gs, name);
    if (!g) throw Error(path + ": prune mask '" + key + "' names no grouped weight of the model");
    if (t.dtype != "I64" || t.shape.size() != 1) throw Error(path + ": prune mask '" + key + "' must be I64 [n]");
    Entry e{name, g->kind, {}};
    for (int64_t i : t.i64) {
      if (i < 0 || i >= g->groups)
        throw Error(path + ": prune mask '" + key + "' has group " + std::to_string(i) + " outside [0, " +
                    std::to_string(g->groups) + ")");
      e.groups.push_back((int)i);
    }
    pm.entries_.push_back(std::move(e));
  }
  return pm;
}

// ---- ParameterTying --------------------------------------------------------------------

ParameterTying ParameterTying::cluster(const MultiTaskModel& m, const TieOptions& opt) {
  ParameterTying pt;
  for (const auto& g : regularized_groups(m)) {
    const std::vector<bool> z = zero_groups(g);
    std::vector<int> live;
    for (int i = 0; i < g.groups; i++)
      if (!z[i]) live.push_back(i);
    if (live.empty()) continue;  // a wholly pruned layer: nothing to tie
    const std::vector<float> w = group_matrix(g);
    const size_t S = (size_t)g.group_size;
    std::vector<float> sub(live.size() * S);
    for (size_t k = 0; k < live.size(); k++)
      std::copy_n(w.data() + (size_t)live[k] * S, S, sub.data() + k * S);
    const std::vector<double> sim = row_similarity(sub.data(), (int)live.size(), g.group_size);
    const ApResult r =
        affinity_propagation(sim, (int)live.size(), opt.preference, opt.damping, opt.max_iter, opt.conv_iter);
    Entry e{g.name, g.kind, std::vector<int>((size_t)g.groups, -1), (int)r.exemplars.size()};
    for (size_t k = 0; k < live.size(); k++) e.labels[(size_t)live[k]] = r.labels[k];
    pt.entries_.push_back(std::move(e));
  }
  return pt;
}

void ParameterTying::apply(const MultiTaskModel& m) const {
  for (const auto& e : entries_) {
    WeightGroups g;
    g.name = e.name;
    g.kind = e.kind;
    g.weight = find_param(m, e.name, "ParameterTying");
    const View v(e.kind, g.weight);
    check(v.groups() == (int64_t)e.labels.size(), "ParameterTying",
          e.name + " has " + std::to_string(v.groups()) + " groups, the clustering " + std::to_string(e.labels.size()));
    std::vector<float> w = group_matrix(g);
    tie_rows_to_cluster_means(w.data(), (int)v.groups(), (int)v.size(), e.labels);
    set_group_matrix(g, w);
  }
}

int64_t ParameterTying::clusters() const {
  int64_t n = 0;
  for (const auto& e : entries_) n += e.clusters;
  return n;
}

int64_t ParameterTying::tied_groups() const {
  int64_t n = 0;
  for (const auto& e : entries_)
    for (int l : e.labels) n += l >= 0;
  return n;
}

void ParameterTying::save(StFile& f, const std::string& prefix) const {
  for (const auto& e : entries_) f.tensors[prefix + e.name] = i64_tensor(e.labels);
}

ParameterTying ParameterTying::load(const StFile& f, const std::string& prefix, const MultiTaskModel& m,
                                    const std::string& path) {
  const std::vector<WeightGroups> gs = weight_groups(m);
  ParameterTying pt;
  for (const auto& [key, t] : f.tensors) {
    if (!starts_with(key, prefix)) continue;
    const std::string name = key.substr(prefix.size());
    const WeightGroups* g = find_groups(gs, name);
    if (!g) throw Error(path + ": tying '" + key + "' names no grouped weight of the model");
    if (t.dtype != "I64" || t.shape != std::vector<int64_t>{g->groups})
      throw Error(path + ": tying '" + key + "' must be I64 [" + std::to_string(g->groups) + "]");
    Entry e{name, g->kind, {}, 0};
    for (int64_t l : t.i64) {
      if (l < -1 || l >= g->groups)
        throw Error(path + ": tying '" + key + "' has label " + std::to_string(l) + " outside [-1, " +
                    std::to_string(g->groups) + ")");
      e.labels.push_back((int)l);
      e.clusters = std::max(e.clusters, (int)l + 1);
    }
    pt.entries_.push_back(std::move(e));
  }
  return pt;
}

// ---- LSUV ------------------------------------------------------------------------------

namespace {

LayerTracer& tracer_of(MultiTaskModel& m, const char* who) {
  auto* tr = dynamic_cast<LayerTracer*>(&m);
  if (!tr) throw Error(std::string(who) + ": model '" + m.arch() + "' cannot trace its layers (only mdmtn/hps)");
  return *tr;
}

Tensor& weight_of(Module* layer) {
  if (auto* c = dynamic_cast<Conv2d*>(layer)) return c->weight;
  if (auto* l = dynamic_cast<Linear*>(layer)) return l->weight;
  throw Error("lsuv: traced layer is neither Conv2d nor Linear");
}

Tensor& bias_of(Module* layer) {
  if (auto* c = dynamic_cast<Conv2d*>(layer)) return c->bias;
  return dynamic_cast<Linear*>(layer)->bias;
}

double population_std(const Tensor& t) {
  const float* d = t.data();
  const int64_t n = t.numel();
  double mean = 0;
  for (int64_t i = 0; i < n; i++) mean += d[i];
  mean /= (double)n;
  double var = 0;
  for (int64_t i = 0; i < n; i++) var += (d[i] - mean) * (d[i] - mean);
  return std::sqrt(var / (double)n);
}

// Restores the train/eval mode on scope exit.
struct ModeGuard {
  Module& m;
  bool was;
  explicit ModeGuard(Module& mod) : m(mod), was(mod.is_training()) { m.eval(); }
  ~ModeGuard() { m.train(was); }
};

}  // namespace

std::vector<std::pair<std::string, double>> lsuv_init(MultiTaskModel& m, const Tensor& x, const LsuvOptions& opt,
                                                      Rng& rng) {
  LayerTracer& tracer = tracer_of(m, "lsuv");
  check(opt.target_std > 0 && opt.tol >= 0 && opt.max_attempts >= 0, "lsuv",
        "needs target std > 0, tol >= 0 and max_attempts >= 0");
  ModeGuard mode(m);
  NoGrad ng;
  // the layers in order of their first call, with their position in the trace
  std::vector<std::pair<Module*, size_t>> order;
  std::vector<std::string> names;
  {
    const std::vector<TracedLayer> tr = tracer.trace(x);
    for (size_t i = 0; i < tr.size(); i++) {
      bool seen = false;
      for (const auto& o : order) seen = seen || o.first == tr[i].layer;
      if (!seen) {
        order.emplace_back(tr[i].layer, i);
        names.push_back(tr[i].name);
      }
    }
  }
  if (opt.orthonormal)
    for (const auto& o : order) {
      orthogonal_(weight_of(o.first), 1.0, rng);
      Tensor& b = bias_of(o.first);
      if (b.defined()) fill_(b, 0.f);
    }
  std::vector<std::pair<std::string, double>> result;
  for (size_t l = 0; l < order.size(); l++) {
    Module* layer = order[l].first;
    const Tensor input = tracer.trace(x)[order[l].second].input;
    double s = population_std(layer->forward(input));
    for (int attempt = 0; attempt < opt.max_attempts && std::fabs(s - opt.target_std) > opt.tol; attempt++) {
      Tensor& w = weight_of(layer);
      const float scale = (float)(opt.target_std / (s + 1e-8));
      float* d = w.data();
      for (int64_t i = 0; i < w.numel(); i++) d[i] *= scale;
      s = population_std(layer->forward(input));
    }
    result.emplace_back(names[l], s);
  }
  return result;
}

// ---- metrics ---------------------------------------------------------------------------

SparsityReport sparsity_report(MultiTaskModel& m) {
  SparsityReport r;
  const std::vector<WeightGroups> gs = weight_groups(m);
  int64_t grouped_params = 0;
  for (const auto& g : gs) {
    LayerSparsity l;
    l.name = g.name;
    l.regularized = g.regularized;
    l.groups = g.groups;
    l.weights = g.weight.numel();
    const float* d = g.weight.data();
    for (int64_t i = 0; i < l.weights; i++) l.zero_weights += d[i] == 0.f;
    const std::vector<bool> z = zero_groups(g);
    const std::vector<float> w = group_matrix(g);
    const size_t S = (size_t)g.group_size;
    std::vector<int> live;
    for (int i = 0; i < g.groups; i++)
      if (z[i]) l.zero_groups++;
      else live.push_back(i);
    // distinct non-zero groups: sort by bytes, count runs
    auto row = [&](int i) { return w.data() + (size_t)i * S; };
    std::sort(live.begin(), live.end(),
              [&](int a, int b) { return std::memcmp(row(a), row(b), S * sizeof(float)) < 0; });
    for (size_t k = 0; k < live.size(); k++)
      if (k == 0 || std::memcmp(row(live[k - 1]), row(live[k]), S * sizeof(float)) != 0) l.unique_nonzero_groups++;
    r.groups += l.groups;
    r.zero_groups += l.zero_groups;
    r.unique_nonzero_groups += l.unique_nonzero_groups;
    r.weights += l.weights;
    r.zero_weights += l.zero_weights;
    grouped_params += l.weights;
    r.stored_params += (int64_t)l.unique_nonzero_groups * g.group_size;
    if (l.zero_groups > 0 || l.unique_nonzero_groups < l.groups - l.zero_groups) r.bytes += 4 * (int64_t)l.groups;
    r.layers.push_back(std::move(l));
  }
  r.params = m.num_parameters();
  r.stored_params += r.params - grouped_params;
  r.dense_bytes = 4 * r.params;
  r.bytes += 4 * r.stored_params;
  r.group_sparsity = r.groups ? 100.0 * (double)r.zero_groups / (double)r.groups : 0.0;
  r.param_sparsity = r.weights ? 100.0 * (double)r.zero_weights / (double)r.weights : 0.0;
  const double unique = (double)std::max<int64_t>(1, r.unique_nonzero_groups);
  r.compression_rate = (double)r.groups / unique;
  r.sharing_ratio = r.unique_nonzero_groups ? (double)(r.groups - r.zero_groups) / unique : 1.0;

  if (auto* tracer = dynamic_cast<LayerTracer*>(&m)) {
    ModeGuard mode(m);
    NoGrad ng;
    Shape s = tracer->input_chw();
    s.insert(s.begin(), 1);
    for (const auto& t : tracer->trace(Tensor::zeros(s))) {
      double f = 0;
      if (auto* c = dynamic_cast<Conv2d*>(t.layer)) {
        const int H = t.input.size(2), W = t.input.size(3), k = c->kernel_size;
        const int64_t Ho = (H + 2 * c->padding - k) / c->stride + 1, Wo = (W + 2 * c->padding - k) / c->stride + 1;
        f = 2.0 * c->out_channels * c->in_channels * k * k * (double)(Ho * Wo);
      } else if (auto* l = dynamic_cast<Linear*>(t.layer)) {
        f = 2.0 * l->in_features * l->out_features;
      }
      for (auto& l : r.layers)
        if (l.name == t.name + ".weight") {
          l.dense_flops += f;
          l.flops += f * (double)(l.groups - l.zero_groups) / (double)l.groups;
        }
    }
    r.flops_known = true;
    for (const auto& l : r.layers) {
      r.dense_flops += l.dense_flops;
      r.flops += l.flops;
    }
  }
  return r;
}

std::string format_sparsity(const SparsityReport& r) {
  std::string s = "group sparsity " + num(r.group_sparsity) + "% (" + std::to_string(r.zero_groups) + "/" +
                  std::to_string(r.groups) + " groups), weights " + num(r.param_sparsity) + "% zero, compression " +
                  num(r.compression_rate) + ", sharing " + num(r.sharing_ratio) + ", stored params " +
                  std::to_string(r.stored_params) + "/" + std::to_string(r.params) + ", bytes " +
                  std::to_string(r.bytes) + "/" + std::to_string(r.dense_bytes);
  if (r.flops_known) s += ", MFLOPs " + num(r.flops / 1e6) + "/" + num(r.dense_flops / 1e6);
  return s;
}

}  // namespace mt
