// Speed and memory measurements behind `mtl bench` (issue "Speed and
// memory"): training throughput per method, inference latency/throughput,
// the MGDA-UB / uniform step-cost ratio, the effective FLOP rate against
// sgemm's on this machine, and peak resident memory. Benchmarks, not tests.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace mt {

struct BenchConfig {
  std::string data_dir = "data";
  int batch = 256;
  int warmup_steps = 5;
  int steps = 60;             // timed training steps per method
  int latency_iters = 2000;   // batch-1 inference calls
  int threads = 0;            // 0: keep the current count
  bool include_chebyshev = true;
  bool json = false;          // `mtl bench --json` (the output is JSON anyway)
};

nlohmann::json run_bench(const BenchConfig& cfg);

// sgemm GFLOP/s on this machine at the current thread count (n x n x n).
double sgemm_gflops(int n = 1024, int reps = 5);
// Training FLOPs per sample of MultiLeNet (forward + backward, multiply-add = 2).
double multilenet_train_flops_per_sample(int tasks = 2);
// Peak resident set size of this process in MB.
double peak_rss_mb();

}  // namespace mt
