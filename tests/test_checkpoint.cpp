// Training checkpoints: resuming from one reproduces the uninterrupted run bit
// for bit (weights, optimizer moments and step, RNG state), a checkpoint of
// another model is rejected without touching anything, and a failed save
// never leaves a partial file at the target path.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "layers/layers.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"
#include "optim/sgd.h"

using namespace mt;

namespace {

namespace fs = std::filesystem;

struct TmpDir {
  std::string path;
  TmpDir() {
    char tmpl[] = "/tmp/mt_test_ckpt_XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
  size_t entries() const { return (size_t)std::distance(fs::directory_iterator(path), fs::directory_iterator()); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A small MLP with dropout, so the global RNG's state matters for the losses.
std::shared_ptr<Sequential> make_mlp(int hidden = 16) {
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(6, hidden), std::make_shared<ReLU>(), std::make_shared<Dropout>(0.3f),
      std::make_shared<Linear>(hidden, 3)});
}

struct Data {
  Tensor x;
  std::vector<int32_t> y;
  Data() {
    Rng r(77);
    x = Tensor::randn({8, 6}, r);
    for (int i = 0; i < 8; i++) y.push_back((int32_t)r.below(3));
  }
};

std::vector<float> train(Module& m, Optimizer& opt, const Data& d, int steps) {
  std::vector<float> losses;
  for (int s = 0; s < steps; s++) {
    opt.zero_grad();
    Tensor loss = cross_entropy(m(d.x), d.y);
    backward(loss);
    opt.step();
    losses.push_back(loss.item());
  }
  return losses;
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<std::vector<float>> snapshot(const Module& m) {
  std::vector<std::vector<float>> s;
  for (const auto& kv : m.named_tensors()) s.push_back(kv.second.to_vector());
  return s;
}

CheckpointExtra method_state() {
  CheckpointExtra e;
  e.step = 3;
  e.epoch = 1;
  e.metadata = {{"architecture", "mlp"}, {"method", "mgda-ub"}, {"lambda", "0.25"}};
  StTensor alpha;
  alpha.dtype = "F32";
  alpha.shape = {3, 2};
  alpha.f32 = {0.5f, 0.5f, 0.25f, 0.75f, 0.1f, 0.9f};
  e.tensors["alpha_history"] = alpha;
  StTensor t;
  t.dtype = "I64";
  t.i64 = {7};
  e.tensors["t"] = t;
  return e;
}

}  // namespace

TEST_CASE("checkpoint round trip: resumed training gives bit-identical losses") {
  TmpDir dir;
  const Data data;
  const std::string path = dir.file("ckpt.safetensors");

  manual_seed(1);
  auto model = make_mlp();
  Adam opt(model->named_parameters(), 0.01);
  train(*model, opt, data, 3);
  save_checkpoint(path, *model, opt, method_state());
  const auto at_save = snapshot(*model);
  const std::vector<float> continued = train(*model, opt, data, 3);
  const auto final_weights = snapshot(*model);

  // Fresh objects, a different seed, a different lr: everything comes from the file.
  manual_seed(999);
  auto model2 = make_mlp();
  Adam opt2(model2->named_parameters(), 0.5);
  CheckpointExtra extra = load_checkpoint(path, *model2, opt2, {{"architecture", "mlp"}});
  CHECK(opt2.lr() == 0.01);
  CHECK(opt2.step_count() == 3);
  const std::vector<float> resumed = train(*model2, opt2, data, 3);
  CHECK(bit_equal(resumed, continued));
  CHECK(snapshot(*model2) == final_weights);

  // The caller's state comes back as saved; reserved keys are not part of it.
  CHECK(extra.step == 3);
  CHECK(extra.epoch == 1);
  CHECK(extra.metadata == method_state().metadata);
  CHECK(extra.tensors.at("alpha_history").f32 == method_state().tensors.at("alpha_history").f32);
  CHECK(extra.tensors.at("t").i64 == std::vector<int64_t>{7});

  // The RNG state is what makes the dropout masks match: without it they differ.
  auto model3 = make_mlp();
  Adam opt3(model3->named_parameters(), 0.01);
  load_checkpoint(path, *model3, opt3);
  manual_seed(12345);
  CHECK(!bit_equal(train(*model3, opt3, data, 3), continued));

  // The weights alone load through load_module too.
  auto weights_only = make_mlp();
  load_module(path, *weights_only, {{"architecture", "mlp"}});
  CHECK(snapshot(*weights_only) == at_save);
}

TEST_CASE("a checkpoint of another model or optimizer is rejected, naming the file; nothing changes") {
  TmpDir dir;
  const Data data;
  const std::string path = dir.file("ckpt.safetensors");
  manual_seed(2);
  auto model = make_mlp();
  Adam opt(model->named_parameters(), 0.01);
  train(*model, opt, data, 2);
  save_checkpoint(path, *model, opt, method_state());

  manual_seed(3);
  auto other = make_mlp(17);
  Adam other_opt(other->named_parameters(), 0.01);
  train(*other, other_opt, data, 1);
  const auto before = snapshot(*other);
  const std::vector<float> m_before = other_opt.state("0.weight", "exp_avg").to_vector();

  const auto rng_before = global_rng().state();
  CHECK_THROWS_WITH_AS(load_checkpoint(path, *other, other_opt),
                       (path + ": tensor 'model.0.weight' has shape [16,6], model expects [17,6]").c_str(), Error);
  CHECK(global_rng().state() == rng_before);
  auto same = make_mlp();
  Adam same_opt(same->named_parameters(), 0.01);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, *same, same_opt, {{"architecture", "resnet18"}}),
                       (path + ": metadata 'architecture' is 'mlp', expected 'resnet18'").c_str(), Error);
  SGD sgd(same->named_parameters(), 0.1, 0.9);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, *same, sgd),
                       (path + ": optimizer state is for Adam, this optimizer is SGD").c_str(), Error);
  auto bigger = std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(6, 16), std::make_shared<ReLU>(), std::make_shared<Dropout>(0.3f),
      std::make_shared<Linear>(16, 3), std::make_shared<Linear>(3, 3)});
  Adam bigger_opt(bigger->named_parameters(), 0.01);
  CHECK_THROWS_WITH_AS(load_checkpoint(path, *bigger, bigger_opt),
                       (path + ": missing tensor 'model.4.weight'").c_str(), Error);

  // A weights file is not a checkpoint.
  save_module(dir.file("w.safetensors"), *model);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("w.safetensors"), *same, same_opt),
                       doctest::Contains("not a training checkpoint"), Error);

  // An unknown tensor, or a broken RNG state, is caught before anything is copied.
  StFile f = load_safetensors(path);
  f.tensors["stray"] = f.tensors.at("extra.t");
  save_safetensors(dir.file("stray.safetensors"), f);
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("stray.safetensors"), *same, same_opt),
                       doctest::Contains("unexpected tensor 'stray'"), Error);
  f = load_safetensors(path);
  f.tensors["rng.global"].shape = {2, 2};
  save_safetensors(dir.file("rng.safetensors"), f);
  auto twin = make_mlp();
  Adam twin_opt(twin->named_parameters(), 0.02);
  const auto twin_before = snapshot(*twin);
  const auto rng_twin = global_rng().state();
  CHECK_THROWS_WITH_AS(load_checkpoint(dir.file("rng.safetensors"), *twin, twin_opt),
                       doctest::Contains("tensor 'rng.global' must be I64 [4]"), Error);
  CHECK(snapshot(*twin) == twin_before);
  CHECK(twin_opt.step_count() == 0);
  CHECK(twin_opt.lr() == 0.02);
  CHECK(global_rng().state() == rng_twin);

  CHECK(snapshot(*other) == before);
  CHECK(other_opt.state("0.weight", "exp_avg").to_vector() == m_before);
  CHECK(other_opt.step_count() == 1);
}

