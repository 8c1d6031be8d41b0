// The layer graph read from a model (see layer_graph.h).
#include "mtl/export/layer_graph.h"

#include <algorithm>
#include <cmath>

#include "engine/error.h"
#include "layers/layers.h"
#include "mtl/models/mdmtn.h"
#include "mtl/models/multilenet.h"

namespace mt {

// ---- values and layers ------------------------------------------------------------

int64_t GraphValue::size() const {
  if (pos.empty()) return dense_size();
  int64_t n = 0;
  for (const auto& p : pos) n += (int64_t)p.size();
  return n;
}

int GraphValue::positions(int ch) const { return pos.empty() ? h * w : (int)pos.at((size_t)ch).size(); }

int64_t GraphValue::channel_offset(int ch) const {
  if (pos.empty()) return (int64_t)ch * h * w;
  int64_t n = 0;
  for (int i = 0; i < ch; i++) n += (int64_t)pos[(size_t)i].size();
  return n;
}

int GraphLayer::filters() const {
  const int64_t per = (int64_t)in_c * k * k;
  return per > 0 ? (int)((int64_t)W.size() / per) : 0;
}

int64_t LayerGraph::output_size() const {
  int64_t n = 0;
  for (const auto& t : tasks) n += t.outputs;
  return n;
}

int64_t LayerGraph::output_offset(int t) const {
  int64_t n = 0;
  for (int i = 0; i < t; i++) n += tasks.at((size_t)i).outputs;
  return n;
}

std::vector<int> LayerGraph::consumers(int v) const {
  std::vector<int> c;
  for (size_t i = 0; i < layers.size(); i++)
    if (std::find(layers[i].in.begin(), layers[i].in.end(), v) != layers[i].in.end()) c.push_back((int)i);
  return c;
}

int LayerGraph::producer(int v) const {
  for (size_t i = 0; i < layers.size(); i++)
    if (layers[i].out == v) return (int)i;
  return -1;
}

std::vector<int64_t> LayerGraph::segment_starts(const GraphLayer& l) const {
  std::vector<int64_t> b;
  int64_t n = 0;
  for (int v : l.in) {
    b.push_back(n);
    n += values[(size_t)v].size();
  }
  return b;
}

int LayerGraph::segment_of_input(const GraphLayer& l, int64_t i) const {
  const std::vector<int64_t> b = segment_starts(l);
  int s = 0;
  while (s + 1 < (int)b.size() && i >= b[(size_t)s + 1]) s++;
  return s;
}

int64_t LayerGraph::params() const {
  int64_t n = 0;
  for (const auto& l : layers) n += l.params();
  return n;
}

int64_t layer_macs(const LayerGraph& g, const GraphLayer& l) {
  if (l.kind == LayerKind::Linear) {
    int64_t n = 0;  // one multiply-add per column and output (the merged inputs are additions)
    n = (int64_t)l.columns() * l.outputs();
    return n;
  }
  // every stored pooled output: pool^2 windows of in_c * k * k
  const GraphValue& y = g.values[(size_t)l.out];
  return y.size() * l.pool * l.pool * l.in_c * l.k * l.k;
}

int64_t LayerGraph::macs() const {
  int64_t n = 0;
  for (const auto& l : layers) n += layer_macs(*this, l);
  return n;
}

void LayerGraph::validate() const {
  auto fail = [](const std::string& what) { throw Error("export: malformed layer graph: " + what); };
  if (values.empty()) fail("no input value");
  std::vector<bool> defined(values.size(), false);
  defined[0] = true;
  std::vector<bool> task_seen(tasks.size(), false);
  for (const GraphValue& v : values)
    if (!v.pos.empty()) {
      if ((int)v.pos.size() != v.c) fail(v.name + ": position lists for " + std::to_string(v.pos.size()) + " of " +
                                         std::to_string(v.c) + " channels");
      for (const auto& p : v.pos)
        for (size_t i = 0; i < p.size(); i++)
          if (p[i] < 0 || p[i] >= v.h * v.w || (i && p[i] <= p[i - 1])) fail(v.name + ": bad position list");
    }
  for (const GraphLayer& l : layers) {
    const std::string& n = l.name;
    if (l.out <= 0 || l.out >= (int)values.size() || defined[(size_t)l.out]) fail(n + ": bad output value");
    for (int v : l.in)
      if (v < 0 || v >= (int)values.size() || !defined[(size_t)v]) fail(n + ": reads a value not yet computed");
    const GraphValue& y = values[(size_t)l.out];
    if ((int64_t)l.b.size() != y.c) fail(n + ": " + std::to_string(l.b.size()) + " biases for " + std::to_string(y.c) + " outputs");
    if (l.kind == LayerKind::Conv) {
      if (l.in.size() != 1) fail(n + ": a conv reads one value");
      const GraphValue& x = values[(size_t)l.in[0]];
      if (!x.pos.empty()) fail(n + ": a conv cannot read a value with pruned positions");
      if (x.c != l.in_c) fail(n + ": input has " + std::to_string(x.c) + " channels, weights " + std::to_string(l.in_c));
      const int Hc = (x.h + 2 * l.pad - l.k) / l.stride + 1, Wc = (x.w + 2 * l.pad - l.k) / l.stride + 1;
      if (l.pool < 1 || Hc / l.pool != y.h || Wc / l.pool != y.w) fail(n + ": output size");
      if ((int64_t)l.W.size() != (int64_t)l.filters() * l.in_c * l.k * l.k || l.filters() < 1) fail(n + ": weight size");
      if ((int)l.filter_of.size() != y.c || (int)l.min_pool.size() != y.c) fail(n + ": per-channel maps");
      for (int f : l.filter_of)
        if (f < 0 || f >= l.filters()) fail(n + ": filter index");
    } else {
      if (!y.pos.empty() || y.h != 1 || y.w != 1) fail(n + ": a linear layer gives a vector");
      int64_t in_size = 0;
      for (int v : l.in) in_size += values[(size_t)v].size();
      if ((int64_t)l.W.size() != (int64_t)l.outputs() * l.columns()) fail(n + ": weight size");
      int last_segment = 0;
      for (const auto& c : l.cols) {
        if (c.empty()) fail(n + ": a column reads nothing");
        for (int i : c)
          if (i < 0 || i >= in_size) fail(n + ": column index " + std::to_string(i) + " outside the input");
        const int seg = segment_of_input(l, c[0]);
        for (int i : c)
          if (segment_of_input(l, i) != seg) fail(n + ": a column sums inputs of two segments");
        if (seg < last_segment) fail(n + ": columns out of segment order");
        last_segment = seg;
      }
    }
    if (l.task >= 0) {
      if (l.task >= (int)tasks.size() || task_seen[(size_t)l.task]) fail(n + ": task index");
      if (l.kind != LayerKind::Linear || l.relu || y.c != tasks[(size_t)l.task].outputs) fail(n + ": task output layer");
      task_seen[(size_t)l.task] = true;
    }
    defined[(size_t)l.out] = true;
  }
  for (size_t t = 0; t < tasks.size(); t++)
    if (!task_seen[t]) fail("no output layer for task '" + tasks[t].name + "'");
}

// ---- reading a model ------------------------------------------------------------------

const std::vector<std::string>& exportable_architectures() {
  static const std::vector<std::string> a = {"multilenet", "mdmtn", "hps", "mdmtn-cifar", "hps-cifar"};
  return a;
}

namespace {

std::vector<float> copy_of(const Tensor& t) { return std::vector<float>(t.data(), t.data() + t.numel()); }

struct Builder {
  LayerGraph g;

