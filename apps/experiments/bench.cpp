#include "apps/experiments/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "apps/experiments/timing.h"
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
#include "mtl/models/resnet.h"
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

// The convolutions of ResNet-18 (mtl/models/resnet.h) for an input C x size x size:
// x [64, C, H, H], weight [O, C, k, k], stride, pad, and how many the trunk has.
struct ConvLayer {
  std::string name;
  int C, H, O, k, s, p, count;
};

std::vector<ConvLayer> resnet18_convs(int channels, int size, int width) {
  std::vector<ConvLayer> v;
  const int s0 = resnet_stem_stride(size, size);
  int h = (size + 2 - 3) / s0 + 1;
  v.push_back({"stem", channels, size, width, 3, s0, 1, 1});
  int c = width;
  for (int stage = 0; stage < 4; stage++) {
    const int o = stage == 0 ? width : 2 * c, s = stage == 0 ? 1 : 2, ho = (h + 2 - 3) / s + 1;
    const std::string at = "layer" + std::to_string(stage + 1);
    if (s == 2) {
      v.push_back({at + ".0.conv1", c, h, o, 3, 2, 1, 1});
      v.push_back({at + ".0.downsample", c, h, o, 1, 2, 0, 1});
      v.push_back({at + " conv (3 of them)", o, ho, o, 3, 1, 1, 3});
    } else {
      v.push_back({at + " conv (4 of them)", o, ho, o, 3, 1, 1, 4});
    }
    c = o, h = ho;
  }
  return v;
}

// Forward, input-gradient and weight-gradient GFLOP/s of one convolution at
// batch 64 on one thread: the least process CPU time of `reps` runs of each
// (other jobs on the machine only ever add to it); the gradients by difference.
nlohmann::json conv_layer_rates(const ConvLayer& l, int reps) {
  Rng r(5);
  Conv2dArgs a;
  a.stride = l.s, a.pad = l.p;
  const int Ho = (l.H + 2 * l.p - l.k) / l.s + 1, N = 64;
  Tensor x = Tensor::uniform({N, l.C, l.H, l.H}, -1, 1, r), w = Tensor::uniform({l.O, l.C, l.k, l.k}, -0.1f, 0.1f, r);
  Tensor gy = Tensor::uniform({N, l.O, Ho, Ho}, -1, 1, r);
  const double flop = 2.0 * N * l.O * l.C * l.k * l.k * Ho * Ho;
  auto least = [&](const std::function<void()>& f) {
    double best = 1e30;
    for (int i = 0; i < reps; i++) {
      const double t0 = process_cpu_seconds();
      f();
      best = std::min(best, process_cpu_seconds() - t0);
    }
    return best;
  };
  const double fwd = least([&] {
    NoGrad ng;
    conv2d(x, w, Tensor(), a);
  });
  w.requires_grad_();
  const double with_dw = least([&] {
    backward(conv2d(x, w, Tensor(), a), gy);
    w.zero_grad();
  });
  x.requires_grad_();
  const double with_dx = least([&] {
    backward(conv2d(x, w, Tensor(), a), gy);
    w.zero_grad();
    x.zero_grad();
  });
  // the passes by difference: forward + dW, then + dX
  const double dw = std::max(with_dw - fwd, 1e-9), dx = std::max(with_dx - with_dw, 1e-9);
  nlohmann::json j;
  j["layer"] = l.name;
  j["shape"] = "x [64," + std::to_string(l.C) + "," + std::to_string(l.H) + "," + std::to_string(l.H) + "] w [" +
               std::to_string(l.O) + "," + std::to_string(l.C) + "," + std::to_string(l.k) + "," +
               std::to_string(l.k) + "] stride " + std::to_string(l.s);
  j["kernels"] = conv2d_path_name({N, l.C, l.H, l.H}, {l.O, l.C, l.k, l.k}, a);
  j["count"] = l.count;
  j["forward_gflops"] = flop / fwd / 1e9;
  j["input_grad_gflops"] = flop / dx / 1e9;
  j["weight_grad_gflops"] = flop / dw / 1e9;
  return j;
}

}  // namespace

const ResNetBenchCase kResNetBenchCases[2] = {{"56x56x1_w16", 1, 56, 16}, {"64x64x3_w32", 3, 64, 32}};

