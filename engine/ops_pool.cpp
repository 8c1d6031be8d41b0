// Pooling: max_pool2d, avg_pool2d (with their naive oracles) and
// global_avg_pool2d, each forward with its backward beside it.
//
// A k x k window moves by stride s over the input padded by p on every side:
//   Ho = floor((H + 2p - k) / s) + 1      (and the same for Wo)
// Max pooling pads with -inf and sends the gradient to the first maximum of
// each window in scan order (the argmax saved by the forward); average pooling
// pads with zeros that count in the divisor (always k*k, PyTorch's
// count_include_pad=True) and spreads the gradient evenly over the window.
// pad <= k/2 (as PyTorch requires) guarantees every window holds at least one
// real pixel. The fast paths run in parallel over the N*C planes, which are
// independent, so no reduction crosses threads.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/workspace.h"

namespace mt {

namespace {

struct PoolGeom {
  int N, C, H, W;
  int k, s, p;
  int Ho, Wo;
  int64_t planes() const { return (int64_t)N * C; }
  int64_t in_plane() const { return (int64_t)H * W; }
  int64_t out_plane() const { return (int64_t)Ho * Wo; }
  bool is_2x2_s2() const { return k == 2 && s == 2 && p == 0; }
  // Planes per parallel chunk: about 32K input pixels each.
  int64_t grain() const { return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, in_plane())); }
};

PoolGeom pool_geometry(const char* op, const Tensor& x, const Pool2dArgs& a) {
  MT_CHECK(x.defined(), op, "undefined input");
  MT_CHECK(x.dim() == 4, op, "input " + shape_str(x.shape()) + " must be 4-D [N,C,H,W]");
  PoolGeom g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.k = a.kernel, g.s = a.stride == 0 ? a.kernel : a.stride, g.p = a.pad;
  MT_CHECK(g.k >= 1, op, "kernel must be >= 1, got " + std::to_string(g.k));
  MT_CHECK(g.s >= 1, op, "stride must be >= 1 (or 0 for the kernel size), got " + std::to_string(a.stride));
  MT_CHECK(g.p >= 0 && g.p <= g.k / 2, op,
        "padding " + std::to_string(g.p) + " must be in [0, kernel/2] = [0, " + std::to_string(g.k / 2) +
            "] for kernel " + std::to_string(g.k));
  MT_CHECK(g.H + 2 * g.p >= g.k && g.W + 2 * g.p >= g.k, op,
        "output would be empty: kernel " + std::to_string(g.k) + " is larger than the padded input " +
            std::to_string(g.H + 2 * g.p) + "x" + std::to_string(g.W + 2 * g.p) + " (input " + shape_str(x.shape()) +
            ", pad " + std::to_string(g.p) + ")");
  MT_CHECK(g.in_plane() <= INT32_MAX, op, "planes of input " + shape_str(x.shape()) + " are too large");
  g.Ho = (g.H + 2 * g.p - g.k) / g.s + 1;
  g.Wo = (g.W + 2 * g.p - g.k) / g.s + 1;
  return g;
}

// The window of output (oh, ow) clipped to the image: rows [h0, h1), cols [w0, w1).
struct Window {
  int h0, h1, w0, w1;
  Window(const PoolGeom& g, int oh, int ow) {
    const int hs = oh * g.s - g.p, ws = ow * g.s - g.p;
    h0 = std::max(hs, 0), h1 = std::min(hs + g.k, g.H);
    w0 = std::max(ws, 0), w1 = std::min(ws + g.k, g.W);
  }
};

// Does v replace the running maximum? Strictly greater keeps the first maximum;
// a NaN wins, so NaNs propagate (as in PyTorch). Written without short-circuit
// so the callers' selects compile to branch-free code: on real data every
// comparison is a coin flip, and branches on it cost more than the pooling.
inline bool beats(float v, float best) { return (v > best) | (v != v); }

