// conv2d, forward and backward, and the choice of its kernels per pass
// (conv_passes): im2col + OpenBLAS sgemm (the column path, below), the direct
// kernels (engine/conv_direct.h), the flat kernels on canvases
// (engine/conv_flat.h) and Winograd's F(2x2, 3x3) (engine/conv_winograd.h).
// (The definition in six loops is conv2d_naive in engine/conv_naive.cpp.)
//
// The column path, for one sample, with K = C*kh*kw rows and P = Ho*Wo output positions:
//   col  [K, P]  = im2col(x_n)            column p holds the patch under output p
//   y_n  [O, P]  = W [O, K] * col + b     one sgemm
// Backward, with dY_n [O, P]:
//   dW  [O, K]  += dY_n * col^T
//   db  [O]     += sum_p dY_n
//   dcol [K, P]  = W^T * dY_n,  dx_n += col2im(dcol)   (skipped when x needs no grad)
// (small outputs take S samples per sgemm, their columns side by side:
// samples_per_product). The backward recomputes col rather than saving it:
// for MultiLeNet at batch 256 the saved columns would be ~15 MB per conv
// (written to and read back from memory), to skip an im2col that costs 10-15%
// of the backward in cache.
//
// Threads: samples are cut into chunks of a fixed count (it depends on the
// shapes, never on the thread count) and the chunks run in parallel; sgemm
// called inside the parallel region runs single-threaded (Debian's OpenMP
// OpenBLAS). dx is per sample, so it needs no reduction; dW and db are summed
// per chunk, then the chunk partials are added in chunk order: the same
// numbers at any thread count. The im2col buffers are per-thread scratch
// (engine/workspace.h): nothing is allocated per call once shapes repeat.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "engine/autograd.h"
#include "engine/conv_canvas.h"
#include "engine/conv_direct.h"
#include "engine/conv_flat.h"
#include "engine/conv_winograd.h"
#include "engine/gemm.h"
#include "engine/ops.h"
#include "engine/padded.h"
#include "engine/parallel.h"
#include "engine/workspace.h"

