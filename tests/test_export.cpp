// The C export (mtl/export/): the layer graph against the engine, structural pruning
// exact on hand-made sparse and tied models, the fixed-point arithmetic on closed-form
// cases, the arena plan, the generated C compiled by the host's compilers (fp32 bit for bit
// the graph interpreter and within 1e-5 of the engine; int8 bit for bit its interpreter),
// bad inputs, and (when arm-none-eabi-gcc and qemu-system-arm are installed) the Cortex-M4
// build under QEMU against the host build.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/serialize.h"
#include "mtl/export/emit_c.h"
#include "mtl/export/export.h"
#include "mtl/export/graph_run.h"
#include "mtl/export/layer_graph.h"
#include "mtl/export/memory_plan.h"
#include "mtl/export/trained_model.h"
#include "mtl/export/prune.h"
#include "mtl/export/quant_run.h"
#include "mtl/export/quantize.h"
#include "mtl/export/verify.h"
#include "mtl/models/mdmtn.h"
#include "mtl/models/multilenet.h"
#include "mtl/sparsity/sparsity.h"
#include "tests/cli_util.h"

using namespace mt;
namespace cli = mt::testing::cli;
namespace fs = std::filesystem;

namespace {

const std::vector<Task> kTasks = {{"left", 10}, {"right", 10}};

// n random "images" of uint8 pixels with random labels, MNIST's normalisation.
MultiImageSet random_set(int n, const Shape& chw, uint64_t seed) {
  Rng rng(seed);
  MultiImageSet s;
  s.n = n;
  s.c = chw[0];
  s.h = chw[1];
  s.w = chw[2];
  s.task_names = {"left", "right"};
  s.num_classes = {10, 10};
  s.labels.assign(2, {});
  for (size_t i = 0; i < (size_t)n * s.image_size(); i++) {
    const uint64_t r = rng.next_u64();
    s.pixels.push_back((uint8_t)(r % 3 == 0 ? 0 : (r >> 8) & 255));  // some zeros, as digits have
  }
  for (int i = 0; i < n; i++)
    for (int t = 0; t < 2; t++) s.labels[(size_t)t].push_back((int32_t)(rng.next_u64() % 10));
  return s;
}

std::vector<float> normalised(const MultiImageSet& s, int i) {
  std::vector<float> x(s.image_size());
  for (size_t k = 0; k < x.size(); k++) x[k] = ((float)s.pixels[(size_t)i * x.size() + k] / 255.0f - s.mean) / s.std;
  return x;
}

double max_diff(const std::vector<float>& a, const float* b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, (double)std::fabs(a[i] - b[i]));
  return m;
}

// The interpreter's outputs against the engine's on the set's images.
double graph_vs_engine(const LayerGraph& g, MultiTaskModel& m, const MultiImageSet& s) {
  const std::vector<float> ref = engine_outputs(m, s, 0, s.n);
  const size_t O = (size_t)g.output_size();
  double d = 0;
  for (int i = 0; i < s.n; i++) d = std::max(d, max_diff(run_graph(g, normalised(s, i).data()).outputs, ref.data() + i * O));
  return d;
}

Tensor param(const MultiTaskModel& m, const std::string& name) {
  for (const auto& [n, p] : m.named_parameters())
    if (n == name) return p;
  FAIL("no parameter " << name);
  return {};
}

