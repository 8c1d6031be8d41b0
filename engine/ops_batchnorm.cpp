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
// tail in double, each channel's planes added in plane order. A task takes a
// range of channels and walks it image by image (the planes of one image's
// channels lie next to each other: a stream, where a channel's planes are C H W
// floats apart, a cache-set conflict apiece on small images); results do not
// depend on the ranges, so not on the thread count. The batch statistics read
// x once: each plane is centred on its own mean while it is in L1 and the
// planes are combined in double (plane_moments, combine_moments). The loops
// are compiled for AVX-512, AVX2 and baseline x86-64 (target_clones); the
// builds do the same IEEE operations per element and lane (no fused
// multiply-add: -ffp-contract=off), so they give the same bits.
// The forward saves mean_c, 1/sqrt(var_c + eps) and its scale and shift (4C
// floats) and the backward recomputes xhat, and relu's mask where there is no
// residual; with a residual it keeps its output for the mask.
#include <algorithm>
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

// The planes of a batch: N images of C channels, hw floats each; plane (n, c)
// at (n C + c) hw. The passes below take a worker's channels [c0, c1) image by
// image (n outer, c inner: the planes of one image's channels are contiguous,
// so they stream through the cache), and each channel's sums are combined
// over its planes in plane order n = 0, 1, ...: the same bits whatever the
// channel ranges, i.e. whatever the thread count.
struct Planes {
  int N, C;
  int64_t hw;
  int64_t at(int n, int c) const { return ((int64_t)n * C + c) * hw; }
  // From plane (n, c) to the next of a walk over channels [c0, c1) (0 after the
  // last): the first pass over a block prefetches it while it works on this
  // one. Where a block is one channel its planes are C H W floats apart, and a
  // plane of a late-stage image is a few KB, too short for the hardware's
  // stream prefetch to ramp up before the jump.
  int64_t ahead(int n, int c, int c0, int c1) const {
    return c + 1 < c1 ? hw : n + 1 < N ? at(n + 1, c0) - at(n, c) : 0;
  }
};
#define MT_PREFETCH(p) __builtin_prefetch((p), 0, 3)
#define MT_PREFETCH_W(p) __builtin_prefetch((p), 1, 3)

// The moments of one plane: its own centre c (the float of its mean, a first
// sum) and S = sum (x - c), Q = sum (x - c)^2 (a second sum over the plane
// while it is still in L1), into part[0..2].
MT_INLINE_BN void plane_moments(const float* v, int64_t hw, int64_t ahead, double* part) {
  PlaneSum a;
  double t = 0;
  int64_t i = 0;
  for (; i + kL <= hw; i += kL) {
    MT_PREFETCH(v + i + ahead);
    a.add(load16(v + i));
  }
  for (; i < hw; i++) t += (double)v[i];
  const float c = (float)(a.total(t) / (double)hw);
  PlaneSum s, q;
  double ts = 0, tq = 0;
  for (i = 0; i + kL <= hw; i += kL) {
    const f16 d = load16(v + i) - c;
    s.add(d);
    q.add(d * d);
  }
  for (; i < hw; i++) {
    const float d = v[i] - c;
    ts += (double)d;
    tq += (double)d * (double)d;
  }
  part[0] = c, part[1] = s.total(ts), part[2] = q.total(tq);
}

// The mean of a channel and the sum of squared deviations from it, from its
// N planes' moments (3 doubles each, in plane order), in double:
//   mean = sum_n (hw c_n + S_n) / M,  sum (x - mean)^2 = sum_n Q_n - 2 d_n S_n + hw d_n^2
// with d_n = mean - c_n (the shift identity of Chan, Golub and LeVeque's
// pairwise update: every plane centred on itself, so no cancellation between a
// large mean and a small variance).
MT_INLINE_BN void combine_moments(const double* part, int N, int64_t hw, double M, double* mean, double* sq_dev) {
  double total = 0;
  for (int n = 0; n < N; n++) total += (double)hw * part[3 * n] + part[3 * n + 1];
  const double mu = total / M;
  double sq = 0;
  for (int n = 0; n < N; n++) {
    const double d = mu - part[3 * n];
    sq += part[3 * n + 2] - 2 * d * part[3 * n + 1] + (double)hw * d * d;
  }
  *mean = mu;
  *sq_dev = sq > 0 ? sq : 0;
}

// y = x * sc + sh (+ r) (then relu) over one plane
MT_INLINE_BN void plane_apply(const float* __restrict x, const float* __restrict r, float* __restrict y, int64_t hw,
                              float sc, float sh, bool relu) {
  if (r) {
    if (relu)
      for (int64_t i = 0; i < hw; i++) {
        const float v = (x[i] * sc + sh) + r[i];
        y[i] = v > 0 ? v : 0.f;
      }
    else
      for (int64_t i = 0; i < hw; i++) y[i] = (x[i] * sc + sh) + r[i];
  } else if (relu) {
    for (int64_t i = 0; i < hw; i++) {
      const float v = x[i] * sc + sh;
      y[i] = v > 0 ? v : 0.f;
    }
  } else {
    for (int64_t i = 0; i < hw; i++) y[i] = x[i] * sc + sh;
  }
}