  int value(const std::string& name, int c, int h, int w) {
    g.values.push_back({name, c, h, w, {}});
    return (int)g.values.size() - 1;
  }

  // conv + max-pool `pool` + BatchNorm (optional, folded) + ReLU
  int conv(const std::string& name, const Conv2d& c, int x, int pool, const BatchNorm2d* bn) {
    const GraphValue& in = g.values[(size_t)x];
    check(in.c == c.in_channels, name.c_str(), "input channels");
    GraphLayer l;
    l.kind = LayerKind::Conv;
    l.name = name;
    l.in = {x};
    l.in_c = c.in_channels;
    l.k = c.kernel_size;
    l.stride = c.stride;
    l.pad = c.padding;
    l.pool = pool;
    l.relu = true;
    l.W = copy_of(c.weight);
    l.b = c.bias.defined() ? copy_of(c.bias) : std::vector<float>((size_t)c.out_channels, 0.f);
    l.min_pool.assign((size_t)c.out_channels, 0);
    for (int o = 0; o < c.out_channels; o++) l.filter_of.push_back(o);
    if (bn) {
      // eval BatchNorm after the pool: a * pool(conv) + s with a = gamma / sqrt(var + eps),
      // s = beta - a * mean; folded: W' = a W, b' = a b + s, and a < 0 makes the pool a min
      const int64_t per = (int64_t)l.in_c * l.k * l.k;
      for (int o = 0; o < c.out_channels; o++) {
        const double a = (double)bn->weight.data()[o] / std::sqrt((double)bn->running_var.data()[o] + bn->eps);
        const double s = (double)bn->bias.data()[o] - a * bn->running_mean.data()[o];
        for (int64_t i = 0; i < per; i++) l.W[(size_t)(o * per + i)] = (float)(a * l.W[(size_t)(o * per + i)]);
        l.b[(size_t)o] = (float)(a * l.b[(size_t)o] + s);
        l.min_pool[(size_t)o] = a < 0;
      }
    }
    const int Hc = (in.h + 2 * l.pad - l.k) / l.stride + 1, Wc = (in.w + 2 * l.pad - l.k) / l.stride + 1;
    l.out = value(name, c.out_channels, Hc / pool, Wc / pool);
    g.layers.push_back(std::move(l));
    return g.layers.back().out;
  }

