// Process CPU time and the median, for the experiment drivers' timings
// (bench.cpp, scaling.cpp, solver_table.cpp).
#pragma once
#include <time.h>

#include <algorithm>
#include <vector>

namespace mt {

// CPU seconds used by the whole process (every thread): unlike wall time it
// hardly changes when other jobs share the machine.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// The median of v (0 when v is empty).
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace mt