// One plane of max pooling; arg (if kArg) gets the in-plane index of each maximum.
template <bool kArg>
void max_plane(const PoolGeom& g, const float* x, float* y, int32_t* arg) {
  if (g.is_2x2_s2()) {
    // Locals, restrict pointers and `omp simd`: the row loop vectorises (also at -O2).
    const int32_t W = g.W, Ho = g.Ho, Wo = g.Wo;
    for (int oh = 0; oh < Ho; oh++) {
      const float* __restrict r0 = x + (int64_t)(2 * oh) * W;
      const float* __restrict r1 = r0 + W;
      float* __restrict yr = y + (int64_t)oh * Wo;
      int32_t* __restrict ar = kArg ? arg + (int64_t)oh * Wo : nullptr;
#pragma omp simd
      for (int ow = 0; ow < Wo; ow++) {
        const int j = 2 * ow;
        float best = r0[j];
        int32_t at = 0;  // offset within the window: 0, 1, W, W + 1 in scan order
        bool t = beats(r0[j + 1], best);
        best = t ? r0[j + 1] : best;
        at = t ? 1 : at;
        t = beats(r1[j], best);
        best = t ? r1[j] : best;
        at = t ? W : at;
        t = beats(r1[j + 1], best);
        best = t ? r1[j + 1] : best;
        at = t ? W + 1 : at;
        yr[ow] = best;
        if (kArg) ar[ow] = 2 * oh * W + j + at;
      }
    }
    return;
  }
  for (int oh = 0; oh < g.Ho; oh++)
    for (int ow = 0; ow < g.Wo; ow++) {
      const Window win(g, oh, ow);
      float best = -std::numeric_limits<float>::infinity();
      int32_t at = win.h0 * g.W + win.w0;
      for (int h = win.h0; h < win.h1; h++)
        for (int w = win.w0; w < win.w1; w++) {
          const float v = x[h * g.W + w];
          const bool t = beats(v, best);
          best = t ? v : best;
          at = t ? h * g.W + w : at;
        }
      y[oh * g.Wo + ow] = best;
      if (kArg) arg[oh * g.Wo + ow] = at;
    }
}

// The gradient of one plane of 2x2 stride-2 max pooling written into a fresh
// buffer (grad_buffer): each window gets 0.f + dy at its argmax and +0 at the
// other three pixels (the bits of scattering into zeros); a last odd row or
// column, in no window, gets +0.
void max_plane_backward_2x2_fresh(const PoolGeom& g, const int32_t* arg, const float* dy, float* dx) {
  const int32_t W = g.W, Ho = g.Ho, Wo = g.Wo;
  if (g.H != 2 * Ho || W != 2 * Wo) std::memset(dx, 0, sizeof(float) * g.in_plane());
  for (int oh = 0; oh < Ho; oh++) {
    float* __restrict r0 = dx + (int64_t)(2 * oh) * W;
    float* __restrict r1 = r0 + W;
    const float* __restrict d = dy + (int64_t)oh * Wo;
    const int32_t* __restrict a = arg + (int64_t)oh * Wo;
    const int32_t base = 2 * oh * W;
#pragma omp simd
    for (int ow = 0; ow < Wo; ow++) {
      const int32_t at = a[ow] - base - 2 * ow;  // 0, 1, W or W + 1
      const float v = 0.f + d[ow];
      r0[2 * ow] = at == 0 ? v : 0.f;
      r0[2 * ow + 1] = at == 1 ? v : 0.f;
      r1[2 * ow] = at == W ? v : 0.f;
      r1[2 * ow + 1] = at == W + 1 ? v : 0.f;
    }
  }
}

// One plane of average pooling (divisor k*k: padding counts).
void avg_plane(const PoolGeom& g, const float* x, float* y) {
  const float inv = 1.f / (float)(g.k * g.k);
  if (g.is_2x2_s2()) {
    const int32_t W = g.W, Ho = g.Ho, Wo = g.Wo;
    for (int oh = 0; oh < Ho; oh++) {
      const float* __restrict r0 = x + (int64_t)(2 * oh) * W;
      const float* __restrict r1 = r0 + W;
      float* __restrict yr = y + (int64_t)oh * Wo;
#pragma omp simd
      for (int ow = 0; ow < Wo; ow++) {
        const int j = 2 * ow;
        yr[ow] = ((r0[j] + r0[j + 1]) + (r1[j] + r1[j + 1])) * inv;
      }
    }
    return;
  }
  for (int oh = 0; oh < g.Ho; oh++)
    for (int ow = 0; ow < g.Wo; ow++) {
      const Window win(g, oh, ow);
      float acc = 0.f;
      for (int h = win.h0; h < win.h1; h++)
        for (int w = win.w0; w < win.w1; w++) acc += x[h * g.W + w];
      y[oh * g.Wo + ow] = acc * inv;
    }
}

