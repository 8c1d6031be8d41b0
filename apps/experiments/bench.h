// Speed and memory measurements behind `mtl bench` (issue "Speed and
// memory"): training throughput per method, inference latency/throughput,
// the MGDA-UB / uniform step-cost ratio, the effective FLOP rate against
// sgemm's on this machine, and peak resident memory; ResNet-18's training
// throughput and the FLOP rate of each of its convolutions' passes (issue
// "Fast on the networks that matter"). Benchmarks, not tests.
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
  bool include_resnet = true; // the ResNet-18 rows and the convolution layers (issue "Fast on the networks that matter")
  bool resnet_rows_only = false;  // the ResNet-18 training rows alone (make bench's later rounds)
  bool json = false;          // `mtl bench --json` (the output is JSON anyway)
};

// One ResNet-18 setting of the bench: input C x size x size, trunk width.
struct ResNetBenchCase {
  const char* name;
  int channels, size, width;
};
// 56x56 grey at width 16 (mtl scale's mnist-grid) and 64x64 RGB at width 32 (CelebA-sized).
extern const ResNetBenchCase kResNetBenchCases[2];

// Training FLOPs per sample of ResNet-18 (mtl/models/resnet.h) with `tasks`
// one-logit heads: forward multiply-adds of every convolution and head, the
// weight gradient of each, the input gradient of all but the stem; x2 for
// FLOPs (normalisation, activations and pooling not counted).
double resnet18_train_flops_per_sample(int channels, int size, int width, int tasks);

// Training samples/s (median step) of ResNet-18 with K binary tasks and
// method "uniform" or "mgda-ub", SGD, on random batches of 64.
struct ResNetBenchRow {
  int tasks = 0;
  std::string method;
  double samples_per_s = 0, step_s = 0, cpu_s = 0;
};
ResNetBenchRow resnet18_train_throughput(const ResNetBenchCase& c, int tasks, const std::string& method, int warmup,
                                         int steps);

nlohmann::json run_bench(const BenchConfig& cfg);

// sgemm GFLOP/s on this machine (n x n x n, the fastest of `reps` products):
// by wall time, the engine's gemm at the current thread count; by this
// process's CPU time, one OpenBLAS call on one thread (what the product costs,
// whatever else runs: the reference of the one-thread fractions).
double sgemm_gflops(int n = 1024, int reps = 10, bool by_cpu_time = false);
// Training FLOPs per sample of MultiLeNet (forward + backward, multiply-add = 2).
double multilenet_train_flops_per_sample(int tasks = 2);
// Peak resident set size of this process in MB.
double peak_rss_mb();

}  // namespace mt
