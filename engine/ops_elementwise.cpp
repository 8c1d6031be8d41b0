// Elementwise ops, each forward with its backward beside it.
// Binary ops broadcast numpy-style; same-shape operands take a flat fast path.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/parallel.h"

namespace mt {

namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per parallel chunk

// Index map for broadcasting: out index -> a index, b index.
struct Broadcast {
  Shape out;
  std::vector<int64_t> sa, sb, so;  // strides (0 on a broadcast dim), padded to out's rank
  bool same = false;

  Broadcast(const char* op, const Shape& a, const Shape& b) {
    same = a == b;
    const size_t r = std::max(a.size(), b.size());
    out.assign(r, 1);
    Shape pa(r, 1), pb(r, 1);
    std::copy(a.begin(), a.end(), pa.begin() + (r - a.size()));
    std::copy(b.begin(), b.end(), pb.begin() + (r - b.size()));
    for (size_t i = 0; i < r; i++) {
      MT_CHECK(pa[i] == pb[i] || pa[i] == 1 || pb[i] == 1, op,
            "shapes " + shape_str(a) + " and " + shape_str(b) + " do not broadcast");
      out[i] = pa[i] == 1 ? pb[i] : pa[i];
    }
    sa = strides(pa);
    sb = strides(pb);
    so = strides(out);
  }
  static std::vector<int64_t> strides(const Shape& s) {
    std::vector<int64_t> st(s.size());
    int64_t acc = 1;
    for (size_t i = s.size(); i-- > 0;) {
      st[i] = s[i] == 1 ? 0 : acc;
      acc *= s[i];
    }
    return st;
  }
  // The a and b offsets of flat output index i.
  void map(int64_t i, int64_t& ia, int64_t& ib) const {
    ia = ib = 0;
    for (size_t d = 0; d < out.size(); d++) {
      const int64_t full = d + 1 < out.size() ? prod_from(d + 1) : 1;
      const int64_t k = (i / full) % out[d];
      ia += k * sa[d];
      ib += k * sb[d];
    }
  }
  int64_t prod_from(size_t d) const {
    int64_t p = 1;
    for (size_t j = d; j < out.size(); j++) p *= out[j];
    return p;
  }
};

// z = f(x, y) with dz/dx = dfx(x, y, z), dz/dy = dfy(x, y, z).
template <class F, class FX, class FY>
Tensor binary(const char* op, const Tensor& a, const Tensor& b, F f, FX dfx, FY dfy) {
  MT_CHECK(a.defined() && b.defined(), op, "undefined operand");
  Broadcast bc(op, a.shape(), b.shape());
  Tensor out = Tensor::empty(bc.out);
  const float *A = a.data(), *B = b.data();
  float* O = out.data();
  const int64_t n = out.numel();
  if (bc.same) {
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
      for (int64_t i = s; i < e; i++) O[i] = f(A[i], B[i]);
    });
  } else {
    for (int64_t i = 0; i < n; i++) {
      int64_t ia, ib;
      bc.map(i, ia, ib);
      O[i] = f(A[ia], B[ib]);
    }
  }
  if (any_requires_grad({&a, &b})) {
    auto ga = grad_target(a), gb = grad_target(b);
    SavedOutput so(out);
    record(out, op, [=](const Tensor& g) {
      const float *A = a.data(), *B = b.data(), *O = so.data(), *G = g.data();
      float* dA = ga ? acc_grad(ga) : nullptr;
      float* dB = gb ? acc_grad(gb) : nullptr;
      if (bc.same) {
        parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
          for (int64_t i = s; i < e; i++) {
            if (dA) dA[i] += G[i] * dfx(A[i], B[i], O[i]);
            if (dB) dB[i] += G[i] * dfy(A[i], B[i], O[i]);
          }
        });
      } else {  // serial: broadcast dims accumulate into shared entries
        for (int64_t i = 0; i < n; i++) {
          int64_t ia, ib;
          bc.map(i, ia, ib);
          if (dA) dA[ia] += G[i] * dfx(A[ia], B[ib], O[i]);
          if (dB) dB[ib] += G[i] * dfy(A[ia], B[ib], O[i]);
        }
      }
    });
  }
  return out;
}

// y = f(x) with dy/dx = df(x, y).
template <class F, class DF>
Tensor unary(const char* op, const Tensor& a, F f, DF df) {
  MT_CHECK(a.defined(), op, "undefined operand");
  Tensor out = Tensor::empty(a.shape());
  const float* A = a.data();
  float* O = out.data();
  const int64_t n = a.numel();
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; i++) O[i] = f(A[i]);
  });
  if (any_requires_grad({&a})) {
    auto ga = grad_target(a);
    SavedOutput so(out);
    record(out, op, [=](const Tensor& g) {
      const float *A = a.data(), *O = so.data(), *G = g.data();
      float* dA = acc_grad(ga);
      parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; i++) dA[i] += G[i] * df(A[i], O[i]);
      });
    });
  }
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return binary("add", a, b, [](float x, float y) { return x + y; },
                [](float, float, float) { return 1.f; }, [](float, float, float) { return 1.f; });
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary("sub", a, b, [](float x, float y) { return x - y; },
                [](float, float, float) { return 1.f; }, [](float, float, float) { return -1.f; });
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary("mul", a, b, [](float x, float y) { return x * y; },
                [](float, float y, float) { return y; }, [](float x, float, float) { return x; });
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary("div", a, b, [](float x, float y) { return x / y; },
                [](float, float y, float) { return 1.f / y; }, [](float, float y, float z) { return -z / y; });
}

