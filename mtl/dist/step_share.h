// What a method needs to know, inside one training step, about data parallelism:
// this rank holds n_r of the n samples of the global batch, and its task losses are
// means over its own n_r samples. The objective of the global batch uses the global
// means L_t = sum_r (n_r / n) L_t^r; the loop (mtl/dist/data_parallel.h) sums every
// rank's gradients scaled by n_r / n. A method whose step is linear in the losses
// (uniform, fixed weights, uncertainty) needs nothing more; a method that uses the
// losses' values, or a Gram matrix, asks for the global ones here (one small
// allreduce) so that every rank takes the same decision:
//   global_means     Chebyshev-AL's f_t; MGDA-UB's losses for its normalisation
//   global_gram      MGDA-UB: g_t = dL_t/dZ is per sample, so the Gram matrix of the
//                    global batch is sum_r (n_r/n)^2 G_r, G_r the Gram matrix of this
//                    rank's g_t^r = dL_t^r/dZ_r (the rows of other ranks' samples are
//                    zero in the global gradient): K^2 numbers per step.
// Outside mpirun (or with one rank) these return their input unchanged, and the
// single-process numbers are untouched.
#pragma once
#include <cstdint>
#include <vector>

namespace mt::dist {

class Comm;

// This rank's rows [offset, offset + rows) of a global batch of global_rows samples.
struct BatchShare {
  int64_t offset = 0, rows = 0, global_rows = 0;
  double share() const { return global_rows > 0 ? (double)rows / (double)global_rows : 1.0; }
};

// Set by the training loop for the duration of one step (and the engine's row shard,
// engine/rng.h, so that dropout masks are the single-process ones).
class StepScope {
 public:
  StepScope(Comm& comm, const BatchShare& share);
  ~StepScope();
  StepScope(const StepScope&) = delete;
  StepScope& operator=(const StepScope&) = delete;
};

// True inside a StepScope of a job of more than one rank.
bool in_parallel_step();
// The share of the current step (offset 0, global_rows 0 outside one).
BatchShare step_share();

// sum_r (n_r / n) v_r: the global batch means of per-rank batch means.
std::vector<double> global_means(const std::vector<double>& v);
// G = sum_r (n_r / n)^2 G_r in place (K x K); means as global_means, in the same
// allreduce.
void global_gram(std::vector<double>& gram, std::vector<double>& means);

}  // namespace mt::dist
