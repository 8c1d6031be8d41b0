// The task-count scaling measurement behind `mtl scale` (see scaling.h).
#include "apps/experiments/scaling.h"

#include "apps/experiments/bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "apps/experiments/timing.h"
#include "datasets/catalog.h"
#include "datasets/grid_mnist.h"
#include "datasets/loader.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "mtl/train/data_sources.h"
#include "mtl/methods/gram_method.h"
#include "mtl/methods/method.h"
#include "mtl/models/model.h"
#include "mtl/train/run_util.h"
#include "mtl/train/trainer.h"
#include "optim/sgd.h"

namespace mt {

namespace {

using Clock = std::chrono::steady_clock;


// "NAME" or "NAME:MODE" (MODE: representation | parameters), so that both
// gradient modes of a Gram method are measured side by side in one run.
struct MethodSpec {
  std::string name;
  GradientMode mode = GradientMode::Representation;
  bool mode_given = false;
};

MethodSpec parse_method_spec(const std::string& m) {
  MethodSpec s;
  const size_t colon = m.find(':');
  s.name = m.substr(0, colon);
  if (colon != std::string::npos) {
    try {
      s.mode = parse_gradient_mode(m.substr(colon + 1));
    } catch (const Error& e) {
      throw UsageError("--methods: '" + m + "': " + e.what());
    }
    s.mode_given = true;
  }
  return s;
}

void validate(const ScaleConfig& c) {
  if (c.tasks.empty()) throw UsageError("--tasks needs at least one K");
  for (int K : c.tasks)
    if (K < 1 || K > kGridMaxTasks)
      throw UsageError("--tasks values must be in 1.." + std::to_string(kGridMaxTasks) + ", got " + std::to_string(K));
  if (c.methods.empty()) throw UsageError("--methods needs at least one method");
  for (const auto& m : c.methods) {
    const MethodSpec s = parse_method_spec(m);
    const auto& names = method_names();
    if (s.name == "single-task" || s.name == "fixed" || std::find(names.begin(), names.end(), s.name) == names.end())
      throw UsageError("--methods: '" + m +
                       "' is not measured here (valid: any method of mtl train but single-task and fixed; "
                       "NAME:representation or NAME:parameters for " +
                       run_util::join(gradient_mode_methods(), ", ") + ")");
    if (s.mode_given && !takes_gradient_mode(s.name))
      throw UsageError("--methods: '" + m + "': " + s.name + " has no gradient mode to choose");
  }
  if (!is_model_name(c.model) || c.model == "multilenet-stl")
    throw UsageError("unknown model '" + c.model + "' for mtl scale (e.g. resnet18, resnet18-w8, multilenet)");
  if (c.image_size < 1) throw UsageError("--image-size must be >= 1, got " + std::to_string(c.image_size));
  if (c.batch < 1) throw UsageError("--batch must be >= 1, got " + std::to_string(c.batch));
  if (c.warmup < 0) throw UsageError("--warmup must be >= 0, got " + std::to_string(c.warmup));
  if (c.steps < 1) throw UsageError("--steps must be >= 1, got " + std::to_string(c.steps));
  if (c.threads < 0) throw UsageError("--threads must be >= 1, got " + std::to_string(c.threads));
  try {
    parse_min_norm_algo(c.solver);
  } catch (const Error& e) {
    throw UsageError(std::string("--solver: ") + e.what());
  }
  if (!(c.lr > 0) || !std::isfinite(c.lr)) throw UsageError("--lr must be > 0");
}

struct Batches {
  std::vector<Tensor> x;
  std::vector<Targets> y;
};

// warmup + steps distinct batches of a K-task grid, as tensors.
Batches grid_batches(const LabeledImages& base, int K, const ScaleConfig& c, int* grid,
                     MultiImageSet* layout) {
  GridMnistOptions o;
  o.tasks = K;
  o.size = c.image_size;
  o.count = c.batch * (c.warmup + c.steps);
  *grid = grid_mnist_layout(o).grid;
  MultiImageSet set = make_grid_mnist(base, o, c.seed);
  Loader loader(set, c.batch, /*shuffle=*/false, c.seed, /*drop_last=*/true);
  loader.start_epoch(0);
  Batches b;
  Batch one;
  while (loader.next(one)) {
    b.x.push_back(Tensor::from({one.n, one.c, one.h, one.w}, one.x));
    b.y.push_back(one.y);
  }
  layout->task_names = set.task_names;  // the task lists, for the model's heads
  layout->num_classes = set.num_classes;
  layout->binary = set.binary;
  return b;
}

// One method's model, optimizer and measurements at one K.
struct Runner {
  std::shared_ptr<MultiTaskModel> model;
  std::unique_ptr<Method> method;
  std::unique_ptr<SGD> opt;
  ScaleRow row;
  std::vector<double> times, cpu;