namespace mt {

namespace {

ConvPath g_force_path = ConvPath::Auto;  // conv2d_force_path (tests)

struct ConvGeom {
  int N, C, H, W;  // input
  int O, kh, kw;   // weight
  int s, p;        // stride, padding
  int Ho, Wo;      // output
  int64_t K() const { return (int64_t)C * kh * kw; }  // rows of the column matrix
  int64_t P() const { return (int64_t)Ho * Wo; }      // its columns: output positions
  // A 1x1 convolution with stride 1 and no padding: the columns are x itself.
  bool cols_are_input() const { return kh == 1 && kw == 1 && s == 1 && p == 0; }
};

// The geometry of x [N,C,H,W] * W [O,C,kh,kw] (+ bias of shape *bs), checked.
ConvGeom conv_geometry(const Shape& xs, const Shape& ws, const Shape* bs, const Conv2dArgs& a) {
  const char* op = "conv2d";
  MT_CHECK(xs.size() == 4, op, "input " + shape_str(xs) + " must be 4-D [N,C,H,W]");
  MT_CHECK(ws.size() == 4, op, "weight " + shape_str(ws) + " must be 4-D [O,C,kh,kw]");
  ConvGeom g;
  g.N = xs[0], g.C = xs[1], g.H = xs[2], g.W = xs[3];
  g.O = ws[0], g.kh = ws[2], g.kw = ws[3];
  g.s = a.stride, g.p = a.pad;
  MT_CHECK(ws[1] == g.C, op, "input " + shape_str(xs) + " has " + std::to_string(g.C) + " channels, weight " +
                              shape_str(ws) + " expects " + std::to_string(ws[1]));
  MT_CHECK(g.s >= 1, op, "stride must be >= 1, got " + std::to_string(g.s));
  MT_CHECK(g.p >= 0, op, "padding must be >= 0, got " + std::to_string(g.p));
  MT_CHECK(g.kh >= 1 && g.kw >= 1 && g.O >= 1, op, "empty weight " + shape_str(ws));
  MT_CHECK(g.H + 2 * g.p >= g.kh && g.W + 2 * g.p >= g.kw, op,
        "kernel " + std::to_string(g.kh) + "x" + std::to_string(g.kw) + " is larger than the padded input " +
            std::to_string(g.H + 2 * g.p) + "x" + std::to_string(g.W + 2 * g.p) + " (input " + shape_str(xs) +
            ", pad " + std::to_string(g.p) + ")");
  if (bs)
    MT_CHECK(bs->size() == 1 && (*bs)[0] == g.O, op,
          "bias " + shape_str(*bs) + " must have shape [" + std::to_string(g.O) + "] for weight " + shape_str(ws));
  g.Ho = (g.H + 2 * g.p - g.kh) / g.s + 1;
  g.Wo = (g.W + 2 * g.p - g.kw) / g.s + 1;
  return g;
}

ConvGeom conv_geometry(const Tensor& x, const Tensor& W, const Tensor& b, const Conv2dArgs& a) {
  MT_CHECK(x.defined(), "conv2d", "undefined input");
  MT_CHECK(W.defined(), "conv2d", "undefined weight");
  const Shape bs = b.defined() ? b.shape() : Shape();
  return conv_geometry(x.shape(), W.shape(), b.defined() ? &bs : nullptr, a);
}

// The outputs o in [lo, hi) whose input index o*s - p + k falls inside [0, in).
inline void valid_range(int k, int s, int p, int in, int out, int& lo, int& hi) {
  const int d = p - k;  // input index = o*s - d
  lo = d > 0 ? (d + s - 1) / s : 0;
  hi = in - 1 + d >= 0 ? std::min(out, (in - 1 + d) / s + 1) : 0;
  lo = std::min(lo, out);
  hi = std::max(hi, lo);
}

// Small images (the late stages' 4x4 to 8x8): each channel plane is copied
// once into a zero-bordered plane, and every row (ki, kj) of its columns is
// gathered from it through one table of offsets, instead of Ho short copies
// (of Wo floats, with zero ends) per row: the copies cost more than the
// sgemm they feed at 4x4.
struct SmallPlanes {
  static constexpr int kMaxPlane = 1024, kMaxTaps = 4096;  // padded floats, kh * kw * P offsets
  Padded l;               // a channel plane padded by p
  int32_t idx[kMaxTaps];  // idx[(ki * kw + kj) * P + oh * Wo + ow] = (oh s + ki) l.ld + ow s + kj
};
bool small_planes(const ConvGeom& g) {  // (1x1 kernels read x without padding: the strided copies win)
  return g.kh * g.kw > 1 && g.P() <= 64 && (int64_t)(g.H + 2 * g.p) * (g.W + 2 * g.p) <= SmallPlanes::kMaxPlane &&
         (int64_t)g.kh * g.kw * g.P() <= SmallPlanes::kMaxTaps;
}
void small_plan(const ConvGeom& g, SmallPlanes& t) {
  t.l.top = t.l.left = g.p;
  t.l.rows = g.H + 2 * g.p, t.l.ld = g.W + 2 * g.p;
  int32_t* at = t.idx;
  for (int ki = 0; ki < g.kh; ki++)
    for (int kj = 0; kj < g.kw; kj++)
      for (int oh = 0; oh < g.Ho; oh++)
        for (int ow = 0; ow < g.Wo; ow++) *at++ = (oh * g.s + ki) * t.l.ld + ow * g.s + kj;
}

// col [K, P] from one sample x [C, H, W]; padding reads as zero. Row k of
// col starts at col + k * ld (ld = P: one sample alone; ld = S * P: the
// sample's P columns within a block of S samples side by side).
void im2col(const ConvGeom& g, const float* x, float* col, int64_t ld) {
  if (small_planes(g)) {
    SmallPlanes t;
    small_plan(g, t);
    float pad[SmallPlanes::kMaxPlane];
    std::fill(pad, pad + t.l.plane(), 0.f);
    const int taps = g.kh * g.kw, P = (int)g.P();
    for (int c = 0; c < g.C; c++) {
      copy_padded(x + (int64_t)c * g.H * g.W, 1, g.H, g.W, t.l, pad);
      for (int k = 0; k < taps; k++) {
        float* __restrict row = col + ((int64_t)c * taps + k) * ld;
        const int32_t* __restrict idx = t.idx + k * P;
        for (int q = 0; q < P; q++) row[q] = pad[idx[q]];
      }
    }
    return;
  }
  for (int c = 0; c < g.C; c++)
    for (int ki = 0; ki < g.kh; ki++) {
      int oh0, oh1;
      valid_range(ki, g.s, g.p, g.H, g.Ho, oh0, oh1);
      for (int kj = 0; kj < g.kw; kj++) {
        int ow0, ow1;
        valid_range(kj, g.s, g.p, g.W, g.Wo, ow0, ow1);
        float* row = col + ((int64_t)(c * g.kh + ki) * g.kw + kj) * ld;
        const int h1 = ow1 > ow0 ? oh1 : oh0;  // rows [oh0, h1) read the image; the rest are zero
        if (oh0 > 0) std::memset(row, 0, sizeof(float) * oh0 * g.Wo);
        if (h1 < g.Ho) std::memset(row + (int64_t)h1 * g.Wo, 0, sizeof(float) * (g.Ho - h1) * g.Wo);
        const int iw0 = ow0 * g.s - g.p + kj;  // input column under output ow0
        if (g.s == 1 && ow0 == 0 && ow1 == g.Wo) {  // the common case: whole rows, no padding on the sides
          const int Wd = g.W, Wo = g.Wo;
          const float* src = x + ((int64_t)c * g.H + oh0 - g.p + ki) * Wd + iw0;
          float* dst = row + (int64_t)oh0 * Wo;
          for (int oh = oh0; oh < h1; oh++, src += Wd, dst += Wo)
#pragma omp simd
            for (int ow = 0; ow < Wo; ow++) dst[ow] = src[ow];
          continue;
        }
        for (int oh = oh0; oh < h1; oh++) {
          const float* src = x + ((int64_t)c * g.H + oh * g.s - g.p + ki) * g.W + iw0;
          float* dst = row + (int64_t)oh * g.Wo;
          for (int ow = 0; ow < ow0; ow++) dst[ow] = 0.f;
          if (g.s == 1)  // runs are short (Wo floats): an inline loop beats a memcpy call
#pragma omp simd
            for (int ow = ow0; ow < ow1; ow++) dst[ow] = src[ow - ow0];
          else
            for (int ow = ow0; ow < ow1; ow++) dst[ow] = src[(ow - ow0) * g.s];
          for (int ow = ow1; ow < g.Wo; ow++) dst[ow] = 0.f;
        }
      }
    }
}

// dx [C, H, W] += the columns scattered back (the adjoint of im2col; rows ld apart).
void col2im_add(const ConvGeom& g, const float* col, int64_t ld, float* dx) {
  if (small_planes(g)) {  // the taps added into a zero-bordered plane in im2col's order, then its inside into dx
    SmallPlanes t;
    small_plan(g, t);
    float pad[SmallPlanes::kMaxPlane];
    const int taps = g.kh * g.kw, P = (int)g.P();
    for (int c = 0; c < g.C; c++) {
      std::fill(pad, pad + t.l.plane(), 0.f);
      for (int k = 0; k < taps; k++) {
        const float* __restrict row = col + ((int64_t)c * taps + k) * ld;
        const int32_t* __restrict idx = t.idx + k * P;
        for (int q = 0; q < P; q++) pad[idx[q]] += row[q];
      }
      for (int h = 0; h < g.H; h++) {
        float* __restrict dst = dx + ((int64_t)c * g.H + h) * g.W;
        const float* __restrict src = pad + (h + t.l.top) * t.l.ld + t.l.left;
        for (int w = 0; w < g.W; w++) dst[w] += src[w];
      }
    }
    return;
  }
  for (int c = 0; c < g.C; c++)
    for (int ki = 0; ki < g.kh; ki++) {
      int oh0, oh1;
      valid_range(ki, g.s, g.p, g.H, g.Ho, oh0, oh1);
      for (int kj = 0; kj < g.kw; kj++) {
        int ow0, ow1;
        valid_range(kj, g.s, g.p, g.W, g.Wo, ow0, ow1);
        const float* row = col + ((int64_t)(c * g.kh + ki) * g.kw + kj) * ld;
        const int iw0 = ow0 * g.s - g.p + kj;
        const int n = ow1 - ow0;
        if (n == 0) continue;
        if (g.s == 1 && n == g.Wo) {  // whole rows (as in im2col)
          const int Wd = g.W, Wo = g.Wo;
          float* __restrict dst = dx + ((int64_t)c * g.H + oh0 - g.p + ki) * Wd + iw0;
          const float* __restrict src = row + (int64_t)oh0 * Wo;
          for (int oh = oh0; oh < oh1; oh++, src += Wo, dst += Wd)
#pragma omp simd
            for (int ow = 0; ow < Wo; ow++) dst[ow] += src[ow];
          continue;
        }
        for (int oh = oh0; oh < oh1; oh++) {
          float* __restrict dst = dx + ((int64_t)c * g.H + oh * g.s - g.p + ki) * g.W + iw0;
          const float* __restrict src = row + (int64_t)oh * g.Wo + ow0;
          if (g.s == 1)
#pragma omp simd
            for (int j = 0; j < n; j++) dst[j] += src[j];
          else
            for (int j = 0; j < n; j++) dst[j * g.s] += src[j];
        }
      }
    }
}

// Samples per parallel chunk: enough work per chunk (about 2M multiply-adds) to
// amortise the scheduling, at most 8 so a batch still splits into many chunks.
// A function of the shapes only, so chunk boundaries (and hence every partial
// sum) are the same at any thread count.
int64_t samples_per_chunk(const ConvGeom& g) {
  const int64_t macs = std::max<int64_t>(1, (int64_t)g.O * g.K() * g.P());
  return std::clamp<int64_t>((int64_t(1) << 21) / macs, 1, 8);
}

// Sum of n floats in double, four independent accumulators (fixed order).
double sum_double(const float* v, int64_t n) {
  double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a0 += v[i];
    a1 += v[i + 1];
    a2 += v[i + 2];
    a3 += v[i + 3];
  }
  for (; i < n; i++) a0 += v[i];
  return (a0 + a1) + (a2 + a3);
}

// ---- the direct path (stride 1, kernel larger than 1x1) ----------------------

// x as the direct forward reads it: padded by p, at least columns_read wide.
// copy is false when x itself will do (no padding, Wo a multiple of 8).
Padded input_layout(const ConvGeom& g, bool& copy) {
  Padded l;
  l.top = l.left = g.p;
  l.rows = g.H + 2 * g.p;
  l.ld = std::max(g.W + 2 * g.p, conv_direct::columns_read(g.Wo, g.kw));
  copy = l.ld != g.W || l.rows != g.H;
  if (!copy) l.top = l.left = 0;
  return l;
}

// dy as the backward reads it: rows of 8 * ceil(Wo / 8) with zeros past Wo
// (grad_weight's units), and for dX kh-1-p zero rows above and below (the
// full correlation's vertical padding; its columns are handled by shifts).
Padded grad_layout(const ConvGeom& g, bool dx) {
  Padded l;
  l.top = dx ? g.kh - 1 - g.p : 0;
  l.rows = g.Ho + 2 * l.top;
  l.ld = (g.Wo + 7) / 8 * 8;
  return l;
}

// dst[i] += sum_p parts[p * n + i] over p = 0..count-1, summed in double in part
// order (whatever the thread count: the backward passes' deterministic reduction of
// their per-band or per-chunk weight and bias gradients). Nothing when dst is null.
template <typename Part>  // float (weight partials) or double (bias partials)
void add_partials(float* dst, const Part* parts, int64_t count, int64_t n) {
  if (!dst) return;
  parallel_for(n, 4096, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      double acc = 0;
      for (int64_t p = 0; p < count; p++) acc += parts[p * n + i];
      dst[i] += (float)acc;
    }
  });
}