// Make an MDMTN look like a Chebyshev-AL result: zero groups (whole channels and single
// positions), a zero Linear row, tied columns and tied filters, alpha away from (1, 0).
// P = positions per channel of trunk.fc's input (16 at 28x28), Q = of the monitors' (144).
void sparsify(Mdmtn& m) {
  const int P = m.trunk->fc->in_features / 20, Q = m.head_list()[0]->monitor->fc->in_features / 20;
  const int F = P * 20, M = Q * 20;
  float* a0 = param(m, "heads.0.alpha").data();
  a0[0] = 0.7f, a0[1] = 0.4f;
  float* a1 = param(m, "heads.1.alpha").data();
  a1[0] = 1.1f, a1[1] = -0.3f;
  // trunk.conv2 [20, 10, 5, 5]: filters 3 and 7 zero (GrOWL row groups), filter 9 = filter 8 (tied)
  Tensor c2 = param(m, "trunk.conv2.weight");
  std::fill_n(c2.data() + 3 * 250, 250, 0.f);
  std::fill_n(c2.data() + 7 * 250, 250, 0.f);
  std::copy_n(c2.data() + 8 * 250, 250, c2.data() + 9 * 250);
  // trunk.fc [50, 20 P]: channel 5's P columns zero (-> conv2 channel 5 goes), the first
  // positions of channel 6 zero, the last two columns tied, row 4 zero (a constant unit)
  Tensor fc = param(m, "trunk.fc.weight");
  const int zp = std::min(4, P - 1);  // positions of channel 6 zeroed (the channel stays)
  for (int o = 0; o < 50; o++) {
    float* r = fc.data() + o * F;
    std::fill_n(r + 5 * P, P, 0.f);
    std::fill_n(r + 6 * P, zp, 0.f);
    r[F - 1] = r[F - 2];
  }
  std::fill_n(fc.data() + 4 * F, F, 0.f);
  // heads.0.monitor.fc [50, 20 Q]: channel 2's Q columns zero (-> monitor.conv channel 2
  // goes), every other position of channel 3 zero
  Tensor mf = param(m, "heads.0.monitor.fc.weight");
  for (int o = 0; o < 50; o++) {
    float* r = mf.data() + o * M;
    std::fill_n(r + 2 * Q, Q, 0.f);
    for (int p = 0; p < Q; p += 2) r[3 * Q + p] = 0.f;
  }
}

bool have(const std::string& tool) {
  std::string out;
  return run_command("command -v " + tool, out) == 0;
}

// Saves m as mtl train does (the metadata the export reads).
void save_like_train(const std::string& path, const MultiTaskModel& m, const Shape& chw) {
  save_module(path, m,
              {{"architecture", m.arch()},
               {"tasks", "left,right"},
               {"classes", "10,10"},
               {"input_shape", std::to_string(chw[0]) + "," + std::to_string(chw[1]) + "," + std::to_string(chw[2])},
               {"dataset", "multimnist"},
               {"method", "test"},
               {"input_mean", "0.1307"},
               {"input_std", "0.3081"}});
}

// A checkpoint holding the model of weight file `w` (under "model.") and one I64 tensor
// "extra.<key>" (a prune mask or tying labels, as the Chebyshev-AL recipe saves them).
std::string checkpoint_with(const std::string& w, const std::string& key, const std::vector<int64_t>& v,
                            const std::string& path) {
  const StFile plain = load_safetensors(w);
  StFile f;
  f.metadata = plain.metadata;
  f.metadata["kind"] = "checkpoint";
  for (const auto& [k, t] : plain.tensors) f.tensors["model." + k] = t;
  StTensor t;
  t.dtype = "I64";
  t.shape = {(int64_t)v.size()};
  t.i64 = v;
  f.tensors["extra." + key] = t;
  save_safetensors(path, f);
  return path;
}

}  // namespace

TEST_CASE("export: the layer graph computes what the engine computes") {
  manual_seed(3);
  const MultiImageSet s = random_set(4, {1, 28, 28}, 11);
  for (const char* arch : {"multilenet", "mdmtn", "hps"}) {
    auto m = make_model(arch, kTasks, {1, 28, 28});
    m->eval();
    if (m->arch() == "mdmtn") sparsify(*std::dynamic_pointer_cast<Mdmtn>(m));  // alpha != (1, 0)
    const LayerGraph g = layer_graph(*m, {1, 28, 28});
    CHECK_MESSAGE(graph_vs_engine(g, *m, s) <= 1e-5, arch);
    // MDMTN's output layers read [Z, M_t] with [alpha_t0 W | alpha_t1 W]: W twice, alpha_t folded in
    const int64_t extra = m->arch() == "mdmtn" ? 2 * (10 * 50 - 2) : 0;
    CHECK(g.params() == m->num_parameters() + extra);
  }
}