  Runner(const std::string& method_name, int K, const MultiImageSet& layout, const ScaleConfig& c) {
    manual_seed(c.seed);  // every method starts from the same weights
    const std::vector<Task> tasks = tasks_for_set(c.model, layout);
    model = make_model(c.model, tasks, {1, c.image_size, c.image_size});
    MethodOptions mo;
    mo.solver.algo = parse_min_norm_algo(c.solver);
    const MethodSpec spec = parse_method_spec(method_name);
    mo.gradients = spec.mode;
    mo.seed = c.seed;
    method = make_method(spec.name, K, mo);
    NamedParams params = model->named_parameters();
    for (const auto& p : method->parameters()) params.push_back(p);
    opt = std::make_unique<SGD>(params, c.lr, 0.9);
    model->train();
    row.tasks = K;
    row.method = method_name;
    row.parameters = model->num_parameters();
  }

  // Step i on batch i; timed unless it is a warm-up step.
  void step(int i, const Batches& data, bool timed) {
    const auto t0 = Clock::now();
    const double c0 = process_cpu_seconds();
    opt->zero_grad();
    StepStats st = method->compute_gradients(*model, data.x[(size_t)i], data.y[(size_t)i]);
    opt->step();
    method->after_step();
    const double dt = std::chrono::duration<double>(Clock::now() - t0).count();
    const double dc = process_cpu_seconds() - c0;
    if (!timed) return;
    times.push_back(dt);
    cpu.push_back(dc);
    row.gram_s += st.gram_seconds;
    row.solver_s += st.solver_seconds;
    row.solver_iterations += st.solver_iterations;
    double loss = 0;
    for (double l : st.loss) loss += l;
    row.final_loss = loss / (double)st.loss.size();
  }