// The per-chunk (or per-band) partials of a backward pass, on the calling
// thread's scratch: db's, O doubles per chunk, then dW's, O x T floats per
// chunk (T = 0: no dW); add_to sums them into dW and db (either may be null).
struct Partials {
  int64_t count, O, T;
  double* db;
  float* dW;
  Partials(int64_t count_, int64_t O_, int64_t T_) : count(count_), O(O_), T(T_) {
    char* part = scratch<char>(kScratchPartials, count * O * (sizeof(double) + sizeof(float) * T));
    db = reinterpret_cast<double*>(part);
    dW = reinterpret_cast<float*>(part + count * O * sizeof(double));
  }
  void add_to(float* dW_dst, float* db_dst) const {
    add_partials(dW_dst, dW, count, O * T);
    add_partials(db_dst, db, count, O);
  }
};

// The direct path handles stride 1 except 1x1 (whose columns are x itself)
bool direct_path(const ConvGeom& g) {
  return g.s == 1 && !g.cols_are_input() && g_force_path != ConvPath::Columns;
}
// and its dX (dy padded by kh-1-p rows) needs p <= kh-1.
bool direct_dx(const ConvGeom& g) { return direct_path(g) && g.p <= g.kh - 1; }

// The direct dX, for one sample. With dy padded by kh-1-p zero rows and
// the kernel flipped, dx is a full correlation of dy; it is computed one kernel
// column kj at a time:
//   dxp[c, h, j + kj] += sum_{ki, o} W[o, c, kh-1-ki, kj] * dyp[o, h + ki, j]
// a (kh x 1) correlation written kj columns to the right, so dxp holds dx
// shifted right by p (dx[c, h, w] = dxp[c, h, w + p]) and the zero padding
// columns never enter a product. Rows of dxp read only the dy rows that
// exist (row_taps), so no product with a padding row is computed either.
struct DxPlan {
  int32_t* taps;      // [kh * O]: tap (ki, o) at o * plane + ki * ld of padded dy
  int32_t* row_taps;  // [H][2]: the taps of real dy rows for dx row h
  float* Wf;          // [kw][C][kh * O]: Wf[kj][c][ki * O + o] = W[o, c, kh-1-ki, kj]
  int ldx;            // row length of dxp: 8 * ceil(Wo / 8) + kw - 1
};

void plan_dx(const ConvGeom& g, const Padded& dyl, const float* W, DxPlan& d) {
  const int O = g.O, kh = g.kh, kw = g.kw;
  for (int ki = 0; ki < kh; ki++)
    for (int o = 0; o < O; o++) d.taps[ki * O + o] = (int32_t)(o * dyl.plane() + (int64_t)ki * dyl.ld);
  for (int h = 0; h < g.H; h++) {  // padded row h + ki is real dy for top <= h + ki < top + Ho
    const int lo = std::max(0, dyl.top - h), hi = std::min(kh, dyl.top + g.Ho - h);
    d.row_taps[2 * h] = hi > lo ? lo * O : 0;
    d.row_taps[2 * h + 1] = hi > lo ? hi * O : 0;
  }
  for (int kj = 0; kj < kw; kj++)
    for (int c = 0; c < g.C; c++)
      for (int ki = 0; ki < kh; ki++)
        for (int o = 0; o < O; o++)
          d.Wf[((int64_t)kj * g.C + c) * kh * O + ki * O + o] = W[(((int64_t)o * g.C + c) * kh + kh - 1 - ki) * kw + kj];
  d.ldx = dyl.ld + kw - 1;
}

// dx_n += the full correlation of padded dy_n (dyp) with the flipped kernel; dxp is work space.
// A fresh dx_n (grad_buffer) is written as 0.f + the sum instead.
void direct_dx_sample(const ConvGeom& g, const Padded& dyl, const DxPlan& d, const float* dyp, float* dxp,
                      float* dxn, bool fresh) {
  const int64_t xplane = (int64_t)g.H * d.ldx;
  std::memset(dxp, 0, sizeof(float) * g.C * xplane);
  conv_direct::Correlation k;
  k.C = g.O, k.O = g.C, k.kh = g.kh, k.kw = 1;  // K = kh * O taps, in the (ki, o) order of d.taps
  k.in = dyp, k.in_plane = dyl.plane(), k.in_ld = dyl.ld, k.taps = d.taps, k.row_taps = d.row_taps;
  k.out_plane = xplane, k.out_ld = d.ldx, k.Ho = g.H, k.Wo = dyl.ld;
  for (int kj = 0; kj < g.kw; kj++) {
    k.out = dxp + kj;
    conv_direct::forward(k, d.Wf + (int64_t)kj * g.C * g.kh * g.O, nullptr, true);
  }
  for (int c = 0; c < g.C; c++)
    for (int h = 0; h < g.H; h++) {
      float* __restrict dst = dxn + ((int64_t)c * g.H + h) * g.W;
      const float* __restrict src = dxp + c * xplane + (int64_t)h * d.ldx + g.p;
      if (fresh)
        for (int w = 0; w < g.W; w++) dst[w] = 0.f + src[w];
      else
        for (int w = 0; w < g.W; w++) dst[w] += src[w];
    }
}

