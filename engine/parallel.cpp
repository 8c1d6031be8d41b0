#include "engine/parallel.h"

#include <omp.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "engine/error.h"

extern "C" void openblas_set_num_threads(int);

namespace mt {

static int initial_threads() {
  if (const char* e = std::getenv("MTL_THREADS")) {
    char* end = nullptr;
    long v = std::strtol(e, &end, 10);
    if (end != e && *end == 0 && v >= 1 && v <= kMaxThreads) return (int)v;
    throw Error(std::string("MTL_THREADS must be a whole number in 1..") + std::to_string(kMaxThreads) + ", got '" +
                e + "'");
  }
  return machine_cores();
}

static int& threads() {
  static int n = [] {
    int v = initial_threads();
    // OpenBLAS's OpenMP build sizes each call by omp_get_max_threads(), so the
    // default team size stays 1 and the engine's own loops ask for their team
    // explicitly (parallel_for's num_threads clause).
    omp_set_num_threads(1);
    openblas_set_num_threads(1);
    return v;
  }();
  return n;
}

int machine_cores() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

int num_threads() { return threads(); }

void set_num_threads(int n) {
  if (n < 1 || n > kMaxThreads)
    throw Error("threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(n));
  threads() = n;
}

}  // namespace mt
