#include "datasets/loader.h"

#include <algorithm>

#include "engine/error.h"

namespace mt {

Loader::Loader(const MultiImageSet& set, int batch, bool shuffle, uint64_t seed, bool drop_last)
    : set_(set), batch_(batch), shuffle_(shuffle), drop_last_(drop_last), seed_(seed) {
  if (batch < 1) throw Error("batch size must be >= 1, got " + std::to_string(batch));
  if (set.n < 1) throw Error("Loader: the dataset is empty (0 samples)");
  set.validate("Loader");
  if (drop_last && batch > set.n)
    throw Error("Loader: batch size " + std::to_string(batch) + " is larger than the " + std::to_string(set.n) +
                " samples and drop_last is set: an epoch would have no batch");
  batches_ = drop_last ? set.n / batch : (set.n + batch - 1) / batch;
  for (int p = 0; p < 256; ++p) lut_[p] = (float(p) / 255.0f - set.mean) / set.std;
  thread_ = std::thread(&Loader::worker, this);
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Loader::shard(int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks)
    throw Error("Loader: rank " + std::to_string(rank) + " of " + std::to_string(ranks) + " ranks");
  std::lock_guard<std::mutex> lk(mu_);
  rank_ = rank;
  ranks_ = ranks;
  ++generation_;  // a batch in flight was cut for the old split
  produced_ = consumed_ = 0;
  slot_full_ = false;
}

void Loader::start_epoch(int epoch) {
  if (epoch < 0) throw Error("Loader: epoch must be >= 0, got " + std::to_string(epoch));
  std::vector<int32_t> order;
  if (shuffle_) {
    order = seeded_permutation(set_.n, DataRng::mix(seed_, uint64_t(epoch)));
  } else {
    order.resize(size_t(set_.n));
    for (int i = 0; i < set_.n; ++i) order[size_t(i)] = i;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    order_.swap(order);
    epoch_ = epoch;
    ++generation_;
    produced_ = consumed_ = 0;
    slot_full_ = false;
    error_ = nullptr;
  }
  cv_.notify_all();
}

bool Loader::next(Batch& out) {
  std::unique_lock<std::mutex> lk(mu_);
  if (epoch_ < 0) throw Error("Loader: next() called before start_epoch()");
  if (consumed_ >= batches_) return false;
  cv_.wait(lk, [&] { return slot_full_ || error_; });
  if (error_) std::rethrow_exception(error_);  // stays set: later calls throw too
  std::swap(out, slot_);
  slot_full_ = false;
  ++consumed_;
  lk.unlock();
  cv_.notify_all();
  return true;
}

void Loader::fill(Batch& b, const int32_t* idx, int count) const {
  const size_t sz = set_.image_size();
  const size_t T = set_.labels.size();
  b.n = count;
  b.c = set_.c;
  b.h = set_.h;
  b.w = set_.w;
  // The set is only referenced: catch it having been changed under us.
  if (set_.pixels.size() < size_t(set_.n) * sz || set_.labels.size() != set_.num_classes.size())
    throw Error("Loader: the dataset changed after the Loader was made (pixel buffer of " +
                std::to_string(set_.pixels.size()) + " bytes for " + std::to_string(set_.n) + " samples)");
  b.x.resize(size_t(count) * sz);
  b.y.resize(T);
  for (size_t t = 0; t < T; ++t) {
    const bool reg = set_.num_classes[t] == 0;
    const size_t k_out = reg && set_.n > 0 ? set_.values[t].size() / size_t(set_.n) : 0;
    b.y[t].label.resize(reg ? 0 : size_t(count));
    b.y[t].value.resize(size_t(count) * k_out);
  }
  for (int k = 0; k < count; ++k) {
    const size_t i = size_t(idx[k]);
    const uint8_t* src = set_.pixels.data() + i * sz;
    float* dst = b.x.data() + size_t(k) * sz;
    for (size_t p = 0; p < sz; ++p) dst[p] = lut_[src[p]];
    for (size_t t = 0; t < T; ++t) {
      if (set_.num_classes[t] == 0) {
        const size_t k_out = b.y[t].value.size() / size_t(count);
        if (set_.values.size() <= t || set_.values[t].size() < (i + 1) * k_out)
          throw Error("Loader: the dataset changed after the Loader was made (regression task '" +
                      set_.task_names[t] + "', sample " + std::to_string(i) + ")");
        std::copy_n(set_.values[t].data() + i * k_out, k_out, b.y[t].value.data() + size_t(k) * k_out);
        continue;
      }
      if (set_.labels[t].size() <= i)
        throw Error("Loader: the dataset changed after the Loader was made (task '" + set_.task_names[t] +
                    "' has " + std::to_string(set_.labels[t].size()) + " labels, sample " + std::to_string(i) +
                    " requested)");
      b.y[t].label[size_t(k)] = set_.labels[t][i];
    }
  }
}

void Loader::worker() {
  Batch work;
  std::vector<int32_t> idx;
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return stop_ || (epoch_ >= 0 && !slot_full_ && !error_ && produced_ < batches_); });
    if (stop_) return;
    const uint64_t gen = generation_;
    const int b = produced_;
    const int begin = b * batch_;
    const int count = std::min(batch_, set_.n - begin);
    const int lo = (int)((int64_t)count * rank_ / ranks_), hi = (int)((int64_t)count * (rank_ + 1) / ranks_);
    idx.assign(order_.begin() + begin + lo, order_.begin() + begin + hi);
    lk.unlock();
    std::exception_ptr err;
    try {
      fill(work, idx.data(), hi - lo);
      work.offset = lo;
      work.global_n = count;
    } catch (...) {
      err = std::current_exception();
    }
    lk.lock();
    if (gen != generation_) continue;  // start_epoch() came in meanwhile: drop it
    if (err) {
      error_ = err;
    } else {
      std::swap(work, slot_);
      slot_full_ = true;
      ++produced_;
    }
    cv_.notify_all();
  }
}

}  // namespace mt