void direct_forward(const ConvGeom& g, const float* X, const float* Wt, const float* B, float* Y) {
  bool copy;
  const Padded in = input_layout(g, copy);
  int32_t* taps = scratch<int32_t>(kScratchSetup, g.K());
  conv_direct::tap_offsets(g.C, g.kh, g.kw, in.plane(), in.ld, taps);
  const int64_t xs = (int64_t)g.C * g.H * g.W;
  parallel_for(g.N, samples_per_chunk(g), [&](int64_t n0, int64_t n1) {
    float* buf = copy ? scratch<float>(kScratchCols, g.C * in.plane()) : nullptr;
    if (buf) std::memset(buf, 0, sizeof(float) * g.C * in.plane());
    for (int64_t n = n0; n < n1; n++) {
      if (buf) copy_padded(X + n * xs, g.C, g.H, g.W, in, buf);
      conv_direct::Correlation k;
      k.C = g.C, k.O = g.O, k.kh = g.kh, k.kw = g.kw;
      k.in = buf ? buf : X + n * xs, k.in_plane = in.plane(), k.in_ld = in.ld, k.taps = taps;
      k.out = Y + n * g.O * g.P(), k.out_plane = g.P(), k.out_ld = g.Wo, k.Ho = g.Ho, k.Wo = g.Wo;
      conv_direct::forward(k, Wt, B, false);
    }
  });
}

// ---- the flat path (engine/conv_canvas.h, engine/conv_flat.h) ---------------
//
// Bands of G images on canvases; every pass is a correlation along flattened
// rows. Bands are the parallel chunks (G depends on the shapes only), dW and
// db are summed per band and the band partials added in band order.

conv_canvas::Geometry canvas_geometry(const ConvGeom& g) {
  return {g.N, g.C, g.H, g.W, g.O, g.kh, g.kw, g.s, g.p, g.Ho, g.Wo};
}

// The canvases address with int32 offsets.
bool flat_fits(const conv_canvas::Plan& P) {
  const int64_t limit = int64_t(1) << 30;
  return P.x_floats < limit && P.dy_floats < limit && (int64_t)P.g.O * conv_flat::round_up(P.Q, 16) < limit;
}

// Measured (apps/experiments/bench.cpp, conv rows): the flat path wins from 8
// input and 16 output channels with a kernel larger than 1x1 (ResNet's 3x3
// convolutions, stride 1 and 2; MultiLeNet's 10 -> 20); im2col + sgemm wins
// the stems (1 or 3 input channels) and the 1x1 projections.
bool flat_path(const ConvGeom& g) {
  if (g_force_path != ConvPath::Auto) return g_force_path == ConvPath::Flat;
  return g.O >= 16 && g.C >= 8 && g.kh * g.kw > 1;
}

// Where Winograd's algorithms take all three passes (engine/conv_winograd.h): F(4x4, 3x3)
// with its tiles as the columns of 36 matrices, a block of tiles at a time
// (transformed, multiplied by sgemm and transformed back in one thread's
// cache), or F(2x2, 3x3) with its tiles on canvases. F(4x4, 3x3) takes a
// fourth of the direct correlation's multiplies (F(2x2, 3x3) 4/9) and moves a
// 6x6 tile per 16 outputs where F(2x2, 3x3) moves a 4x4 one per 4.
// Measured (2026-12-01, AMD EPYC, 1 thread, batch 64, process CPU time, least
// of 7 runs, forward / weight gradient / input gradient, ms; tools in the
// closing note; before the blocks' matrices were set 16 floats apart, which
// made them 13-18 % faster at 16 and 32 channels), against the kernels the
// other rules take:
// - F(4x4, 3x3) in blocks wins all three passes from 16 channels:
//   [64,32,32,32] 6.8-7.3 / 8.7-9.5 / 7.1-7.6 against flat 12.2-12.4 /
//   14.2-14.6 / 12.0-12.3; [64,16,28,28] 1.9-2.0 / 2.3-2.5 / 2.2-2.4 against
//   2.6-2.8 / 2.9-3.3 / 2.6-3.0; [64,32,14,14] 1.7 / 2.0-2.4 / 2.0 against
//   2.5 / 3.1 / 2.6; [64,64,16,16] 5.0-5.2 / 6.5-8.4 / 5.8 against F(4x4, 3x3)
//   with whole matrices (before the blocks) 7.7 / 9.4 / 7.7; [64,64,32,32]
//   19.7 / 28.1 / 19.6 against F(2x2, 3x3) on canvases 32.5 and flat 53.3
//   (weight gradient); [64,32,4,4] 0.14 / 0.17 / 0.14 against flat 0.28 /
//   0.32 / 0.25. It ties at 16 channels on small images ([64,16,14,14] 2.24
//   against 2.18 in all) and from 128 channels ([64,256,4,4] 5.4-6.0 / 5.6-6.1
//   / 5.8-6.7 against the whole matrices' 5.4 / 6.2 / 5.8); with 8 channels it
//   wins on 28x28 images (2.9 against the direct kernels' 3.6) and ties on
//   56x56 (13.2 against 13.1), left to the direct kernels.
// - F(2x2, 3x3), on canvases or as matrices, is forced only (tests,
//   benchmarks): F(4x4, 3x3) in blocks beat it on every shape measured.
// F(4x4, 3x3) as matrices, for all three passes.
bool winograd_4x4(const ConvGeom& g) {
  if (g_force_path != ConvPath::Auto) return g_force_path == ConvPath::Winograd4x4;
  return g.C >= 16 && g.O >= 16;
}

bool winograd_path(const ConvGeom& g) {
  if (!conv_winograd::applies(g.kh, g.kw, g.s, g.p)) return false;
  if (g_force_path != ConvPath::Auto)
    return g_force_path == ConvPath::Winograd || g_force_path == ConvPath::WinogradMatrices ||
           g_force_path == ConvPath::Winograd4x4;
  return winograd_4x4(g);
}

conv_winograd::Problem winograd_problem(const ConvGeom& g, const float* x, const float* w) {
  conv_winograd::Problem p;
  p.N = g.N, p.C = g.C, p.H = g.H, p.W = g.W, p.O = g.O, p.x = x, p.w = w;
  p.m = winograd_4x4(g) ? 4 : 2;
  p.matrices = p.m == 4 || g_force_path == ConvPath::WinogradMatrices;
  return p;
}

// U: the transformed weights (conv_winograd::Problem::U) or null.
void winograd_forward(const ConvGeom& g, const float* X, const float* Wt, const float* U, const float* B, float* Y) {
  conv_winograd::Problem p = winograd_problem(g, X, Wt);
  p.U = U;
  conv_winograd::forward(p, B, Y, false);
}

