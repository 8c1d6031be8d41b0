// The one thread knob: the size of the OpenMP pool the engine's parallel
// loops use. OpenBLAS (Debian's libopenblas-openmp, sharing that pool) is
// kept at one thread, and products are split by engine/gemm.h instead, so
// there is one level of parallelism and results do not depend on the count.
// Default: MTL_THREADS from the environment, else the machine's cores.
//
// Parallel loops split work into chunks whose boundaries do not depend on the
// thread count, and any reduction across chunks is summed in chunk order, so
// a seed gives bit-identical numbers at 1 and at N threads.
#pragma once
#include <cstdint>

namespace mt {

// The most threads set_num_threads accepts (far above any machine this runs on;
// huge values crash inside the OpenMP runtime).
inline constexpr int kMaxThreads = 1024;

int num_threads();
void set_num_threads(int n);   // 1 <= n <= kMaxThreads; throws mt::Error otherwise
int machine_cores();

// Run f(begin, end) over [0, n) in chunks of `grain` items, in parallel when
// there is more than one chunk. Tiny loops (n <= grain) stay on this thread.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  if (grain < 1) grain = 1;
  const int64_t chunks = (n + grain - 1) / grain;
  if (chunks == 1 || num_threads() == 1) {
    for (int64_t c = 0; c < chunks; c++) f(c * grain, c + 1 == chunks ? n : (c + 1) * grain);
    return;
  }
#pragma omp parallel for schedule(static) num_threads(num_threads())
  for (int64_t c = 0; c < chunks; c++) f(c * grain, c + 1 == chunks ? n : (c + 1) * grain);
}

}  // namespace mt
