// Dot-product linear layer for a few rows (see engine/linear_rows.h for the
// order of operations). Written once with GCC vectors of eight floats and
// compiled twice, AVX2 and portable, like engine/conv_direct.cpp.
#include "engine/linear_rows.h"

#include <cstdint>
#include <cstring>

#include "engine/cpu_dispatch.h"
#include "engine/vec8.h"

namespace mt::linear_rows {

namespace {

using namespace vec8;

MT_INLINE float lanes_sum(const v8& l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

// Outputs [o0, o0 + OB) of one row x: OB independent dot products.
template <int OB>
MT_INLINE void tile(int In, const float* x, const float* W, const float* b, float* y, int o0) {
  const int K8 = In / 8 * 8;
  v8 acc[OB];
  for (int r = 0; r < OB; r++) acc[r] = v8{0, 0, 0, 0, 0, 0, 0, 0};
  for (int k = 0; k < K8; k += 8) {
    const v8 xv = load(x + k);
    for (int r = 0; r < OB; r++) acc[r] += xv * load(W + (int64_t)(o0 + r) * In + k);
  }
  for (int r = 0; r < OB; r++) {
    const float* w = W + (int64_t)(o0 + r) * In;
    float s = lanes_sum(acc[r]);
    for (int k = K8; k < In; k++) s += x[k] * w[k];
    y[o0 + r] = b ? b[o0 + r] + s : s;
  }
}

constexpr int kTile = 6;  // rows of W at once: enough independent sums to hide the add latency

MT_INLINE void body(int N, int In, int Out, const float* x, const float* W, const float* b, float* y) {
  for (int n = 0; n < N; n++) {
    const float* xn = x + (int64_t)n * In;
    float* yn = y + (int64_t)n * Out;
    int o = 0;
    for (; o + kTile <= Out; o += kTile) tile<kTile>(In, xn, W, b, yn, o);
    for (; o < Out; o++) tile<1>(In, xn, W, b, yn, o);
  }
}

__attribute__((target("avx2"))) void forward_avx2(int N, int In, int Out, const float* x, const float* W,
                                                  const float* b, float* y) {
  body(N, In, Out, x, W, b, y);
}
void forward_portable(int N, int In, int Out, const float* x, const float* W, const float* b, float* y) {
  body(N, In, Out, x, W, b, y);
}

}  // namespace

void forward(int N, int In, int Out, const float* x, const float* W, const float* b, float* y) {
  if (cpu_dispatch::use_avx2()) forward_avx2(N, In, Out, x, W, b, y);
  else forward_portable(N, In, Out, x, W, b, y);
}

void forward_reference(int N, int In, int Out, const float* x, const float* W, const float* b, float* y) {
  const int K8 = In / 8 * 8;
  for (int n = 0; n < N; n++)
    for (int o = 0; o < Out; o++) {
      const float* xn = x + (int64_t)n * In;
      const float* w = W + (int64_t)o * In;
      float lane[8];
      for (int l = 0; l < 8; l++) {
        lane[l] = 0.f;
        for (int k = l; k < K8; k += 8) lane[l] += xn[k] * w[k];
      }
      float s = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
      for (int k = K8; k < In; k++) s += xn[k] * w[k];
      y[(int64_t)n * Out + o] = b ? b[o] + s : s;
    }
}

}  // namespace mt::linear_rows
