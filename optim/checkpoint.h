// A training checkpoint: one safetensors file holding everything needed to
// continue training exactly where it stopped.
//
//   metadata  format = "mtl-engine-v1", kind = "checkpoint", step, epoch,
//             optim.type / optim.lr / optim.step, and the caller's entries
//             (architecture, tasks, method, ...)
//   tensors   model.NAME         every parameter and buffer (layers/serialize.h)
//             optim.SLOT.NAME    optimizer state (optim/optimizer.h)
//             rng.global         I64 [4]: the global generator's state (bit-cast)
//             extra.NAME         the caller's tensors (e.g. a method's alpha history)
//
// Saving writes a temporary file and renames it, so PATH is either the old
// file or the complete new one. Loading reads and validates the whole file
// (its data checksum, model, optimizer, rng, expected metadata, and that every
// F32 value is finite: training never continues from NaN or inf) before
// modifying anything.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "engine/safetensors.h"
#include "layers/module.h"
#include "optim/optimizer.h"

namespace mt {

struct CheckpointExtra {
  int64_t step = 0;   // the caller's counters, e.g. batches and epochs done
  int64_t epoch = 0;
  // Caller's metadata. Reserved keys: format, kind, step, epoch and "optim.*".
  std::map<std::string, std::string> metadata;
  // Caller's tensors (F32 or I64), stored as "extra." + name. Multi-task
  // methods keep their state here (alpha history, lambda, mu, t).
  std::map<std::string, StTensor> tensors;
};

void save_checkpoint(const std::string& path, const Module& model, const Optimizer& opt,
                     const CheckpointExtra& extra = {});

// Restores the model's tensors, the optimizer's state and the global RNG, and
// returns the caller's part. Each entry of `expect` (e.g. {"architecture",
// "multilenet"}) must be in the file's metadata with that value.
CheckpointExtra load_checkpoint(const std::string& path, Module& model, Optimizer& opt,
                                const std::map<std::string, std::string>& expect = {});

}  // namespace mt
