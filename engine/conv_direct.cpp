// Direct stride-1 convolution kernels (see engine/conv_direct.h for what they
// compute). The code is written once with GCC vector types of eight floats and
// compiled twice: into an AVX2 function and into a portable one (SSE2, each
// eight-lane operation as two halves). Both do the same IEEE operations on the
// same lanes in the same order, so they give the same bits.
//
// Register tiles. forward: kFwdO output channels x kFwdU units of eight
// columns, summed over all taps: per tap kFwdU loads of the input, kFwdO
// weights broadcast, kFwdO * kFwdU multiply-adds. grad_weight: kWgO output
// channels x kWgT taps, summed over the units of a run of samples: per unit kWgO
// loads of dy, kWgT loads of the input, kWgO * kWgT multiply-adds. Both tiles
// leave enough of AVX2's 16 vector registers for the operands.
#include "engine/conv_direct.h"

#include <algorithm>
#include <cstring>

#include "engine/cpu_dispatch.h"
#include "engine/vec8.h"

namespace mt::conv_direct {

namespace {

using namespace vec8;

constexpr int kFwdO = 4, kFwdU = 2;  // forward tile
constexpr int kWgO = 3, kWgT = 3;    // grad_weight tile

// ---- forward -------------------------------------------------------------

// A unit's place: output row i, columns [8v, 8v + 8).
struct Unit {
  int i, v;
};

// Output channels [o0, o0 + OB) at the units u[0..UB).
template <int OB, int UB>
MT_INLINE void forward_tile(const Correlation& k, const float* w, const float* bias, bool accumulate, int o0,
                            const Unit* u) {
  const int K = k.C * k.kh * k.kw;
  const float* base[UB];
  for (int r = 0; r < UB; r++) base[r] = k.in + (int64_t)u[r].i * k.in_ld + u[r].v * 8;
  v8 acc[OB][UB];
  for (int b = 0; b < OB; b++)
    for (int r = 0; r < UB; r++) acc[b][r] = splat(0.f);
  int t0 = 0, t1 = K;  // the taps any of the tile's rows needs
  if (k.row_taps) {
    t0 = K, t1 = 0;
    for (int r = 0; r < UB; r++) {
      t0 = std::min(t0, k.row_taps[2 * u[r].i]);
      t1 = std::max(t1, k.row_taps[2 * u[r].i + 1]);
    }
  }
  const float* wo = w + (int64_t)o0 * K;
  for (int t = t0; t < t1; t++) {
    const int32_t off = k.taps[t];
    v8 x[UB];
    for (int r = 0; r < UB; r++) x[r] = load(base[r] + off);
    for (int b = 0; b < OB; b++) {
      const float wt = wo[(int64_t)b * K + t];
      for (int r = 0; r < UB; r++) acc[b][r] += x[r] * wt;
    }
  }
  for (int b = 0; b < OB; b++)
    for (int r = 0; r < UB; r++) {
      const int j = u[r].v * 8, n = std::min(8, k.Wo - j);
      float* dst = k.out + (int64_t)(o0 + b) * k.out_plane + (int64_t)u[r].i * k.out_ld + j;
      const float init = bias ? bias[o0 + b] : 0.f;
      if (n == 8) {
        store(dst, (accumulate ? load(dst) : splat(init)) + acc[b][r]);
      } else {  // the last unit of a row: only its first n lanes are outputs
        float lane[8];
        std::memcpy(lane, &acc[b][r], sizeof lane);
        for (int l = 0; l < n; l++) dst[l] = (accumulate ? dst[l] : init) + lane[l];
      }
    }
}

template <int OB>
MT_INLINE void forward_channels(const Correlation& k, const float* w, const float* bias, bool accumulate, int o0) {
  const int U = k.units(), nv = (k.Wo + 7) / 8;
  Unit next = {0, 0};
  auto take = [&](Unit* u, int count) {  // the next `count` units in row order
    for (int r = 0; r < count; r++) {
      u[r] = next;
      if (++next.v == nv) next.v = 0, next.i++;
    }
  };
  int done = 0;
  for (; done + kFwdU <= U; done += kFwdU) {
    Unit u[kFwdU];
    take(u, kFwdU);
    forward_tile<OB, kFwdU>(k, w, bias, accumulate, o0, u);
  }
  for (; done < U; done++) {
    Unit u[1];
    take(u, 1);
    forward_tile<OB, 1>(k, w, bias, accumulate, o0, u);
  }
}

MT_INLINE void forward_body(const Correlation& k, const float* w, const float* bias, bool accumulate) {
  int o = 0;
  for (; o + kFwdO <= k.O; o += kFwdO) forward_channels<kFwdO>(k, w, bias, accumulate, o);
  switch (k.O - o) {
    case 3: forward_channels<3>(k, w, bias, accumulate, o); break;
    case 2: forward_channels<2>(k, w, bias, accumulate, o); break;
    case 1: forward_channels<1>(k, w, bias, accumulate, o); break;
    default: break;
  }
  static_assert(kFwdO <= 4, "forward_body handles remainders of up to 3 channels");
}

// ---- grad_weight ---------------------------------------------------------

// dw for output channels [o0, o0 + OB) x taps [t0, t0 + TB), summed over all
// units of all samples: per lane in sample, row, unit order, then the eight
// lanes in double.
template <int OB, int TB>
MT_INLINE void grad_weight_tile(const Correlation& k, const GradWeightArgs& a, float* dw, int o0, int t0) {
  const int K = k.C * k.kh * k.kw, nv = (k.Wo + 7) / 8, tail = k.Wo - (nv - 1) * 8;  // lanes of a row's last unit
  const int full = tail == 8 ? nv : nv - 1;                                         // units without a tail
  v8 acc[OB][TB];
  for (int b = 0; b < OB; b++)
    for (int s = 0; s < TB; s++) acc[b][s] = splat(0.f);
  int32_t off[TB];
  for (int s = 0; s < TB; s++) off[s] = k.taps[t0 + s];
  v8i mask;  // all ones in the tail's lanes, zero past Wo
  for (int l = 0; l < 8; l++) mask[l] = l < tail ? -1 : 0;
  auto unit = [&](const float* xb, const float* db, bool masked) {
    v8 d[OB];
    for (int b = 0; b < OB; b++) d[b] = load(db + b * a.dy_plane);
    for (int s = 0; s < TB; s++) {
      v8 x = load(xb + off[s]);
      if (masked) x = (v8)((v8i)x & mask);  // lanes past Wo read neighbours: exact zeros instead
      for (int b = 0; b < OB; b++) acc[b][s] += d[b] * x;
    }
  };
  for (int n = 0; n < a.samples; n++) {
    const float* xr = k.in + n * a.in_stride;                           // row i of the input
    const float* dr = a.dy + n * a.dy_stride + (int64_t)o0 * a.dy_plane;  // row i of dy
    for (int i = 0; i < k.Ho; i++, xr += k.in_ld, dr += a.dy_ld) {
      for (int v = 0; v < full; v++) unit(xr + v * 8, dr + v * 8, false);
      if (full < nv) unit(xr + full * 8, dr + full * 8, true);
    }
  }
  for (int b = 0; b < OB; b++)
    for (int s = 0; s < TB; s++) {
      const v8 l = acc[b][s];
      dw[(int64_t)(o0 + b) * K + t0 + s] =
          (float)((((double)l[0] + l[1]) + ((double)l[2] + l[3])) + (((double)l[4] + l[5]) + ((double)l[6] + l[7])));
    }
}

template <int OB>
MT_INLINE void grad_weight_channels(const Correlation& k, const GradWeightArgs& a, float* dw, int o0) {
  const int K = k.C * k.kh * k.kw;
  int t = 0;
  for (; t + kWgT <= K; t += kWgT) grad_weight_tile<OB, kWgT>(k, a, dw, o0, t);
  for (; t < K; t++) grad_weight_tile<OB, 1>(k, a, dw, o0, t);
}

MT_INLINE void grad_weight_body(const Correlation& k, const GradWeightArgs& a, float* dw) {
  int o = 0;
  for (; o + kWgO <= k.O; o += kWgO) grad_weight_channels<kWgO>(k, a, dw, o);
  for (; o < k.O; o++) grad_weight_channels<1>(k, a, dw, o);
}

// ---- the two builds and the choice between them ---------------------------

__attribute__((target("avx2"))) void forward_avx2(const Correlation& k, const float* w, const float* bias,
                                                  bool accumulate) {
  forward_body(k, w, bias, accumulate);
}
void forward_portable(const Correlation& k, const float* w, const float* bias, bool accumulate) {
  forward_body(k, w, bias, accumulate);
}
__attribute__((target("avx2"))) void grad_weight_avx2(const Correlation& k, const GradWeightArgs& a, float* dw) {
  grad_weight_body(k, a, dw);
}
void grad_weight_portable(const Correlation& k, const GradWeightArgs& a, float* dw) { grad_weight_body(k, a, dw); }

}  // namespace

void tap_offsets(int C, int kh, int kw, int64_t in_plane, int in_ld, int32_t* taps) {
  for (int c = 0; c < C; c++)
    for (int ki = 0; ki < kh; ki++)
      for (int kj = 0; kj < kw; kj++) taps[(c * kh + ki) * kw + kj] = (int32_t)(c * in_plane + ki * in_ld + kj);
}

void forward(const Correlation& k, const float* w, const float* bias, bool accumulate) {
  if (cpu_dispatch::use_avx2()) forward_avx2(k, w, bias, accumulate);
  else forward_portable(k, w, bias, accumulate);
}

void grad_weight(const Correlation& k, const GradWeightArgs& a, float* dw) {
  if (cpu_dispatch::use_avx2()) grad_weight_avx2(k, a, dw);
  else grad_weight_portable(k, a, dw);
}

}  // namespace mt::conv_direct