// dx += the adjoint of avg_plane for one plane.
void avg_plane_backward(const PoolGeom& g, const float* dy, float* dx) {
  const float inv = 1.f / (float)(g.k * g.k);
  for (int oh = 0; oh < g.Ho; oh++)
    for (int ow = 0; ow < g.Wo; ow++) {
      const Window win(g, oh, ow);
      const float v = dy[oh * g.Wo + ow] * inv;
      for (int h = win.h0; h < win.h1; h++)
        for (int w = win.w0; w < win.w1; w++) dx[h * g.W + w] += v;
    }
}

}  // namespace

namespace {

// max_pool2d, and with `relu` the fused relu(max_pool2d(x)) (the relu's select
// on each pooled value; backward: the relu's gradient, 0.f + (y > 0 ? g : 0)
// as relu writes it into a fresh buffer, then the pooling's scatter), so the
// two give the unfused composition's bits.
Tensor max_pool2d_impl(const char* name, const Tensor& x, Pool2dArgs a, bool relu) {
  const PoolGeom g = pool_geometry(name, x, a);
  Tensor y = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const bool need_grad = any_requires_grad({&x});
  // The argmax of every output (an in-plane index), kept for the backward. It
  // lives in a float tensor's storage, reinterpreted as int32 (same size).
  Tensor argmax = need_grad ? Tensor::empty(y.shape()) : Tensor();
  const float* X = x.data();
  float* Y = y.data();
  int32_t* A = need_grad ? reinterpret_cast<int32_t*>(argmax.data()) : nullptr;
  const int64_t ip = g.in_plane(), op = g.out_plane();
  parallel_for(g.planes(), g.grain(), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; q++) {
      if (A)
        max_plane<true>(g, X + q * ip, Y + q * op, A + q * op);
      else
        max_plane<false>(g, X + q * ip, Y + q * op, nullptr);
      if (relu) {
        float* __restrict yq = Y + q * op;
#pragma omp simd
        for (int64_t i = 0; i < op; i++) yq[i] = yq[i] > 0 ? yq[i] : 0.f;  // relu_range's select
      }
    }
  });
  if (need_grad) {
    auto gx = grad_target(x);
    auto backward = [gx, argmax, g, relu](const Tensor& gy, const float* Yv) {
      const int32_t* A = reinterpret_cast<const int32_t*>(argmax.data());
      const float* dY = gy.data();
      bool fresh;
      float* dX = grad_buffer(gx, fresh);
      const int64_t ip = g.in_plane(), op = g.out_plane();
      parallel_for(g.planes(), g.grain(), [&](int64_t p0, int64_t p1) {
        float* dp = relu ? scratch<float>(kScratchCols, op) : nullptr;  // the pooled value's gradient
        for (int64_t q = p0; q < p1; q++) {
          const float* d = dY + q * op;
          if (relu) {
            const float* __restrict yq = Yv + q * op;
            const float* __restrict gq = dY + q * op;
            float* __restrict dq = dp;
#pragma omp simd
            for (int64_t i = 0; i < op; i++) {  // relu's fresh backward, on the bits
              const float gi = gq[i];
              uint32_t bits;
              std::memcpy(&bits, &gi, sizeof bits);
              bits &= yq[i] > 0 ? 0xffffffffu : 0u;
              float v;
              std::memcpy(&v, &bits, sizeof v);
              dq[i] = 0.f + v;
            }
            d = dp;
          }
          if (fresh && g.is_2x2_s2()) {
            max_plane_backward_2x2_fresh(g, A + q * op, d, dX + q * ip);
            continue;
          }
          if (fresh) std::memset(dX + q * ip, 0, sizeof(float) * ip);
          for (int64_t i = 0; i < op; i++) dX[q * ip + A[q * op + i]] += d[i];
        }
      });
    };
    if (relu) {
      SavedOutput so(y);  // the mask y > 0 (the pooled value > 0)
      record(y, name, [backward, so](const Tensor& gy) { backward(gy, so.data()); });
    } else {
      record(y, name, [backward](const Tensor& gy) { backward(gy, nullptr); });
    }
  }
  return y;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Pool2dArgs a) { return max_pool2d_impl("max_pool2d", x, a, false); }
Tensor max_pool2d_relu(const Tensor& x, Pool2dArgs a) { return max_pool2d_impl("max_pool2d_relu", x, a, true); }

