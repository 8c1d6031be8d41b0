// `mtl export`: a trained model as dependency-free C (mtl/export/export.h).
#include <cstdio>
#include <cxxopts.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/cli_util.h"
#include "mtl/export/export.h"
#include "mtl/export/verify.h"

using namespace mt;
using namespace mt::cli;

namespace {

bool given(const cxxopts::ParseResult& r, const char* flag) { return r.count(flag) > 0; }

const char* kExportHelp = R"(usage: mtl export --weights FILE --out DIR [flags]

Write a model saved by `mtl train` as C99 that needs nothing but the C library:
DIR/NAME.h and DIR/NAME.c with `int NAME_predict(const float* input, float* outputs)`,
const weights, one static arena of a size stated in the header, no heap. Groups that
Chebyshev-AL pruned are removed from the network (the channel or unit, in this layer
and in the one feeding it) and tied groups are merged. Architectures: multilenet,
mdmtn, hps, mdmtn-cifar, hps-cifar.

  --weights FILE        the model file (best.safetensors, ...; a checkpoint's prune mask
                        and tying are checked against its weights)  (required)
  --out DIR             where to write; new, empty, or holding only this export's files
                        (replaced)  (required)
  --name NAME           C identifier of the files and the function  [the architecture]
  --int8                int8 (TFLite scheme: per-channel symmetric weights, asymmetric
                        activations, int32 accumulators, fixed-point requantisation)
  --calib N             int8: calibrate on the first N training images  [100]
  --no-prune            keep the dense structure (pruned groups stay as zeros)
  --test-images N       also write DIR/NAME_test.c, a self-test program holding the first
                        N test images (the host or a Cortex-M runs it)  [0: none]
  --verify N            compile the C with $CC (else cc), run it on the first N test
                        images and compare with the engine  [0: no]
  --data-dir DIR        [data]
  --fashion-dir DIR     [/usr/share/datasets/fashion-mnist]
  --cifar-dir DIR       cifar10-mnist: the CIFAR-10 binary files  [data/cifar10]
  --json                print one JSON object as the last line on stdout
  -h, --help            this text
)";

nlohmann::ordered_json figures_json(const ExportFigures& f) {
  nlohmann::ordered_json j;
  j["params"] = f.params;
  j["macs"] = f.macs;
  j["const_bytes"] = f.const_bytes;
  j["arena_bytes"] = f.arena_bytes;
  return j;
}

void print_figures(const char* what, const ExportFigures& f) {
  std::printf("  %-9s %10lld %12lld %12lld %12lld\n", what, (long long)f.params, (long long)f.macs,
              (long long)f.const_bytes, (long long)f.arena_bytes);
}

}  // namespace

