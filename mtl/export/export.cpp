// The export driver (see export.h).
#include "mtl/export/export.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "datasets/multi_mnist.h"
#include "engine/error.h"
#include "mtl/export/emit_c.h"
#include "mtl/export/test_program.h"
#include "mtl/train/data_sources.h"

namespace mt {

namespace fs = std::filesystem;

namespace {

// The model's input normalisation on a set, and a check that the set fits the model.
MultiImageSet fitted(MultiImageSet s, const TrainedModel& m, const char* what) {
  const Shape& chw = m.info().input_chw;
  if (s.c != chw[0] || s.h != chw[1] || s.w != chw[2])
    throw Error(m.path + ": the model reads " + shape_str(chw) + " images, the " + what + " images of dataset '" +
                m.dataset + "' are " + std::to_string(s.c) + "x" + std::to_string(s.h) + "x" + std::to_string(s.w));
  if (s.num_tasks() != m.model().num_tasks())
    throw Error(m.path + ": the model has " + std::to_string(m.model().num_tasks()) + " tasks, dataset '" + m.dataset +
                "' " + std::to_string(s.num_tasks()));
  s.mean = m.info().input_mean;
  s.std = m.info().input_std;
  return s;
}

// The first n training images of the model's dataset (make_dataset's sets).
MultiImageSet calibration_set(const TrainedModel& m, const DataConfig& data, int n) {
  const auto& names = dataset_names();
  if (std::find(names.begin(), names.end(), m.dataset) == names.end())
    throw Error(m.path + ": int8 calibration reads training images of " + "multimnist, multifashion, "
                "multifashion-mnist, mnist, fashion or cifar10-mnist; this model was trained on '" + m.dataset + "'");
  DataConfig c = data;
  c.dataset = m.dataset;
  c.data_seed = m.data_seed;
  MultiImageSet train = load_train_test(c).train;
  if (n > train.n)
    throw Error("export: --calib " + std::to_string(n) + " is more than the " + std::to_string(train.n) +
                " training images");
  return fitted(take_first(train, n), m, "training");
}

// The files this export writes into DIR.
std::vector<std::string> own_files(const std::string& name, bool test) {
  std::vector<std::string> f = {name + ".h", name + ".c"};
  if (test) f.push_back(name + "_test.c");
  return f;
}

// DIR must be absent, empty, or hold only files an export of this name writes.
void check_out_dir(const std::string& dir, const std::string& name) {
  if (dir.empty()) throw Error("export: --out DIR is empty");
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw Error("export: --out " + dir + " exists and is not a directory");
  const std::vector<std::string> mine = own_files(name, true);
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string f = e.path().filename().string();
    if (std::find(mine.begin(), mine.end(), f) == mine.end() || !e.is_regular_file())
      throw Error("export: --out " + dir + " exists and holds other files ('" + f +
                  "'); give a new or empty directory, or one holding only " + name + ".h/.c");
  }
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  f.flush();
  if (!f) throw Error("export: cannot write " + path);
}

// Writes the files into a temporary directory beside dir, then renames it into place.
void write_dir_atomically(const std::string& dir, const std::vector<std::pair<std::string, std::string>>& files) {
  const fs::path target = fs::absolute(dir).lexically_normal();
  const fs::path parent = target.parent_path();
  std::error_code ec;
  fs::create_directories(parent, ec);
  if (ec) throw Error("export: cannot create " + parent.string() + ": " + ec.message());
  const std::string pid = std::to_string((long)getpid());
  const fs::path tmp = parent / ("." + target.filename().string() + ".tmp." + pid);
  const fs::path old = parent / ("." + target.filename().string() + ".old." + pid);
  fs::remove_all(tmp, ec);
  try {
    fs::create_directory(tmp);
    for (const auto& [name, text] : files) write_file((tmp / name).string(), text);
    if (fs::exists(target)) {
      fs::rename(target, old);
      try {
        fs::rename(tmp, target);
      } catch (...) {
        fs::rename(old, target);  // put the old directory back
        throw;
      }
      fs::remove_all(old, ec);
    } else {
      fs::rename(tmp, target);
    }
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error("export: cannot write " + dir + ": " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

ExportFigures figures(const LayerGraph& g, const CSources& c) {
  return {g.params(), g.macs(), c.const_bytes, c.arena_bytes};
}

std::vector<const float*> calibration_inputs(const MultiImageSet& train, int n, std::vector<float>& storage) {
  const size_t S = train.image_size();
  float lut[256];
  for (int p = 0; p < 256; p++) lut[p] = (float(p) / 255.0f - train.mean) / train.std;  // as datasets/loader.cpp
  storage.resize((size_t)n * S);
  std::vector<const float*> ptrs;
  for (int i = 0; i < n; i++) {
    for (size_t k = 0; k < S; k++) storage[(size_t)i * S + k] = lut[train.pixels[(size_t)i * S + k]];
    ptrs.push_back(storage.data() + (size_t)i * S);
  }
  return ptrs;
}

}  // namespace

MultiImageSet export_test_set(const TrainedModel& m, const DataConfig& data) {
  DataConfig c = data;
  c.test_limit = 0;
  return fitted(load_eval_test(m.dataset, m.loaded.metadata, c, m.data_seed, m.path), m, "test");
}

ExportResult export_model(const ExportOptions& o) {
  if (o.weights.empty()) throw Error("export: --weights FILE is required");
  if (o.int8 && o.calib < 1) throw Error("export: --calib must be >= 1, got " + std::to_string(o.calib));
  if (o.test_images < 0) throw Error("export: --test-images must be >= 0, got " + std::to_string(o.test_images));
  ExportResult r;
  r.int8 = o.int8;
  r.dir = o.out;
  r.model = read_trained_model(o.weights);
  r.name = o.name.empty() ? c_identifier(r.model.info().architecture) : o.name;
  if (!is_c_identifier(r.name))
    throw Error("export: --name '" + r.name + "' is not a C identifier (letters, digits and _, not starting with a digit)");
  check_out_dir(o.out, r.name);

  r.dense_graph = layer_graph(r.model.model(), r.model.info().input_chw);
  const LayerGraph& dense = r.dense_graph;
  r.graph = dense;
  if (o.prune) r.prune = prune_graph(r.graph);

  CEmitInfo info;
  info.name = r.name;
  info.source = fs::path(o.weights).filename().string();
  info.method = r.model.method;
  info.dataset = r.model.dataset;
  info.input_mean = r.model.info().input_mean;
  info.input_std = r.model.info().input_std;

  CSources dense_c, c;
  if (o.int8) {
    const MultiImageSet train = calibration_set(r.model, o.data, o.calib);
    std::vector<float> storage;
    const std::vector<const float*> calib = calibration_inputs(train, o.calib, storage);
    r.quant = quantize_graph(r.graph, calib);
    c = emit_c(r.graph, &r.quant, info);
    if (o.prune) {
      const QuantGraph dq = quantize_graph(dense, calib);
      dense_c = emit_c(dense, &dq, info);
    } else {
      dense_c = c;
    }
  } else {
    c = emit_c(r.graph, nullptr, info);
    dense_c = o.prune ? emit_c(dense, nullptr, info) : c;
  }
  r.dense = figures(dense, dense_c);
  r.exported = figures(r.graph, c);

  std::vector<std::pair<std::string, std::string>> files = {{r.name + ".h", c.header}, {r.name + ".c", c.source}};
  if (o.test_images > 0) {
    const MultiImageSet test = export_test_set(r.model, o.data);
    if (o.test_images > test.n)
      throw Error("export: --test-images " + std::to_string(o.test_images) + " is more than the " +
                  std::to_string(test.n) + " test images");
    files.push_back({r.name + "_test.c", emit_test_program(r.graph, r.name, test, o.test_images)});
  }
  write_dir_atomically(o.out, files);
  for (const auto& f : files) r.files.push_back(f.first);
  return r;
}

}  // namespace mt