Tensor neg(const Tensor& a) {
  return unary("neg", a, [](float x) { return -x; }, [](float, float) { return -1.f; });
}
Tensor add_scalar(const Tensor& a, float s) {
  return unary("add_scalar", a, [s](float x) { return x + s; }, [](float, float) { return 1.f; });
}
Tensor mul_scalar(const Tensor& a, float s) {
  return unary("mul_scalar", a, [s](float x) { return x * s; }, [s](float, float) { return s; });
}
Tensor pow_scalar(const Tensor& a, float p) {
  return unary("pow_scalar", a, [p](float x) { return std::pow(x, p); },
               [p](float x, float) { return p * std::pow(x, p - 1.f); });
}
Tensor exp(const Tensor& a) {
  return unary("exp", a, [](float x) { return std::exp(x); }, [](float, float y) { return y; });
}
Tensor log(const Tensor& a) {
  return unary("log", a, [](float x) { return std::log(x); }, [](float x, float) { return 1.f / x; });
}
Tensor sqrt(const Tensor& a) {
  return unary("sqrt", a, [](float x) { return std::sqrt(x); }, [](float, float y) { return 0.5f / y; });
}
Tensor square(const Tensor& a) {
  return unary("square", a, [](float x) { return x * x; }, [](float x, float) { return 2.f * x; });
}
Tensor abs(const Tensor& a) {  // subgradient 0 at 0
  return unary("abs", a, [](float x) { return std::fabs(x); },
               [](float x, float) { return x > 0 ? 1.f : (x < 0 ? -1.f : 0.f); });
}
// relu has its own loops: the generic ones compile its mask to a branch, and on
// real activations (half of them negative, at random) the mispredictions cost
// more than the arithmetic. Written as selects on restrict pointers, both loops
// vectorise. The gradient is G where x > 0 and 0 elsewhere (PyTorch's
// threshold_backward): for finite G the generic G * mask's very numbers, and a
// NaN or inf in G where x <= 0 is dropped rather than turned into a NaN.
static void relu_range(const float* __restrict A, float* __restrict O, int64_t s, int64_t e) {
#pragma omp simd
  for (int64_t i = s; i < e; i++) O[i] = A[i] > 0 ? A[i] : 0.f;
}
// G[i] is loaded whatever the mask (a conditional load kept GCC from
// vectorising); into a fresh buffer (grad_buffer) the loop writes 0.f + the
// selected value, the select done on the bits (as a float select, GCC moves
// the add into one arm and keeps a branch: the add might trap).
static void relu_backward_range(const float* __restrict A, const float* __restrict G, float* __restrict dA, int64_t s,
                                int64_t e, bool fresh) {
  if (fresh) {
#pragma omp simd
    for (int64_t i = s; i < e; i++) {
      const float g = G[i];
      uint32_t bits;
      std::memcpy(&bits, &g, sizeof bits);
      bits &= A[i] > 0 ? 0xffffffffu : 0u;  // g, or +0
      float v;
      std::memcpy(&v, &bits, sizeof v);
      dA[i] = 0.f + v;
    }
  } else {
#pragma omp simd
    for (int64_t i = s; i < e; i++) {
      const float g = G[i];
      dA[i] += A[i] > 0 ? g : 0.f;
    }
  }
}

Tensor relu(const Tensor& a) {
  MT_CHECK(a.defined(), "relu", "undefined operand");
  Tensor out = Tensor::empty(a.shape());
  const float* A = a.data();
  float* O = out.data();
  const int64_t n = a.numel();
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) { relu_range(A, O, s, e); });
  if (any_requires_grad({&a})) {
    auto ga = grad_target(a);
    record(out, "relu", [=](const Tensor& g) {
      const float* A = a.data();
      const float* G = g.data();
      bool fresh;
      float* dA = grad_buffer(ga, fresh);
      parallel_for(n, kGrain, [&](int64_t s, int64_t e) { relu_backward_range(A, G, dA, s, e, fresh); });
    });
  }
  return out;
}
Tensor sigmoid(const Tensor& a) {
  return unary("sigmoid", a, [](float x) { return 1.f / (1.f + std::exp(-x)); },
               [](float, float y) { return y * (1.f - y); });
}
Tensor tanh(const Tensor& a) {
  return unary("tanh", a, [](float x) { return std::tanh(x); }, [](float, float y) { return 1.f - y * y; });
}
Tensor clamp_min(const Tensor& a, float lo) {
  return unary("clamp_min", a, [lo](float x) { return x > lo ? x : lo; },
               [lo](float x, float) { return x > lo ? 1.f : 0.f; });
}

}  // namespace mt