TEST_CASE("export: a regression task's head is exported without log_softmax") {
  manual_seed(5);
  const std::vector<Task> tasks = {Task::classification("left", 10), Task::regression("ink", 2)};
  for (const char* arch : {"multilenet", "hps"}) {
    auto m = make_model(arch, tasks, {1, 28, 28});
    m->eval();
    const LayerGraph g = layer_graph(*m, {1, 28, 28});
    REQUIRE(g.tasks.size() == 2);
    CHECK(g.tasks[1].kind == "regression");
    CHECK(g.tasks[1].outputs == 2);
    CHECK(g.output_size() == 12);
    CHECK_MESSAGE(graph_vs_engine(g, *m, random_set(3, {1, 28, 28}, 16)) <= 1e-5, arch);
  }
}

TEST_CASE("export: BatchNorm folds into the convolution, negative scales as min-pools (mdmtn-cifar)") {
  manual_seed(4);
  auto m = make_model("mdmtn-cifar", kTasks, {3, 32, 32});
  Rng rng(5);
  for (auto [name, t] : m->named_buffers()) {  // running statistics away from (0, 1)
    for (int64_t i = 0; i < t.numel(); i++)
      t.data()[i] = name.find("running_var") != std::string::npos ? 0.5f + (float)rng.uniform() : (float)rng.uniform() - 0.5f;
  }
  for (auto [name, t] : m->named_parameters())
    if (name.find("bn") != std::string::npos && name.find("weight") != std::string::npos)
      for (int64_t i = 0; i < t.numel(); i++) t.data()[i] = (i % 3 == 0 ? -1.f : 1.f) * (0.5f + (float)rng.uniform());
  m->eval();
  const LayerGraph g = layer_graph(*m, {3, 32, 32});
  int min_pools = 0;
  for (const auto& l : g.layers) min_pools += (int)std::count(l.min_pool.begin(), l.min_pool.end(), 1);
  CHECK(min_pools > 0);
  MultiImageSet s = random_set(3, {3, 32, 32}, 12);
  s.mean = s.std = 0.5f;
  CHECK(graph_vs_engine(g, *m, s) <= 1e-4);
}

TEST_CASE("export: other architectures are refused by name") {
  manual_seed(1);
  auto m = make_model("resnet18-w8", kTasks, {3, 32, 32});
  try {
    layer_graph(*m, {3, 32, 32});
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find("architecture 'resnet18-w8' is not supported") != std::string::npos);
  }
}

TEST_CASE("export: pruning removes the zero and tied groups and changes no output") {
  manual_seed(7);
  auto m = std::dynamic_pointer_cast<Mdmtn>(make_model("mdmtn", kTasks, {1, 28, 28}));
  m->eval();
  sparsify(*m);
  const LayerGraph dense = layer_graph(*m, {1, 28, 28});
  LayerGraph g = dense;
  const PruneReport r = prune_graph(g);
  // trunk.conv2 loses its zero filters 3, 7 (constants) and channel 5 (unread): 17 channels,
  // filters 8 and 9 shared; monitor 0's conv loses channel 2 (unread)
  auto layer = [&](const std::string& n) -> const GraphLayer& {
    for (const auto& l : g.layers)
      if (l.name == n) return l;
    FAIL("no layer " << n);
    return g.layers[0];
  };
  CHECK(layer("trunk.conv2").outputs() == 17);
  CHECK(layer("trunk.conv2").filters() == 16);
  CHECK(r.filters_merged == 1);
  CHECK(layer("heads.0.monitor.conv").outputs() == 19);
  CHECK(layer("heads.1.monitor.conv").outputs() == 20);
  // trunk.fc: row 4 is a constant folded into both heads; its input lost 3 channels
  // (48 columns) and 4 zero positions; columns 200 and 201 merged
  CHECK(layer("trunk.fc").outputs() == 49);
  CHECK(layer("trunk.fc").columns() == 320 - 48 - 4 - 1);
  CHECK(r.columns_merged >= 1);
  CHECK(r.constants_folded > 0);
  // monitor 0's fc reads 19 channels, channel 3 with half its positions
  CHECK(layer("heads.0.monitor.fc").columns() == 2880 - 144 - 72);
  CHECK(g.values[(size_t)layer("heads.0.monitor.conv").out].size() == 2880 - 144 - 72);
  CHECK(r.positions_removed >= 72 + 4);
  CHECK(g.params() < dense.params());
  CHECK(g.macs() < dense.macs());
  const MultiImageSet s = random_set(4, {1, 28, 28}, 13);
  CHECK(graph_vs_engine(g, *m, s) <= 1e-5);
  // a dense model loses nothing
  auto d = make_model("multilenet", kTasks, {1, 28, 28});
  LayerGraph gd = layer_graph(*d, {1, 28, 28});
  const int64_t p = gd.params();
  prune_graph(gd);
  CHECK(gd.params() == p);
}