// The forward of a block of channels [c0, c1): in training their batch
// statistics (the moments of every plane, then each channel's combined) and
// the running statistics' update; then scale and shift; then y. `part` holds
// 3 N (c1 - c0) doubles of scratch (training).
struct Forward {
  const float *x, *r, *gamma, *beta;
  float *y, *running_mean, *running_var;
  float *mean, *invstd, *scale, *shift;  // [C] each: the saved statistics
  Planes p;
  bool training, relu;
  float momentum, eps;
};
MT_INLINE_BN void forward_block(const Forward& a, int c0, int c1, double* part) {
  const Planes& p = a.p;
  const double M = (double)p.N * p.hw;
  if (a.training)
    for (int n = 0; n < p.N; n++)
      for (int c = c0; c < c1; c++)
        plane_moments(a.x + p.at(n, c), p.hw, p.ahead(n, c, c0, c1), part + ((int64_t)(c - c0) * p.N + n) * 3);
  for (int c = c0; c < c1; c++) {
    double mu, var;
    if (a.training) {
      double sq;
      combine_moments(part + (int64_t)(c - c0) * p.N * 3, p.N, p.hw, M, &mu, &sq);
      var = sq / M;
      if (a.running_mean) {
        a.running_mean[c] = (float)((1.0 - a.momentum) * a.running_mean[c] + a.momentum * mu);
        a.running_var[c] = (float)((1.0 - a.momentum) * a.running_var[c] + a.momentum * var * M / (M - 1));
      }
    } else {
      mu = a.running_mean[c];
      var = a.running_var[c];
    }
    const double is = 1.0 / std::sqrt(var + a.eps);
    a.mean[c] = (float)mu;
    a.invstd[c] = (float)is;
    // y = x * scale + shift, with scale = gamma * invstd and shift = beta - mean * scale
    const double scale = (a.gamma ? a.gamma[c] : 1.0) * is;
    a.scale[c] = (float)scale;
    a.shift[c] = (float)((a.beta ? a.beta[c] : 0.0) - mu * scale);
  }
  for (int n = 0; n < p.N; n++)
    for (int c = c0; c < c1; c++) {
      const int64_t at = p.at(n, c);
      plane_apply(a.x + at, a.r ? a.r + at : nullptr, a.y + at, p.hw, a.scale[c], a.shift[c], a.relu);
    }
}

// Channels per block: as many as keep a block's planes of one tensor within
// 32 MB, so that the second pass over a block (apply after the moments, dx
// after the sums) finds it in the last-level cache. Blocks that fit L2 (256 KB,
// this constant until now) made a block of a 28x28 image's batch one channel:
// its walk jumped a plane's length C H W floats at every plane, and took
// 1.4-1.8x as long as one that streams the images' channels (per call, cold
// inputs, 1 thread: [64,16,28,28] forward 0.53-0.63 -> 0.31-0.47 ms, backward
// 0.91-0.95 -> 0.58-0.78; [64,32,32,32] 1.96 / 3.02 -> 1.12 / 1.77).
int64_t g_block_bytes = 0;  // batch_norm2d_block_bytes
int channel_block(const Planes& p) {
  const int64_t bytes = g_block_bytes > 0 ? g_block_bytes : int64_t(32) << 20;
  return (int)std::max<int64_t>(1, bytes / ((int64_t)sizeof(float) * p.N * p.hw));
}

MT_CLONES void forward_channels(const Forward& a, int c0, int c1, double* part) {
  for (int b0 = c0, step = channel_block(a.p); b0 < c1; b0 += step) forward_block(a, b0, std::min(c1, b0 + step), part);
}

// The backward. The gradient g reaching the normalisation is dy alone; after
// a relu, 0.f + dy where the output is > 0 and +0 elsewhere (the composition's
// relu backward writes its fresh buffer so), the mask read from the saved
// output y (kMaskY) or, without a residual, recomputed from x as
// x * sc + sh > 0 (kMaskX: the forward's very operations); after a residual
// add alone, 0.f + dy (the add's backward adds into a zeroed buffer).
enum Mask { kNoMask, kMaskY, kMaskX };

// One plane of channel c: its hw floats of each tensor, and c's statistics.
struct PlaneGrad {
  const float* x;
  const float* y;   // kMaskY
  const float* dy;
  float* dr;        // the residual's gradient, or null
  float* dx;        // or null
  int64_t hw, ahead;  // Planes::ahead
  float mu, is, sc, sh;
  bool fresh_r, fresh_x;  // grad_buffer: write 0.f + v instead of adding
};