  // Linear over the concatenation of xs, each segment's weight columns scaled by scale[s]
  int linear(const std::string& name, const Linear& fc, const std::vector<int>& xs, const std::vector<double>& scale,
             bool relu, int task = -1, bool log_softmax = false) {
    GraphLayer l;
    l.kind = LayerKind::Linear;
    l.name = name;
    l.in = xs;
    l.relu = relu;
    l.task = task;
    l.log_softmax = log_softmax;
    int64_t in_size = 0;
    for (int v : xs) in_size += g.values[(size_t)v].size();
    const int in = fc.in_features, out = fc.out_features;
    check(in_size == (int64_t)in * (int64_t)xs.size(), name.c_str(), "input size");
    l.W.resize((size_t)out * in_size);
    for (int o = 0; o < out; o++)
      for (size_t s = 0; s < xs.size(); s++)
        for (int j = 0; j < in; j++)
          l.W[(size_t)(o * in_size + (int64_t)s * in + j)] = (float)(scale[s] * fc.weight.data()[(int64_t)o * in + j]);
    for (int64_t j = 0; j < in_size; j++) l.cols.push_back({(int)j});
    l.b = fc.bias.defined() ? copy_of(fc.bias) : std::vector<float>((size_t)out, 0.f);
    l.out = value(name, out, 1, 1);
    g.layers.push_back(std::move(l));
    return g.layers.back().out;
  }
};

GraphTask task_info(const Task& t, bool log_softmax) {
  GraphTask gt;
  gt.name = t.name;
  gt.outputs = t.output_size();
  if (t.is_regression()) {
    gt.classes = 0;
    gt.kind = "regression";
  } else {
    gt.classes = t.num_classes;
    gt.kind = t.loss == TaskLoss::BinaryLogits ? "binary-logit" : log_softmax ? "log-probabilities" : "logits";
  }
  return gt;
}

LayerGraph from_multilenet(const MultiLeNet& m, const Shape& chw) {
  Builder b;
  b.g.arch = m.arch();
  int x = b.value("input", chw[0], chw[1], chw[2]);
  const MultiLeNetTrunk& tr = *m.trunk;
  int h = b.conv("trunk.conv1", *tr.conv1, x, 2, nullptr);
  h = b.conv("trunk.conv2", *tr.conv2, h, 2, nullptr);
  const int z = b.linear("trunk.fc", *tr.fc, {h}, {1.0}, true);
  for (int t = 0; t < m.num_tasks(); t++) {
    const auto& head = static_cast<const MultiLeNetHead&>((*m.heads)[(size_t)t]);
    const std::string p = "heads." + std::to_string(t) + ".";
    const int a = b.linear(p + "fc1", *head.fc1, {z}, {1.0}, true);
    b.linear(p + "fc2", *head.fc2, {a}, {1.0}, false, t, head.log_probs);
    b.g.tasks.push_back(task_info(m.tasks()[(size_t)t], head.log_probs));
  }
  return b.g;
}

LayerGraph from_mdmtn(const Mdmtn& m) {
  Builder b;
  b.g.arch = m.arch();
  const Shape chw = m.input_chw();
  int x = b.value("input", chw[0], chw[1], chw[2]);
  const MdmtnTrunk& tr = *m.trunk;
  int h = b.conv("trunk.conv1", *tr.conv1, x, 2, tr.bn1.get());
  h = b.conv("trunk.conv2", *tr.conv2, h, 2, tr.bn2.get());
  const int z = b.linear("trunk.fc", *tr.fc, {h}, {1.0}, true);
  for (int t = 0; t < m.num_tasks(); t++) {
    const MdmtnHead& head = *m.head_list()[(size_t)t];
    const std::string p = "heads." + std::to_string(t) + ".";
    const bool lsm = head.loss == TaskLoss::LogProbNll;
    if (head.monitor) {
      const MdmtnMonitor& mon = *head.monitor;
      const int c = b.conv(p + "monitor.conv", *mon.conv, x, 2, mon.bn.get());
      const int mt = b.linear(p + "monitor.fc", *mon.fc, {c}, {1.0}, true);
      // out(alpha_t0 Z + alpha_t1 M_t) = [alpha_t0 W | alpha_t1 W] [Z; M_t] + b
      const std::vector<double> a = m.alpha(t);
      b.linear(p + "out", *head.out, {z, mt}, {a[0], a[1]}, false, t, lsm);
    } else {
      b.linear(p + "out", *head.out, {z}, {1.0}, false, t, lsm);
    }
    b.g.tasks.push_back(task_info(m.tasks()[(size_t)t], lsm));
  }
  return b.g;
}

}  // namespace

LayerGraph layer_graph(const MultiTaskModel& m, const Shape& input_chw) {
  check(input_chw.size() == 3, "export", "the input shape must be C x H x W, got " + shape_str(input_chw));
  LayerGraph g;
  if (auto* ml = dynamic_cast<const MultiLeNet*>(&m)) {
    g = from_multilenet(*ml, input_chw);
  } else if (auto* md = dynamic_cast<const Mdmtn*>(&m)) {
    check(md->input_chw() == input_chw, "export",
          "the model was built for input " + shape_str(md->input_chw()) + ", not " + shape_str(input_chw));
    g = from_mdmtn(*md);
  } else {
    std::string list;
    for (const auto& a : exportable_architectures()) list += (list.empty() ? "" : ", ") + a;
    throw Error("export: architecture '" + m.arch() + "' is not supported (supported: " + list + ")");
  }
  g.validate();
  return g;
}

}  // namespace mt
