#include "engine/conv_canvas.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "engine/conv_flat.h"

namespace mt::conv_canvas {

namespace {

int ceil_div(int a, int b) { return a <= 0 ? 0 : (a + b - 1) / b; }

// The phase indices e >= 0 with e * s + t in [lo, hi): [first, last).
void phase_range(int s, int t, int lo, int hi, int& first, int& last) {
  first = t >= lo ? 0 : ceil_div(lo - t, s);
  last = ceil_div(hi - t, s);
  last = std::max(last, first);
}

}  // namespace

int images_per_band(const Geometry& g, int64_t positions, int columns, bool with_dx) {
  const int Sw = make_plan(g, 1, with_dx).Sw;
  const int64_t per_image = (int64_t)Sw * g.Ho;
  const int64_t N = std::max(1, g.N);
  const int64_t G = std::clamp<int64_t>(
      std::max<int64_t>((columns + Sw - 1) / Sw, (positions + per_image - 1) / per_image), 1, N);
  // The bands as even as the batch allows: a band computes its whole grid
  // whatever number of images it holds, so 64 images in bands of 19 (7x7
  // images, 1024 positions) would compute 76 images' grids; 4 bands of 16 do not.
  int64_t bands = (N + G - 1) / G;
  // And an even number of them where a few images fewer a band gives one (the
  // threads take the bands, and 13 left one thread a band more than the other:
  // ResNet-18's [64,16,28,28] -> 32 stride 2 in bands of 5; 16 bands of 4 took
  // 2.64-2.79 ms for its three passes at 2 threads against 2.92-3.01, 1 thread alike).
  if (bands % 2 == 1 && bands > 1) {
    int64_t fewer = (N + bands - 1) / bands;
    while (fewer > 1 && ((N + fewer - 1) / fewer) % 2 == 1) fewer--;
    const int64_t more = (N + fewer - 1) / fewer;
    if (more % 2 == 0 && more <= 2 * bands) bands = more;
  }
  return (int)((N + bands - 1) / bands);
}

Plan make_plan(const Geometry& g, int G, bool with_dx) {
  Plan P;
  P.g = g;
  P.G = G;
  const int s = g.s, p = g.p;
  P.A = ceil_div(g.H + 2 * p, s);
  P.E = ceil_div(g.W + 2 * p, s);

  // The phases the taps read, and the zero columns neighbours can share:
  // in column phase t an image has lz zero columns on its left, rz on its right.
  P.slot.assign((size_t)s * s, -1);
  std::vector<bool> col_phase(s, false);
  for (int ki = 0; ki < g.kh; ki++)
    for (int kj = 0; kj < g.kw; kj++) {
      P.slot[(ki % s) * s + kj % s] = 0;
      col_phase[kj % s] = true;
    }
  P.phases = 0;
  for (int& v : P.slot)
    if (v == 0) v = P.phases++;
  int shared = INT_MAX;
  for (int t = 0; t < s; t++) {
    if (!col_phase[t]) continue;
    int first, last;
    phase_range(s, t, p, p + g.W, first, last);  // the columns holding pixels
    shared = std::min({shared, std::min(first, P.E), std::max(0, P.E - last)});
  }
  int Sw = std::max(P.E - shared, g.Wo);

  // The input-gradient phases and how far their taps reach back into dy.
  int reach_h = 0, reach_w = 0, right = g.Wo, bottom = g.Ho;
  for (int r = 0; r < s && with_dx; r++)
    for (int t = 0; t < s; t++) {
      DxPhase ph;
      ph.r = r, ph.t = t;
      int a1, e1;
      phase_range(s, r, p, p + g.H, ph.a0, a1);
      phase_range(s, t, p, p + g.W, ph.e0, e1);
      ph.na = a1 - ph.a0, ph.ne = e1 - ph.e0;
      if (ph.na <= 0 || ph.ne <= 0) continue;
      for (int ki = r; ki < g.kh; ki += s)
        for (int kj = t; kj < g.kw; kj += s) {
          reach_h = std::max(reach_h, (ki - r) / s - ph.a0);
          reach_w = std::max(reach_w, (kj - t) / s - ph.e0);
          Sw = std::max(Sw, g.Wo + (kj - t) / s - ph.e0);  // reads left of an image miss its neighbour's dy
        }
      Sw = std::max(Sw, e1);  // and reads right of it (dy columns up to e1 - 1)
      right = std::max(right, e1);
      bottom = std::max(bottom, a1);
      P.dx.push_back(ph);
    }
  P.dy_top = reach_h, P.dy_left = reach_w;
  P.Sw = Sw;
  P.ld = (G - 1) * Sw + std::max(P.E, P.dy_left + right);

  // x canvas and the forward taps.
  const int ld = P.ld;
  P.x_plane = (int64_t)P.A * ld;
  P.taps.resize((size_t)g.C * g.kh * g.kw);
  int32_t max_tap = 0;
  for (int c = 0; c < g.C; c++)
    for (int ki = 0; ki < g.kh; ki++)
      for (int kj = 0; kj < g.kw; kj++) {
        const int64_t off = ((int64_t)c * P.phases + P.slot[(ki % s) * s + kj % s]) * P.x_plane +
                            (int64_t)(ki / s) * ld + kj / s;
        P.taps[((size_t)c * g.kh + ki) * g.kw + kj] = (int32_t)off;
        max_tap = std::max(max_tap, (int32_t)off);
      }
  P.Q = (int64_t)(g.Ho - 1) * ld + (int64_t)(G - 1) * Sw + g.Wo;
  const int64_t Qr = conv_flat::round_up(P.Q, conv_flat::kLanes);
  P.x_floats = std::max((int64_t)g.C * P.phases * P.x_plane, max_tap + Qr) + conv_flat::kLanes;

  if (!with_dx) return P;
  // dy canvas: zero rows enough below the last for the reads of a grid's last vector.
  const int rows = P.dy_top + bottom + 1 + (conv_flat::kLanes + ld - 1) / ld;
  // Planes of a multiple of 16 floats after a lead-in that puts grid position 0
  // on a 64-byte boundary: the weight gradient's loads of dy are aligned.
  P.dy_rows = rows;
  P.dy_plane = conv_flat::round_up((int64_t)rows * ld, conv_flat::kLanes);
  const int64_t corner = (int64_t)P.dy_top * ld + P.dy_left;
  P.dy_grid = conv_flat::round_up(corner, conv_flat::kLanes);
  const int64_t lead = P.dy_grid - corner;
  int64_t dy_need = P.dy_grid + (int64_t)(g.O - 1) * P.dy_plane + Qr;
  for (DxPhase& ph : P.dx) {
    ph.Q = (int64_t)(ph.na - 1) * ld + (int64_t)(G - 1) * Sw + ph.ne;
    for (int o = 0; o < g.O; o++)
      for (int ki = ph.r; ki < g.kh; ki += s)
        for (int kj = ph.t; kj < g.kw; kj += s) {
          const int64_t off = lead + (int64_t)o * P.dy_plane + (int64_t)(P.dy_top + ph.a0 - (ki - ph.r) / s) * ld +
                              P.dy_left + ph.e0 - (kj - ph.t) / s;
          ph.taps.push_back((int32_t)off);
          ph.weight.push_back((int32_t)(((int64_t)o * g.C) * g.kh * g.kw + ki * g.kw + kj));
          dy_need = std::max(dy_need, off + conv_flat::round_up(ph.Q, conv_flat::kLanes));
        }
  }
  P.dy_floats = conv_flat::round_up(std::max(lead + (int64_t)g.O * P.dy_plane, dy_need) + conv_flat::kLanes,
                                    conv_flat::kLanes);
  return P;
}

// The canvases are built row by row, each row zeroed and its images' pixels
// copied in while it sits in L1 (inline loops: rows are short, and a call per
// row segment cost more than the copy); rows without pixels and the slack are zeroed.
#define MT_CANVAS_CLONES \
  __attribute__((target_clones("avx512f", "avx2", "default"), optimize("no-tree-loop-distribute-patterns")))

inline void zero(float* __restrict d, int64_t n) {
  for (int64_t i = 0; i < n; i++) d[i] = 0.f;
}
inline void copy(float* __restrict d, const float* __restrict s, int n) {
  for (int i = 0; i < n; i++) d[i] = s[i];
}

// Stride 2 with both column phases kept (kernels of width > 1): one pass over
// each source row writes its even columns into one phase's row and its odd
// columns into the other's (the generic loop below reads every row once per
// phase, with a strided gather each time).
MT_CANVAS_CLONES void stage_x_stride2(const Plan& P, const float* x, int images, float* canvas) {
  const Geometry& g = P.g;
  const int p = g.p, ld = P.ld, W = g.W;
  // source column j sits at padded column j + p: column (j + p) / 2 of phase (j + p) mod 2
  const int te = p & 1, to = 1 - te;        // the phases of the even and the odd columns
  const int de = p / 2, dn = (p + 1) / 2;   // where columns 0 and 1 go
  const int half = W / 2;
  for (int c = 0; c < g.C; c++)
    for (int r = 0; r < 2; r++) {
      int a0, a1;
      phase_range(2, r, p, p + g.H, a0, a1);
      float* plane_e = canvas + ((int64_t)c * P.phases + P.slot[r * 2 + te]) * P.x_plane;
      float* plane_o = canvas + ((int64_t)c * P.phases + P.slot[r * 2 + to]) * P.x_plane;
      for (int a = 0; a < P.A; a++) {
        float* __restrict row_e = plane_e + (int64_t)a * ld;
        float* __restrict row_o = plane_o + (int64_t)a * ld;
        zero(row_e, ld);
        zero(row_o, ld);
        if (a < a0 || a >= a1) continue;
        for (int b = 0; b < images; b++) {
          const float* __restrict src = x + (((int64_t)b * g.C + c) * g.H + a * 2 + r - p) * W;
          float* __restrict de_ = row_e + b * P.Sw + de;
          float* __restrict do_ = row_o + b * P.Sw + dn;
          for (int i = 0; i < half; i++) {
            de_[i] = src[2 * i];
            do_[i] = src[2 * i + 1];
          }
          if (W & 1) de_[half] = src[W - 1];
        }
      }
    }
  const int64_t used = (int64_t)g.C * P.phases * P.x_plane;
  zero(canvas + used, P.x_floats - used);
}

MT_CANVAS_CLONES void stage_x(const Plan& P, const float* x, int images, float* canvas) {
  const Geometry& g = P.g;
  const int s = g.s, p = g.p, ld = P.ld;
  if (s == 2 && P.phases == 4) {
    stage_x_stride2(P, x, images, canvas);
    return;
  }
  for (int c = 0; c < g.C; c++)
    for (int r = 0; r < s; r++)
      for (int t = 0; t < s; t++) {
        const int slot = P.slot[r * s + t];
        if (slot < 0) continue;
        int a0, a1, e0, e1;
        phase_range(s, r, p, p + g.H, a0, a1);
        phase_range(s, t, p, p + g.W, e0, e1);
        float* plane = canvas + ((int64_t)c * P.phases + slot) * P.x_plane;
        for (int a = 0; a < P.A; a++) {
          float* __restrict row = plane + (int64_t)a * ld;
          zero(row, ld);
          if (a < a0 || a >= a1) continue;
          for (int b = 0; b < images; b++) {
            const float* __restrict src = x + (((int64_t)b * g.C + c) * g.H + a * s + r - p) * g.W;
            float* __restrict dst = row + b * P.Sw + e0;
            if (s == 1) copy(dst, src, g.W);
            else if (s == 2)
              for (int e = 0; e < e1 - e0; e++) dst[e] = src[2 * (e0 + e) + t - p];
            else
              for (int e = 0; e < e1 - e0; e++) dst[e] = src[(int64_t)s * (e0 + e) + t - p];
          }
        }
      }
  const int64_t used = (int64_t)g.C * P.phases * P.x_plane;
  zero(canvas + used, P.x_floats - used);
}

MT_CANVAS_CLONES void stage_dy(const Plan& P, const float* dy, int images, float* canvas) {
  const Geometry& g = P.g;
  const int ld = P.ld;
  const int64_t lead = P.dy_grid - ((int64_t)P.dy_top * ld + P.dy_left), rows_floats = (int64_t)P.dy_rows * ld;
  zero(canvas, lead);
  for (int o = 0; o < g.O; o++) {
    float* plane = canvas + lead + o * P.dy_plane;
    for (int i = 0; i < P.dy_rows; i++) {
      float* __restrict row = plane + (int64_t)i * ld;
      zero(row, ld);
      const int h = i - P.dy_top;
      if (h < 0 || h >= g.Ho) continue;
      for (int b = 0; b < images; b++)
        copy(row + b * P.Sw + P.dy_left, dy + (((int64_t)b * g.O + o) * g.Ho + h) * g.Wo, g.Wo);
    }
    zero(plane + rows_floats, P.dy_plane - rows_floats);
  }
  const int64_t used = lead + (int64_t)g.O * P.dy_plane;
  zero(canvas + used, P.dy_floats - used);
}

MT_CANVAS_CLONES void store_y(const Plan& P, const float* out,
                                                                            int64_t out_plane, const float* bias,
                                                                            int images, float* y) {
  const Geometry& g = P.g;
  for (int b = 0; b < images; b++)
    for (int o = 0; o < g.O; o++) {
      const float init = bias ? bias[o] : 0.f;
      for (int i = 0; i < g.Ho; i++) {
        const float* __restrict src = out + o * out_plane + (int64_t)i * P.ld + (int64_t)b * P.Sw;
        float* __restrict dst = y + (((int64_t)b * g.O + o) * g.Ho + i) * g.Wo;
        for (int j = 0; j < g.Wo; j++) dst[j] = init + src[j];
      }
    }
}

MT_CANVAS_CLONES void store_dx(const Plan& P, const DxPhase& ph,
                                                                             const float* out, int64_t out_plane,
                                                                             int images, int c0, int c1, bool fresh,
                                                                             float* dx) {
  const Geometry& g = P.g;
  const int s = g.s;
  for (int b = 0; b < images; b++)
    for (int c = c0; c < c1; c++)
      for (int a = 0; a < ph.na; a++) {
        const int h = (ph.a0 + a) * s + ph.r - g.p, w0 = ph.e0 * s + ph.t - g.p;
        float* __restrict dst = dx + (((int64_t)b * g.C + c) * g.H + h) * g.W + w0;
        const float* __restrict src = out ? out + (c - c0) * out_plane + (int64_t)a * P.ld + (int64_t)b * P.Sw : nullptr;
        if (!src) {
          if (fresh)
            for (int e = 0; e < ph.ne; e++) dst[e * s] = 0.f;
        } else if (s == 1) {
          if (fresh)
            for (int e = 0; e < ph.ne; e++) dst[e] = 0.f + src[e];
          else
            for (int e = 0; e < ph.ne; e++) dst[e] += src[e];
        } else {
          if (fresh)
            for (int e = 0; e < ph.ne; e++) dst[e * s] = 0.f + src[e];
          else
            for (int e = 0; e < ph.ne; e++) dst[e * s] += src[e];
        }
      }
}

}  // namespace mt::conv_canvas
