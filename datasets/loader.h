// Mini-batch loader over a MultiImageSet with one background worker thread.
//
// Order: epoch e visits the samples in seeded_permutation(n, DataRng::mix(seed, e))
// when shuffling, else 0..n-1; so an (seed, epoch) pair always gives the same
// order, and different epochs give different orders. Batches hold `batch`
// samples; the last one is partial unless drop_last.
//
// Double buffering: while the caller works on batch k, the worker thread
// converts batch k+1 (uint8 -> float, x = (p/255 - mean) / std, NCHW) into a
// second buffer. Buffers are recycled by swapping with the Batch passed to
// next(), so a steady-state epoch allocates nothing. An exception in the worker
// is re-thrown by next(). The destructor stops and joins the worker.
//
// The loader keeps a reference to the set: the set must outlive the loader and
// must not change while an epoch is running.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "datasets/multi_mnist.h"
#include "datasets/targets.h"

namespace mt {

struct Batch {
  int n = 0, c = 0, h = 0, w = 0;
  std::vector<float> x;                  // n*c*h*w, NCHW, normalised
  Targets y;                             // y[task]: labels (classification) or values (regression)
  int offset = 0, global_n = 0;          // rows [offset, offset + n) of a batch of global_n (shard())
};

class Loader {
 public:
  // batch < 1, an empty or inconsistent set, or drop_last with batch > set.n
  // (no batch at all) throw mt::Error.
  Loader(const MultiImageSet& set, int batch, bool shuffle, uint64_t seed, bool drop_last = false);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  // Data parallelism (mtl/dist/): every batch of the order becomes rank `rank`'s
  // contiguous slice of it: rows [count * rank / ranks, count * (rank + 1) / ranks) of a
  // batch of count (Batch::offset, Batch::global_n say which). Call before
  // start_epoch(); ranks = 1 (the default) is the whole batch.
  void shard(int rank, int ranks);

  // Starts (or restarts) epoch `epoch` (>= 0): discards any batch in flight.
  void start_epoch(int epoch);
  // Fills `out` with the next batch of the epoch; false when the epoch is over.
  // Throws if no epoch was started, or re-throws the worker's exception.
  bool next(Batch& out);

  int batches_per_epoch() const { return batches_; }
  int batch_size() const { return batch_; }
  int size() const { return set_.n; }
  int epoch() const { return epoch_; }
  // The sample order of the current epoch (for inspection and tests).
  const std::vector<int32_t>& order() const { return order_; }

 private:
  void worker();
  void fill(Batch& b, const int32_t* idx, int count) const;

  const MultiImageSet& set_;
  const int batch_;
  const bool shuffle_, drop_last_;
  const uint64_t seed_;
  int rank_ = 0, ranks_ = 1;
  int batches_ = 0;
  int epoch_ = -1;
  float lut_[256];
  std::vector<int32_t> order_;  // written by start_epoch only while holding mu_

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;   // bumped by start_epoch: stale work is dropped
  int produced_ = 0;          // batches handed to the slot in this epoch
  int consumed_ = 0;          // batches taken by next() in this epoch
  bool slot_full_ = false;
  Batch slot_;
  std::exception_ptr error_;
  std::thread thread_;
};

}  // namespace mt
