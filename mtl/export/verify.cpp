// Comparing a compiled export with the engine (see verify.h).
#include "mtl/export/verify.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/autograd.h"
#include "engine/error.h"
#include "mtl/export/test_program.h"

namespace mt {

namespace fs = std::filesystem;

std::string host_cc() {
  const char* cc = std::getenv("CC");
  return cc && *cc ? cc : "cc";
}

int run_command(const std::string& cmd, std::string& output, bool merge_stderr) {
  output.clear();
  FILE* p = popen((cmd + (merge_stderr ? " 2>&1" : "")).c_str(), "r");
  if (!p) throw Error("export: cannot run '" + cmd + "'");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int st = pclose(p);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

std::vector<float> engine_outputs(MultiTaskModel& model, const MultiImageSet& set, int first, int n) {
  const int T = model.num_tasks();
  const int64_t S = (int64_t)set.image_size();
  float lut[256];
  for (int p = 0; p < 256; p++) lut[p] = (float(p) / 255.0f - set.mean) / set.std;  // as datasets/loader.cpp
  NoGrad ng;
  const bool was = model.is_training();
  model.eval();
  std::vector<std::vector<float>> per_task((size_t)T);
  int64_t per_image = 0;
  const int B = 500;
  for (int s = first; s < first + n; s += B) {
    const int b = std::min(B, first + n - s);
    Tensor x = Tensor::empty({b, set.c, set.h, set.w});
    for (int64_t i = 0; i < (int64_t)b * S; i++) x.data()[i] = lut[set.pixels[(size_t)((int64_t)s * S + i)]];
    Tensor z = model.shared(x);
    for (int t = 0; t < T; t++) {
      Tensor o = model.head(t, z, x);
      per_task[(size_t)t].insert(per_task[(size_t)t].end(), o.data(), o.data() + o.numel());
    }
  }
  model.train(was);
  std::vector<int64_t> width((size_t)T);
  for (int t = 0; t < T; t++) {
    width[(size_t)t] = n ? (int64_t)per_task[(size_t)t].size() / n : 0;
    per_image += width[(size_t)t];
  }
  std::vector<float> out((size_t)(per_image * n));
  for (int i = 0; i < n; i++) {
    int64_t off = (int64_t)i * per_image;
    for (int t = 0; t < T; t++) {
      std::copy_n(per_task[(size_t)t].begin() + (int64_t)i * width[(size_t)t], width[(size_t)t], out.begin() + off);
      off += width[(size_t)t];
    }
  }
  return out;
}

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mtl-export-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw Error("export: cannot create a temporary directory");
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

void log_softmax_double(float* x, int n) {  // as engine/ops_loss.cpp
  float m = x[0];
  for (int c = 1; c < n; c++) m = std::max(m, x[c]);
  double s = 0;
  for (int c = 0; c < n; c++) s += std::exp((double)(x[c] - m));
  const float lse = m + (float)std::log(s);
  for (int c = 0; c < n; c++) x[c] -= lse;
}

int argmax(const float* o, int n) {
  if (n == 1) return o[0] > 0.f;
  int best = 0;
  for (int c = 1; c < n; c++)
    if (o[c] > o[best]) best = c;
  return best;
}

}  // namespace

VerifyResult verify_export(const std::string& dir, const std::string& name, const LayerGraph& g, MultiTaskModel& model,
                           const MultiImageSet& set, int n, bool int8, const std::string& cc) {
  check(n >= 1 && n <= set.n, "export", "verify: " + std::to_string(n) + " images asked, the set has " + std::to_string(set.n));
  TempDir tmp;
  {
    std::ofstream f(tmp.path + "/" + name + "_test.c");
    f << emit_test_program(g, name, set, 1);
  }
  {
    std::ofstream f(tmp.path + "/images.bin", std::ios::binary);
    f.write((const char*)set.pixels.data(), (std::streamsize)((size_t)n * set.image_size()));
  }
  const std::string exe = tmp.path + "/" + name + "_test";
  const std::string compile = cc + " -std=c99 -O2 -Wall -Wextra -pedantic -Werror -ffp-contract=off -I" + quote(dir) +
                              " -o " + quote(exe) + " " + quote(dir + "/" + name + ".c") + " " +
                              quote(tmp.path + "/" + name + "_test.c") + " -lm";
  std::string out;
  if (run_command(compile, out) != 0) throw Error("export: the generated C does not compile: " + compile + ": " + out);
  if (run_command(quote(exe) + " --images " + quote(tmp.path + "/images.bin"), out, false) != 0)
    throw Error("export: the compiled model failed to run: " + out.substr(0, 200));

  const int O = (int)g.output_size();
  VerifyResult r;
  r.images = n;
  r.outputs.reserve((size_t)n * O);
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag;
    long idx;
    ls >> tag >> idx;
    if (tag != "out") continue;
    for (int k = 0; k < O; k++) {
      std::string hex;
      ls >> hex;
      const uint32_t bits = (uint32_t)std::strtoul(hex.c_str(), nullptr, 16);
      float v;
      std::memcpy(&v, &bits, 4);
      r.outputs.push_back(v);
    }
  }
  check((int64_t)r.outputs.size() == (int64_t)n * O, "export",
        "verify: the compiled model printed " + std::to_string(r.outputs.size()) + " outputs, expected " +
            std::to_string((int64_t)n * O));
  const std::vector<float> ref = engine_outputs(model, set, 0, n);
  check(ref.size() == r.outputs.size(), "export", "verify: the engine gives a different number of outputs");
  const int T = (int)g.tasks.size();
  r.agreement.assign((size_t)T, 0);
  r.metric_c.assign((size_t)T, 0);
  r.metric_engine.assign((size_t)T, 0);
  std::vector<float> c_out(r.outputs);
  for (int t = 0; t < T; t++) r.metric.push_back(g.tasks[(size_t)t].kind == "regression" ? "mae" : "acc");
  for (int i = 0; i < n; i++)
    for (int t = 0; t < T; t++) {
      const int64_t off = (int64_t)i * O + g.output_offset(t);
      const int w = g.tasks[(size_t)t].outputs;
      float* c = c_out.data() + off;
      const float* e = ref.data() + off;
      // an int8 export's logits against the engine's log-probabilities: log_softmax them
      bool lsm = false;
      for (const auto& l : g.layers) lsm = lsm || (l.task == t && l.log_softmax);
      if (int8 && lsm) log_softmax_double(c, w);
      double d = 0;
      for (int k = 0; k < w; k++) d = std::max(d, (double)std::fabs(c[k] - e[k]));
      r.max_abs_diff = std::max(r.max_abs_diff, d);
      if (r.metric[(size_t)t] == "mae") {
        const float* y = set.values[(size_t)t].data() + (int64_t)i * w;
        r.agreement[(size_t)t] += d <= 1e-3;
        for (int k = 0; k < w; k++) {
          r.metric_c[(size_t)t] += std::fabs(c[k] - y[k]) / w;
          r.metric_engine[(size_t)t] += std::fabs(e[k] - y[k]) / w;
        }
      } else {
        const int pc = argmax(c, w), pe = argmax(e, w);
        const int label = set.labels[(size_t)t][(size_t)i];
        r.agreement[(size_t)t] += pc == pe;
        r.metric_c[(size_t)t] += pc == label;
        r.metric_engine[(size_t)t] += pe == label;
      }
    }
  for (int t = 0; t < T; t++) {
    r.agreement[(size_t)t] /= n;
    r.metric_c[(size_t)t] /= n;
    r.metric_engine[(size_t)t] /= n;
  }
  return r;
}

}  // namespace mt