TEST_CASE("checkpoint crash safety: a failed save leaves no file and never a partial one") {
  TmpDir dir;
  manual_seed(4);
  auto model = make_mlp();
  Adam opt(model->named_parameters(), 0.01);

  // The directory does not exist: an error naming the path, and no file.
  const std::string nowhere = dir.file("no/such/dir/ckpt.safetensors");
  CHECK_THROWS_WITH_AS(save_checkpoint(nowhere, *model, opt), doctest::Contains(nowhere.c_str()), Error);
  CHECK(!fs::exists(nowhere));

  // A save that fails (an invalid extra tensor) leaves the previous checkpoint intact.
  const std::string path = dir.file("ckpt.safetensors");
  save_checkpoint(path, *model, opt);
  const std::string good = read_bytes(path);
  CheckpointExtra bad;
  StTensor t;
  t.dtype = "F32";
  t.shape = {3};
  t.f32 = {1, 2};  // 2 values for 3 elements
  bad.tensors["oops"] = t;
  CHECK_THROWS_AS(save_checkpoint(path, *model, opt, bad), Error);
  CHECK(read_bytes(path) == good);
  CHECK(dir.entries() == 1);  // no temporary left behind

  CheckpointExtra reserved;
  reserved.metadata["optim.lr"] = "1";
  CHECK_THROWS_WITH_AS(save_checkpoint(path, *model, opt, reserved), doctest::Contains("'optim.lr' is reserved"),
                       Error);
  CHECK(read_bytes(path) == good);
}

