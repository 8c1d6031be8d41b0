// The body of engine/conv_flat.cpp's kernels, included once per build inside
// a namespace, with MT_FLAT_ISA set to 512 (AVX-512F), 256 (AVX2 + FMA) or 0
// (portable SSE2) and the matching `#pragma GCC target` in force. V is 16
// floats in every build: one zmm register, two ymm halves, or four xmm
// quarters; each lane does the same operations in the same order.
//
// Register tiles (acc = the accumulators kept in registers):
//   correlate    kFwdO output channels x kFwdQ vectors of 16 positions; per
//                tap, kFwdQ vector loads of the input and kFwdO broadcast
//                weights for kFwdO * kFwdQ multiply-adds.
//   grad_weight  kWgO channels x kWgT taps; per vector of positions, kWgO
//                loads of dy and kWgT of the input for kWgO * kWgT multiply-adds.
// (AVX-512 has 32 vector registers, AVX2 16 of half the width, SSE2 16 of a quarter.)

#if MT_FLAT_ISA == 512
struct V {
  __m512 r;
};
MT_INLINE V vload(const float* p) { return {_mm512_loadu_ps(p)}; }
MT_INLINE void vstore(float* p, V v) { _mm512_storeu_ps(p, v.r); }
MT_INLINE V vsplat(float f) { return {_mm512_set1_ps(f)}; }
MT_INLINE V vfma(V a, V b, V c) { return {_mm512_fmadd_ps(a.r, b.r, c.r)}; }
// The 16 lanes summed as lanes l + 8, then l + 4, l + 2, l + 1 (every build).
MT_INLINE float vsum(V v) {
  const __m256 h = _mm256_add_ps(__builtin_shufflevector(v.r, v.r, 0, 1, 2, 3, 4, 5, 6, 7),
                                 __builtin_shufflevector(v.r, v.r, 8, 9, 10, 11, 12, 13, 14, 15));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}
