// A small, portable random generator (xoshiro256**, seeded by splitmix64):
// the same seed gives the same numbers on every machine and at any thread
// count, and its whole state is four words, so checkpoints can store it.
#pragma once
#include <array>
#include <cstdint>

namespace mt {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { seed_with(seed); }
  void seed_with(uint64_t seed);
  uint64_t next_u64();
  float uniform();                        // [0, 1)
  double uniform_double();                // [0, 1)
  float normal();                         // standard normal (Box-Muller)
  uint64_t below(uint64_t n);             // uniform integer in [0, n)
  std::array<uint64_t, 4> state() const { return s_; }
  void set_state(const std::array<uint64_t, 4>& s) { s_ = s; }

 private:
  std::array<uint64_t, 4> s_{};
};

// The engine's generator for dropout masks and initialisation.
Rng& global_rng();
void manual_seed(uint64_t seed);

// Data parallelism (mtl/dist/): this process holds rows [offset, offset + rows) of a
// global batch of global_rows samples. Per-sample draws (dropout masks) are then made
// for the whole global batch, in the order one process would make them, and this
// process keeps its rows: the masks, and the generator's state after them, are the
// single-process ones whatever the split. global_rows = 0 (the default): no split.
struct RowShard {
  int64_t offset = 0, rows = 0, global_rows = 0;
};
void set_row_shard(const RowShard& shard);
const RowShard& row_shard();

}  // namespace mt