TEST_CASE("a corrupt checkpoint (flipped bit, trailing bytes, non-finite value) is refused; nothing changes") {
  TmpDir dir;
  const Data data;
  manual_seed(5);
  auto model = make_mlp();
  Adam opt(model->named_parameters(), 0.01);
  train(*model, opt, data, 2);
  const std::string path = dir.file("ckpt.safetensors");
  save_checkpoint(path, *model, opt, method_state());
  const std::string good = read_bytes(path);

  auto twin = make_mlp();
  Adam twin_opt(twin->named_parameters(), 0.01);
  const auto twin_before = snapshot(*twin);
  const auto rng_before = global_rng().state();
  auto refused = [&](const std::string& p, const std::string& needle) {
    std::string msg;
    try {
      load_checkpoint(p, *twin, twin_opt);
    } catch (const Error& e) {
      msg = e.what();
    }
    INFO("message: " << msg);
    CHECK(msg.rfind(p + ": ", 0) == 0);
    CHECK(msg.find(needle) != std::string::npos);
    CHECK(snapshot(*twin) == twin_before);
    CHECK(twin_opt.step_count() == 0);
    CHECK(global_rng().state() == rng_before);
  };

  // One bit flipped in the middle of the tensor data.
  std::string flipped = good;
  flipped[good.size() / 2 + good.size() / 4] ^= 0x10;
  const std::string p1 = dir.file("flipped.safetensors");
  std::ofstream(p1, std::ios::binary) << flipped;
  refused(p1, "data checksum mismatch");

  // Bytes appended after a complete checkpoint.
  const std::string p2 = dir.file("trailing.safetensors");
  std::ofstream(p2, std::ios::binary) << good << "junk";
  refused(p2, "4 trailing bytes after the tensor data");

  // A NaN weight, an inf in Adam's moments, a NaN in the caller's state: each
  // written with a valid checksum (as a diverged run would write them).
  const StFile f = load_safetensors(path);
  struct Poison {
    std::string tensor;
    float value;
    const char* shown;
  };
  for (const Poison& q : {Poison{"model.0.weight", std::nanf(""), "nan"},
                          Poison{"optim.exp_avg_sq.3.bias", std::numeric_limits<float>::infinity(), "inf"},
                          Poison{"extra.alpha_history", -std::numeric_limits<float>::infinity(), "-inf"}}) {
    StFile g = f;
    REQUIRE(g.tensors.count(q.tensor) == 1);
    g.tensors.at(q.tensor).f32[1] = q.value;
    const std::string p3 = dir.file("nonfinite.safetensors");
    save_safetensors(p3, g);
    refused(p3, "tensor '" + q.tensor + "' holds " + q.shown + " at index 1");
  }

  // The good file still loads, and a weights file with a NaN is refused by load_module too.
  CHECK_NOTHROW(load_checkpoint(path, *twin, twin_opt));
  CHECK(snapshot(*twin) == snapshot(*model));
  StFile w;
  module_to_st(*model, "", w);
  w.tensors.at("3.weight").f32[0] = std::nanf("");
  save_safetensors(dir.file("nan_weights.safetensors"), w);
  auto third = make_mlp();
  CHECK_THROWS_WITH_AS(load_module(dir.file("nan_weights.safetensors"), *third),
                       doctest::Contains("tensor '3.weight' holds nan at index 0"), Error);
}
