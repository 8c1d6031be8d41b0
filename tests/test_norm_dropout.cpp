// dropout, dropout2d and batch_norm2d: statistics of the masks, running
// statistics against hand-computed values, finite-difference gradients, and
// the errors.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/parallel.h"
#include "tests/gradcheck.h"

using namespace mt;
using mt::testing::gradcheck;
using mt::testing::param;

namespace {

void check_error(const std::function<void()>& f, std::initializer_list<const char*> parts) {
  std::string msg;
  try {
    f();
  } catch (const Error& e) {
    msg = e.what();
  }
  INFO("message: '" << msg << "'");
  REQUIRE(!msg.empty());
  for (const char* p : parts) CHECK(msg.find(p) != std::string::npos);
}

struct ThreadsGuard {
  int prev = num_threads();
  ~ThreadsGuard() { set_num_threads(prev); }
};

}  // namespace

TEST_SUITE("norm_dropout") {

TEST_CASE("dropout zeroes about p of the elements and scales the rest by 1/(1-p)") {
  manual_seed(1);
  const float p = 0.3f;
  Tensor x = Tensor::ones({200000});
  Tensor y = dropout(x, p, true);
  int64_t zeros = 0;
  bool scaled = true;
  for (float v : y.to_vector()) {
    if (v == 0.f)
      zeros++;
    else
      scaled = scaled && v == 1.f / (1.f - p);
  }
  CHECK(scaled);
  CHECK(std::fabs((double)zeros / x.numel() - p) < 0.01);
}

TEST_CASE("dropout2d zeroes whole channels") {
  manual_seed(2);
  const float p = 0.4f;
  Rng rng(3);
  Tensor x = Tensor::uniform({64, 32, 3, 4}, 1, 2, rng);  // never zero
  Tensor y = dropout2d(x, p, true);
  const float* X = x.data();
  const float* Y = y.data();
  int dropped = 0;
  bool whole = true;
  for (int q = 0; q < 64 * 32; q++) {
    const bool zero = Y[q * 12] == 0.f;
    dropped += zero;
    for (int i = 0; i < 12; i++)
      whole = whole && (zero ? Y[q * 12 + i] == 0.f : Y[q * 12 + i] == X[q * 12 + i] * (1.f / (1.f - p)));
  }
  CHECK(whole);
  CHECK(std::fabs(dropped / 2048.0 - p) < 0.05);
}

TEST_CASE("dropout is the identity in eval mode and at p = 0") {
  Rng rng(4);
  Tensor x = Tensor::uniform({4, 3, 2, 2}, -1, 1, rng);
  CHECK(dropout(x, 0.5f, false).same(x));
  CHECK(dropout(x, 0.f, true).same(x));
  CHECK(dropout2d(x, 0.5f, false).same(x));
  CHECK(dropout2d(x, 0.f, true).same(x));
}

TEST_CASE("dropout masks depend on the seed only, not on the thread count") {
  ThreadsGuard guard;
  Tensor x = Tensor::ones({8, 16, 64, 64});  // large enough to run in parallel chunks
  set_num_threads(1);
  manual_seed(9);
  Tensor a = dropout(x, 0.5f, true), c = dropout2d(x, 0.5f, true);
  set_num_threads(2);
  manual_seed(9);
  Tensor b = dropout(x, 0.5f, true), d = dropout2d(x, 0.5f, true);
  CHECK(std::memcmp(a.data(), b.data(), sizeof(float) * a.numel()) == 0);
  CHECK(std::memcmp(c.data(), d.data(), sizeof(float) * c.numel()) == 0);
}

TEST_CASE("dropout gradients match finite differences (fixed mask)") {
  Rng rng(5);
  gradcheck([](const std::vector<Tensor>& t) { manual_seed(42); return dropout(t[0], 0.4f, true); },
            {param({3, 4, 5}, rng)});
  gradcheck([](const std::vector<Tensor>& t) { manual_seed(43); return dropout2d(t[0], 0.5f, true); },
            {param({3, 4, 2, 3}, rng)});
}

TEST_CASE("dropout errors name the op") {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  check_error([&] { dropout(x, 1.f, true); }, {"dropout", "p must be in [0, 1)"});
  check_error([&] { dropout(x, -0.1f, true); }, {"dropout", "p must be in [0, 1)"});
  check_error([&] { dropout(x, 1.5f, false); }, {"dropout", "p must be in [0, 1)"});
  check_error([&] { dropout2d(x, 1.f, true); }, {"dropout2d", "p must be in [0, 1)"});
  check_error([&] { dropout2d(Tensor::zeros({5}), 0.5f, true); }, {"dropout2d", "[5]"});
}

// x [N=2, C=2, H=1, W=2]. Channel 0 holds {1, 2, 3, 6}: mean 3, biased variance
// 3.5, unbiased 14/3. Channel 1 holds {0, 0, 2, -2}: mean 0, variances 2 and 8/3.
TEST_CASE("batch_norm2d training: batch statistics, running statistics updated as PyTorch") {
  Tensor x = Tensor::from({2, 2, 1, 2}, {1, 2, 0, 0, 3, 6, 2, -2});
  Tensor gamma = Tensor::from({2}, {2.f, 1.f}), beta = Tensor::from({2}, {0.5f, -1.f});
  Tensor rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  const float eps = 1e-5f;
  Tensor y = batch_norm2d(x, gamma, beta, rm, rv, true, 0.1f, eps);
  CHECK(rm.data()[0] == doctest::Approx(0.3).epsilon(1e-6));
  CHECK(rm.data()[1] == doctest::Approx(0.0));
  CHECK(rv.data()[0] == doctest::Approx(0.9 + 0.1 * 14.0 / 3.0).epsilon(1e-6));
  CHECK(rv.data()[1] == doctest::Approx(0.9 + 0.1 * 8.0 / 3.0).epsilon(1e-6));
  const double mean[2] = {3, 0}, var[2] = {3.5, 2}, g[2] = {2, 1}, b[2] = {0.5, -1};
  const float* X = x.data();
  for (int i = 0; i < 8; i++) {
    const int c = (i / 2) % 2;
    const double want = (X[i] - mean[c]) / std::sqrt(var[c] + eps) * g[c] + b[c];
    CHECK(y.data()[i] == doctest::Approx(want).epsilon(1e-5));
  }

  SUBCASE("eval then uses the running statistics") {
    Tensor ye = batch_norm2d(x, gamma, beta, rm, rv, false, 0.1f, eps);
    const float rmean[2] = {rm.data()[0], rm.data()[1]}, rvar[2] = {rv.data()[0], rv.data()[1]};
    for (int i = 0; i < 8; i++) {
      const int c = (i / 2) % 2;
      const double want = (X[i] - rmean[c]) / std::sqrt(rvar[c] + eps) * g[c] + b[c];
      CHECK(ye.data()[i] == doctest::Approx(want).epsilon(1e-5));
    }
    CHECK(rm.data()[0] == rmean[0]);  // eval does not move them
    CHECK(rv.data()[0] == rvar[0]);
  }
}

TEST_CASE("batch_norm2d without affine parameters or running statistics") {
  Rng rng(6);
  Tensor x = Tensor::uniform({4, 3, 5, 5}, -2, 3, rng);
  Tensor none;
  Tensor y = batch_norm2d(x, Tensor(), Tensor(), none, none, true);
  for (int c = 0; c < 3; c++) {  // each channel comes out with mean 0 and (biased) variance ~1
    double s = 0, s2 = 0;
    for (int n = 0; n < 4; n++)
      for (int i = 0; i < 25; i++) {
        const double v = y.data()[(n * 3 + c) * 25 + i];
        s += v;
        s2 += v * v;
      }
    CHECK(std::fabs(s / 100) < 1e-5);
    CHECK(s2 / 100 == doctest::Approx(1.0).epsilon(1e-3));
  }
}

TEST_CASE("batch_norm2d gradients match finite differences (train and eval)") {
  Rng rng(7);
  Tensor rm = Tensor::uniform({3}, -0.5f, 0.5f, rng), rv = Tensor::uniform({3}, 0.5f, 1.5f, rng);
  gradcheck([&](const std::vector<Tensor>& t) { return batch_norm2d(t[0], t[1], t[2], rm, rv, true); },
            {param({3, 3, 2, 3}, rng, -2, 2), param({3}, rng, 0.5f, 1.5f), param({3}, rng)});
  gradcheck([&](const std::vector<Tensor>& t) { return batch_norm2d(t[0], t[1], t[2], rm, rv, false); },
            {param({3, 3, 2, 3}, rng, -2, 2), param({3}, rng, 0.5f, 1.5f), param({3}, rng)});
  Tensor none;  // no affine: the gradient w.r.t. x alone
  gradcheck([&](const std::vector<Tensor>& t) { return batch_norm2d(t[0], Tensor(), Tensor(), none, none, true); },
            {param({2, 2, 3, 2}, rng, -2, 2)});
}

TEST_CASE("batch_norm2d is bit-identical at 1, 2, 3 and 5 threads, and in blocks of any size") {
  // The threads take ranges of channels (6 channels: 6, 3 + 3, 2 + 2 + 2);
  // [64, 6, 32, 32] has 256 KB a channel: blocks of 256 KB walk one channel
  // a block, of 600 KB two, and the default (32 MB) the whole range at once.
  ThreadsGuard guard;
  struct BlockBytes {
    ~BlockBytes() { batch_norm2d_block_bytes(0); }
  } restore;
  for (const Shape& shape : {Shape{16, 6, 7, 7}, Shape{64, 6, 32, 32}})
    for (bool act : {false, true}) {
      Rng rng(8);
      Tensor x0 = Tensor::uniform(shape, -1, 1, rng), up = Tensor::uniform(shape, -1, 1, rng);
      Tensor r0 = Tensor::uniform(shape, -1, 1, rng);
      auto run = [&](int threads) {
        set_num_threads(threads);
        Tensor x = x0.clone(), r = r0.clone(), gamma = Tensor::ones({6}), beta = Tensor::zeros({6});
        x.requires_grad_();
        r.requires_grad_();
        gamma.requires_grad_();
        beta.requires_grad_();
        Tensor rm = Tensor::zeros({6}), rv = Tensor::ones({6});
        // act: relu(bn(x) + r), the residual block's fused op
        Tensor y = act ? batch_norm2d_act(x, gamma, beta, rm, rv, true, 0.1f, 1e-5f, r, true)
                       : batch_norm2d(x, gamma, beta, rm, rv, true);
        backward(y, up);
        std::vector<Tensor> out{y.detach(), x.grad(), gamma.grad(), beta.grad(), rm, rv};
        if (act) out.push_back(r.grad());
        return out;
      };
      batch_norm2d_block_bytes(0);
      const std::vector<Tensor> one = run(1);
      for (int64_t block : {int64_t(0), int64_t(256) << 10, int64_t(600) << 10})
        for (int threads : {1, 2, 3, 5}) {
          if (block == 0 && threads == 1) continue;  // `one` itself
          batch_norm2d_block_bytes(block);
          const std::vector<Tensor> other = run(threads);
          for (size_t i = 0; i < one.size(); i++) {
            INFO("shape " << shape_str(shape) << " act " << act << " block bytes " << block << " threads " << threads
                          << " result " << i);
            CHECK(std::memcmp(one[i].data(), other[i].data(), sizeof(float) * one[i].numel()) == 0);
          }
        }
    }
}

TEST_CASE("batch_norm2d errors name the op and the shapes") {
  Tensor x = Tensor::zeros({2, 3, 4, 4});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3}), none;
  check_error([&] { batch_norm2d(x, Tensor::ones({4}), Tensor(), rm, rv, true); },
              {"batch_norm2d", "gamma [4]", "[3]", "[2,3,4,4]"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor::ones({2}), rm, rv, true); }, {"batch_norm2d", "beta [2]"});
  Tensor rm_bad = Tensor::zeros({5});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), rm_bad, rv, true); }, {"batch_norm2d", "running_mean [5]"});
  check_error([&] { batch_norm2d(Tensor::zeros({2, 3, 4}), Tensor(), Tensor(), rm, rv, true); },
              {"batch_norm2d", "[2,3,4]", "4-D"});
  check_error([&] { batch_norm2d(Tensor::zeros({1, 3, 1, 1}), Tensor(), Tensor(), rm, rv, true); },
              {"batch_norm2d", "more than one value per channel"});
  check_error([&] { batch_norm2d(x, Tensor(), Tensor(), none, none, false); },
              {"batch_norm2d", "eval mode needs running_mean and running_var"});
  check_error([&] { batch_norm2d_act(x, Tensor(), Tensor(), rm, rv, true, 0.1f, 1e-5f, Tensor::zeros({2, 3, 4, 5}), true); },
              {"batch_norm2d", "residual [2,3,4,5]", "[2,3,4,4]"});
}

