// The run-time choice between a kernel's builds (engine/conv_direct.cpp,
// engine/linear_rows.cpp: AVX2 or portable; engine/conv_flat.cpp: AVX-512,
// AVX2 or portable). conv_direct's and linear_rows' two builds do the same
// IEEE operations in the same order, so the choice changes speed, not bits;
// conv_flat's AVX-512 and AVX2 builds give the same bits and its portable
// build differs in rounding (it has no fused multiply-add). Tests cap the
// level to run every build on one machine.
#pragma once

namespace mt::cpu_dispatch {

enum class Level { Portable = 0, Avx2 = 1, Avx512 = 2 };

// True when this CPU has AVX2 and the level is not capped below Avx2.
bool use_avx2();
// True when this CPU has AVX2 and FMA (conv_flat's AVX2 build) and the level allows Avx2.
bool use_avx2_fma();
// True when this CPU has AVX-512F (and FMA) and the level is not capped below Avx512.
bool use_avx512();

// Tests: run no build above `max` (Level::Avx512 lifts the cap).
void cap(Level max);
// Tests: true caps the level at Portable, false lifts the cap.
void force_portable(bool on);

}  // namespace mt::cpu_dispatch
