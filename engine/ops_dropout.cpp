// Inverted dropout: each element (dropout) or each whole (sample, channel)
// plane (dropout2d) is zeroed with probability p and the survivors are scaled
// by 1/(1-p), so the expected output equals the input and eval needs no
// rescaling. The keep/drop draws come from global_rng() one after another in
// index order, on the calling thread: the same seed gives the same mask at any
// thread count. The forward saves the mask (0 or 1/(1-p) per element or plane);
// the backward multiplies by it.
#include <algorithm>
#include <string>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/parallel.h"
#include "engine/rng.h"

namespace mt {

namespace {

constexpr int64_t kGrain = 1 << 15;  // elements per parallel chunk

void check_p(const char* op, const Tensor& x, float p) {
  MT_CHECK(x.defined(), op, "undefined input");
  MT_CHECK(p >= 0.f && p < 1.f, op, "p must be in [0, 1), got " + std::to_string(p));
}

// mask[i] = 0 with probability p, else 1/(1-p); drawn serially from global_rng().
Tensor draw_mask(const Shape& shape, float p) {
  Tensor mask = Tensor::empty(shape);
  float* m = mask.data();
  const int64_t n = mask.numel();
  const float scale = 1.f / (1.f - p);
  Rng& rng = global_rng();
  // Under a row shard (data parallelism, engine/rng.h) the draws of the other
  // processes' rows are made too, and skipped.
  const RowShard& sh = row_shard();
  int64_t skip_before = 0, skip_after = 0;
  if (sh.global_rows > 0) {
    MT_CHECK(shape.size() >= 1 && shape[0] == sh.rows, "dropout",
             "input " + shape_str(shape) + " does not hold this process's " + std::to_string(sh.rows) +
                 " rows of the global batch");
    const int64_t per_row = n / sh.rows;
    skip_before = sh.offset * per_row;
    skip_after = (sh.global_rows - sh.offset - sh.rows) * per_row;
  }
  for (int64_t i = 0; i < skip_before; i++) rng.uniform();
  for (int64_t i = 0; i < n; i++) m[i] = rng.uniform() < p ? 0.f : scale;
  for (int64_t i = 0; i < skip_after; i++) rng.uniform();
  return mask;
}

// y = x * mask[i / block]: one mask value per `block` consecutive elements.
Tensor apply_mask(const char* op, const Tensor& x, const Tensor& mask, int64_t block) {
  Tensor y = Tensor::empty(x.shape());
  const float* X = x.data();
  const float* M = mask.data();
  float* Y = y.data();
  const int64_t groups = mask.numel();
  const int64_t grain = std::max<int64_t>(1, kGrain / std::max<int64_t>(1, block));
  parallel_for(groups, grain, [&](int64_t g0, int64_t g1) {
    for (int64_t q = g0; q < g1; q++)
      for (int64_t i = q * block; i < (q + 1) * block; i++) Y[i] = X[i] * M[q];
  });
  if (any_requires_grad({&x})) {
    auto gx = grad_target(x);
    record(y, op, [gx, mask, block, grain](const Tensor& gy) {
      const float* dY = gy.data();
      const float* M = mask.data();
      bool fresh;  // a fresh buffer is written (0.f + g: the bits of adding into zeros)
      float* dX = grad_buffer(gx, fresh);
      parallel_for(mask.numel(), grain, [&](int64_t g0, int64_t g1) {
        for (int64_t q = g0; q < g1; q++)
          if (fresh)
            for (int64_t i = q * block; i < (q + 1) * block; i++) dX[i] = 0.f + dY[i] * M[q];
          else
            for (int64_t i = q * block; i < (q + 1) * block; i++) dX[i] += dY[i] * M[q];
      });
    });
  }
  return y;
}

}  // namespace

Tensor dropout(const Tensor& x, float p, bool training) {
  check_p("dropout", x, p);
  if (!training || p == 0.f) return x;
  return apply_mask("dropout", x, draw_mask(x.shape(), p), 1);
}

// Dimensions 0 and 1 are (sample, channel); everything after them is one plane.
Tensor dropout2d(const Tensor& x, float p, bool training) {
  check_p("dropout2d", x, p);
  MT_CHECK(x.dim() >= 2, "dropout2d", "input " + shape_str(x.shape()) + " must be [N,C,...] (4-D for images)");
  if (!training || p == 0.f) return x;
  const int64_t planes = (int64_t)x.size(0) * x.size(1);
  return apply_mask("dropout2d", x, draw_mask({x.size(0), x.size(1)}, p), planes ? x.numel() / planes : 1);
}

}  // namespace mt