// The fused op against relu(add(batch_norm2d(x), r)): forward, every gradient
// and the running statistics, bit for bit; planes of 1, 7, 16, 49, 50 and 300
// values (the sixteen-lane loops' tails, and past one float block of 256),
// train and eval, with and without either part.
TEST_CASE("batch_norm2d_act gives the bits of relu(add(batch_norm2d(x), r))") {
  using mt::testing::same_bits;
  Rng rng(9);
  for (int hw : {1, 7, 16, 49, 50, 300})
    for (int variant = 0; variant < 8; variant++) {
      const bool relu_on = variant & 1, res_on = variant & 2, training = !(variant & 4);
      INFO("plane " << hw << " relu " << relu_on << " residual " << res_on << " training " << training);
      const Shape shape = {3, 4, 1, hw};
      Tensor x0 = Tensor::uniform(shape, -2, 2, rng), r0 = Tensor::uniform(shape, -1, 1, rng);
      Tensor g0 = Tensor::uniform({4}, 0.5f, 1.5f, rng), b0 = Tensor::uniform({4}, -0.5f, 0.5f, rng);
      Tensor up = Tensor::uniform(shape, -1, 1, rng);
      Tensor rm0 = Tensor::uniform({4}, -0.5f, 0.5f, rng), rv0 = Tensor::uniform({4}, 0.5f, 1.5f, rng);
      auto run = [&](bool fused) {
        Tensor x = x0.clone().requires_grad_(), r = r0.clone().requires_grad_();
        Tensor g = g0.clone().requires_grad_(), b = b0.clone().requires_grad_();
        Tensor rm = rm0.clone(), rv = rv0.clone();
        Tensor y;
        if (fused) {
          y = batch_norm2d_act(x, g, b, rm, rv, training, 0.1f, 1e-5f, res_on ? r : Tensor(), relu_on);
        } else {
          y = batch_norm2d(x, g, b, rm, rv, training, 0.1f, 1e-5f);
          if (res_on) y = add(y, r);
          if (relu_on) y = relu(y);
        }
        backward(y, up);
        std::vector<Tensor> out = {y.detach(), x.grad(), g.grad(), b.grad(), rm, rv};
        if (res_on) out.push_back(r.grad());
        return out;
      };
      const std::vector<Tensor> fused = run(true), plain = run(false);
      for (size_t i = 0; i < fused.size(); i++) {
        INFO("result " << i);
        CHECK(same_bits(fused[i], plain[i]));
      }
    }
}