double resnet18_train_flops_per_sample(int channels, int size, int width, int tasks) {
  double fwd = 0, stem = 0;
  for (const ConvLayer& l : resnet18_convs(channels, size, width)) {
    const int Ho = (l.H + 2 * l.p - l.k) / l.s + 1;
    const double macs = (double)l.O * l.C * l.k * l.k * Ho * Ho * l.count;
    fwd += macs;
    if (l.name == "stem") stem = macs;
  }
  fwd += (double)tasks * 8 * width;  // the heads: Linear(8w -> 1)
  return 2 * (fwd + fwd + (fwd - stem));
}

ResNetBenchRow resnet18_train_throughput(const ResNetBenchCase& c, int K, const std::string& method_name, int warmup,
                                         int steps) {
  manual_seed(1);
  std::vector<std::string> names;
  for (int t = 0; t < K; t++) names.push_back("t" + std::to_string(t));
  const std::vector<Task> tasks = make_tasks(names, std::vector<int>(K, 2), std::vector<bool>(K, true));
  auto model = make_model(c.width == 16 ? "resnet18" : "resnet18-w" + std::to_string(c.width), tasks,
                          {c.channels, c.size, c.size});
  std::unique_ptr<Method> method = make_method(method_name, K, {});
  SGD opt(model->named_parameters(), 0.01, 0.9);
  model->train();
  const int batch = 64;
  Rng rng(2);
  std::vector<Tensor> xs;
  std::vector<Targets> ys;
  for (int i = 0; i < warmup + steps; i++) {
    xs.push_back(Tensor::randn({batch, c.channels, c.size, c.size}, rng));
    Targets y;
    for (int t = 0; t < K; t++) {
      std::vector<int32_t> label(batch);
      for (auto& v : label) v = (int32_t)rng.below(2);
      y.push_back(TaskTarget(std::move(label)));
    }
    ys.push_back(y);
  }
  std::vector<double> wall, cpu;
  for (int i = 0; i < warmup + steps; i++) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    opt.zero_grad();
    method->compute_gradients(*model, xs[(size_t)i], ys[(size_t)i]);
    opt.step();
    method->after_step();
    if (i < warmup) continue;
    wall.push_back(seconds_since(t0));
    cpu.push_back(process_cpu_seconds() - c0);
  }
  ResNetBenchRow row;
  row.tasks = K;
  row.method = method_name;
  row.step_s = median(wall);
  row.cpu_s = median(cpu);
  row.samples_per_s = batch / row.step_s;
  return row;
}

double peak_rss_mb() {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // Linux reports KiB
}

double sgemm_gflops(int n, int reps, bool by_cpu_time) {
  // By CPU time (the one-thread reference of the fractions): one OpenBLAS call
  // for the whole product. By wall clock: the engine's gemm at the current
  // thread count (blocks of 64 rows, one OpenBLAS call each, spread over the
  // threads), which at one thread is ~2/3 of the single call's rate (every
  // block packs B again).
  auto product = [&](const Tensor& a, const Tensor& b, Tensor& c) {
    if (by_cpu_time) gemm_serial(false, false, n, n, n, a.data(), b.data(), 0.f, c.data());
    else gemm(false, false, n, n, n, a.data(), b.data(), 0.f, c.data());
  };
  Rng r(3);
  Tensor a = Tensor::randn({n, n}, r), b = Tensor::randn({n, n}, r), c = Tensor::zeros({n, n});
  product(a, b, c);  // warm-up
  double best = 1e30;  // the fastest product: other jobs on the machine only ever add time
  for (int i = 0; i < reps; i++) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    product(a, b, c);
    best = std::min(best, by_cpu_time ? process_cpu_seconds() - c0 : seconds_since(t0));
  }
  return 2.0 * n * n * n / best / 1e9;
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

