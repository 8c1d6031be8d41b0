// The arena plan (see memory_plan.h).
#include "mtl/export/memory_plan.h"

#include <algorithm>
#include <numeric>

#include "engine/error.h"
#include "engine/tensor.h"

namespace mt {

const ArenaBuffer& MemoryPlan::find(const std::string& name) const {
  for (const auto& b : buffers)
    if (b.name == name) return b;
  throw Error("export: no arena buffer '" + name + "'");
}

MemoryPlan plan_arena(std::vector<ArenaBuffer> buffers) {
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return buffers[a].bytes > buffers[b].bytes; });
  std::vector<size_t> placed;
  MemoryPlan p;
  for (size_t i : order) {
    ArenaBuffer& b = buffers[i];
    check(b.bytes >= 0 && b.align >= 1 && b.first <= b.last, "export", "arena buffer '" + b.name + "' is malformed");
    // the placed buffers alive with b, by offset
    std::vector<const ArenaBuffer*> live;
    for (size_t j : placed) {
      const ArenaBuffer& o = buffers[j];
      if (o.first <= b.last && b.first <= o.last) live.push_back(&o);
    }
    std::sort(live.begin(), live.end(), [](const ArenaBuffer* x, const ArenaBuffer* y) { return x->offset < y->offset; });
    int64_t off = 0;
    for (const ArenaBuffer* o : live) {
      if (off + b.bytes <= o->offset) break;  // fits in the gap before o
      off = std::max(off, o->offset + o->bytes);
      off = (off + b.align - 1) / b.align * b.align;
    }
    b.offset = off;
    p.bytes = std::max(p.bytes, off + b.bytes);
    placed.push_back(i);
  }
  p.buffers = std::move(buffers);
  return p;
}

}  // namespace mt
