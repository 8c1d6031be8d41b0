// Data-parallel training (`mpirun -np N build/mtl train ...`): what the training loop
// (mtl/train/trainer.cpp) does to keep N replicas of one model training as one.
//
//   the batch      the global batch (--batch samples, in the loader's order) is split
//                  by sample index (Loader::shard, datasets/loader.h): rank r holds rows
//                  [n r / N, n (r + 1) / N), contiguous, sizes differing by at most one.
//   start          every tensor of the model and the method (and the buffers) is
//                  broadcast from rank 0, so the replicas start identical.
//   each step      each rank's gradients scaled by its share n_r / n, then ONE fused
//                  allreduce of all of them (Horovod's tensor fusion), this rank's
//                  batch losses riding along in the same buffer; the methods that need
//                  global values inside the step ask mtl/dist/step_share.h.
//   each epoch     BatchNorm's running statistics averaged over the ranks (training
//                  uses each rank's local batch statistics: no SyncBN); then a hash of
//                  every parameter and buffer compared across ranks: an error naming the
//                  ranks when they differ.
// Without mpirun every function here returns at once.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "layers/module.h"
#include "mtl/dist/comm.h"

namespace mt::dist {

// Rank 0's values of every tensor, on every rank.
void broadcast_tensors(Comm& comm, const NamedTensors& tensors);

// The fused gradient allreduce of one step: every defined gradient of `params`, and
// `losses`, scaled by `share` on this rank and summed over the ranks (the buffer is
// kept between steps).
// With MTL_DIST_PROFILE=1 in the environment a barrier comes first, so that the time
// waiting for the slowest rank (wait_seconds) is told apart from the allreduce itself
// (allreduce_seconds); the barrier costs one more latency per step.
class GradientReducer {
 public:
  GradientReducer();
  void allreduce(Comm& comm, const NamedTensors& params, double share, std::vector<double>& losses);
  size_t floats() const { return buf_.size(); }  // the last step's message, in floats
  bool profiling() const { return profile_; }
  double wait_seconds() const { return wait_s_; }
  double allreduce_seconds() const { return reduce_s_; }

 private:
  std::vector<float> buf_;
  bool profile_ = false;
  double wait_s_ = 0, reduce_s_ = 0;
};

// Running statistics (buffers) averaged over the ranks.
void average_buffers(Comm& comm, const NamedTensors& buffers);

// 64-bit FNV-1a over every tensor's name, shape and bits.
uint64_t tensors_hash(const NamedTensors& tensors);
// Throws mt::Error when the ranks' hashes differ ("the replicas differ after WHEN: ...").
void check_replicas(Comm& comm, const NamedTensors& tensors, const std::string& when);

}  // namespace mt::dist