  ScaleRow finish() {
    const double n = (double)times.size();
    row.gram_s /= n;
    row.solver_s /= n;
    row.solver_iterations /= n;
    row.step_s = median(times);
    row.cpu_s = median(cpu);
    row.step_s_min = *std::min_element(times.begin(), times.end());
    double sum = 0;
    for (double t : times) sum += t;
    row.step_s_mean = sum / n;
    return row;
  }
};

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

}  // namespace

ScaleResult run_scale(const ScaleConfig& cfg, const std::function<void(const ScaleRow&)>& on_row) {
  validate(cfg);
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  ScaleResult res;
  res.config = cfg;
  res.threads = num_threads();
  const LabeledImages base = load_mnist(cfg.data_dir, true);
  for (int K : cfg.tasks) {
    int grid = 0;
    MultiImageSet layout;
    const Batches data = grid_batches(base, K, cfg, &grid, &layout);
    const size_t first = res.rows.size();
    // Round-robin: step i of every method before step i + 1 of any, so a
    // slow spell of a shared machine falls on all methods alike.
    std::vector<std::unique_ptr<Runner>> runners;
    for (const auto& m : cfg.methods) runners.push_back(std::make_unique<Runner>(m, K, layout, cfg));
    for (int i = 0; i < cfg.warmup + cfg.steps; i++)
      for (auto& r : runners) r->step(i, data, i >= cfg.warmup);
    double uniform_s = 0, uniform_cpu = 0;
    for (auto& r : runners) {
      ScaleRow row = r->finish();
      row.grid = grid;
      if (row.method == "uniform") uniform_s = row.step_s, uniform_cpu = row.cpu_s;
      res.rows.push_back(row);
    }
    for (size_t i = first; i < res.rows.size(); i++) {
      res.rows[i].ratio = uniform_s > 0 ? res.rows[i].step_s / uniform_s : 0.0;
      res.rows[i].cpu_ratio = uniform_cpu > 0 ? res.rows[i].cpu_s / uniform_cpu : 0.0;
      if (on_row) on_row(res.rows[i]);
    }
  }
  return res;
}

std::string scale_table_header() {
  return "   K  grid  method                params   wall s/step  x uniform   cpu s/step  x uniform   gram ms  "
         "solver ms  solver it  loss";
}

std::string scale_table_row(const ScaleRow& r) {
  char buf[240];
  std::snprintf(buf, sizeof buf, "%4d  %dx%d   %-19s %8lld  %11.3f  %9s  %10.3f  %9s  %8.2f  %9.3f  %9.1f  %.3f",
                r.tasks, r.grid, r.grid, r.method.c_str(), (long long)r.parameters, r.step_s,
                r.ratio > 0 ? fmt("%.2f", r.ratio).c_str() : "-", r.cpu_s,
                r.cpu_ratio > 0 ? fmt("%.2f", r.cpu_ratio).c_str() : "-", r.gram_s * 1e3, r.solver_s * 1e3,
                r.solver_iterations, r.final_loss);
  return buf;
}

LinearFit fit_step_cost(const ScaleResult& r, const std::string& method, bool cpu) {
  std::vector<double> k, s;
  for (const auto& row : r.rows)
    if (row.method == method) k.push_back(row.tasks), s.push_back(cpu ? row.cpu_s : row.step_s);
  LinearFit f;
  const size_t n = k.size();
  if (n < 2) return f;
  double mk = 0, ms = 0;
  for (size_t i = 0; i < n; i++) mk += k[i], ms += s[i];
  mk /= (double)n;
  ms /= (double)n;
  double skk = 0, sks = 0, sss = 0;
  for (size_t i = 0; i < n; i++) {
    skk += (k[i] - mk) * (k[i] - mk);
    sks += (k[i] - mk) * (s[i] - ms);
    sss += (s[i] - ms) * (s[i] - ms);
  }
  if (skk == 0) return f;
  f.slope = sks / skk;
  f.intercept = ms - f.slope * mk;
  f.r2 = sss > 0 ? sks * sks / (skk * sss) : 1.0;
  return f;
}

nlohmann::ordered_json scale_json(const ScaleResult& r) {
  const ScaleConfig& c = r.config;
  nlohmann::ordered_json j;
  j["command"] = "scale";
  j["dataset"] = "mnist-grid";
  j["model"] = c.model;
  j["image_size"] = c.image_size;
  j["batch"] = c.batch;
  j["warmup_steps"] = c.warmup;
  j["timed_steps"] = c.steps;
  j["threads"] = r.threads;
  j["machine_cores"] = machine_cores();
  j["solver"] = c.solver;
  j["tasks"] = c.tasks;
  j["methods"] = c.methods;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const auto& row : r.rows)
    rows.push_back({{"tasks", row.tasks},
                    {"grid", row.grid},
                    {"method", row.method},
                    {"parameters", row.parameters},
                    {"step_s", row.step_s},
                    {"step_s_mean", row.step_s_mean},
                    {"step_s_min", row.step_s_min},
                    {"cpu_s", row.cpu_s},
                    {"gram_s", row.gram_s},
                    {"solver_s", row.solver_s},
                    {"solver_iterations", row.solver_iterations},
                    {"ratio_to_uniform", row.ratio},
                    {"cpu_ratio_to_uniform", row.cpu_ratio},
                    {"final_loss", row.final_loss}});
  j["rows"] = rows;
  nlohmann::ordered_json ratios = nlohmann::ordered_json::object();
  for (int K : c.tasks) {
    nlohmann::ordered_json one = nlohmann::ordered_json::object();
    for (const auto& row : r.rows)
      if (row.tasks == K && row.method != "uniform" && row.ratio > 0)
        one[row.method + "/uniform"] = {{"wall", row.ratio}, {"cpu", row.cpu_ratio}};
    ratios[std::to_string(K)] = one;
  }
  j["ratios"] = ratios;
  nlohmann::ordered_json fits = nlohmann::ordered_json::object();
  for (const auto& m : c.methods) {
    const LinearFit f = fit_step_cost(r, m, false), fc = fit_step_cost(r, m, true);
    fits[m] = {{"wall", {{"intercept_s", f.intercept}, {"slope_s_per_task", f.slope}, {"r2", f.r2}}},
               {"cpu", {{"intercept_s", fc.intercept}, {"slope_s_per_task", fc.slope}, {"r2", fc.r2}}}};
  }
  j["linear_fit_step_s_vs_K"] = fits;
  double load[3] = {0, 0, 0};
  if (getloadavg(load, 3) == 3) j["load_average_1m"] = load[0];  // at the end of the run
  j["peak_rss_mb"] = peak_rss_mb();                               // of this process, so far
  return j;
}

}  // namespace mt