int cmd_export(int argc, char** argv) {
  cxxopts::Options opts("mtl export", "");
  opts.add_options()("weights", "", cxxopts::value<std::string>())("out", "", cxxopts::value<std::string>())(
      "name", "", cxxopts::value<std::string>())("int8", "")("calib", "", cxxopts::value<std::string>())(
      "no-prune", "")("test-images", "", cxxopts::value<std::string>())("verify", "", cxxopts::value<std::string>())(
      "data-dir", "", cxxopts::value<std::string>()->default_value("data"))(
      "fashion-dir", "", cxxopts::value<std::string>()->default_value("/usr/share/datasets/fashion-mnist"))(
      "cifar-dir", "", cxxopts::value<std::string>())("json", "")("h,help", "");
  const cxxopts::ParseResult r = parse_flags(opts, argc, argv, "export");
  if (given(r, "help")) {
    std::fputs(kExportHelp, stdout);
    return 0;
  }
  if (!given(r, "weights")) throw UsageError("mtl export needs --weights FILE (see 'mtl export --help')");
  if (!given(r, "out")) throw UsageError("mtl export needs --out DIR (see 'mtl export --help')");
  ExportOptions o;
  o.weights = r["weights"].as<std::string>();
  o.out = r["out"].as<std::string>();
  if (o.out.empty()) throw UsageError("--out must not be empty");
  if (given(r, "name")) o.name = r["name"].as<std::string>();
  o.int8 = given(r, "int8");
  if (given(r, "calib")) {
    if (!o.int8) throw UsageError("--calib is only used with --int8");
    o.calib = parse_int("calib", r["calib"].as<std::string>());
    if (o.calib < 1) throw UsageError("--calib must be >= 1, got " + r["calib"].as<std::string>());
  }
  o.prune = !given(r, "no-prune");
  if (given(r, "test-images")) {
    o.test_images = parse_int("test-images", r["test-images"].as<std::string>());
    if (o.test_images < 0) throw UsageError("--test-images must be >= 0, got " + r["test-images"].as<std::string>());
  }
  int verify = 0;
  if (given(r, "verify")) {
    verify = parse_int("verify", r["verify"].as<std::string>());
    if (verify < 0) throw UsageError("--verify must be >= 0, got " + r["verify"].as<std::string>());
  }
  o.paths.data_dir = r["data-dir"].as<std::string>();
  o.paths.fashion_dir = r["fashion-dir"].as<std::string>();
  if (given(r, "cifar-dir")) o.paths.cifar_dir = r["cifar-dir"].as<std::string>();

  const ExportResult e = export_model(o);
  std::printf("%s (%s%s%s) -> %s/{%s}: %s\n", o.weights.c_str(), e.model.architecture.c_str(),
              e.model.method.empty() ? "" : (", " + e.model.method).c_str(),
              e.model.dataset.empty() ? "" : (", " + e.model.dataset).c_str(), e.dir.c_str(), join(e.files, ",").c_str(),
              e.int8 ? ("int8, calibrated on " + std::to_string(e.quant.calibration_images) + " training images").c_str()
                     : "fp32");
  std::printf("  %-9s %10s %12s %12s %12s\n", "", "params", "MACs", "const bytes", "arena bytes");
  print_figures("dense", e.dense);
  print_figures("exported", e.exported);
  // per layer: what it computes before and after pruning
  auto layer_line = [&](const LayerGraph& g, const std::string& name) -> std::string {
    for (const GraphLayer& l : g.layers)
      if (l.name == name) {
        const GraphValue& y = g.values[(size_t)l.out];
        const std::string what = l.kind == LayerKind::Conv
                                     ? std::to_string(l.in_c) + "->" + std::to_string(y.c) + " ch, " +
                                           std::to_string(y.size()) + " outputs"
                                     : std::to_string(l.columns()) + "->" + std::to_string(y.c);
        char b[160];
        std::snprintf(b, sizeof b, "%-24s %9lld MACs", what.c_str(), (long long)layer_macs(g, l));
        return b;
      }
    return "removed";
  };
  if (o.prune)
    for (const GraphLayer& l : e.dense_graph.layers)
      std::printf("    %-22s %s  ->  %s\n", l.name.c_str(), layer_line(e.dense_graph, l.name).c_str(),
                  layer_line(e.graph, l.name).c_str());
  const PruneReport& p = e.prune;
  std::printf("  pruning: %lld zero columns, %lld constants folded, %lld units, %lld channels and %lld positions "
              "removed, %lld tied columns and %lld tied filters merged\n",
              (long long)p.zero_columns, (long long)p.constants_folded, (long long)p.units_removed,
              (long long)p.channels_removed, (long long)p.positions_removed, (long long)p.columns_merged,
              (long long)p.filters_merged);

  nlohmann::ordered_json j;
  j["command"] = "export";
  j["weights"] = o.weights;
  j["out"] = e.dir;
  j["name"] = e.name;
  j["model"] = e.model.architecture;
  j["precision"] = e.int8 ? "int8" : "fp32";
  j["dense"] = figures_json(e.dense);
  j["exported"] = figures_json(e.exported);
  if (verify > 0) {
    const MultiImageSet test = export_test_set(e.model, o.paths);
    if (verify > test.n)
      throw UsageError("--verify " + std::to_string(verify) + " is more than the " + std::to_string(test.n) + " test images");
    const VerifyResult v = verify_export(e.dir, e.name, e.graph, *e.model.model, test, verify, e.int8);
    std::printf("  verify (%s, %d test images): max |C - engine| %.3g%s\n", host_cc().c_str(), v.images,
                v.max_abs_diff, e.int8 ? " (log-probabilities of the int8 logits)" : "");
    nlohmann::ordered_json vj;
    vj["images"] = v.images;
    vj["max_abs_diff"] = v.max_abs_diff;
    for (size_t t = 0; t < v.agree.size(); t++) {
      const std::string& task = e.graph.tasks[t].name;
      const double n = v.images;
      std::printf("    %-10s argmax agreement %.2f%%, accuracy C %.2f%%, engine %.2f%%\n", task.c_str(),
                  100.0 * v.agree[t] / n, 100.0 * v.correct_c[t] / n, 100.0 * v.correct_engine[t] / n);
      vj["agreement"][task] = v.agree[t] / n;
      vj["accuracy_c"][task] = v.correct_c[t] / n;
      vj["accuracy_engine"][task] = v.correct_engine[t] / n;
    }
    j["verify"] = vj;
  }
  if (given(r, "json")) std::printf("%s\n", j.dump().c_str());
  return 0;
}