TEST_CASE("export: fixed-point requantisation, closed-form cases") {
  int32_t m0, sh;
  quantize_multiplier(0.5, &m0, &sh);
  CHECK(m0 == (1 << 30));
  CHECK(sh == 0);
  // SaturatingRoundingDoublingHighMul rounds halves up, RoundingDivideByPOT away from zero
  CHECK(multiply_by_quantized_multiplier(3, m0, sh) == 2);    // 1.5 -> 2
  CHECK(multiply_by_quantized_multiplier(-3, m0, sh) == -1);  // -1.5 -> -1
  CHECK(multiply_by_quantized_multiplier(100, m0, sh) == 50);
  quantize_multiplier(0.25, &m0, &sh);
  CHECK(sh == -1);
  CHECK(multiply_by_quantized_multiplier(6, m0, sh) == 2);    // 1.5 -> 2
  CHECK(multiply_by_quantized_multiplier(-6, m0, sh) == -2);  // -3 exactly, then -1.5 -> -2
  quantize_multiplier(3.0, &m0, &sh);
  CHECK(sh == 2);
  CHECK(multiply_by_quantized_multiplier(7, m0, sh) == 21);
  CHECK(rounding_divide_by_pot(5, 1) == 3);
  CHECK(rounding_divide_by_pot(-5, 1) == -3);
  CHECK(sat_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX);
  // random multipliers: within one of the real product
  Rng rng(9);
  for (int k = 0; k < 2000; k++) {
    const double m = std::exp(-12.0 * rng.uniform());
    const int32_t acc = (int32_t)(rng.next_u64() % 2000001) - 1000000;
    quantize_multiplier(m, &m0, &sh);
    CHECK(std::fabs(multiply_by_quantized_multiplier(acc, m0, sh) - acc * m) <= 1.0);
  }
  QParams q{0.5f, -10};
  CHECK(quantize_input(1.25f, q) == -7);   // 2.5 -> 3 (half away), + z
  CHECK(quantize_input(-1.25f, q) == -13);
  CHECK(quantize_input(1e9f, q) == 127);
  CHECK(quantize_input(std::nanf(""), q) == -128);
}

TEST_CASE("export: the arena plan never overlaps live buffers and reuses dead ones") {
  // a chain a -> b -> c -> d: a and c can share, b and d can share
  MemoryPlan p = plan_arena({{"a", 100, 0, 1, 4, -1}, {"b", 60, 1, 2, 4, -1}, {"c", 100, 2, 3, 4, -1}, {"d", 60, 3, 4, 4, -1}});
  CHECK(p.bytes == 160);
  CHECK(p.find("a").offset == p.find("c").offset);
  // random lifetimes: no two live buffers overlap, and the size is the highest end
  Rng rng(2);
  for (int trial = 0; trial < 50; trial++) {
    std::vector<ArenaBuffer> bs;
    for (int i = 0; i < 12; i++) {
      const int first = (int)(rng.next_u64() % 10), len = (int)(rng.next_u64() % 4);
      bs.push_back({"b" + std::to_string(i), (int64_t)(1 + rng.next_u64() % 300), first, first + len,
                    i % 2 ? 4 : 1, -1});
    }
    const MemoryPlan q = plan_arena(bs);
    int64_t end = 0;
    for (const auto& x : q.buffers) {
      CHECK(x.offset % x.align == 0);
      end = std::max(end, x.offset + x.bytes);
      for (const auto& y : q.buffers)
        if (&x != &y && x.first <= y.last && y.first <= x.last)
          CHECK((x.offset + x.bytes <= y.offset || y.offset + y.bytes <= x.offset));
    }
    CHECK(q.bytes == end);
  }
}

