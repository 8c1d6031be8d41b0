// batch_norm2d: per channel c over the (N, H, W) values of x, M of them,
//   y = gamma_c * xhat + beta_c,   xhat = (x - mean_c) / sqrt(var_c + eps)
// Training: mean_c and the biased var_c come from the batch, and the running
// statistics move towards them in place (PyTorch's rule, unbiased variance):
//   running_mean = (1 - momentum) running_mean + momentum mean_c
//   running_var  = (1 - momentum) running_var  + momentum var_c * M / (M - 1)
// Eval: mean_c, var_c are the running statistics, and y is affine in x.
//
// batch_norm2d_act fuses what follows it in a ResNet block, y = relu(bn(x) + r)
// with an optional residual r and an optional relu, in one pass with one
// output: the very bits of the composition relu(add(batch_norm2d(x), r)),
// forward and backward (the tests hold it to them), without its two extra
// tensors and passes.
//
// Per-channel sums: per plane of H x W, sixteen float lanes, each adding its
// terms in float over blocks of 256 positions and each block into a double
// lane (PlaneSum below); the lanes added in a fixed tree, then the plane's
// tail in double, the planes in order, one channel per task: results do not
// depend on the thread count. The batch statistics read x once: each plane is
// centred on its own mean while it is in L1 and the planes are combined in
// double (channel_moments). The loops are compiled for AVX-512, AVX2 and
// baseline x86-64 (target_clones); the builds do the same IEEE operations per
// element and lane (no fused multiply-add: -ffp-contract=off), so they give
// the same bits.
// The forward saves mean_c, 1/sqrt(var_c + eps) and its scale and shift (4C
// floats) and the backward recomputes xhat, and relu's mask where there is no
// residual; with a residual it keeps its output for the mask.
#include <cmath>
#include <cstring>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/workspace.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors never cross a call: the users inline everything

