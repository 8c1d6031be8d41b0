// The thread knob (engine/parallel.h): its bounds are checked by the engine,
// so a huge count never reaches the OpenMP runtime (which crashes on one).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/error.h"
#include "engine/parallel.h"

using namespace mt;

TEST_CASE("set_num_threads accepts 1..kMaxThreads and names any other value") {
  const int prev = num_threads();
  for (int bad : {0, -1, kMaxThreads + 1, 1 << 20, 2147483647}) {
    const std::string want = "threads must be in 1.." + std::to_string(kMaxThreads) + ", got " + std::to_string(bad);
    CHECK_THROWS_WITH_AS(set_num_threads(bad), want.c_str(), Error);
    CHECK(num_threads() == prev);  // unchanged
  }
  // The cap itself works: a loop with more chunks than threads, every item once.
  set_num_threads(kMaxThreads);
  CHECK(num_threads() == kMaxThreads);
  std::vector<int> hits(3 * kMaxThreads, 0);
  parallel_for((int64_t)hits.size(), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; i++) hits[(size_t)i]++;
  });
  CHECK(hits == std::vector<int>(hits.size(), 1));
  set_num_threads(prev);
  CHECK(num_threads() == prev);
}
