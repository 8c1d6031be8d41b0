// The Chebyshev augmented-Lagrangian Method (mtl/methods/chebyshev_al.h): the tensor objective
// against the closed forms of mtl/methods/chebyshev.h and finite differences, the method's
// gradients, its errors and state, and a tiny training run; the CIFAR-10 reader and the
// Cifar10Mnist composition (datasets/cifar10.h) on generated files.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>

#include "datasets/cifar10.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/rng.h"
#include "mtl/methods/chebyshev_al.h"
#include "mtl/models/mdmtn.h"
#include "mtl/sparsity/sparsity.h"
#include "optim/adam.h"
#include "tests/gradcheck.h"

using namespace mt;

namespace {

const std::vector<Task> kTasks = {{"left", 10}, {"right", 10}};

ChebyshevConfig cfg3(std::vector<double> k = {0.01, 0.8, 0.19}) {
  ChebyshevConfig c;
  c.k = std::move(k);
  c.a = {0.05, 0.1, -0.2};
  c.eps = 0.03;  // large enough that the augmentation term shows in the gradients
  return c;
}

// Two tasks' labels in [0, 10) for n samples.
Targets random_labels(Rng& r, int n) {
  Targets y(2, std::vector<int32_t>(n));
  for (auto& yt : y)
    for (auto& v : yt.label) v = (int32_t)r.below(10);
  return y;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("chebyshev-al objective: value and gradient equal al_objective / al_gradient, both variants") {
  const ChebyshevConfig cfg = cfg3({0.2, 0.5, 0.3});
  for (AlVariant v : {AlVariant::Published, AlVariant::Standard}) {
    CAPTURE(al_variant_name(v));
    AlState st;
    st.lambda = {0.4, -0.1, 0.25};  // lambda_1 + mu c_1 < 0: an inactive constraint in "standard"
    st.mu = 0.7;
    st.rho = 2;
    const std::vector<double> fv = {1.3, 0.9, 2.1};
    const double tv = 0.6;
    std::vector<Tensor> f;
    for (double x : fv) {
      Tensor t = Tensor::scalar((float)x);
      t.requires_grad_();
      f.push_back(t);
    }
    Tensor t = Tensor::scalar((float)tv);
    t.requires_grad_();
    std::vector<Tensor> c;
    Tensor L = chebyshev_al_objective(v, cfg, st, f, t, &c);
    CHECK(L.dim() == 0);
    CHECK(L.item() == doctest::Approx(al_objective(v, cfg, st, fv, tv)).epsilon(1e-5));
    const std::vector<double> cv = chebyshev_constraints(cfg, fv, tv);
    REQUIRE(c.size() == 3);
    for (int i = 0; i < 3; i++) CHECK(c[i].item() == doctest::Approx(cv[i]).epsilon(1e-5));
    if (v == AlVariant::Standard) CHECK(st.lambda[1] + st.mu * cv[1] < 0);
    backward(L);
    std::vector<double> dLdf;
    double dLdt;
    al_gradient(v, cfg, st, fv, tv, dLdf, dLdt);
    for (int i = 0; i < 3; i++) CHECK(f[i].grad().item() == doctest::Approx(dLdf[i]).epsilon(1e-5));
    CHECK(t.grad().item() == doctest::Approx(dLdt).epsilon(1e-5));
    // finite differences (f and t as the inputs)
    std::vector<Tensor> in = f;
    in.push_back(t);
    testing::gradcheck(
        [&](const std::vector<Tensor>& x) {
          return chebyshev_al_objective(v, cfg, st, {x[0], x[1], x[2]}, x[3]);
        },
        in, 1e-2f, 1e-3);
  }
}

TEST_CASE("chebyshev-al: every bad input has a one-line message") {
  ChebyshevConfig ok = cfg3();
  auto msg = [&](ChebyshevConfig c, double mu, double rho, std::vector<double> l0 = {}) {
    return message_of([&] { make_chebyshev_al(2, c, AlVariant::Published, mu, rho, l0); });
  };
  CHECK(msg(cfg3({0.01, -0.2, 0.19}), 1, 2) == "preference k has a negative entry k_1 = -0.2");
  CHECK(msg(cfg3({0.5, 0.5}), 1, 2) == "preference k has 2 entries, expected 3 (sparsity + 2 tasks)");
  CHECK(msg(cfg3({0, 0, 0}), 1, 2) == "preference k is all zeros");
  CHECK(msg(cfg3({0.1, NAN, 0.2}), 1, 2) == "preference k has a non-finite entry k_1 = nan");
  ChebyshevConfig e = ok;
  e.eps = -1e-4;
  CHECK(msg(e, 1, 2) == "eps must be finite and >= 0, got -0.0001");
  CHECK(msg(ok, 0, 2) == "mu must be > 0, got 0");
  CHECK(msg(ok, -2.5e-8, 2) == "mu must be > 0, got -2.5e-08");
  CHECK(msg(ok, 1, 0.5) == "rho must be >= 1, got 0.5");
  CHECK(msg(ok, 1, 2, {0.5, 0.5}) == "lambda has 2 entries, expected 3");
  ChebyshevConfig a = ok;
  a.a = {0, 0};
  CHECK(msg(a, 1, 2) == "reference point a has 2 entries, expected 3");
  for (const std::string& s : {msg(cfg3({0, 0, 0}), 1, 2), msg(ok, 0, 2)}) CHECK(s.find('\n') == std::string::npos);
  CHECK(message_of([&] { make_chebyshev_al(2, ok, AlVariant::Published, 1, 2)->outer_update({1, 2}); }) ==
        "chebyshev-al: outer update needs 3 constraint values, got 2");
}

TEST_CASE("chebyshev-al method: gradients are those of sum_i dL/df_i f_i, t gets dL/dt") {
  // published: f_0 is a number (the reference's detached state_dict()), so the weights get
  // sum_{i>=1} dL/df_i grad f_i; standard, or published with set_f0_gradient(true), adds
  // dL/df_0 grad f_0
  for (const auto& vf : {std::pair{AlVariant::Published, false}, std::pair{AlVariant::Published, true},
                         std::pair{AlVariant::Standard, true}}) {
    const AlVariant variant = vf.first;  // (named copies: C++17 lambdas, as in CAPTURE, cannot capture bindings)
    const bool f0_grad = vf.second;
    CAPTURE(al_variant_name(variant));
    CAPTURE(f0_grad);
    manual_seed(3);
    auto m = make_model("mdmtn", kTasks, {1, 28, 28});
    auto method = make_chebyshev_al(2, cfg3(), variant, 0.5, 2);
    CHECK(method->f0_gradient() == (variant == AlVariant::Standard));
    method->set_f0_gradient(f0_grad);
    CHECK(method->name() == "chebyshev-al");
    auto params = method->parameters();
    REQUIRE(params.size() == 1);
    CHECK(params[0].first == "method.t");
    CHECK(params[0].second.dim() == 0);
    CHECK(method->state().lambda == std::vector<double>(3, 1.0 / 3));
    Rng r(4);
    const int n = 6;
    Tensor x = Tensor::randn({n, 1, 28, 28}, r);
    const Targets y = random_labels(r, n);
    m->zero_grad();
    StepStats st = method->compute_gradients(*m, x, y);
    REQUIRE(st.loss.size() == 2);
    REQUIRE(st.weight.size() == 2);
    const auto& w = method->last_weights();
    REQUIRE(w.size() == 3);
    CHECK(w[0] > 0.1);  // the f_0 term is large enough to show if it were (not) there
    CHECK(st.weight[0] == w[1]);
    CHECK(method->last_objectives()[0] == doctest::Approx(group_norm_sum_value(*m)).epsilon(1e-6));
    CHECK(params[0].second.grad().item() == doctest::Approx(method->last_dt()).epsilon(1e-5));
    auto grads = [&] {
      std::vector<float> g;
      for (const auto& [name, p] : m->named_parameters())
        for (float v : (p.grad().defined() ? p.grad().to_vector() : std::vector<float>(p.numel(), 0.f)))
          g.push_back(v);
      return g;
    };
    const std::vector<float> g_method = grads();
    // the same gradient from the linearisation sum_i w_i f_i
    m->zero_grad();
    Tensor z = m->shared(x);
    auto L = task_losses(*m, z, x, y);
    Tensor lin = L[0] * (float)w[1] + L[1] * (float)w[2];
    if (f0_grad) lin = lin + group_norm_sum(*m) * (float)w[0];
    backward(lin);
    const std::vector<float> g_lin = grads();
    REQUIRE(g_lin.size() == g_method.size());
    double worst = 0, scale = 1e-6;
    for (size_t i = 0; i < g_lin.size(); i++) {
      worst = std::max(worst, (double)std::fabs(g_lin[i] - g_method[i]));
      scale = std::max(scale, (double)std::fabs(g_lin[i]));
    }
    CHECK(worst / scale < 1e-4);
    // the batch's constraints are summed for the outer update
    CHECK(method->epoch_batches() == 1);
    CHECK(method->epoch_constraint_sum() == method->last_constraints());
  }
}

TEST_CASE("chebyshev-al method: outer update, epoch sums and state round trip") {
  manual_seed(5);
  auto method = make_chebyshev_al(2, cfg3(), AlVariant::Standard, 2.5e-8, 2);
  method->set_t(0.25);
  method->outer_update({1e6, -2e7, 3.0});
  // standard: lambda <- max(0, lambda + mu c), then mu <- rho mu
  CHECK(method->state().lambda[0] == doctest::Approx(1.0 / 3 + 2.5e-8 * 1e6));
  CHECK(method->state().lambda[1] == 0.0);
  CHECK(method->state().lambda[2] == doctest::Approx(1.0 / 3 + 7.5e-8));
  CHECK(method->state().mu == 5e-8);
  StFile f;
  method->save_state(f);
  auto other = make_chebyshev_al(2, cfg3(), AlVariant::Standard, 1, 3);
  other->load_state(f, "ck.safetensors");
  CHECK(other->state().lambda == method->state().lambda);  // exact, through the metadata
  CHECK(other->state().mu == method->state().mu);
  CHECK(other->state().rho == 2);
  CHECK(other->t() == 0.25);
  f.metadata["method.mu"] = "-1";
  CHECK(message_of([&] { other->load_state(f, "ck.safetensors"); }) == "ck.safetensors: mu must be > 0, got -1");
  f.tensors.erase("method.t");
  CHECK(message_of([&] { other->load_state(f, "ck.safetensors"); }).find("missing tensor 'method.t'") !=
        std::string::npos);
  // t starts at a standard normal draw of the global generator
  manual_seed(77);
  const double t1 = make_chebyshev_al(2, cfg3(), AlVariant::Published, 1, 2)->t();
  manual_seed(77);
  CHECK(make_chebyshev_al(2, cfg3(), AlVariant::Published, 1, 2)->t() == t1);
}

namespace {

struct TinyRun {
  std::vector<double> first_loss, last_loss;  // mean over the first / last 5 steps
  std::vector<double> last_c;                 // constraints at the last step
  double first_max_c = 0, t0 = 0, t = 0;
  bool weights_positive = true;               // every dL/df_i > 0 at every step
};

// MDMTN on 64 fixed random samples, k = (0.01, 0.8, 0.19), Adam lr 2.5e-3 on the model;
// t on its own Adam with lr_t.
TinyRun tiny_run(AlVariant v, double mu, double lr_t, int steps) {
  manual_seed(6);
  auto m = make_model("mdmtn", kTasks, {1, 28, 28});
  Rng r(7);
  const int n = 64;
  Tensor x = Tensor::randn({n, 1, 28, 28}, r);
  const Targets y = random_labels(r, n);
  ChebyshevConfig cfg;
  cfg.k = {0.01, 0.8, 0.19};
  auto method = make_chebyshev_al(2, cfg, v, mu, 2);
  method->set_t(0.0);
  Adam opt(m->named_parameters(), 2.5e-3);
  Adam opt_t(method->parameters(), lr_t);
  TinyRun run;
  run.first_loss.assign(2, 0.0);
  run.last_loss.assign(2, 0.0);
  for (int s = 0; s < steps; s++) {
    opt.zero_grad();
    opt_t.zero_grad();
    StepStats st = method->compute_gradients(*m, x, y);
    for (int t = 0; t < 2; t++) {
      if (s < 5) run.first_loss[t] += st.loss[t] / 5;
      if (s >= steps - 5) run.last_loss[t] += st.loss[t] / 5;
    }
    for (double w : method->last_weights()) run.weights_positive = run.weights_positive && w > 0;
    if (s == 0) run.first_max_c = *std::max_element(method->last_constraints().begin(), method->last_constraints().end());
    run.last_c = method->last_constraints();
    opt.step();
    opt_t.step();
  }
  run.t = method->t();
  return run;
}

}  // namespace

TEST_CASE("chebyshev-al: tiny MDMTN runs: the task losses go down; t tracks the largest term (standard)") {
  // published with the reference's mu = 2.5e-8: every objective keeps the weight
  // k_i (lambda_i + mu c_i) ~ k_i / 3 > 0, so both task losses go down
  TinyRun p = tiny_run(AlVariant::Published, 2.5e-8, 2.5e-3, 40);
  MESSAGE("published: losses " << p.first_loss[0] << "," << p.first_loss[1] << " -> " << p.last_loss[0] << ","
                               << p.last_loss[1] << "; c " << p.last_c[0] << "," << p.last_c[1] << "," << p.last_c[2]
                               << "; t " << p.t);
  CHECK(p.weights_positive);
  CHECK(p.last_loss[0] < p.first_loss[0]);
  CHECK(p.last_loss[1] < p.first_loss[1]);
  CHECK(p.t > 0);  // sum_i c_i > 0 at the start: t rises
  // standard with a large mu: t settles where sum_i max(0, lambda_i + mu c_i) = 1, i.e.
  // max_i c_i = O(1/mu) and the other constraints inactive; the task whose term is the
  // largest (left, k = 0.8) is trained
  TinyRun s = tiny_run(AlVariant::Standard, 10.0, 0.1, 40);
  MESSAGE("standard: losses " << s.first_loss[0] << "," << s.first_loss[1] << " -> " << s.last_loss[0] << ","
                              << s.last_loss[1] << "; c " << s.last_c[0] << "," << s.last_c[1] << "," << s.last_c[2]
                              << "; max c at start " << s.first_max_c << "; t " << s.t);
  const double max_c = *std::max_element(s.last_c.begin(), s.last_c.end());
  CHECK(std::fabs(max_c) < 0.1 * s.first_max_c);
  for (double c : s.last_c) CHECK(c <= 0.1 * s.first_max_c);
  CHECK(s.last_loss[0] < s.first_loss[0]);
}

// ---- CIFAR-10 reader and the Cifar10Mnist composition -----------------------------------

namespace {

std::string tmp_dir() {
  char tmpl[] = "/tmp/mt_cifar_XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  return tmpl;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}

// n records: label i % 10, pixel value (i + channel * 7 + p) % 256
std::vector<uint8_t> cifar_records(int n, int label_offset = 0) {
  std::vector<uint8_t> b;
  for (int i = 0; i < n; i++) {
    b.push_back((uint8_t)((i + label_offset) % 10));
    for (int ch = 0; ch < 3; ch++)
      for (int p = 0; p < 1024; p++) b.push_back((uint8_t)((i + ch * 7 + p) % 256));
  }
  return b;
}

}  // namespace

TEST_CASE("cifar10: reader, split files and errors") {
  const std::string dir = tmp_dir();
  for (int k = 1; k <= 5; k++) write_bytes(dir + "/data_batch_" + std::to_string(k) + ".bin", cifar_records(2, k));
  write_bytes(dir + "/test_batch.bin", cifar_records(3));
  Cifar10Images te = read_cifar10_file(dir + "/test_batch.bin");
  CHECK(te.n == 3);
  CHECK(te.labels == std::vector<uint8_t>{0, 1, 2});
  CHECK(te.pixels[3072 + 1024 + 5] == (uint8_t)(1 + 7 + 5));  // image 1, green, pixel 5
  Cifar10Images tr = load_cifar10(dir, true);
  CHECK(tr.n == 10);
  CHECK(tr.labels[2] == 2);  // batch 2's first record
  CHECK(load_cifar10(dir, false).n == 3);

  auto bad = cifar_records(2);
  bad.pop_back();
  write_bytes(dir + "/short.bin", bad);
  CHECK(message_of([&] { read_cifar10_file(dir + "/short.bin"); }) ==
        dir + "/short.bin: size 6145 bytes is not a multiple of 3073 (CIFAR-10 records of 1 label byte + 3072 pixel bytes)");
  auto lab = cifar_records(2);
  lab[3073] = 12;
  write_bytes(dir + "/label.bin", lab);
  CHECK(message_of([&] { read_cifar10_file(dir + "/label.bin"); }) ==
        "label 12 out of range [0,10) at record 1 in " + dir + "/label.bin");
  std::remove((dir + "/data_batch_4.bin").c_str());
  const std::string miss = message_of([&] { load_cifar10(dir, true); });
  CHECK(miss.find("missing " + dir + "/data_batch_4.bin") != std::string::npos);
  CHECK(miss.find("data_batch_1.bin, data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin, "
                  "test_batch.bin") != std::string::npos);
  CHECK(message_of([&] { read_cifar10_file(dir + "/none.bin"); }) ==
        dir + "/none.bin: cannot open: No such file or directory");
  for (const char* f : {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_5.bin",
                        "test_batch.bin", "short.bin", "label.bin"})
    std::remove((dir + "/" + f).c_str());
  rmdir(dir.c_str());
}

TEST_CASE("cifar10mnist: digit resized to 32x32 and pasted at 50% where it is non-zero") {
  Cifar10Images c;
  c.n = 2;
  c.labels = {3, 7};
  c.pixels.assign(2 * 3072, 0);
  for (int i = 0; i < 2 * 3072; i++) c.pixels[i] = (uint8_t)(40 + (i % 3072) / 1024 * 50 + i / 3072);  // R 40, G 90, B 140
  LabeledImages d;
  d.images.n = 3;  // one extra digit is fine
  d.images.rows = d.images.cols = 28;
  d.images.pixels.assign(3 * 784, 0);
  d.num_classes = 10;
  d.labels = {5, 9, 1};
  // digit 0: a 10x10 block of 201 at rows/cols 10..19
  for (int y = 10; y < 20; y++)
    for (int x = 10; x < 20; x++) d.images.pixels[y * 28 + x] = 201;
  MultiImageSet s = compose_cifar10_mnist(c, d);
  CHECK(s.n == 2);
  CHECK(s.c == 3);
  CHECK(s.h == 32);
  CHECK(s.mean == 0.5f);
  CHECK(s.std == 0.5f);
  CHECK(s.task_names == std::vector<std::string>{"object", "digit"});
  CHECK(s.labels[0] == std::vector<int32_t>{3, 7});
  CHECK(s.labels[1] == std::vector<int32_t>{5, 9});
  // output (17, 17) reads source (14.8125, 14.8125): inside the block -> digit 201
  const int in = 17 * 32 + 17;
  CHECK(s.pixels[in] == (40 + 201 + 1) / 2);           // red: 121
  CHECK(s.pixels[1024 + in] == (90 + 201 + 1) / 2);    // green: 146
  CHECK(s.pixels[2048 + in] == (140 + 201 + 1) / 2);   // blue: 171
  // output (2, 2): far from the block -> the CIFAR pixel unchanged
  const int bg = 2 * 32 + 2;
  CHECK(s.pixels[bg] == 40);
  CHECK(s.pixels[2048 + bg] == 140);
  // image 1 has an all-zero digit: exactly the CIFAR image
  for (int k = 0; k < 3072; k++) CHECK(s.pixels[3072 + k] == c.pixels[3072 + k]);
  // the resize itself: a constant image stays constant, an edge is blended
  uint8_t out[1024];
  resize_bilinear_to_32(d.images.pixels.data(), 28, 28, out);
  CHECK(out[in] == 201);
  CHECK(out[bg] == 0);
  // block edge: output col 11 reads source col 9.5625 -> 0.5625 * 201 = 113.06 -> 113 (at row 17)
  CHECK(out[17 * 32 + 11] == 113);
  // too few digits
  d.images.n = 1;
  d.images.pixels.resize(784);
  d.labels.resize(1);
  CHECK(message_of([&] { compose_cifar10_mnist(c, d); }).find("1 digits for 2 CIFAR-10 images") != std::string::npos);
}
