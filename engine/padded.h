// A plane copied into a zero-bordered buffer, as the convolution kernels read
// their inputs (the direct kernels, the columns' small planes, Winograd's
// tiles as matrices): the source's h x w values start at row `top`, column
// `left` of a rows x ld plane.
#pragma once
#include <cstdint>
#include <cstring>

namespace mt {

struct Padded {
  int top = 0, left = 0, rows = 0, ld = 0;
  int64_t plane() const { return (int64_t)rows * ld; }
};

// dst (planes x l.plane(), its borders already zero) gets src's planes of h x w.
inline void copy_padded(const float* src, int planes, int h, int w, const Padded& l, float* dst) {
  for (int c = 0; c < planes; c++)
    for (int i = 0; i < h; i++)
      std::memcpy(dst + c * l.plane() + (int64_t)(i + l.top) * l.ld + l.left, src + ((int64_t)c * h + i) * w,
                  sizeof(float) * w);
}

}  // namespace mt