TEST_CASE("batch_norm2d_act gradients match finite differences") {
  Rng rng(10);
  Tensor rm = Tensor::uniform({3}, -0.5f, 0.5f, rng), rv = Tensor::uniform({3}, 0.5f, 1.5f, rng);
  // inputs kept away from the relu's kink: the residual shifts most sums far from 0
  for (bool training : {true, false})
    gradcheck(
        [&](const std::vector<Tensor>& t) {
          return batch_norm2d_act(t[0], t[1], t[2], rm, rv, training, 0.1f, 1e-5f, t[3], true);
        },
        {param({3, 3, 2, 3}, rng, -2, 2), param({3}, rng, 0.5f, 1.5f), param({3}, rng), param({3, 3, 2, 3}, rng, 1, 3)});
}

// Training-mode batch norm against the definitions evaluated in double, on
// planes past one float block (256 values) and a 56 x 56 plane: statistics,
// output and every gradient; and the statistics alone where the mean is far
// from 0 against the spread (1000 + U(-0.01, 0.01), mean / std ~ 2e5: the case
// where E[x^2] - mean^2 would cancel) or the planes' means differ widely (the
// per-plane centring). Output and gradients are not checked there: they go
// through the float mean and y = x * scale + shift, whose rounding at such
// means (ulp(1000) = 6e-5 against a spread of 0.01) is the float format's.
TEST_CASE("batch_norm2d training against a double-precision reference") {
  Rng rng(11);
  struct Case {
    int N, C, H, W;
    float centre, spread, plane_step;  // x = centre + n * plane_step + U(-spread, spread)
    bool stats_only;
  };
  for (const Case k : {Case{3, 2, 15, 20, 0.f, 2.f, 0.f, false}, Case{2, 2, 56, 56, 5.f, 1.f, 0.f, false},
                       Case{4, 3, 17, 17, -3.f, 0.5f, 40.f, false}, Case{2, 2, 56, 56, 1000.f, 0.01f, 0.f, true},
                       Case{5, 2, 7, 7, 1e4f, 1.f, 0.f, true}, Case{4, 2, 20, 20, 0.f, 0.1f, 1e3f, true}}) {
    INFO("shape [" << k.N << "," << k.C << "," << k.H << "," << k.W << "] centre " << k.centre << " spread " << k.spread
                   << " plane step " << k.plane_step);
    const Shape shape = {k.N, k.C, k.H, k.W};
    const int64_t hw = (int64_t)k.H * k.W, M = k.N * hw;
    Tensor x = Tensor::uniform(shape, -k.spread, k.spread, rng);
    for (int n = 0; n < k.N; n++)
      for (int64_t i = 0; i < k.C * hw; i++) x.data()[n * k.C * hw + i] += k.centre + n * k.plane_step;
    x.requires_grad_();
    Tensor gamma = Tensor::uniform({k.C}, 0.5f, 1.5f, rng).requires_grad_();
    Tensor beta = Tensor::uniform({k.C}, -0.5f, 0.5f, rng).requires_grad_();
    Tensor up = Tensor::uniform(shape, -1, 1, rng);
    Tensor rm = Tensor::zeros({k.C}), rv = Tensor::zeros({k.C});
    const float eps = 1e-5f;
    Tensor y = batch_norm2d(x, gamma, beta, rm, rv, true, /*momentum=*/1.f, eps);
    backward(y, up);
    for (int c = 0; c < k.C; c++) {
      INFO("channel " << c);
      auto at = [&](int n, int64_t i) { return (int64_t)(n * k.C + c) * hw + i; };
      double mean = 0, var = 0;
      for (int n = 0; n < k.N; n++)
        for (int64_t i = 0; i < hw; i++) mean += x.data()[at(n, i)];
      mean /= (double)M;
      for (int n = 0; n < k.N; n++)
        for (int64_t i = 0; i < hw; i++) var += std::pow(x.data()[at(n, i)] - mean, 2);
      var /= (double)M;
      const double is = 1 / std::sqrt(var + eps), G = gamma.data()[c], B = beta.data()[c];
      CHECK(rm.data()[c] == doctest::Approx(mean).epsilon(1e-6));
      CHECK(rv.data()[c] == doctest::Approx(var * M / (M - 1)).epsilon(1e-4));
      if (k.stats_only) continue;
      double sg = 0, sgx = 0, y_err = 0, dx_err = 0, dx_max = 0;
      for (int n = 0; n < k.N; n++)
        for (int64_t i = 0; i < hw; i++) {
          const double xh = (x.data()[at(n, i)] - mean) * is, g = up.data()[at(n, i)];
          sg += g, sgx += g * xh;
          y_err = std::max(y_err, std::fabs(y.data()[at(n, i)] - (G * xh + B)));
        }
      for (int n = 0; n < k.N; n++)
        for (int64_t i = 0; i < hw; i++) {
          const double xh = (x.data()[at(n, i)] - mean) * is, g = up.data()[at(n, i)];
          const double dx = G * is * (g - sg / M - xh * sgx / M);
          dx_err = std::max(dx_err, std::fabs(x.grad().data()[at(n, i)] - dx));
          dx_max = std::max(dx_max, std::fabs(dx));
        }
      CHECK(y_err < 1e-5);
      CHECK(dx_err <= 1e-5 * dx_max);
      CHECK(beta.grad().data()[c] == doctest::Approx(sg).epsilon(1e-5));
      CHECK(gamma.grad().data()[c] == doctest::Approx(sgx).epsilon(1e-5));
    }
  }
}

}  // TEST_SUITE