constexpr int kFwdO = 8, kFwdQ = 3, kWgO = 4, kWgT = 6;
#elif MT_FLAT_ISA == 256
struct V {
  __m256 lo, hi;
};
MT_INLINE V vload(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
MT_INLINE void vstore(float* p, V v) {
  _mm256_storeu_ps(p, v.lo);
  _mm256_storeu_ps(p + 8, v.hi);
}
MT_INLINE V vsplat(float f) { return {_mm256_set1_ps(f), _mm256_set1_ps(f)}; }
MT_INLINE V vfma(V a, V b, V c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
MT_INLINE float vsum(V v) {
  const __m256 h = _mm256_add_ps(v.lo, v.hi);
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}
constexpr int kFwdO = 4, kFwdQ = 1, kWgO = 2, kWgT = 2;
#else
struct V {
  __m128 r[4];
};
MT_INLINE V vload(const float* p) {
  return {{_mm_loadu_ps(p), _mm_loadu_ps(p + 4), _mm_loadu_ps(p + 8), _mm_loadu_ps(p + 12)}};
}
MT_INLINE void vstore(float* p, V v) {
  for (int i = 0; i < 4; i++) _mm_storeu_ps(p + 4 * i, v.r[i]);
}
MT_INLINE V vsplat(float f) {
  const __m128 s = _mm_set1_ps(f);
  return {{s, s, s, s}};
}
MT_INLINE V vfma(V a, V b, V c) {  // no FMA instruction here: the product is rounded first
  V d;
  for (int i = 0; i < 4; i++) d.r[i] = _mm_add_ps(_mm_mul_ps(a.r[i], b.r[i]), c.r[i]);
  return d;
}
MT_INLINE float vsum(V v) {
  __m128 q = _mm_add_ps(_mm_add_ps(v.r[0], v.r[2]), _mm_add_ps(v.r[1], v.r[3]));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
}
constexpr int kFwdO = 4, kFwdQ = 1, kWgO = 2, kWgT = 1;
#endif

// ---- correlate -------------------------------------------------------------

// Channels b0.. b0 + kFwdO of a packed block (the first nO stored, at out) at
// positions [q0, q0 + 16 QB).
template <int QB>
MT_INLINE void correlate_tile(const Correlate& k, const float* wb, int nO, float* out, int64_t q0) {
  V acc[kFwdO][QB];
  for (int b = 0; b < kFwdO; b++)
    for (int v = 0; v < QB; v++) acc[b][v] = vsplat(0.f);
  const float* in = k.in + q0;
  const float* w = wb;
  for (int t = 0; t < k.T; t++, w += kOB) {
    const float* p = in + k.taps[t];
    V x[QB];
    for (int v = 0; v < QB; v++) x[v] = vload(p + kLanes * v);
    for (int b = 0; b < kFwdO; b++) {
      const V wt = vsplat(w[b]);
      for (int v = 0; v < QB; v++) acc[b][v] = vfma(wt, x[v], acc[b][v]);
    }
  }
  for (int b = 0; b < nO; b++)
    for (int v = 0; v < QB; v++) vstore(out + b * k.out_plane + q0 + kLanes * v, acc[b][v]);
}

// The last tile of a row of tiles, of r < kFwdQ vectors.
template <int R>
MT_INLINE void correlate_rest(const Correlate& k, const float* wb, int nO, float* out, int64_t q0, int r) {
  if constexpr (R > 0) {
    if (r == R) correlate_tile<R>(k, wb, nO, out, q0);
    else correlate_rest<R - 1>(k, wb, nO, out, q0, r);
  }
}

void correlate(const Correlate& k) {
  const int64_t nv = round_up(k.Q, kLanes) / kLanes;
  for (int o0 = 0; o0 < k.O; o0 += kFwdO) {
    const float* wb = k.w + (int64_t)(o0 - o0 % kOB) * k.T + o0 % kOB;  // channel o0 in its packed block
    const int nO = std::min(kFwdO, k.O - o0);
    float* out = k.out + o0 * k.out_plane;
    int64_t v = 0;
    for (; v + kFwdQ <= nv; v += kFwdQ) correlate_tile<kFwdQ>(k, wb, nO, out, v * kLanes);
    correlate_rest<kFwdQ - 1>(k, wb, nO, out, v * kLanes, (int)(nv - v));
  }
}

// ---- grad_weight -----------------------------------------------------------

// dw for channels [o0, o0 + nO) x taps [t0, t0 + nT); rows past them repeat the last one.
template <int OB, int TB>
MT_INLINE void grad_weight_tile(const GradWeight& k, int o0, int nO, int t0, int nT) {
  V acc[OB][TB];
  for (int b = 0; b < OB; b++)
    for (int s = 0; s < TB; s++) acc[b][s] = vsplat(0.f);
  const int64_t nq = round_up(k.Q, kLanes);
  for (int band = 0; band < k.bands; band++) {
    const float* xp[TB];
    const float* dp[OB];
    for (int s = 0; s < TB; s++) xp[s] = k.in + band * k.in_band + k.taps[t0 + std::min(s, nT - 1)];
    for (int b = 0; b < OB; b++) dp[b] = k.dy + band * k.dy_band + (int64_t)(o0 + std::min(b, nO - 1)) * k.dy_plane;
    for (int64_t q = 0; q < nq; q += kLanes) {
      V d[OB];
      for (int b = 0; b < OB; b++) d[b] = vload(dp[b] + q);
      for (int s = 0; s < TB; s++) {
        const V x = vload(xp[s] + q);
        for (int b = 0; b < OB; b++) acc[b][s] = vfma(d[b], x, acc[b][s]);
      }
    }
  }
  for (int b = 0; b < nO; b++)
    for (int s = 0; s < nT; s++) k.dw[(int64_t)(o0 + b) * k.T + t0 + s] = vsum(acc[b][s]);
}

void grad_weight(const GradWeight& k) {
  for (int o0 = 0; o0 < k.O; o0 += kWgO)
    for (int t0 = 0; t0 < k.T; t0 += kWgT)
      grad_weight_tile<kWgO, kWgT>(k, o0, std::min(kWgO, k.O - o0), t0, std::min(kWgT, k.T - t0));
}