namespace mt {

namespace {

#if defined(__clang__)  // clang refuses the 32-byte vectors of the helpers below across its clones: one baseline build
#define MT_CLONES
#else
#define MT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#define MT_INLINE_BN inline __attribute__((always_inline))

// Sixteen-lane GCC vectors: one AVX-512 register in that clone, two AVX
// halves in the AVX2 clone, four SSE quarters in the baseline build, the same
// operations per lane in each.
typedef float f16 __attribute__((vector_size(64)));
typedef double d8 __attribute__((vector_size(64)));
typedef int32_t i16 __attribute__((vector_size(64)));
constexpr int kL = 16;      // lanes
constexpr int kBlock = 16;  // vectors a lane sums in float before it goes to double

MT_INLINE_BN f16 load16(const float* p) {
  f16 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MT_INLINE_BN void store16(float* p, f16 v) { std::memcpy(p, &v, sizeof v); }

// The sum of one plane's terms. Lane l adds the terms of positions l mod 16
// in float over a block of kBlock vectors (256 positions), then adds the
// block into its double lane; at the end the 16 double lanes are added in a
// fixed tree, then the scalar tail (double). Float within a block (at most 16
// terms a lane) and double across blocks: 1.5-2x the speed of converting every
// term (ResNet-18 shapes), the error of a 16-term float sum relative to the
// block's magnitudes.
struct PlaneSum {
  d8 lo = {}, hi = {};
  f16 block = {};
  int n = 0;
  MT_INLINE_BN void add(f16 v) {
    block += v;
    if (++n == kBlock) flush();
  }
  MT_INLINE_BN void flush() {
    lo += __builtin_convertvector(__builtin_shufflevector(block, block, 0, 1, 2, 3, 4, 5, 6, 7), d8);
    hi += __builtin_convertvector(__builtin_shufflevector(block, block, 8, 9, 10, 11, 12, 13, 14, 15), d8);
    block = f16{};
    n = 0;
  }
  // ((0+8)+(4+12)) + ((2+10)+(6+14)) + the same from 1, plus the scalar tail t
  MT_INLINE_BN double total(double t) {
    flush();
    const d8 s = lo + hi;
    return (((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))) + t;
  }
};

// One channel: its N planes of hw floats, `stride` floats apart.
struct Planes {
  int N;
  int64_t stride, hw;
  // From plane n to the same position in plane n + 1 (0 on the last plane): the
  // passes that read a channel cold prefetch the next plane while they work on
  // this one. A plane of a late-stage image is a few KB, too short for the
  // hardware's stream prefetch to ramp up before the jump to the next.
  int64_t ahead(int n) const { return n + 1 < N ? stride : 0; }
};
#define MT_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define MT_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)

// The mean of a channel and the sum of squared deviations from it, reading x
// from memory once: per plane n, its own centre c_n (the float of its mean,
// a first sum) and S_n = sum (x - c_n), Q_n = sum (x - c_n)^2 (a second sum
// over the plane while it is still in L1); then, in double and plane order,
//   mean = sum_n (hw c_n + S_n) / M,  sum (x - mean)^2 = sum_n Q_n - 2 d_n S_n + hw d_n^2
// with d_n = mean - c_n (the shift identity of Chan, Golub and LeVeque's
// pairwise update: every plane centred on itself, so no cancellation between a
// large mean and a small variance). `part` holds 3N doubles of scratch.
MT_CLONES void channel_moments(const float* x, Planes p, double M, double* part, double* mean, double* sq_dev) {
  double total = 0;
  for (int n = 0; n < p.N; n++) {
    const float* v = x + n * p.stride;
    const int64_t ah = p.ahead(n);
    PlaneSum a;
    double t = 0;
    int64_t i = 0;
    for (; i + kL <= p.hw; i += kL) {
      MT_PREFETCH(v + i + ah);
      a.add(load16(v + i));
    }
    for (; i < p.hw; i++) t += (double)v[i];
    const float c = (float)(a.total(t) / (double)p.hw);
    PlaneSum s, q;
    double ts = 0, tq = 0;
    for (i = 0; i + kL <= p.hw; i += kL) {
      const f16 d = load16(v + i) - c;
      s.add(d);
      q.add(d * d);
    }
    for (; i < p.hw; i++) {
      const float d = v[i] - c;
      ts += (double)d;
      tq += (double)d * (double)d;
    }
    part[3 * n] = c, part[3 * n + 1] = s.total(ts), part[3 * n + 2] = q.total(tq);
    total += (double)p.hw * c + part[3 * n + 1];
  }
  const double mu = total / M;
  double sq = 0;
  for (int n = 0; n < p.N; n++) {
    const double d = mu - part[3 * n];
    sq += part[3 * n + 2] - 2 * d * part[3 * n + 1] + (double)p.hw * d * d;
  }
  *mean = mu;
  *sq_dev = sq > 0 ? sq : 0;
}

// y = x * sc + sh (+ r) (then relu)
MT_CLONES void channel_apply(const float* __restrict x, const float* __restrict r, float* __restrict y, Planes p,
                             float sc, float sh, bool relu) {
  for (int n = 0; n < p.N; n++) {
    const float* __restrict xn = x + n * p.stride;
    float* __restrict yn = y + n * p.stride;
    if (r) {
      const float* __restrict rn = r + n * p.stride;
      if (relu)
        for (int64_t i = 0; i < p.hw; i++) {
          const float v = (xn[i] * sc + sh) + rn[i];
          yn[i] = v > 0 ? v : 0.f;
        }
      else
        for (int64_t i = 0; i < p.hw; i++) yn[i] = (xn[i] * sc + sh) + rn[i];
    } else if (relu) {
      for (int64_t i = 0; i < p.hw; i++) {
        const float v = xn[i] * sc + sh;
        yn[i] = v > 0 ? v : 0.f;
      }
    } else {
      for (int64_t i = 0; i < p.hw; i++) yn[i] = xn[i] * sc + sh;
    }
  }
}

// The backward of one channel. The gradient g reaching the normalisation is
// dy alone; after a relu, 0.f + dy where the output is > 0 and +0 elsewhere
// (the composition's relu backward writes its fresh buffer so), the mask read
// from the saved output y (kMaskY) or, without a residual, recomputed from x as
// x * sc + sh > 0 (kMaskX: the forward's very operations); after a residual
// add alone, 0.f + dy (the add's backward adds into a zeroed buffer).
enum Mask { kNoMask, kMaskY, kMaskX };

struct ChannelGrad {
  const float* x;
  const float* y;   // kMaskY
  const float* dy;
  float* dr;        // the residual's gradient, or null
  float* dx;        // or null
  Planes p;
  float mu, is, sc, sh;
  bool fresh_r, fresh_x;  // grad_buffer: write 0.f + v instead of adding
};

template <int MASK, bool FUSED>
MT_INLINE_BN float grad1(const ChannelGrad& a, int64_t i) {
  const float g = a.dy[i];
  if (MASK == kMaskY) return a.y[i] > 0 ? 0.f + g : 0.f;
  if (MASK == kMaskX) return a.x[i] * a.sc + a.sh > 0 ? 0.f + g : 0.f;
  return FUSED ? 0.f + g : g;
}
template <int MASK, bool FUSED>
MT_INLINE_BN f16 grad16(const ChannelGrad& a, int64_t i, f16 x) {
  const f16 g = load16(a.dy + i);
  if (MASK == kMaskY) return (f16)((i16)(0.f + g) & (i16)(load16(a.y + i) > 0));  // the bits of 0.f + g, or of +0
  if (MASK == kMaskX) return (f16)((i16)(0.f + g) & (i16)(x * a.sc + a.sh > 0));
  return FUSED ? 0.f + g : g;
}

// sum_g = sum g, sum_gx = sum g * xhat over the channel; dr (+)= g
template <int MASK, bool FUSED>
MT_INLINE_BN void grad_sums(const ChannelGrad& a, double* sum_g, double* sum_gx) {
  double tg = 0, tgx = 0;
  for (int n = 0; n < a.p.N; n++) {
    const int64_t off = n * a.p.stride, end = off + a.p.hw, ah = a.p.ahead(n);
    PlaneSum l, m;
    double tl = 0, tm = 0;
    int64_t i = off;
    for (; i + kL <= end; i += kL) {
      MT_PREFETCH(a.x + i + ah);
      MT_PREFETCH(a.dy + i + ah);
      if (MASK == kMaskY) MT_PREFETCH(a.y + i + ah);
      if (a.dr) MT_PREFETCH_W(a.dr + i + ah);
      const f16 x = load16(a.x + i), g = grad16<MASK, FUSED>(a, i, x);
      l.add(g);
      m.add(g * ((x - a.mu) * a.is));
      if (a.dr) store16(a.dr + i, a.fresh_r ? 0.f + g : load16(a.dr + i) + g);
    }
    for (; i < end; i++) {
      const float g = grad1<MASK, FUSED>(a, i);
      tl += (double)g;
      tm += (double)(g * ((a.x[i] - a.mu) * a.is));
      if (a.dr) a.dr[i] = a.fresh_r ? 0.f + g : a.dr[i] + g;
    }
    tg += l.total(tl);
    tgx += m.total(tm);
  }
  *sum_g = tg;
  *sum_gx = tgx;
}

// dx (+)= k (g - mg - xhat mgx) in training, k g in eval (y is affine in x)
template <int MASK, bool FUSED>
MT_INLINE_BN void grad_input(const ChannelGrad& a, float k, float mg, float mgx, bool training) {
  for (int n = 0; n < a.p.N; n++) {
    const int64_t off = n * a.p.stride, end = off + a.p.hw;
    int64_t i = off;
    for (; i + kL <= end; i += kL) {
      const f16 x = load16(a.x + i), g = grad16<MASK, FUSED>(a, i, x);
      const f16 v = training ? k * (g - mg - (x - a.mu) * a.is * mgx) : k * g;
      store16(a.dx + i, a.fresh_x ? 0.f + v : load16(a.dx + i) + v);
    }
    for (; i < end; i++) {
      const float g = grad1<MASK, FUSED>(a, i);
      const float v = training ? k * (g - mg - (a.x[i] - a.mu) * a.is * mgx) : k * g;
      a.dx[i] = a.fresh_x ? 0.f + v : a.dx[i] + v;
    }
  }
}

MT_CLONES void channel_grad_sums(const ChannelGrad& a, Mask mask, bool fused, double* sum_g, double* sum_gx) {
  if (mask == kMaskY) grad_sums<kMaskY, true>(a, sum_g, sum_gx);
  else if (mask == kMaskX) grad_sums<kMaskX, true>(a, sum_g, sum_gx);
  else if (fused) grad_sums<kNoMask, true>(a, sum_g, sum_gx);
  else grad_sums<kNoMask, false>(a, sum_g, sum_gx);
}

MT_CLONES void channel_grad_input(const ChannelGrad& a, Mask mask, bool fused, float k, float mg, float mgx,
                                  bool training) {
  if (mask == kMaskY) grad_input<kMaskY, true>(a, k, mg, mgx, training);
  else if (mask == kMaskX) grad_input<kMaskX, true>(a, k, mg, mgx, training);
  else if (fused) grad_input<kNoMask, true>(a, k, mg, mgx, training);
  else grad_input<kNoMask, false>(a, k, mg, mgx, training);
}

void check_channel_vector(const Tensor& t, const char* name, int C, const Tensor& x) {
  if (!t.defined()) return;
  MT_CHECK(t.dim() == 1 && t.size(0) == C, "batch_norm2d",
        std::string(name) + " " + shape_str(t.shape()) + " must have shape [" + std::to_string(C) + "] for input " +
            shape_str(x.shape()));
}

}  // namespace

Tensor batch_norm2d_act(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                        Tensor& running_var, bool training, float momentum, float eps, const Tensor& residual,
                        bool relu) {
  const char* op = "batch_norm2d";
  MT_CHECK(x.defined(), op, "undefined input");
  MT_CHECK(x.dim() == 4, op, "input " + shape_str(x.shape()) + " must be 4-D [N,C,H,W]");
  const int N = x.size(0), C = x.size(1);
  const int64_t hw = (int64_t)x.size(2) * x.size(3), M = N * hw;
  check_channel_vector(gamma, "gamma", C, x);
  check_channel_vector(beta, "beta", C, x);
  check_channel_vector(running_mean, "running_mean", C, x);
  check_channel_vector(running_var, "running_var", C, x);
  if (residual.defined())
    MT_CHECK(residual.shape() == x.shape(), op,
          "residual " + shape_str(residual.shape()) + " must have the input's shape " + shape_str(x.shape()));
  MT_CHECK(eps >= 0.f, op, "eps must be >= 0, got " + std::to_string(eps));
  if (training) {
    MT_CHECK(M > 1, op, "training needs more than one value per channel, input " + shape_str(x.shape()));
    MT_CHECK(running_mean.defined() == running_var.defined(), op,
          "running_mean and running_var must both be given or both be undefined");
  } else {
    MT_CHECK(running_mean.defined() && running_var.defined(), op, "eval mode needs running_mean and running_var");
  }

  // rows: mean_c, invstd_c = 1/sqrt(var_c + eps), and the forward's y = x * scale_c + shift_c
  Tensor stats = Tensor::empty({4, C});
  float* mean = stats.data();
  float* invstd = mean + C;
  float* scale_f = mean + 2 * C;
  float* shift_f = mean + 3 * C;
  Tensor y = Tensor::empty(x.shape());
  const float* X = x.data();
  const float* R = residual.defined() ? residual.data() : nullptr;
  float* Y = y.data();
  const float* G = gamma.defined() ? gamma.data() : nullptr;
  const float* B = beta.defined() ? beta.data() : nullptr;
  float* RM = running_mean.defined() ? running_mean.data() : nullptr;
  float* RV = running_var.defined() ? running_var.data() : nullptr;
  const Planes planes{N, (int64_t)C * hw, hw};

  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    // channel_moments' scratch, this worker's (a std::vector here, freed once per
    // call, cost 2 % of a ResNet-18 step in glibc's free)
    double* part = training ? scratch<double>(kScratchPartials, 3 * (size_t)N) : nullptr;
    for (int c = (int)c0; c < (int)c1; c++) {
      double mu, var;
      if (training) {
        double sq;
        channel_moments(X + c * hw, planes, (double)M, part, &mu, &sq);
        var = sq / (double)M;
        if (RM) {
          RM[c] = (float)((1.0 - momentum) * RM[c] + momentum * mu);
          RV[c] = (float)((1.0 - momentum) * RV[c] + momentum * var * (double)M / (double)(M - 1));
        }
      } else {
        mu = RM[c];
        var = RV[c];
      }
      const double is = 1.0 / std::sqrt(var + eps);
      mean[c] = (float)mu;
      invstd[c] = (float)is;
      // y = x * scale + shift, with scale = gamma * invstd and shift = beta - mean * scale
      const double scale = (G ? G[c] : 1.0) * is;
      scale_f[c] = (float)scale;
      shift_f[c] = (float)((B ? B[c] : 0.0) - mu * scale);
      channel_apply(X + c * hw, R ? R + c * hw : nullptr, Y + c * hw, planes, scale_f[c], shift_f[c], relu);
    }
  });