TEST_CASE("export: int8 quantisation stays close to fp32") {
  manual_seed(8);
  auto m = std::dynamic_pointer_cast<Mdmtn>(make_model("mdmtn", kTasks, {1, 28, 28}));
  m->eval();
  sparsify(*m);
  LayerGraph g = layer_graph(*m, {1, 28, 28});
  prune_graph(g);
  const MultiImageSet s = random_set(40, {1, 28, 28}, 14);
  std::vector<std::vector<float>> imgs;
  std::vector<const float*> calib;
  for (int i = 0; i < 20; i++) imgs.push_back(normalised(s, i));
  for (const auto& x : imgs) calib.push_back(x.data());
  const QuantGraph q = quantize_graph(g, calib);
  CHECK(q.values[0].zero_point == -128 + (int)std::lround(0.1307 / 0.3081 / q.values[0].scale));
  // int8 logits against fp32 logits (the graph's output layers before log_softmax), on the
  // 20 images it was not calibrated on: small against their spread
  double worst = 0, spread = 0;
  for (int i = 20; i < 40; i++) {
    const std::vector<float> x = normalised(s, i);
    const GraphActivations a = run_graph(g, x.data());
    const std::vector<float> o8 = run_graph_int8(g, q, x.data());
    for (const auto& l : g.layers)
      if (l.task >= 0) {
        const std::vector<float>& ref = a.values[(size_t)l.out];
        const float* got = o8.data() + g.output_offset(l.task);
        worst = std::max(worst, max_diff(ref, got));
        for (float v : ref) spread = std::max(spread, (double)std::fabs(v));
      }
  }
  CHECK(worst < 0.05 * spread);
}

TEST_CASE("export: the generated C compiles warning-free and matches its oracles (gcc, clang)") {
  std::vector<std::string> compilers;
  for (const char* cc : {"gcc", "clang"})
    if (have(cc)) compilers.push_back(cc);
  if (compilers.empty()) {
    MESSAGE("no C compiler found: skipped");
    return;
  }
  manual_seed(10);
  // 16x16 images keep the C files small (MDMTN's monitors read 20x6x6, its trunk.fc 20x1x1)
  const Shape chw = {1, 16, 16};
  auto m = std::dynamic_pointer_cast<Mdmtn>(make_model("mdmtn", kTasks, chw));
  m->eval();
  sparsify(*m);
  auto lenet = make_model("multilenet", kTasks, chw);
  lenet->eval();
  const MultiImageSet s = random_set(6, chw, 15);
  cli::TempDir tmp("/tmp/mtl-export-test-");
  for (MultiTaskModel* model : {(MultiTaskModel*)m.get(), lenet.get()}) {
    LayerGraph g = layer_graph(*model, chw);
    prune_graph(g);
    std::vector<std::vector<float>> imgs;
    std::vector<const float*> calib;
    for (int i = 0; i < s.n; i++) imgs.push_back(normalised(s, i));
    for (const auto& x : imgs) calib.push_back(x.data());
    const QuantGraph q = quantize_graph(g, calib);
    for (bool int8 : {false, true}) {
      CEmitInfo info;
      info.name = "net";
      info.input_mean = s.mean;
      info.input_std = s.std;
      const CSources c = emit_c(g, int8 ? &q : nullptr, info);
      const fs::path dir = tmp / (model->arch() + (int8 ? "_int8" : "_fp32"));
      fs::create_directories(dir);
      REQUIRE(cli::write_file(dir / "net.h", c.header));
      REQUIRE(cli::write_file(dir / "net.c", c.source));
      for (const auto& cc : compilers) {
        INFO(model->arch() << (int8 ? " int8 " : " fp32 ") << cc);
        const VerifyResult v = verify_export(dir.string(), "net", g, *model, s, s.n, int8, cc);
        const size_t O = (size_t)g.output_size();
        for (int i = 0; i < s.n; i++) {
          const std::vector<float> oracle =
              int8 ? run_graph_int8(g, q, imgs[(size_t)i].data()) : run_graph(g, imgs[(size_t)i].data()).outputs;
          for (size_t k = 0; k < O; k++) CHECK(v.outputs[i * O + k] == oracle[k]);  // bit for bit (as floats)
        }
        if (!int8) CHECK(v.max_abs_diff <= 1e-5);
      }
    }
  }
}

