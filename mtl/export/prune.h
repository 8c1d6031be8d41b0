// Structural pruning of a layer graph: what GrOWL zeroed and what tying merged is
// removed from the network, not skipped at run time. Every step is exact (in real
// arithmetic; in float only the order of a few additions changes):
//
//   zero column     a Linear column whose weights are all zero (a zero GrOWL group of a
//                   Linear: input unit j) is deleted; the input elements no layer reads any
//                   more are then deleted from the layer that computes them (next rule);
//   dead element    an activation no consumer reads (no Linear column lists it; a conv's
//                   filters are all zero on that channel) is deleted from its producer: a
//                   Linear's output unit (its weight row and bias), a conv's output
//                   position (when every consumer is a Linear; the conv then computes
//                   only the kept positions) or whole channel (its filter and bias), and
//                   from every consumer (a conv loses that input channel);
//   constant        an activation whose weights are all zero (a zero GrOWL group of a conv:
//                   output filter o; a zero Linear row) equals act(b) for every input: its
//                   contribution is folded into each consumer's bias (a Linear:
//                   b += W[:, j] act(b_e); a conv without padding: b += act(b_e) sum W[:, c]),
//                   and it becomes dead;
//   tied columns    Linear columns with bitwise-equal weights (tied GrOWL groups) are merged
//                   into one column reading the sum of their inputs (W x_j + W x_k = W (x_j + x_k));
//   tied filters    conv filters with bitwise-equal weights are stored once (channels keep
//                   their own bias and share the filter).
// The rules repeat until nothing changes. The task outputs and the input image are never
// deleted. The result validates (LayerGraph::validate) and computes the same outputs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mtl/export/layer_graph.h"

namespace mt {

struct PruneReport {
  int64_t zero_columns = 0;      // Linear columns deleted for zero weights
  int64_t constants_folded = 0;  // activations folded into their consumers' biases
  int64_t units_removed = 0;     // Linear output units deleted
  int64_t channels_removed = 0;  // conv output channels deleted
  int64_t positions_removed = 0; // conv output positions deleted (channels kept)
  int64_t columns_merged = 0;    // tied Linear columns merged away
  int64_t filters_merged = 0;    // tied conv filters stored once
};

PruneReport prune_graph(LayerGraph& g);

}  // namespace mt
