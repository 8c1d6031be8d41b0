// `mtl export`: a trained model as dependency-free C (mtl/export/export.h).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "apps/cli.h"
#include "mtl/export/export.h"
#include "mtl/export/verify.h"

using namespace mt;
using namespace mt::cli;

namespace {

struct ExportArgs {
  ExportOptions o;
  std::optional<int> calib;  // given only with --int8
  bool int8 = false, no_prune = false, json = false;
  int verify = 0;
};
using A = ExportArgs;

std::vector<Flag<A>> export_flags() {
  const char* g = "export";
  return {
      field<A>("weights", "FILE", g,
               "the model file (best.safetensors, ...; a checkpoint's prune mask\n"
               "and tying are checked against its weights)  (required)",
               [](A& a) -> auto& { return a.o.weights; }),
      field<A>("out", "DIR", g, "where to write: new, empty, or holding only this export's files\n(replaced)  (required)",
               [](A& a) -> auto& { return a.o.out; }),
      field<A>("name", "NAME", g, "C identifier of the files and the function  [the architecture]",
               [](A& a) -> auto& { return a.o.name; }),
      toggle<A>("int8", g,
                "int8 (TFLite scheme: per-channel symmetric weights, asymmetric\n"
                "activations, int32 accumulators, fixed-point requantisation)",
                [](A& a) -> auto& { return a.int8; }),
      field<A>("calib", "N", g, "int8: calibrate on the first N training images  [100]",
               [](A& a) -> auto& { return a.calib; }),
      toggle<A>("no-prune", g, "keep the dense structure (pruned groups stay as zeros)",
                [](A& a) -> auto& { return a.no_prune; }),
      field<A>("test-images", "N", g,
               "also write DIR/NAME_test.c, a self-test program holding the first\n"
               "N test images (the host or a Cortex-M runs it)  [0: none]",
               [](A& a) -> auto& { return a.o.test_images; }),
      field<A>("verify", "N", g,
               "compile the C with $CC (else cc), run it on the first N test\n"
               "images and compare with the engine  [0: no]",
               [](A& a) -> auto& { return a.verify; }),
      field<A>("data-dir", "DIR", g, "MNIST is read from DIR/mnist", [](A& a) -> auto& { return a.o.data.data_dir; }),
      field<A>("fashion-dir", "DIR", g, "Fashion-MNIST .gz files", [](A& a) -> auto& { return a.o.data.fashion_dir; }),
      field<A>("cifar-dir", "DIR", g, "cifar10-mnist: the CIFAR-10 binary files  [data/cifar10]",
               [](A& a) -> auto& { return a.o.data.cifar_dir; }),
      toggle<A>("json", g, "print one JSON object as the last line on stdout", [](A& a) -> auto& { return a.json; }),
  };
}

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

// "10->12 ch, 144 outputs    144000 MACs", or "removed"
std::string layer_line(const LayerGraph& g, const std::string& name) {
  for (const GraphLayer& l : g.layers)
    if (l.name == name) {
      const GraphValue& y = g.values[(size_t)l.out];
      const std::string what = l.kind == LayerKind::Conv ? std::to_string(l.in_c) + "->" + std::to_string(y.c) +
                                                               " ch, " + std::to_string(y.size()) + " outputs"
                                                         : std::to_string(l.columns()) + "->" + std::to_string(y.c);
      char b[160];
      std::snprintf(b, sizeof b, "%-24s %9lld MACs", what.c_str(), (long long)layer_macs(g, l));
      return b;
    }
  return "removed";
}

}  // namespace