Tensor avg_pool2d(const Tensor& x, Pool2dArgs a) {
  const PoolGeom g = pool_geometry("avg_pool2d", x, a);
  Tensor y = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const float* X = x.data();
  float* Y = y.data();
  const int64_t ip = g.in_plane(), op = g.out_plane();
  parallel_for(g.planes(), g.grain(), [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; q++) avg_plane(g, X + q * ip, Y + q * op);
  });
  if (any_requires_grad({&x})) {
    auto gx = grad_target(x);
    record(y, "avg_pool2d", [gx, g](const Tensor& gy) {
      const float* dY = gy.data();
      float* dX = acc_grad(gx);
      const int64_t ip = g.in_plane(), op = g.out_plane();
      parallel_for(g.planes(), g.grain(), [&](int64_t p0, int64_t p1) {
        for (int64_t q = p0; q < p1; q++) avg_plane_backward(g, dY + q * op, dX + q * ip);
      });
    });
  }
  return y;
}

// The oracles: every window position visited, padding read as its pad value.
Tensor max_pool2d_naive(const Tensor& x, Pool2dArgs a) {
  const PoolGeom g = pool_geometry("max_pool2d_naive", x, a);
  Tensor y = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const float* X = x.data();
  float* Y = y.data();
  for (int n = 0; n < g.N; n++)
    for (int c = 0; c < g.C; c++)
      for (int oh = 0; oh < g.Ho; oh++)
        for (int ow = 0; ow < g.Wo; ow++) {
          float best = -std::numeric_limits<float>::infinity();
          for (int ki = 0; ki < g.k; ki++)
            for (int kj = 0; kj < g.k; kj++) {
              const int h = oh * g.s - g.p + ki, w = ow * g.s - g.p + kj;
              const bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
              const float v = inside ? X[((int64_t)(n * g.C + c) * g.H + h) * g.W + w]
                                     : -std::numeric_limits<float>::infinity();
              if (beats(v, best)) best = v;
            }
          Y[((int64_t)(n * g.C + c) * g.Ho + oh) * g.Wo + ow] = best;
        }
  return y;
}

Tensor avg_pool2d_naive(const Tensor& x, Pool2dArgs a) {
  const PoolGeom g = pool_geometry("avg_pool2d_naive", x, a);
  Tensor y = Tensor::empty({g.N, g.C, g.Ho, g.Wo});
  const float* X = x.data();
  float* Y = y.data();
  for (int n = 0; n < g.N; n++)
    for (int c = 0; c < g.C; c++)
      for (int oh = 0; oh < g.Ho; oh++)
        for (int ow = 0; ow < g.Wo; ow++) {
          double acc = 0;
          for (int ki = 0; ki < g.k; ki++)
            for (int kj = 0; kj < g.k; kj++) {
              const int h = oh * g.s - g.p + ki, w = ow * g.s - g.p + kj;
              const bool inside = h >= 0 && h < g.H && w >= 0 && w < g.W;
              acc += inside ? X[((int64_t)(n * g.C + c) * g.H + h) * g.W + w] : 0.0;
            }
          Y[((int64_t)(n * g.C + c) * g.Ho + oh) * g.Wo + ow] = (float)(acc / (g.k * g.k));
        }
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  MT_CHECK(x.defined(), "global_avg_pool2d", "undefined input");
  MT_CHECK(x.dim() == 4, "global_avg_pool2d", "input " + shape_str(x.shape()) + " must be 4-D [N,C,H,W]");
  const int N = x.size(0), C = x.size(1);
  const int64_t hw = (int64_t)x.size(2) * x.size(3);
  MT_CHECK(hw > 0, "global_avg_pool2d", "input " + shape_str(x.shape()) + " has empty planes");
  Tensor y = Tensor::empty({N, C});
  const float* X = x.data();
  float* Y = y.data();
  const int64_t grain = std::max<int64_t>(1, (int64_t(1) << 15) / hw);
  parallel_for((int64_t)N * C, grain, [&](int64_t p0, int64_t p1) {
    for (int64_t q = p0; q < p1; q++) {
      double acc = 0;
      for (int64_t i = 0; i < hw; i++) acc += X[q * hw + i];
      Y[q] = (float)(acc / (double)hw);
    }
  });
  if (any_requires_grad({&x})) {
    auto gx = grad_target(x);
    record(y, "global_avg_pool2d", [gx, hw, grain](const Tensor& gy) {
      const float* dY = gy.data();
      float* dX = acc_grad(gx);
      const float inv = 1.f / (float)hw;
      parallel_for(gy.numel(), grain, [&](int64_t p0, int64_t p1) {
        for (int64_t q = p0; q < p1; q++) {
          const float v = dY[q] * inv;
          for (int64_t i = 0; i < hw; i++) dX[q * hw + i] += v;
        }
      });
    });
  }
  return y;
}

}  // namespace mt