void winograd_grad_weight(const ConvGeom& g, const float* X, const float* Wt, const float* dY, float* dW) {
  conv_winograd::grad_weight(winograd_problem(g, X, Wt), dY, dW);
}

// dx: the same correlation of dy, the kernel flipped and its channels swapped
// (its transformed weights read from the forward's U when given).
void winograd_input_grad(const ConvGeom& g, const float* Wt, const float* U, const float* dY, float* dX, bool fresh) {
  conv_winograd::Problem q;
  q.N = g.N, q.C = g.O, q.H = g.Ho, q.W = g.Wo, q.O = g.C, q.x = dY, q.w = Wt, q.flip = true, q.U = U;
  q.m = winograd_4x4(g) ? 4 : 2;  // F(4x4, 3x3) transforms the flipped kernel itself (U is null)
  q.matrices = q.m == 4 || g_force_path == ConvPath::WinogradMatrices;
  conv_winograd::forward(q, nullptr, dX, !fresh);
}

// db[o] += sum of dy over samples and positions (in double, samples in order).
void sum_planes(const ConvGeom& g, const float* dY, float* db) {
  const int64_t plane = (int64_t)g.Ho * g.Wo;
  parallel_for(g.O, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; o++) {
      double acc = 0;
      for (int n = 0; n < g.N; n++) acc += sum_double(dY + ((int64_t)n * g.O + o) * plane, plane);
      db[o] += (float)acc;
    }
  });
}

void flat_forward(const ConvGeom& g, const conv_canvas::Plan& P, const float* X, const float* Wt, const float* B,
                  float* Y) {
  const int T = (int)g.K();
  float* w = scratch<float>(kScratchSetup, conv_flat::packed_size(g.O, T));
  conv_flat::pack_weights(g.O, T, [&](int o, int t) { return Wt[(int64_t)o * T + t]; }, w);
  const int64_t Qr = conv_flat::round_up(P.Q, conv_flat::kLanes), bands = (g.N + P.G - 1) / P.G;
  const int64_t xs = (int64_t)g.C * g.H * g.W, ys = (int64_t)g.O * g.Ho * g.Wo;
  parallel_for(bands, 1, [&](int64_t b0, int64_t b1) {
    float* canvas = scratch<float>(kScratchCols, P.x_floats);
    float* out = scratch<float>(kScratchDx, g.O * Qr);
    for (int64_t band = b0; band < b1; band++) {
      const int64_t n0 = band * P.G;
      const int images = (int)std::min<int64_t>(P.G, g.N - n0);
      conv_canvas::stage_x(P, X + n0 * xs, images, canvas);
      conv_flat::Correlate k;
      k.O = g.O, k.T = T, k.in = canvas, k.taps = P.taps.data(), k.w = w, k.out = out, k.out_plane = Qr, k.Q = P.Q;
      conv_flat::correlate(k);
      conv_canvas::store_y(P, out, Qr, B, images, Y + n0 * ys);
    }
  });
}

// Channels per parallel task of the backward (a multiple of the kernels' blocks).
constexpr int kFlatGroup = 16;

void flat_backward(const ConvGeom& g, const float* X, const float* Wt, const float* dY, float* dX, bool dx_fresh,
                   float* dW, float* db) {
  const conv_canvas::Geometry cg = canvas_geometry(g);
  const conv_canvas::Plan P = conv_canvas::make_plan(cg, conv_canvas::images_per_band(cg, 1024));
  const int T = (int)g.K(), O = g.O, C = g.C;
  const int64_t bands = (g.N + P.G - 1) / P.G;
  const int64_t xs = (int64_t)C * g.H * g.W, ys = (int64_t)O * g.Ho * g.Wo;
  // The input gradient's weights, phase by phase, and the largest of its grids.
  std::vector<int64_t> wdx_at(P.dx.size() + 1, 0);
  int64_t dx_grid = 0;
  for (size_t i = 0; i < P.dx.size(); i++) {
    wdx_at[i + 1] = wdx_at[i] + (dX ? conv_flat::packed_size(C, (int)P.dx[i].taps.size()) : 0);
    dx_grid = std::max(dx_grid, conv_flat::round_up(P.dx[i].Q, conv_flat::kLanes));
  }
  // Shared by the workers, on this thread's scratch: the weights of dx, the
  // per-band partials of db (double) and dW.
  float* wdx = scratch<float>(kScratchSetup, std::max<int64_t>(1, wdx_at.back()));
  const Partials part(bands, O, T);
  if (dX)
    for (size_t i = 0; i < P.dx.size(); i++) {
      const conv_canvas::DxPhase& ph = P.dx[i];
      const int64_t plane = (int64_t)g.kh * g.kw;
      conv_flat::pack_weights(C, (int)ph.taps.size(), [&](int c, int t) { return Wt[ph.weight[t] + c * plane]; },
                              wdx + wdx_at[i]);
    }

  // One band's canvases and db; its dW rows [o0, o1); its dx channels [c0, c1)
  // (in groups, through `out`). Every dW and dx element is computed the same
  // way whichever of the two schedules below runs it.
  auto stage = [&](int64_t band, float* xcb, float* dycb) {
    const int64_t n0 = band * P.G;
    const int images = (int)std::min<int64_t>(P.G, g.N - n0);
    conv_canvas::stage_dy(P, dY + n0 * ys, images, dycb);
    if (dW) conv_canvas::stage_x(P, X + n0 * xs, images, xcb);
    if (db) {
      const int64_t plane = (int64_t)g.Ho * g.Wo;
      for (int o = 0; o < O; o++) {
        double acc = 0;
        for (int b = 0; b < images; b++) acc += sum_double(dY + (n0 + b) * ys + o * plane, plane);
        part.db[band * O + o] = acc;
      }
    }
  };
  auto weight_grad = [&](int64_t band, int o0, int o1, const float* xcb, const float* dycb) {
    conv_flat::GradWeight k;
    k.O = o1 - o0, k.T = T, k.in = xcb, k.taps = P.taps.data();
    k.dy = dycb + o0 * P.dy_plane + P.dy_grid, k.dy_plane = P.dy_plane, k.Q = P.Q;
    k.dw = part.dW + (band * O + o0) * T;
    conv_flat::grad_weight(k);
  };
  auto input_grad = [&](int64_t band, int c0, int c1, const float* dycb, float* out) {
    const int64_t n0 = band * P.G;
    const int images = (int)std::min<int64_t>(P.G, g.N - n0);
    for (int cg0 = c0; cg0 < c1; cg0 += kFlatGroup) {
      const int cg1 = std::min(c1, cg0 + kFlatGroup);
      for (size_t f = 0; f < P.dx.size(); f++) {
        const conv_canvas::DxPhase& ph = P.dx[f];
        if (ph.taps.empty()) {
          conv_canvas::store_dx(P, ph, nullptr, 0, images, cg0, cg1, dx_fresh, dX + n0 * xs);
          continue;
        }
        const int64_t grid = conv_flat::round_up(ph.Q, conv_flat::kLanes);
        conv_flat::Correlate k;
        k.O = cg1 - cg0, k.T = (int)ph.taps.size(), k.in = dycb, k.taps = ph.taps.data();
        k.w = wdx + wdx_at[f] + (int64_t)cg0 * k.T, k.out = out, k.out_plane = grid, k.Q = ph.Q;
        conv_flat::correlate(k);
        conv_canvas::store_dx(P, ph, out, grid, images, cg0, cg1, dx_fresh, dX + n0 * xs);
      }
    }
  };

  if (bands >= 8) {
    // Many bands: each worker takes whole bands, its canvases staying in its cache.
    parallel_for(bands, 1, [&](int64_t b0, int64_t b1) {
      float* xcb = dW ? scratch<float>(kScratchCols, P.x_floats) : nullptr;
      float* dycb = scratch<float>(kScratchColGrad, P.dy_floats);
      float* out = dX ? scratch<float>(kScratchDx, kFlatGroup * dx_grid) : nullptr;
      for (int64_t band = b0; band < b1; band++) {
        stage(band, xcb, dycb);
        if (dW) weight_grad(band, 0, O, xcb, dycb);
        if (dX) input_grad(band, 0, C, dycb, out);
      }
    });
  } else {
    // Few bands (small images, many to a band): every band staged first, then
    // the work split by band and group of channels.
    float* xc = dW ? scratch<float>(kScratchCols, bands * P.x_floats) : nullptr;
    float* dyc = scratch<float>(kScratchColGrad, bands * P.dy_floats);
    parallel_for(bands, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t band = b0; band < b1; band++)
        stage(band, xc ? xc + band * P.x_floats : nullptr, dyc + band * P.dy_floats);
    });
    if (dW) {
      const int64_t groups = (O + kFlatGroup - 1) / kFlatGroup;
      parallel_for(bands * groups, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) {
          const int64_t band = i / groups;
          const int o0 = (int)(i % groups) * kFlatGroup;
          weight_grad(band, o0, std::min(O, o0 + kFlatGroup), xc + band * P.x_floats, dyc + band * P.dy_floats);
        }
      });
    }
    if (dX) {
      const int64_t groups = (C + kFlatGroup - 1) / kFlatGroup;
      parallel_for(bands * groups, 1, [&](int64_t i0, int64_t i1) {
        float* out = scratch<float>(kScratchDx, kFlatGroup * dx_grid);
        for (int64_t i = i0; i < i1; i++) {
          const int64_t band = i / groups;
          const int c0 = (int)(i % groups) * kFlatGroup;
          input_grad(band, c0, std::min(C, c0 + kFlatGroup), dyc + band * P.dy_floats, out);
        }
      });
    }
  }

  // The band partials, added in band order.
  part.add_to(dW, db);
}

