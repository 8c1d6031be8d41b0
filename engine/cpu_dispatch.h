// The run-time choice between a kernel's AVX2 build and its portable build
// (engine/conv_direct.cpp, engine/linear_rows.cpp). Both builds do the same
// IEEE operations in the same order, so the choice changes speed, not bits;
// tests force the portable build to check exactly that.
#pragma once

namespace mt::cpu_dispatch {

// True when this CPU has AVX2 and the portable build is not forced.
bool use_avx2();

// Tests: true makes use_avx2() false (every dispatched kernel runs its portable build).
void force_portable(bool on);

}  // namespace mt::cpu_dispatch
