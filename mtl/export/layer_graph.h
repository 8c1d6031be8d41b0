// The layer graph of a trained model, as the C export sees it: the input image, the
// activations ("values") and the layers that compute them, in execution order, with
// the fp32 weights copied out of the model (inference only: dropout is the identity,
// BatchNorm uses its running statistics and is folded into the convolution before it).
//
// Two kinds of layer cover MultiLeNet, MDMTN and HPS:
//   Conv    y[o] = act(pool_o(b[o] + W[filter_of[o]] * x))     one input value
//           a k x k convolution (stride, zero padding), then a pool x pool max-pool
//           (stride pool, floor; pool = 1: none) and ReLU, fused: the pooled output is
//           computed directly. A folded BatchNorm with a negative scale a turns the
//           channel's max-pool into a min-pool (a * max(x) + c = min(a * x + c)).
//   Linear  y[o] = act(b[o] + sum_j W[o, j] * sum_{i in cols[j]} x[i])
//           x is the concatenation of the input values, the "segments" (each flattened
//           C*H*W, or its stored elements); cols[j] lists the input elements column j
//           reads: one element when dense, several after tied columns are merged (always
//           within one segment), and inputs no column reads are simply not read. The
//           columns are ordered by segment.
// A value is a C x H x W activation; a vector is C x 1 x 1. After structural pruning a
// conv output may keep only some positions of a channel (its consumer is a Linear that
// reads only those): pos[ch] lists them and the stored layout is channel after channel,
// each with its kept positions in order.
//
// Task t's output layer is a Linear with task = t, whose output the C code writes into
// outputs[] at the task's offset (then log_softmax for tasks whose model applies it).
//
// How each model maps (engine names in quotes):
//   MultiLeNet  "trunk.conv1" conv 5x5 + pool 2 + ReLU, "trunk.conv2" likewise (dropout2d
//               is the identity), "trunk.fc" Linear + ReLU = Z; head t: "heads.t.fc1"
//               Linear + ReLU, "heads.t.fc2" Linear (task t; log_softmax for a
//               classification head, none for a regression one).
//   MDMTN/HPS   the trunk likewise (BatchNorm folded in the -cifar shapes); monitor t:
//               "heads.t.monitor.conv" conv + pool + (BN) + ReLU, "heads.t.monitor.fc"
//               Linear + ReLU = M_t; "heads.t.out" reads [Z, M_t] with the weight
//               [alpha_t0 W | alpha_t1 W] (h_t = alpha_t0 Z + alpha_t1 M_t folded into the
//               output layer), or Z alone in HPS.
// Any other architecture is refused with an error naming it.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mtl/models/model.h"

namespace mt {

struct GraphValue {
  std::string name;           // "input" or the producing layer's name
  int c = 0, h = 1, w = 1;     // channels, spatial size (a vector: c x 1 x 1)
  std::vector<std::vector<int>> pos;  // empty: all h*w positions of every channel; else the kept ones
  int64_t dense_size() const { return (int64_t)c * h * w; }
  int64_t size() const;                 // stored elements
  int64_t channel_offset(int ch) const;  // first stored element of channel ch
  int positions(int ch) const;           // stored positions of channel ch
};

enum class LayerKind { Conv, Linear };

struct GraphLayer {
  LayerKind kind = LayerKind::Linear;
  std::string name;        // the engine's module name, "trunk.conv1"
  std::vector<int> in;     // input value ids (Conv: exactly one)
  int out = -1;            // output value id
  bool relu = false;
  std::vector<float> W;    // Conv: [filters, in_c, k, k]; Linear: [outputs, columns]
  std::vector<float> b;    // per output channel / unit
  // Conv
  int in_c = 0, k = 1, stride = 1, pad = 0, pool = 1;
  std::vector<int> filter_of;     // per output channel: its filter (row of W)
  std::vector<uint8_t> min_pool;  // per output channel: 1 = min-pool instead of max-pool
  // Linear
  std::vector<std::vector<int>> cols;  // per column: the input elements it sums
  // a task's output layer
  int task = -1;
  bool log_softmax = false;

  int outputs() const { return (int)b.size(); }
  int filters() const;  // Conv: rows of W
  int columns() const { return (int)cols.size(); }
  int64_t params() const { return (int64_t)W.size() + (int64_t)b.size(); }
};

struct GraphTask {
  std::string name;
  int classes = 0;    // classes of a classification task (2 for a one-logit binary task); 0: regression
  int outputs = 0;    // numbers the model gives for it (classes, 1 for one logit, a regression's outputs)
  std::string kind;   // "log-probabilities", "logits", "binary-logit" or "regression"
};

struct LayerGraph {
  std::string arch;
  std::vector<GraphValue> values;  // values[0] is the input image
  std::vector<GraphLayer> layers;  // in execution order
  std::vector<GraphTask> tasks;
  int64_t output_size() const;
  int64_t output_offset(int t) const;
  // layers reading value v
  std::vector<int> consumers(int v) const;
  int producer(int v) const;  // -1 for the input
  int64_t params() const;
  int64_t macs() const;       // multiply-adds of one inference (conv: every pooled window)
  // A Linear's segments: where each input value starts in the concatenated input, and the
  // segment of input element i (an index into the concatenation).
  std::vector<int64_t> segment_starts(const GraphLayer& l) const;
  int segment_of_input(const GraphLayer& l, int64_t i) const;
  // Throws mt::Error when the graph is malformed (sizes, indices, orders): every
  // transformation keeps it valid, and the tests call this after each.
  void validate() const;
};

// The architectures layer_graph reads.
const std::vector<std::string>& exportable_architectures();

// The graph of a model (its weights copied). Throws mt::Error "export: architecture 'X'
// is not supported (supported: ...)" for any other architecture.
// input_chw: the image the model reads (C x H x W; MultiLeNet does not store it).
LayerGraph layer_graph(const MultiTaskModel& m, const Shape& input_chw);

// Per-sample multiply-adds of one layer.
int64_t layer_macs(const LayerGraph& g, const GraphLayer& l);

}  // namespace mt