// ---- the column path: im2col + sgemm, one sample or S per product -----------
//
// A product takes S samples side by side: col [K, S*P] (sample s's columns at
// s*P), y [O, S*P] = W col, dW += dy col^T, dcol = W^T dy. The small outputs
// of a ResNet's last stages leave one sample's product few columns (P = 16 at
// 4x4, where sgemm runs at a third of its rate), and the flat kernels waste
// most of their grid on such images (a 4x4 image takes a 5x6 grid); there
// the input and weight gradients group samples until a product has
// kMinColumns columns. Measured (1 thread, batch 64, CPU time; the fourth
// session's closing note): grouping wins both gradients over the flat kernels by
// 1.2-2.7x where K = C kh kw >= 512 and the output has at most 16 positions,
// or at most 64 with stride 2 (ResNet-18's layer-4 entry, and the stride-2 entry of
// layer 3 at 64x64; the stride-1 4x4 convolutions of layer 4 now take Winograd's
// matrices, winograd_path). The forward measured so on that machine, the flat
// kernels ahead everywhere; on the ninth session's (AMD Zen 4, least of 50 calls,
// 1 / 2 threads, ms) the grouped columns' forward wins at stride 2 and 16
// positions, ResNet-18's layer-4 entries: [64,64,7,7] -> 128 flat 2.00 / 1.95, columns 1.78 / 1.64;
// [64,128,8,8] -> 256 flat 7.68 / 4.66, columns 6.67 / 3.48; at 64 positions
// ([64,64,16,16] -> 128) flat 6.88, columns 7.17, so flat keeps those. With fewer than
// 512 rows (K) or larger stride-1 outputs, the flat kernels (and Winograd's
// input gradient) win or tie. 256 columns beat 128, 512 and 1024 (the columns
// of a product stay in L2). Other shapes keep one sample per product.
constexpr int64_t kMinColumns = 256;

bool grouped_columns(const ConvGeom& g) {
  return g.K() >= 512 && (g.P() <= 16 || (g.s > 1 && g.P() <= 64));
}
int64_t samples_per_product(const ConvGeom& g) {
  return grouped_columns(g) ? std::clamp<int64_t>((kMinColumns + g.P() - 1) / g.P(), 1, g.N) : 1;
}
// Samples per parallel chunk: one product's, or samples_per_chunk's single-sample products.
int64_t column_chunk(const ConvGeom& g) {
  const int64_t S = samples_per_product(g);
  return S > 1 ? S : samples_per_chunk(g);
}

void columns_forward(const ConvGeom& g, const float* X, const float* Wt, const float* B, float* Y) {
  const int64_t K = g.K(), P = g.P(), O = g.O, S = samples_per_product(g);
  const int64_t xs = (int64_t)g.C * g.H * g.W;
  parallel_for(g.N, column_chunk(g), [&](int64_t n0, int64_t n1) {
    for (int64_t b = n0; b < n1; b += S) {
      const int64_t ns = std::min(S, n1 - b), L = ns * P;  // this product's samples and columns
      // one sample: straight into y (and x itself as columns for 1x1 stride 1); else through yc
      const bool alone = ns == 1;
      float* col = alone && g.cols_are_input() ? nullptr : scratch<float>(kScratchCols, K * L);
      float* yc = alone ? Y + b * O * P : scratch<float>(kScratchDx, O * L);
      for (int64_t s = 0; s < ns && col; s++) im2col(g, X + (b + s) * xs, col + s * P, L);
      if (B && alone)
        for (int64_t o = 0; o < O; o++) std::fill(yc + o * P, yc + (o + 1) * P, B[o]);
      gemm_serial(false, false, (int)O, (int)L, (int)K, Wt, col ? col : X + b * xs, B && alone ? 1.f : 0.f, yc);
      if (alone) continue;
      for (int64_t s = 0; s < ns; s++)
        for (int64_t o = 0; o < O; o++) {
          const float* src = yc + o * L + s * P;
          float* dst = Y + ((b + s) * O + o) * P;
          const float bo = B ? B[o] : 0.f;
          if (B)
            for (int64_t p = 0; p < P; p++) dst[p] = bo + src[p];
          else
            std::memcpy(dst, src, sizeof(float) * P);
        }
    }
  });
}