TEST_CASE("export: mtl export writes the files, refuses bad inputs with one line and writes nothing") {
  if (!cli::have_binary_and_data()) return;
  cli::TempDir tmp("/tmp/mtl-export-cli-");
  manual_seed(12);
  auto m = std::dynamic_pointer_cast<Mdmtn>(make_model("mdmtn", kTasks, {1, 28, 28}));
  sparsify(*m);
  const std::string w = (tmp / "m.safetensors").string();
  save_like_train(w, *m, {1, 28, 28});
  const std::string data = cli::data_dir().string();

  // fp32, verified against the engine on 20 MultiMNIST test images
  const fs::path out = tmp / "out";
  cli::Run r = cli::run_mtl(tmp, {"export", "--weights", w, "--out", out.string(), "--name", "mdm", "--verify", "20",
                                  "--data-dir", data, "--json"});
  cli::check_ok(r);
  nlohmann::json j = r.json();
  CHECK(j["verify"]["max_abs_diff"].get<double>() <= 1e-5);
  CHECK(j["verify"]["agreement"]["left"].get<double>() == 1.0);
  CHECK(j["exported"]["params"].get<int64_t>() < j["dense"]["params"].get<int64_t>());
  CHECK(j["exported"]["macs"].get<int64_t>() < j["dense"]["macs"].get<int64_t>());
  CHECK(j["exported"]["const_bytes"].get<int64_t>() < j["dense"]["const_bytes"].get<int64_t>());
  CHECK(fs::is_regular_file(out / "mdm.h"));
  CHECK(cli::read_file(out / "mdm.h").find("#define MDM_ARENA_BYTES") != std::string::npos);

  // int8 into the same directory (only its own files there: replaced), with a test program
  r = cli::run_mtl(tmp, {"export", "--weights", w, "--out", out.string(), "--name", "mdm", "--int8", "--calib", "50",
                         "--test-images", "5", "--verify", "50", "--data-dir", data, "--json"});
  cli::check_ok(r);
  j = r.json();
  CHECK(j["precision"] == "int8");
  CHECK(j["verify"]["agreement"]["left"].get<double>() >= 0.9);
  CHECK(fs::is_regular_file(out / "mdm_test.c"));

  const std::string before = cli::read_file(out / "mdm.c");
  auto nothing_written = [&](const cli::Run& run) {
    INFO(run.cmd);
    CHECK(cli::read_file(out / "mdm.c") == before);
    for (const auto& e : fs::directory_iterator(tmp.path))
      CHECK_MESSAGE(e.path().filename().string().find(".tmp.") == std::string::npos, e.path().string());
  };
  // --out holding other files
  cli::write_file(out / "notes.txt", "mine");
  r = cli::run_mtl(tmp, {"export", "--weights", w, "--out", out.string(), "--name", "mdm", "--data-dir", data});
  cli::check_one_error(r, 1, "holds other files ('notes.txt')");
  nothing_written(r);
  fs::remove(out / "notes.txt");
  // not a model of a known architecture
  auto res = make_model("resnet18-w8", kTasks, {3, 32, 32});
  const std::string rw = (tmp / "resnet.safetensors").string();
  save_like_train(rw, *res, {3, 32, 32});
  r = cli::run_mtl(tmp, {"export", "--weights", rw, "--out", out.string(), "--name", "mdm"});
  cli::check_one_error(r, 1, "architecture 'resnet18-w8' cannot be exported");
  nothing_written(r);
  // not a weight file at all
  cli::write_file(tmp / "junk.safetensors", "not a safetensors file");
  r = cli::run_mtl(tmp, {"export", "--weights", (tmp / "junk.safetensors").string(), "--out", out.string()});
  cli::check_one_error(r, 1, "junk.safetensors");
  // a checkpoint whose prune mask lists a non-zero group (trunk.conv2 filter 3 is zero, 4 is not)
  const std::string bad = checkpoint_with(w, "mask.trunk.conv2.weight", {3, 4}, (tmp / "bad_mask.safetensors").string());
  r = cli::run_mtl(tmp, {"export", "--weights", bad, "--out", out.string(), "--name", "mdm"});
  cli::check_one_error(r, 1, "inconsistent prune mask: group 4 of trunk.conv2.weight");
  nothing_written(r);
  // bad flags
  r = cli::run_mtl(tmp, {"export", "--weights", w, "--out", out.string(), "--name", "9lives"});
  cli::check_one_error(r, 1, "--name '9lives' is not a C identifier");
  r = cli::run_mtl(tmp, {"export", "--weights", w});
  cli::check_one_error(r, 2, "--out DIR");
  r = cli::run_mtl(tmp, {"export", "--weights", w, "--out", out.string(), "--calib", "5"});
  cli::check_one_error(r, 2, "--calib is only used with --int8");
  nothing_written(r);
}

