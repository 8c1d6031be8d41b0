#include "apps/experiments/bench.h"

#include <sys/resource.h>

#include <chrono>
#include <functional>

#include "datasets/catalog.h"
#include "datasets/loader.h"
#include "datasets/multi_mnist.h"
#include "engine/autograd.h"
#include "engine/gemm.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "mtl/methods/chebyshev_al.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "optim/adam.h"
#include "optim/sgd.h"

namespace mt {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Batches of MultiMNIST as tensors, prepared once so only the training step is timed.
struct Batches {
  std::vector<Tensor> x;
  std::vector<Targets> y;
};

Batches load_batches(const std::string& data_dir, int batch, int count) {
  DatasetPaths p;
  p.data_dir = data_dir;
  MultiImageSet set = make_dataset("multimnist", true, p, 1);
  Loader loader(set, batch, true, 1, /*drop_last=*/true);
  loader.start_epoch(0);
  Batches b;
  Batch one;
  while ((int)b.x.size() < count && loader.next(one)) {
    b.x.push_back(Tensor::from({one.n, one.c, one.h, one.w}, one.x));
    b.y.push_back(one.y);
  }
  return b;
}

// Samples per second of `steps` training steps (after warm-up) of model + method.
double train_throughput(const std::string& arch, const std::string& method_name, const Batches& data,
                        const BenchConfig& cfg, bool adam) {
  manual_seed(1);
  std::vector<Task> tasks = {{"left", 10}, {"right", 10}};
  auto model = make_model(arch, tasks, {1, 28, 28});
  std::unique_ptr<Method> method;
  if (method_name == "chebyshev-al") {  // the published setting, k = (0.01, 0.8, 0.19)
    ChebyshevConfig k;
    k.k = {0.01, 0.8, 0.19};
    auto al = make_chebyshev_al(2, k, AlVariant::Published, 2.5e-8, 2.0);
    al->set_f0_gradient(true);  // the torch bench's step differentiates its sparsity sum
    method = std::move(al);
  } else {
    method = make_method(method_name, 2, {});
  }
  NamedTensors params = model->named_parameters();
  for (auto& p : method->parameters()) params.push_back(p);
  std::unique_ptr<Optimizer> opt;
  if (adam) opt = std::make_unique<Adam>(params, 2.5e-3);
  else opt = std::make_unique<SGD>(params, 0.05, 0.9);
  model->train();
  auto step = [&](size_t i) {
    const size_t k = i % data.x.size();
    opt->zero_grad();
    method->compute_gradients(*model, data.x[k], data.y[k]);
    opt->step();
    method->after_step();
  };
  for (int i = 0; i < cfg.warmup_steps; i++) step(i);
  auto t0 = Clock::now();
  for (int i = 0; i < cfg.steps; i++) step(cfg.warmup_steps + i);
  return (double)cfg.steps * cfg.batch / seconds_since(t0);
}
}  // namespace

double peak_rss_mb() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

double sgemm_gflops(int n, int reps) {
  Rng r(3);
  Tensor a = Tensor::randn({n, n}, r), b = Tensor::randn({n, n}, r), c = Tensor::zeros({n, n});
  gemm(false, false, n, n, n, a.data(), b.data(), 0.f, c.data());  // warm-up
  auto t0 = Clock::now();
  for (int i = 0; i < reps; i++) gemm(false, false, n, n, n, a.data(), b.data(), 0.f, c.data());
  return 2.0 * n * n * n * reps / seconds_since(t0) / 1e9;
}

double multilenet_train_flops_per_sample(int tasks) {
  // forward multiply-adds of each layer, x2 for FLOPs
  const double conv1 = 10.0 * 1 * 25 * 24 * 24, conv2 = 20.0 * 10 * 25 * 8 * 8, fc = 320.0 * 50;
  const double head = 50.0 * 50 + 50.0 * 10;
  const double fwd = 2 * (conv1 + conv2 + fc + tasks * head);
  // backward: dW for every layer, dX for all but conv1 (its input needs no gradient)
  const double bwd = 2 * (conv1 + 2 * (conv2 + fc + tasks * head));
  return fwd + bwd;
}

nlohmann::json run_bench(const BenchConfig& cfg) {
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  nlohmann::json j;
  j["threads"] = num_threads();
  j["machine_cores"] = machine_cores();
  j["batch"] = cfg.batch;
  j["timed_steps"] = cfg.steps;
  Batches data = load_batches(cfg.data_dir, cfg.batch, 40);

  const double uniform = train_throughput("multilenet", "uniform", data, cfg, false);
  const double mgda_ub = train_throughput("multilenet", "mgda-ub", data, cfg, false);
  const double mgda = train_throughput("multilenet", "mgda", data, cfg, false);
  j["train_samples_per_s"]["multilenet_uniform"] = uniform;
  j["train_samples_per_s"]["multilenet_mgda_ub"] = mgda_ub;
  j["train_samples_per_s"]["multilenet_mgda_exact"] = mgda;
  j["step_cost_ratio"]["mgda_ub_over_uniform"] = uniform / mgda_ub;
  j["step_cost_ratio"]["mgda_exact_over_uniform"] = uniform / mgda;
  if (cfg.include_chebyshev) {
    try {
      j["train_samples_per_s"]["mdmtn_chebyshev_al"] = train_throughput("mdmtn", "chebyshev-al", data, cfg, true);
    } catch (const std::exception& e) {
      j["train_samples_per_s"]["mdmtn_chebyshev_al"] = std::string("unavailable: ") + e.what();
    }
  }

  // Inference: batch 1 latency and batch-256 throughput, eval mode, no tape.
  manual_seed(1);
  auto model = make_model("multilenet", {{"left", 10}, {"right", 10}}, {1, 28, 28});
  model->eval();
  NoGrad no_grad;
  Tensor one = narrow(data.x[0], 0, 0, 1);
  auto infer = [&](const Tensor& x) {
    Tensor z = model->shared(x);
    for (int t = 0; t < 2; t++) model->head(t, z, x);
  };
  for (int i = 0; i < 50; i++) infer(one);
  auto t0 = Clock::now();
  for (int i = 0; i < cfg.latency_iters; i++) infer(one);
  j["inference"]["batch1_latency_us"] = seconds_since(t0) / cfg.latency_iters * 1e6;
  for (int i = 0; i < 3; i++) infer(data.x[0]);
  t0 = Clock::now();
  const int reps = 40;
  for (int i = 0; i < reps; i++) infer(data.x[i % data.x.size()]);
  j["inference"]["batch256_images_per_s"] = reps * (double)cfg.batch / seconds_since(t0);

  const double flops = multilenet_train_flops_per_sample(2);
  const double gf = sgemm_gflops();
  j["flops"]["multilenet_train_mflop_per_sample"] = flops / 1e6;
  j["flops"]["uniform_effective_gflops"] = uniform * flops / 1e9;
  j["flops"]["sgemm_gflops_1024"] = gf;
  j["flops"]["fraction_of_sgemm"] = uniform * flops / 1e9 / gf;
  j["peak_rss_mb"] = peak_rss_mb();
  return j;
}

}  // namespace mt