// The column path's backward: any of dX, dW, db (null: not wanted). dW and db
// are summed per chunk (products in order: beta 0 for the first) and the chunk
// partials added in chunk order; dX is per sample.
void columns_backward(const ConvGeom& g, const float* X, const float* Wt, const float* dY, float* dX, bool dx_fresh,
                      float* dW, float* db) {
  if (!dX && !dW && !db) return;
  const int64_t K = g.K(), P = g.P(), O = g.O, S = samples_per_product(g), chunk = column_chunk(g);
  const int64_t xs = (int64_t)g.C * g.H * g.W, chunks = (g.N + chunk - 1) / chunk;
  const Partials part(chunks, O, dW ? K : 0);
  parallel_for(g.N, chunk, [&](int64_t n0, int64_t n1) {
    const int64_t c = n0 / chunk;
    for (int64_t b = n0; b < n1; b += S) {
      const int64_t ns = std::min(S, n1 - b), L = ns * P;
      const bool alone = ns == 1;
      // dy of the product's samples as [O, L]: dY itself for one sample
      float* dyc = alone ? nullptr : scratch<float>(kScratchColGrad, O * L);
      for (int64_t s = 0; s < ns && dyc; s++)
        for (int64_t o = 0; o < O; o++) std::memcpy(dyc + o * L + s * P, dY + ((b + s) * O + o) * P, sizeof(float) * P);
      const float* dy = dyc ? dyc : dY + b * O * P;
      if (dW) {  // dW_c (+)= dy col^T
        float* col = alone && g.cols_are_input() ? nullptr : scratch<float>(kScratchCols, K * L);
        for (int64_t s = 0; s < ns && col; s++) im2col(g, X + (b + s) * xs, col + s * P, L);
        gemm_serial(false, true, (int)O, (int)K, (int)L, dy, col ? col : X + b * xs, b == n0 ? 0.f : 1.f,
                    part.dW + c * O * K);
      }
      if (db)
        for (int64_t s = 0; s < ns; s++)
          for (int64_t o = 0; o < O; o++)
            part.db[c * O + o] = (b + s == n0 ? 0.0 : part.db[c * O + o]) + sum_double(dY + ((b + s) * O + o) * P, P);
      if (dX) {  // dcol = W^T dy, scattered into dx (1x1 stride 1, one sample: written straight into it)
        for (int64_t s = 0; s < ns && dx_fresh; s++) std::memset(dX + (b + s) * xs, 0, sizeof(float) * xs);
        const bool straight = alone && g.cols_are_input();
        float* dcol = straight ? dX + b * xs : scratch<float>(kScratchDx, K * L);
        gemm_serial(true, false, (int)K, (int)L, (int)O, Wt, dy, straight ? 1.f : 0.f, dcol);
        for (int64_t s = 0; s < ns && !straight; s++) col2im_add(g, dcol + s * P, L, dX + (b + s) * xs);
      }
    }
  });
  part.add_to(dW, db);
}

// The direct path's backward: dW (and db) by its weight-gradient kernel, dX by
// the full correlation when the padding allows (direct_dx), else not here
// (the caller takes it through the columns).
void direct_backward(const ConvGeom& g, const float* X, const float* Wt, const float* dY, float* dX, bool dx_fresh,
                     float* dW, float* db) {
  const int64_t K = g.K(), P = g.P(), O = g.O;
  const int64_t xs = (int64_t)g.C * g.H * g.W;
  const int64_t S = samples_per_chunk(g), chunks = (g.N + S - 1) / S;
  const Partials part(chunks, O, K);
  // The tables shared by the workers: the taps of x (for dW) and the plan of dX.
  bool copy_x = false;
  const Padded in = input_layout(g, copy_x);
  const Padded dyl = grad_layout(g, dX != nullptr);
  const bool stage_dy = dX || (dW && g.Wo % 8 != 0);
  const int64_t khO = (int64_t)g.kh * O;
  char* setup = scratch<char>(kScratchSetup, sizeof(int32_t) * (K + khO + 2 * g.H) + sizeof(float) * O * K);
  int32_t* taps_x = reinterpret_cast<int32_t*>(setup);
  conv_direct::tap_offsets(g.C, g.kh, g.kw, in.plane(), in.ld, taps_x);
  DxPlan plan{};
  plan.taps = taps_x + K;
  plan.row_taps = plan.taps + khO;
  plan.Wf = reinterpret_cast<float*>(plan.row_taps + 2 * g.H);
  if (dX) plan_dx(g, dyl, Wt, plan);

  parallel_for(g.N, S, [&](int64_t n0, int64_t n1) {
    const int64_t c = n0 / S, ns = n1 - n0;  // this chunk's index and sample count
    double* dbc = part.db + c * O;
    float* dWc = part.dW + c * O * K;
    // The padded x and dy of the whole chunk (borders zeroed, then each sample copied in).
    float *xbuf = nullptr, *dybuf = nullptr;
    const int64_t xbs = g.C * in.plane(), dybs = O * dyl.plane();  // floats per staged sample
    if (dW && copy_x) {
      xbuf = scratch<float>(kScratchCols, ns * xbs);
      std::memset(xbuf, 0, sizeof(float) * ns * xbs);
      for (int64_t n = n0; n < n1; n++) copy_padded(X + n * xs, g.C, g.H, g.W, in, xbuf + (n - n0) * xbs);
    }
    if (stage_dy) {
      dybuf = scratch<float>(kScratchColGrad, ns * dybs);
      std::memset(dybuf, 0, sizeof(float) * ns * dybs);
      for (int64_t n = n0; n < n1; n++) copy_padded(dY + n * O * P, g.O, g.Ho, g.Wo, dyl, dybuf + (n - n0) * dybs);
    }
    float* dxp = dX ? scratch<float>(kScratchDx, (int64_t)g.C * g.H * plan.ldx) : nullptr;

    if (dW) {  // dW_c = the correlation's weight gradient over the chunk's samples
      conv_direct::Correlation k;
      k.C = g.C, k.O = g.O, k.kh = g.kh, k.kw = g.kw;
      k.in = xbuf ? xbuf : X + n0 * xs, k.in_plane = in.plane(), k.in_ld = in.ld, k.taps = taps_x;
      k.Ho = g.Ho, k.Wo = g.Wo;
      conv_direct::GradWeightArgs ga;
      ga.samples = (int)ns;
      ga.in_stride = xbuf ? xbs : xs;
      if (dybuf) {
        ga.dy = dybuf + (int64_t)dyl.top * dyl.ld + dyl.left;
        ga.dy_stride = dybs, ga.dy_plane = dyl.plane(), ga.dy_ld = dyl.ld;
      } else {
        ga.dy = dY + n0 * O * P;
        ga.dy_stride = O * P, ga.dy_plane = P, ga.dy_ld = g.Wo;
      }
      conv_direct::grad_weight(k, ga, dWc);
    }
    for (int64_t n = n0; n < n1; n++) {
      if (db)
        for (int64_t o = 0; o < O; o++) dbc[o] = (n == n0 ? 0.0 : dbc[o]) + sum_double(dY + n * O * P + o * P, P);
      if (dX) direct_dx_sample(g, dyl, plan, dybuf + (n - n0) * dybs, dxp, dX + n * xs, dx_fresh);
    }
  });

  part.add_to(dW, db);  // the chunk partials, added in chunk order
}