TEST_CASE("export: a checkpoint's tying must hold in its weights") {
  cli::TempDir tmp("/tmp/mtl-export-tie-");
  manual_seed(14);
  auto m = std::dynamic_pointer_cast<Mdmtn>(make_model("mdmtn", kTasks, {1, 28, 28}));
  sparsify(*m);  // trunk.conv2 filters 3 and 7 zero, 9 = 8
  const std::string w = (tmp / "m.safetensors").string();
  save_like_train(w, *m, {1, 28, 28});
  auto checkpoint_with_tie = [&](const std::vector<int64_t>& labels) {
    return checkpoint_with(w, "tie.trunk.conv2.weight", labels, (tmp / "ck.safetensors").string());
  };
  std::vector<int64_t> labels(20);
  for (int i = 0; i < 20; i++) labels[(size_t)i] = i;
  labels[3] = labels[7] = -1;
  labels[9] = 8;  // 9 = 8: holds
  const TrainedModel ok = read_trained_model(checkpoint_with_tie(labels));
  CHECK(ok.tied_groups == 18);
  labels[10] = 8;  // 10 differs from 8
  CHECK_THROWS_WITH(read_trained_model(checkpoint_with_tie(labels)),
                    doctest::Contains("inconsistent tying: groups 8 and 10 of trunk.conv2.weight"));
  labels[10] = 10;
  labels[4] = -1;  // filter 4 is not zero
  CHECK_THROWS_WITH(read_trained_model(checkpoint_with_tie(labels)),
                    doctest::Contains("group 4 of trunk.conv2.weight is marked pruned (-1)"));
}

TEST_CASE("export: the Cortex-M4 build under QEMU prints the host build's bits") {
  if (!have("arm-none-eabi-gcc") || !have("qemu-system-arm") || !cli::have_binary_and_data()) {
    MESSAGE("arm-none-eabi-gcc or qemu-system-arm missing (make setup installs them): skipped");
    return;
  }
  cli::TempDir tmp("/tmp/mtl-export-qemu-");
  manual_seed(13);
  auto m = make_model("multilenet", kTasks, {1, 28, 28});
  const std::string w = (tmp / "m.safetensors").string();
  save_like_train(w, *m, {1, 28, 28});
  const fs::path out = tmp / "out";
  cli::Run r = cli::run_mtl(tmp, {"export", "--weights", w, "--out", out.string(), "--name", "net", "--int8", "--calib",
                                  "20", "--test-images", "8", "--data-dir", cli::data_dir().string()});
  cli::check_ok(r);
  // the repository's tests/ (data/'s sibling: build/mtl and build/sanitize/mtl alike)
  const fs::path script = cli::data_dir().parent_path() / "tests" / "embedded_check.sh";
  std::string o;
  const int code = run_command(cli::shell_quote(script.string()) + " " + cli::shell_quote(out.string()) + " net", o);
  INFO(o);
  CHECK(code == 0);
  CHECK(o.find("images 8\n") != std::string::npos);
  CHECK(o.find("identical yes") != std::string::npos);
  CHECK(o.find("instructions_per_inference ") != std::string::npos);
}