template <int MASK, bool FUSED>
MT_INLINE_BN float grad1(const PlaneGrad& a, int64_t i) {
  const float g = a.dy[i];
  if (MASK == kMaskY) return a.y[i] > 0 ? 0.f + g : 0.f;
  if (MASK == kMaskX) return a.x[i] * a.sc + a.sh > 0 ? 0.f + g : 0.f;
  return FUSED ? 0.f + g : g;
}
template <int MASK, bool FUSED>
MT_INLINE_BN f16 grad16(const PlaneGrad& a, int64_t i, f16 x) {
  const f16 g = load16(a.dy + i);
  if (MASK == kMaskY) return (f16)((i16)(0.f + g) & (i16)(load16(a.y + i) > 0));  // the bits of 0.f + g, or of +0
  if (MASK == kMaskX) return (f16)((i16)(0.f + g) & (i16)(x * a.sc + a.sh > 0));
  return FUSED ? 0.f + g : g;
}

// sum_g += sum g, sum_gx += sum g * xhat over the plane; dr (+)= g
template <int MASK, bool FUSED>
MT_INLINE_BN void plane_grad_sums(const PlaneGrad& a, double* sum_g, double* sum_gx) {
  PlaneSum l, m;
  double tl = 0, tm = 0;
  int64_t i = 0;
  for (; i + kL <= a.hw; i += kL) {
    MT_PREFETCH(a.x + i + a.ahead);
    MT_PREFETCH(a.dy + i + a.ahead);
    if (MASK == kMaskY) MT_PREFETCH(a.y + i + a.ahead);
    if (a.dr) MT_PREFETCH_W(a.dr + i + a.ahead);
    const f16 x = load16(a.x + i), g = grad16<MASK, FUSED>(a, i, x);
    l.add(g);
    m.add(g * ((x - a.mu) * a.is));
    if (a.dr) store16(a.dr + i, a.fresh_r ? 0.f + g : load16(a.dr + i) + g);
  }
  for (; i < a.hw; i++) {
    const float g = grad1<MASK, FUSED>(a, i);
    tl += (double)g;
    tm += (double)(g * ((a.x[i] - a.mu) * a.is));
    if (a.dr) a.dr[i] = a.fresh_r ? 0.f + g : a.dr[i] + g;
  }
  *sum_g += l.total(tl);
  *sum_gx += m.total(tm);
}

// dx (+)= k (g - mg - xhat mgx) in training, k g in eval (y is affine in x)
template <int MASK, bool FUSED>
MT_INLINE_BN void plane_grad_input(const PlaneGrad& a, float k, float mg, float mgx, bool training) {
  int64_t i = 0;
  for (; i + kL <= a.hw; i += kL) {
    const f16 x = load16(a.x + i), g = grad16<MASK, FUSED>(a, i, x);
    const f16 v = training ? k * (g - mg - (x - a.mu) * a.is * mgx) : k * g;
    store16(a.dx + i, a.fresh_x ? 0.f + v : load16(a.dx + i) + v);
  }
  for (; i < a.hw; i++) {
    const float g = grad1<MASK, FUSED>(a, i);
    const float v = training ? k * (g - mg - (a.x[i] - a.mu) * a.is * mgx) : k * g;
    a.dx[i] = a.fresh_x ? 0.f + v : a.dx[i] + v;
  }
}

struct Backward {
  const float *x, *y, *dy, *gamma, *stats;  // stats: the forward's mean, invstd, scale, shift rows
  float *dr, *dx, *dgamma, *dbeta;
  Planes p;
  bool fresh_r, fresh_x, training;
};

