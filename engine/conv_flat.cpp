// The kernels of engine/conv_flat.h: one body (engine/conv_flat_body.h)
// compiled three times, for AVX-512, AVX2 + FMA and portable SSE2, and the
// naive twins the tests hold them to.
#include "engine/conv_flat.h"

#include <immintrin.h>

#include <algorithm>

#include "engine/cpu_dispatch.h"

#define MT_INLINE inline __attribute__((always_inline))

namespace mt::conv_flat {

namespace {

#if defined(__clang__)  // clang ignores GCC target pragmas: the attribute on every function instead
#pragma clang attribute push(__attribute__((target("avx512f,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,fma")
#endif
namespace avx512 {
#define MT_FLAT_ISA 512
#include "engine/conv_flat_body.h"
#undef MT_FLAT_ISA
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)  // clang ignores GCC target pragmas: the attribute on every function instead
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {
#define MT_FLAT_ISA 256
#include "engine/conv_flat_body.h"
#undef MT_FLAT_ISA
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace portable {
#define MT_FLAT_ISA 0
#include "engine/conv_flat_body.h"
#undef MT_FLAT_ISA
}  // namespace portable

}  // namespace

int64_t packed_size(int O, int T) { return round_up(O, kOB) * (int64_t)T; }

void correlate(const Correlate& k) {
  if (cpu_dispatch::use_avx512()) avx512::correlate(k);
  else if (cpu_dispatch::use_avx2_fma()) avx2::correlate(k);
  else portable::correlate(k);
}

void grad_weight(const GradWeight& k) {
  if (cpu_dispatch::use_avx512()) avx512::grad_weight(k);
  else if (cpu_dispatch::use_avx2_fma()) avx2::grad_weight(k);
  else portable::grad_weight(k);
}

const char* build_name() {
  return cpu_dispatch::use_avx512() ? "avx512" : cpu_dispatch::use_avx2_fma() ? "avx2" : "portable";
}

// ---- the naive twins: the definitions above as plain loops, sums in double ----

void correlate_naive(const Correlate& k) {
  const int64_t nq = round_up(k.Q, kLanes);
  for (int o = 0; o < k.O; o++)
    for (int64_t q = 0; q < nq; q++) {
      double acc = 0;
      for (int t = 0; t < k.T; t++)
        acc += (double)k.w[(int64_t)(o - o % kOB) * k.T + (int64_t)t * kOB + o % kOB] * k.in[k.taps[t] + q];
      k.out[o * k.out_plane + q] = (float)acc;
    }
}

void grad_weight_naive(const GradWeight& k) {
  const int64_t nq = round_up(k.Q, kLanes);
  for (int o = 0; o < k.O; o++)
    for (int t = 0; t < k.T; t++) {
      double acc = 0;
      for (int b = 0; b < k.bands; b++)
        for (int64_t q = 0; q < nq; q++)
          acc += (double)k.dy[b * k.dy_band + o * k.dy_plane + q] * k.in[b * k.in_band + k.taps[t] + q];
      k.dw[(int64_t)o * k.T + t] = (float)acc;
    }
}

}  // namespace mt::conv_flat