// The ResNet-18 training rows of one input: uniform and MGDA-UB at K = 2 and
// 40, samples/s, FLOP rate and its fraction of sgemm's (gf, GFLOP/s).
nlohmann::json resnet18_rows(const ResNetBenchCase& c, double gf) {
  const bool one_thread = num_threads() == 1;
  nlohmann::json r;
  r["train_mflop_per_sample_k40"] = resnet18_train_flops_per_sample(c.channels, c.size, c.width, 40) / 1e6;
  r["train_mflop_per_sample_k2"] = resnet18_train_flops_per_sample(c.channels, c.size, c.width, 2) / 1e6;
  for (int K : {2, 40})
    for (const char* m : {"uniform", "mgda-ub"}) {
      const ResNetBenchRow row = resnet18_train_throughput(c, K, m, 2, c.width == 16 ? 6 : 4);
      const double gflops = row.samples_per_s * resnet18_train_flops_per_sample(c.channels, c.size, c.width, K) / 1e9;
      r["rows"].push_back({{"tasks", K},
                           {"method", m},
                           {"samples_per_s", row.samples_per_s},
                           {"step_s", row.step_s},
                           {"cpu_s", row.cpu_s},
                           {"gflops", gflops},
                           {"fraction_of_sgemm", gflops / gf}});
      if (one_thread)  // the same from CPU time (run_bench sets the fraction against the best sgemm)
        r["rows"].back()["gflops_cpu"] = gflops * row.step_s / row.cpu_s;
    }
  return r;
}

nlohmann::json run_bench(const BenchConfig& cfg) {
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  nlohmann::json j;
  j["threads"] = num_threads();
  j["machine_cores"] = machine_cores();
  j["batch"] = cfg.batch;
  j["timed_steps"] = cfg.steps;
  if (cfg.resnet_rows_only) {  // the training rows alone, against this moment's sgemm (wall clock)
    const double gf = sgemm_gflops();
    for (const ResNetBenchCase& c : kResNetBenchCases) j["resnet18"][c.name] = resnet18_rows(c, gf);
    j["flops"]["sgemm_gflops_1024"] = gf;
    j["peak_rss_mb"] = peak_rss_mb();
    return j;
  }
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
  {
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
  }

  const double flops = multilenet_train_flops_per_sample(2);
  const double gf = sgemm_gflops();
  j["flops"]["multilenet_train_mflop_per_sample"] = flops / 1e6;
  j["flops"]["uniform_effective_gflops"] = uniform * flops / 1e9;
  j["flops"]["sgemm_gflops_1024"] = gf;
  j["flops"]["fraction_of_sgemm"] = uniform * flops / 1e9 / gf;
  // At one thread, rates by CPU time on both sides: the fractions of sgemm that
  // hold when other jobs share the machine (wall-clock ones do not).
  // The sgemm rate is timed again after each ResNet-18 input below and the
  // fastest of all is the reference: other jobs slow sgemm and the engine
  // alike, and the best rate seen makes every fraction a lower bound.
  const bool one_thread = num_threads() == 1;
  std::vector<double> sgemm_samples;  // GFLOP/s by CPU time, one OpenBLAS call
  if (one_thread) sgemm_samples.push_back(sgemm_gflops(1024, 10, true));

  if (cfg.include_resnet) {
    // ResNet-18: uniform and MGDA-UB at K = 2 and 40, both inputs; the FLOP rate against sgemm's.
    for (const ResNetBenchCase& c : kResNetBenchCases) {
      nlohmann::json r = resnet18_rows(c, gf);
      if (one_thread) {  // each convolution's passes, on one thread
        nlohmann::json layers = nlohmann::json::array();
        for (const ConvLayer& l : resnet18_convs(c.channels, c.size, c.width)) layers.push_back(conv_layer_rates(l, 8));
        r["conv_layers"] = layers;
      }
      j["resnet18"][c.name] = r;
      if (one_thread) sgemm_samples.push_back(sgemm_gflops(1024, 10, true));
    }
  }
  if (one_thread) {
    const double gf_cpu = *std::max_element(sgemm_samples.begin(), sgemm_samples.end());
    // every fraction by CPU time on both sides, against the best sgemm of the run
    if (j.contains("resnet18"))
      for (auto& [name, r] : j["resnet18"].items()) {
        for (auto& row : r["rows"]) row["fraction_of_sgemm_cpu"] = row["gflops_cpu"].get<double>() / gf_cpu;
        for (auto& lj : r["conv_layers"])
          for (const char* k : {"forward", "input_grad", "weight_grad"})
            lj[std::string(k) + "_fraction_of_sgemm"] = lj[std::string(k) + "_gflops"].get<double>() / gf_cpu;
      }
    j["flops"]["sgemm_gflops_1024_cpu"] = gf_cpu;
    j["flops"]["sgemm_gflops_1024_cpu_samples"] = sgemm_samples;
  }
  j["peak_rss_mb"] = peak_rss_mb();
  return j;
}

}  // namespace mt
