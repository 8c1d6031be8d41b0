// mtl bench and mtl scale: benchmarks (apps/experiments/bench.h, scaling.h), not tests.
#include <cmath>
#include <cstdio>

#include "apps/commands.h"
#include "apps/experiments/bench.h"
#include "apps/experiments/scaling.h"
#include "engine/parallel.h"

namespace mt::cli {

namespace {

void check_threads(int threads) {
  if (threads < 0 || threads > kMaxThreads)
    throw UsageError("--threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
}

// ---- bench ----------------------------------------------------------------------------

std::vector<Flag<BenchConfig>> bench_flags() {
  using B = BenchConfig;
  const char* g = "bench";
  return {
      field<B>("data-dir", "DIR", g, "MNIST is read from DIR/mnist", [](B& b) -> auto& { return b.data_dir; }),
      field<B>("threads", "N", g, "[MTL_THREADS, else all cores]", [](B& b) -> auto& { return b.threads; }),
      field<B>("batch", "N", g, "training batch", [](B& b) -> auto& { return b.batch; }),
      field<B>("steps", "N", g, "timed training steps per method", [](B& b) -> auto& { return b.steps; }),
      toggle<B>("resnet-rows-only", g, "the ResNet-18 training rows alone (make bench times them in rounds)",
                [](B& b) -> auto& { return b.resnet_rows_only; }),
      toggle<B>("json", g, "(accepted; the output is always JSON)", [](B& b) -> auto& { return b.json; }),
  };
}

// ---- scale ----------------------------------------------------------------------------

struct ScaleArgs {
  ScaleConfig c;
  std::vector<double> tasks{2, 4, 9, 16, 40};
  std::string methods = "uniform,mgda-ub,mgda";
  int width = 0;
  bool json = false;
};

std::vector<Flag<ScaleArgs>> scale_flags() {
  using S = ScaleArgs;
  const char* g = "scale";
  return {
      field<S>("tasks", "K1,K2,...", g, "numbers of tasks, each 1..48", [](S& s) -> auto& { return s.tasks; }),
      field<S>("methods", "M1,M2,...", g, "uniform | mgda-ub | mgda | uncertainty | gradnorm",
               [](S& s) -> auto& { return s.methods; }),
      field<S>("model", "NAME", g, "resnet18 | resnet18-w<N> | multilenet | ...", [](S& s) -> auto& { return s.c.model; }),
      field<S>("width", "N", g, "ResNet-18 width (resnet18-w<N>)  [16]", [](S& s) -> auto& { return s.width; }),
      field<S>("image-size", "N", g, "side of the grid images", [](S& s) -> auto& { return s.c.image_size; }),
      field<S>("batch", "N", g, "", [](S& s) -> auto& { return s.c.batch; }),
      field<S>("steps", "N", g, "timed steps per (K, method)", [](S& s) -> auto& { return s.c.steps; }),
      field<S>("warmup", "N", g, "untimed steps first", [](S& s) -> auto& { return s.c.warmup; }),
      field<S>("solver", "NAME", g, "wolfe | frank-wolfe | projected-gradient  [wolfe]", [](S& s) -> auto& { return s.c.solver; }),
      field<S>("seed", "N", g, "", [](S& s) -> auto& { return s.c.seed; }),
      field<S>("data-dir", "DIR", g, "MNIST is read from DIR/mnist", [](S& s) -> auto& { return s.c.data_dir; }),
      field<S>("threads", "N", g, "[MTL_THREADS, else all cores]", [](S& s) -> auto& { return s.c.threads; }),
      toggle<S>("json", g, "print one JSON object as the last line on stdout", [](S& s) -> auto& { return s.json; }),
  };
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  static const FlagTable<BenchConfig> table("bench", bench_flags());
  BenchConfig c;
  if (!table.parse(argc, argv, c)) {
    std::printf(
        "usage: mtl bench [flags]\n\n"
        "Training throughput (samples/s) of MultiLeNet with uniform scaling, MGDA-UB and\n"
        "exact MGDA, and of MDMTN with Chebyshev-AL, on MultiMNIST batches; the MGDA-UB /\n"
        "uniform step-cost ratio; batch-1 inference latency and batch-256 throughput;\n"
        "the effective FLOP rate as a fraction of sgemm's; peak resident memory. Prints\n"
        "one JSON object. A benchmark, not a test: run it on a quiet machine.\n\n%s"
        "  -h, --help            this text\n",
        table.help().c_str());
    return 0;
  }
  if (c.batch < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(c.batch));
  if (c.steps < 1) throw UsageError("--steps must be >= 1, got " + std::to_string(c.steps));
  check_threads(c.threads);
  std::printf("%s\n", run_bench(c).dump().c_str());
  return 0;
}

int cmd_scale(int argc, char** argv) {
  static const FlagTable<ScaleArgs> table("scale", scale_flags());
  ScaleArgs a;
  if (!table.parse(argc, argv, a)) {
    std::printf(
        "usage: mtl scale [flags]\n\n"
        "How the cost of a training step grows with the number of tasks K: for each K,\n"
        "a MNIST grid with K tasks (56x56 for every K); for each method, a fresh model\n"
        "trained for --warmup untimed and --steps timed SGD steps. Prints seconds per\n"
        "step (median), the ratio to uniform at the same K, the time of the Gram matrix\n"
        "and of the min-norm solver per step and the solver's iterations\n"
        "(apps/experiments/scaling.h). A benchmark, not a test: run it on a quiet machine\n"
        "with a fixed --threads.\n\n%s"
        "  -h, --help            this text\n",
        table.help().c_str());
    return 0;
  }
  ScaleConfig& c = a.c;
  c.tasks.clear();
  for (double k : a.tasks) {
    if (k != std::floor(k)) throw UsageError("--tasks values must be whole numbers, got " + to_text(a.tasks));
    c.tasks.push_back((int)k);
  }
  c.methods.clear();
  for (size_t start = 0;;) {
    const size_t comma = a.methods.find(',', start);
    c.methods.push_back(a.methods.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (a.width != 0) {
    if (a.width < 1 || a.width > 999) throw UsageError("--width must be in 1..999, got " + std::to_string(a.width));
    c.model = a.width == 16 ? "resnet18" : "resnet18-w" + std::to_string(a.width);
  }
  check_threads(c.threads);
  std::printf("mtl scale: %s at %dx%d on mnist-grid, batch %d, %d timed step%s after %d warm-up\n%s\n",
              c.model.c_str(), c.image_size, c.image_size, c.batch, c.steps, c.steps == 1 ? "" : "s", c.warmup,
              scale_table_header().c_str());
  std::fflush(stdout);
  const ScaleResult res = run_scale(c, [](const ScaleRow& row) {
    std::printf("%s\n", scale_table_row(row).c_str());
    std::fflush(stdout);
  });
  for (const auto& m : c.methods) {
    const LinearFit f = fit_step_cost(res, m, false), fc = fit_step_cost(res, m, true);
    if (c.tasks.size() >= 2)
      std::printf("fit %-9s wall s/step = %.4f + %.4f K (R^2 %.3f)   cpu s/step = %.4f + %.4f K (R^2 %.3f)\n",
                  m.c_str(), f.intercept, f.slope, f.r2, fc.intercept, fc.slope, fc.r2);
  }
  if (a.json) std::printf("%s\n", scale_json(res).dump().c_str());
  return 0;
}

}  // namespace mt::cli