  if (any_requires_grad({&x, &gamma, &beta, &residual})) {
    auto gx = grad_target(x), gg = grad_target(gamma), gb = grad_target(beta), gr = grad_target(residual);
    // relu's mask: recomputed from x without a residual, else read from the output
    const Mask mask = !relu ? kNoMask : R ? kMaskY : kMaskX;
    std::shared_ptr<SavedOutput> saved_y = mask == kMaskY ? std::make_shared<SavedOutput>(y) : nullptr;
    const bool fused = relu || R;
    record(y, op, [x, gamma, stats, gx, gg, gb, gr, saved_y, mask, fused, training, C, hw, M, planes](const Tensor& gy) {
      const float* G = gamma.defined() ? gamma.data() : nullptr;
      const float* st = stats.data();
      bool fresh_x = false, fresh_r = false;
      ChannelGrad a{};
      a.x = x.data(), a.y = saved_y ? saved_y->data() : nullptr, a.dy = gy.data(), a.p = planes;
      a.dx = gx ? grad_buffer(gx, fresh_x) : nullptr, a.dr = gr ? grad_buffer(gr, fresh_r) : nullptr;
      a.fresh_x = fresh_x, a.fresh_r = fresh_r;
      float* dG = gg ? acc_grad(gg) : nullptr;
      float* dB = gb ? acc_grad(gb) : nullptr;
      parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
        for (int c = (int)c0; c < (int)c1; c++) {
          ChannelGrad ac = a;  // channel c's planes
          const int64_t at = c * hw;
          ac.x += at, ac.dy += at;
          if (ac.y) ac.y += at;
          if (ac.dr) ac.dr += at;
          if (ac.dx) ac.dx += at;
          ac.mu = st[c], ac.is = st[C + c], ac.sc = st[2 * C + c], ac.sh = st[3 * C + c];
          double sum_g, sum_gx;  // over the channel: g, and g * xhat
          channel_grad_sums(ac, mask, fused, &sum_g, &sum_gx);
          if (dB) dB[c] += (float)sum_g;
          if (dG) dG[c] += (float)sum_gx;
          if (!ac.dx) continue;
          // dx = gamma invstd (g - mean(g) - xhat mean(g xhat)) in training (the batch
          // statistics depend on x too); eval: y is affine in x, dx = gamma invstd g.
          const float k = (G ? G[c] : 1.f) * ac.is;
          channel_grad_input(ac, mask, fused, k, (float)(sum_g / (double)M), (float)(sum_gx / (double)M), training);
        }
      });
    });
  }
  return y;
}

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum, float eps) {
  return batch_norm2d_act(x, gamma, beta, running_mean, running_var, training, momentum, eps, Tensor(), false);
}

}  // namespace mt