int cmd_export(int argc, char** argv) {
  const FlagTable<A> table("export", export_flags());
  A a;
  if (!table.parse(argc, argv, a)) {
    std::printf(
        "usage: mtl export --weights FILE --out DIR [flags]\n\n"
        "Write a model saved by `mtl train` as C99 that needs nothing but the C library:\n"
        "DIR/NAME.h and DIR/NAME.c with `int NAME_predict(const float* input, float* outputs)`,\n"
        "const weights, one static arena of a size stated in the header, no heap. Groups that\n"
        "Chebyshev-AL pruned are removed from the network (the channel or unit, in this layer\n"
        "and in the one feeding it) and tied groups are merged. Architectures: multilenet,\n"
        "mdmtn, hps, mdmtn-cifar, hps-cifar.\n\n%s"
        "  -h, --help            this text\n",
        table.help().c_str());
    return 0;
  }
  ExportOptions& o = a.o;
  if (o.weights.empty()) throw UsageError("mtl export needs --weights FILE (see 'mtl export --help')");
  if (o.out.empty()) throw UsageError("mtl export needs --out DIR (see 'mtl export --help')");
  o.int8 = a.int8;
  if (a.calib) {
    if (!a.int8) throw UsageError("--calib is only used with --int8");
    if (*a.calib < 1) throw UsageError("--calib must be >= 1, got " + std::to_string(*a.calib));
    o.calib = *a.calib;
  }
  o.prune = !a.no_prune;
  if (o.test_images < 0) throw UsageError("--test-images must be >= 0, got " + std::to_string(o.test_images));
  if (a.verify < 0) throw UsageError("--verify must be >= 0, got " + std::to_string(a.verify));

  const ExportResult e = export_model(o);
  const TrainedModel& m = e.model;
  std::printf("%s (%s%s%s) -> %s/{%s}: %s\n", o.weights.c_str(), m.info().architecture.c_str(),
              m.method.empty() ? "" : (", " + m.method).c_str(), m.dataset.empty() ? "" : (", " + m.dataset).c_str(),
              e.dir.c_str(), join(e.files, ",").c_str(),
              e.int8 ? ("int8, calibrated on " + std::to_string(e.quant.calibration_images) + " training images").c_str()
                     : "fp32");
  std::printf("  %-9s %10s %12s %12s %12s\n", "", "params", "MACs", "const bytes", "arena bytes");
  print_figures("dense", e.dense);
  print_figures("exported", e.exported);
  if (o.prune)  // each layer before and after pruning
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
  j["model"] = m.info().architecture;
  j["precision"] = e.int8 ? "int8" : "fp32";
  j["dense"] = figures_json(e.dense);
  j["exported"] = figures_json(e.exported);
  if (a.verify > 0) {
    const MultiImageSet test = export_test_set(m, o.data);
    if (a.verify > test.n)
      throw UsageError("--verify " + std::to_string(a.verify) + " is more than the " + std::to_string(test.n) +
                       " test images");
    const VerifyResult v = verify_export(e.dir, e.name, e.graph, m.model(), test, a.verify, e.int8);
    std::printf("  verify (%s, %d test images): max |C - engine| %.3g%s\n", host_cc().c_str(), v.images,
                v.max_abs_diff, e.int8 ? " (log-probabilities of the int8 logits)" : "");
    nlohmann::ordered_json vj;
    vj["images"] = v.images;
    vj["max_abs_diff"] = v.max_abs_diff;
    for (size_t t = 0; t < v.agreement.size(); t++) {
      const std::string& task = e.graph.tasks[t].name;
      if (v.metric[t] == "acc")
        std::printf("    %-10s argmax agreement %.2f%%, accuracy C %.2f%%, engine %.2f%%\n", task.c_str(),
                    100.0 * v.agreement[t], 100.0 * v.metric_c[t], 100.0 * v.metric_engine[t]);
      else
        std::printf("    %-10s outputs within 1e-3 %.2f%%, MAE C %.5g, engine %.5g\n", task.c_str(),
                    100.0 * v.agreement[t], v.metric_c[t], v.metric_engine[t]);
      vj["agreement"][task] = v.agreement[t];
      vj[v.metric[t] == "acc" ? "accuracy_c" : "mae_c"][task] = v.metric_c[t];
      vj[v.metric[t] == "acc" ? "accuracy_engine" : "mae_engine"][task] = v.metric_engine[t];
    }
    j["verify"] = vj;
  }
  if (a.json) std::printf("%s\n", j.dump().c_str());
  return 0;
}
