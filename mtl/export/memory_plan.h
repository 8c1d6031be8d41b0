// The static arena of the generated C: every intermediate buffer gets an offset in one
// array, and two buffers alive at the same time never overlap. A buffer is alive from the
// step that writes it to the last step that reads it (both included: a layer's input and
// output never share bytes). Placement is TFLite Micro's greedy planner: buffers in order of
// decreasing size (ties: earlier first), each at the lowest aligned offset where it
// overlaps no placed buffer whose lifetime meets its own. The arena's size is the highest
// end, known at export time and written into the header.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mt {

struct ArenaBuffer {
  std::string name;
  int64_t bytes = 0;
  int first = 0, last = 0;  // steps (layers) writing it first and reading it last
  int64_t align = 1;        // offset multiple
  int64_t offset = -1;      // set by plan_arena
};

struct MemoryPlan {
  std::vector<ArenaBuffer> buffers;  // in the caller's order, offsets set
  int64_t bytes = 0;                 // the arena's size
  const ArenaBuffer& find(const std::string& name) const;
};

MemoryPlan plan_arena(std::vector<ArenaBuffer> buffers);

}  // namespace mt
