// C99 source for a layer graph: NAME.h and NAME.c, in fp32 or (with a QuantGraph) int8.
//
// The generated unit has no heap and no global state but one static arena (its exact size
// is NAME_ARENA_BYTES, from the memory plan), keeps every weight in const arrays (flash on
// a microcontroller), and exposes
//     int NAME_predict(const float* input, float* outputs);   // 0, or -1 for a NULL pointer
// with macros for the input shape and normalisation and each task's output offset and
// size. fp32 needs the C library's exp/log (log_softmax, computed as the engine does);
// int8 needs nothing from libm. Each layer is one static function with its sizes as
// constants, written as the loops of graph_run.h (fp32: the same additions in the same
// order; compile with -ffp-contract=off, implied by -std=c99 in GCC, to keep them).
//
// Layouts: a conv's weights [filters][in_c][k][k]; a Linear's weights column-major
// [columns][outputs] (the loop over columns adds w[j][:] * x_j to every output: an axpy
// that vectorises without reassociating sums, and skips x_j = 0, common after ReLU).
// A Linear reading several values (MDMTN's [Z, M_t]) first copies them side by side in
// the arena. Index arrays are emitted only where pruning or tying needs them: a conv's
// filter map, min-pool flags, kept positions; a Linear's input element per column, and
// the column starts when tied columns sum several inputs.
#pragma once
#include <cstdint>
#include <string>

#include "mtl/export/layer_graph.h"
#include "mtl/export/memory_plan.h"
#include "mtl/export/quantize.h"

namespace mt {

struct CEmitInfo {
  std::string name;                 // a C identifier: NAME_predict, NAME.h
  std::string source;               // where the weights came from (a comment)
  std::string method, dataset;      // for the header's comment ("" = unknown)
  float input_mean = 0.f, input_std = 1.f;  // the normalisation input = (pixel / 255 - mean) / std
};

struct CSources {
  std::string header, source;
  int64_t const_bytes = 0;  // bytes of every const array (weights, biases, scales, index maps)
  int64_t arena_bytes = 0;  // NAME_ARENA_BYTES
  MemoryPlan plan;
};

// q == nullptr: fp32. Throws mt::Error for a name that is not a C identifier or weights that
// are not finite.
CSources emit_c(const LayerGraph& g, const QuantGraph* q, const CEmitInfo& info);

// "heads.0.monitor.fc" -> "heads_0_monitor_fc"; task names -> upper-case macro parts.
std::string c_identifier(const std::string& s);
bool is_c_identifier(const std::string& s);

}  // namespace mt
