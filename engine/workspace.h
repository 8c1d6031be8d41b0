// The "scratch" lifetime of DESIGN.md: work buffers a kernel needs only while
// it runs (im2col columns, per-chunk partial sums). Each thread owns a few
// numbered slots; a slot grows to the largest request it has seen and is kept,
// so from the second call on with the same shapes nothing is allocated.
//
// Rules of use:
//  - a pointer is valid until the next scratch() call for the same slot on the
//    same thread; contents are unspecified (not zeroed);
//  - inside a parallel_for body, ask for the slot on the thread that runs the
//    body (each OpenMP thread has its own slots);
//  - a buffer taken on the calling thread before a parallel region may be
//    shared with the workers (each writing its own part), as for partial sums.
#pragma once
#include <cstddef>

namespace mt {

// Slot numbers in use, one per role, so nested uses within one op never collide.
enum ScratchSlot : int {
  kScratchCols = 0,      // im2col columns, the padded input of the direct conv, a flat or Winograd input canvas
  kScratchColGrad = 1,   // the padded dy of the direct conv, the flat path's dy canvas (conv backward);
                         // Winograd's transformed input V
  kScratchPartials = 2,  // per-chunk partial sums, on the calling thread
  kScratchSetup = 3,     // per-call tables shared by the workers (conv taps, flipped weights), calling thread
  kScratchDx = 4,        // conv backward's dx work (the direct path's shifted dx, or dL/dcolumns before col2im);
                         // a flat correlation's output grid; Winograd's transformed outputs M (or dM)
  kScratchTiles = 5,     // Winograd: the output's (or dy's) tile phases
  kScratchTileGrad = 6,  // Winograd: a band's transformed weight gradient
  kScratchSlots = 7
};

// At least `bytes` bytes of this thread's slot `slot`, 64-byte aligned.
void* scratch_bytes(int slot, size_t bytes);

template <class T>
T* scratch(int slot, size_t n) {
  return static_cast<T*>(scratch_bytes(slot, n * sizeof(T)));
}

// Bytes held by all threads' slots together, and how many times any slot had to
// grow (a system allocation); both for tests and memory reports.
size_t scratch_bytes_held();
size_t scratch_grows();

}  // namespace mt