// ---- choosing the kernels ----------------------------------------------------

enum class Kernel { Columns, Direct, Flat, Winograd };
struct Passes {
  Kernel forward, input_grad, weight_grad;  // db goes with the weight gradient
  std::shared_ptr<const conv_canvas::Plan> plan;  // the flat forward's, when it runs
};

// The kernel of each pass, by shape (README, "Kernels and bits"): Winograd for
// all three where winograd_path says so; else the flat kernels for
// flat_path's shapes when their canvases fit, with the grouped columns'
// gradients where grouped_columns says (all three passes at stride 2 and at
// most 16 positions); else the direct kernels for
// stride 1 (their input gradient through the columns when the padding is past
// kh - 1); else the columns. conv2d_force_path overrides it (tests).
Passes conv_passes(const ConvGeom& g) {
  Passes k{Kernel::Columns, Kernel::Columns, Kernel::Columns, nullptr};
  const auto all = [&](Kernel v) { k.forward = k.input_grad = k.weight_grad = v; };
  if (winograd_path(g)) {
    all(Kernel::Winograd);
    return k;
  }
  if (flat_path(g)) {
    // grouped_columns' note: at stride 2 and 16 positions the columns take the forward too (no canvas plan)
    if (g_force_path == ConvPath::Auto && grouped_columns(g) && g.s > 1 && g.P() <= 16) return k;
    const conv_canvas::Geometry cg = canvas_geometry(g);
    auto P = std::make_shared<conv_canvas::Plan>(conv_canvas::make_plan(cg, conv_canvas::images_per_band(cg)));
    if (flat_fits(*P)) {
      all(Kernel::Flat);
      if (g_force_path == ConvPath::Auto && grouped_columns(g)) k.input_grad = k.weight_grad = Kernel::Columns;
      k.plan = P;
      return k;
    }
  }
  if (direct_path(g)) {
    all(Kernel::Direct);
    if (!direct_dx(g)) k.input_grad = Kernel::Columns;
  }
  return k;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& W, const Tensor& b, Conv2dArgs a) {
  const ConvGeom g = conv_geometry(x, W, b, a);
  Tensor y = Tensor::empty({g.N, g.O, g.Ho, g.Wo});
  const Passes k = conv_passes(g);
  const float* B = b.defined() ? b.data() : nullptr;
  // Winograd's transformed weights, computed once for the forward and the input gradient
  // (F(2x2, 3x3): F(4x4, 3x3)'s input gradient transforms the flipped kernel itself)
  Tensor U;
  if (k.forward == Kernel::Winograd && k.input_grad == Kernel::Winograd && any_requires_grad({&x})) {
    const conv_winograd::Problem p = winograd_problem(g, x.data(), W.data());
    if (p.m == 2) {
      U = Tensor::empty({16, g.O, g.C});
      conv_winograd::transform_weights(p, U.data());
    }
  }
  switch (k.forward) {
    case Kernel::Winograd:
      winograd_forward(g, x.data(), W.data(), U.defined() ? U.data() : nullptr, B, y.data());
      break;
    case Kernel::Flat: flat_forward(g, *k.plan, x.data(), W.data(), B, y.data()); break;
    case Kernel::Direct: direct_forward(g, x.data(), W.data(), B, y.data()); break;
    case Kernel::Columns: columns_forward(g, x.data(), W.data(), B, y.data()); break;
  }
  if (!any_requires_grad({&x, &W, &b})) return y;
  auto gx = grad_target(x), gw = grad_target(W), gb = grad_target(b);
  record(y, "conv2d", [=](const Tensor& gy) {
    const float *X = x.data(), *Wt = W.data(), *dY = gy.data();
    // dX is written, not added to, when fresh (grad_buffer)
    bool dx_fresh = false;
    float* dX = gx ? grad_buffer(gx, dx_fresh) : nullptr;
    float* dW = gw ? acc_grad(gw) : nullptr;
    float* db = gb ? acc_grad(gb) : nullptr;
    // each kernel takes the passes chosen for it (null: not its pass)
    const auto mine = [](Kernel pass, Kernel kernel, float* p) { return pass == kernel ? p : nullptr; };
    for (Kernel kernel : {Kernel::Flat, Kernel::Direct, Kernel::Columns, Kernel::Winograd}) {
      float* kdX = mine(k.input_grad, kernel, dX);
      float* kdW = mine(k.weight_grad, kernel, dW);
      float* kdb = mine(k.weight_grad, kernel, db);
      if (!kdX && !kdW && !kdb) continue;
      switch (kernel) {
        case Kernel::Flat: flat_backward(g, X, Wt, dY, kdX, dx_fresh, kdW, kdb); break;
        case Kernel::Direct: direct_backward(g, X, Wt, dY, kdX, dx_fresh, kdW, kdb); break;
        case Kernel::Columns: columns_backward(g, X, Wt, dY, kdX, dx_fresh, kdW, kdb); break;
        case Kernel::Winograd:
          if (kdb) sum_planes(g, dY, kdb);
          if (kdW) winograd_grad_weight(g, X, Wt, dY, kdW);
          if (kdX) winograd_input_grad(g, Wt, U.defined() ? U.data() : nullptr, dY, kdX, dx_fresh);
          break;
      }
    }
  });
  return y;
}

void conv2d_force_path(ConvPath p) { g_force_path = p; }

std::string conv2d_path_name(const Shape& x, const Shape& w, Conv2dArgs a) {
  const ConvGeom g = conv_geometry(x, w, nullptr, a);
  const Passes k = conv_passes(g);
  const auto name = [&](Kernel v) -> std::string {
    switch (v) {
      case Kernel::Flat: return "flat";
      case Kernel::Direct: return "direct";
      case Kernel::Winograd:
        if (winograd_4x4(g)) return "winograd 4x4 matrices";
        return g_force_path == ConvPath::WinogradMatrices ? "winograd matrices" : "winograd";
      case Kernel::Columns: return samples_per_product(g) > 1 ? "columns x" + std::to_string(samples_per_product(g)) : "columns";
    }
    return "";
  };
  // the forward's kernel, then the backward passes that take another: e.g. "flat (dx columns x4, dW columns x4)"
  std::string s = name(k.forward), extra;
  if (name(k.input_grad) != s) extra += "dx " + name(k.input_grad);
  if (name(k.weight_grad) != s) extra += (extra.empty() ? "" : ", ") + std::string("dW ") + name(k.weight_grad);
  return extra.empty() ? s : s + " (" + extra + ")";
}

}  // namespace mt