// A block of channels [c0, c1): the sums over each channel's planes (in plane
// order), dgamma and dbeta, then dx. `part` holds 2 (c1 - c0) doubles of scratch.
template <int MASK, bool FUSED>
MT_INLINE_BN void backward_channels(const Backward& b, int c0, int c1, double* part) {
  const Planes& p = b.p;
  const int C = p.C;
  const auto plane = [&](int n, int c) {
    const int64_t at = p.at(n, c);
    PlaneGrad a;
    a.x = b.x + at, a.y = b.y ? b.y + at : nullptr, a.dy = b.dy + at;
    a.dr = b.dr ? b.dr + at : nullptr, a.dx = b.dx ? b.dx + at : nullptr;
    a.hw = p.hw, a.ahead = p.ahead(n, c, c0, c1), a.fresh_r = b.fresh_r, a.fresh_x = b.fresh_x;
    a.mu = b.stats[c], a.is = b.stats[C + c], a.sc = b.stats[2 * C + c], a.sh = b.stats[3 * C + c];
    return a;
  };
  double* sum_g = part;                // over the channel: g
  double* sum_gx = part + (c1 - c0);   // and g * xhat
  for (int c = c0; c < c1; c++) sum_g[c - c0] = sum_gx[c - c0] = 0;
  for (int n = 0; n < p.N; n++)
    for (int c = c0; c < c1; c++) plane_grad_sums<MASK, FUSED>(plane(n, c), sum_g + (c - c0), sum_gx + (c - c0));
  for (int c = c0; c < c1; c++) {
    if (b.dbeta) b.dbeta[c] += (float)sum_g[c - c0];
    if (b.dgamma) b.dgamma[c] += (float)sum_gx[c - c0];
  }
  if (!b.dx) return;
  // dx = gamma invstd (g - mean(g) - xhat mean(g xhat)) in training (the batch
  // statistics depend on x too); eval: y is affine in x, dx = gamma invstd g.
  const double M = (double)p.N * p.hw;
  for (int n = 0; n < p.N; n++)
    for (int c = c0; c < c1; c++) {
      const float k = (b.gamma ? b.gamma[c] : 1.f) * b.stats[C + c];
      plane_grad_input<MASK, FUSED>(plane(n, c), k, (float)(sum_g[c - c0] / M), (float)(sum_gx[c - c0] / M),
                                    b.training);
    }
}

MT_CLONES void backward_channels(const Backward& b, Mask mask, bool fused, int c0, int c1, double* part) {
  for (int b0 = c0, step = channel_block(b.p); b0 < c1; b0 += step) {
    const int b1 = std::min(c1, b0 + step);
    if (mask == kMaskY) backward_channels<kMaskY, true>(b, b0, b1, part);
    else if (mask == kMaskX) backward_channels<kMaskX, true>(b, b0, b1, part);
    else if (fused) backward_channels<kNoMask, true>(b, b0, b1, part);
    else backward_channels<kNoMask, false>(b, b0, b1, part);
  }
}

// Contiguous channel ranges, one per thread: the passes above stream whole
// images' planes, and their bits do not depend on the ranges.
int64_t channels_per_task(int C) { return std::max<int64_t>(1, (C + num_threads() - 1) / num_threads()); }

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
  Forward f{X, R, G, B, Y, RM, RV, mean, invstd, scale_f, shift_f, Planes{N, C, hw}, training, relu, momentum, eps};
  parallel_for(C, channels_per_task(C), [&](int64_t c0, int64_t c1) {
    // the planes' moments: this worker's scratch (a std::vector here, freed
    // once per call, cost 2 % of a ResNet-18 step in glibc's free)
    double* part = training ? scratch<double>(kScratchPartials, 3 * (size_t)N * (c1 - c0)) : nullptr;
    forward_channels(f, (int)c0, (int)c1, part);
  });

  if (any_requires_grad({&x, &gamma, &beta, &residual})) {
    auto gx = grad_target(x), gg = grad_target(gamma), gb = grad_target(beta), gr = grad_target(residual);
    // relu's mask: recomputed from x without a residual, else read from the output
    const Mask mask = !relu ? kNoMask : R ? kMaskY : kMaskX;
    std::shared_ptr<SavedOutput> saved_y = mask == kMaskY ? std::make_shared<SavedOutput>(y) : nullptr;
    const bool fused = relu || R;
    const Planes planes = f.p;
    record(y, op, [x, gamma, stats, gx, gg, gb, gr, saved_y, mask, fused, training, C, planes](const Tensor& gy) {
      Backward b{};
      b.x = x.data(), b.y = saved_y ? saved_y->data() : nullptr, b.dy = gy.data();
      b.gamma = gamma.defined() ? gamma.data() : nullptr, b.stats = stats.data();
      b.dx = gx ? grad_buffer(gx, b.fresh_x) : nullptr, b.dr = gr ? grad_buffer(gr, b.fresh_r) : nullptr;
      b.dgamma = gg ? acc_grad(gg) : nullptr, b.dbeta = gb ? acc_grad(gb) : nullptr;
      b.p = planes, b.training = training;
      parallel_for(C, channels_per_task(C), [&](int64_t c0, int64_t c1) {
        double* part = scratch<double>(kScratchPartials, 2 * (size_t)(c1 - c0));
        backward_channels(b, mask, fused, (int)c0, (int)c1, part);
      });
    });
  }
  return y;
}

void batch_norm2d_block_bytes(int64_t bytes) { g_block_bytes = bytes; }

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta, Tensor& running_mean,
                    Tensor& running_var, bool training, float momentum, float eps) {
  return batch_norm2d_act(x, gamma, beta, running_mean, running_var, training, momentum, eps, Tensor(), false);
}

}  // namespace mt
