// Eight floats as one GCC vector, for kernels written once and compiled into
// both an AVX2 and a portable build (engine/cpu_dispatch.h): the same code is
// one 256-bit operation under target("avx2") and two 128-bit halves otherwise,
// with the same IEEE operations per lane either way.
#pragma once
#include <cstdint>
#include <cstring>

#pragma GCC diagnostic ignored "-Wpsabi"  // 32-byte vectors never cross a call: the users inline everything

namespace mt::vec8 {

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define MT_INLINE inline __attribute__((always_inline))

MT_INLINE v8 load(const float* p) {  // unaligned
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
MT_INLINE void store(float* p, const v8& v) { std::memcpy(p, &v, sizeof v); }
MT_INLINE v8 splat(float f) { return v8{f, f, f, f, f, f, f, f}; }

}  // namespace mt::vec8
