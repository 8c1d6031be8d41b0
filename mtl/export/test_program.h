// NAME_test.c: a C99 program that checks an exported model where it runs, the host or a
// bare-metal Cortex-M (semihosting). It holds test images (uint8 pixels) and their labels,
// normalises each as the header says, calls NAME_predict, and prints
//     out I HEX HEX ...      the outputs' IEEE bits, one line per image
//     correct T C/N          per classification task, argmax (or logit > 0) against the label
// `NAME_test --images FILE` reads the images from FILE instead (raw C*H*W bytes per image, as many
// as it holds; no labels). `NAME_test --time R` (host) runs the compiled-in images R times
// and prints "ns_per_inference X". On a bare-metal Arm build it also prints
//     ticks T calls N         SysTick ticks (processor clock) spent in the N calls
//     calib_ticks T insns I   the ticks of a loop of I instructions (to convert ticks)
//     stack B                 the bytes of stack NAME_predict used (a painted region)
// Two builds of the same model print the same "out" lines when their outputs are
// bit-identical: that is how `make embedded-test` compares the Cortex-M with the host.
#pragma once
#include <string>

#include "datasets/multi_mnist.h"
#include "mtl/export/layer_graph.h"

namespace mt {

// The first n images of `set` (n >= 1) compiled in.
std::string emit_test_program(const LayerGraph& g, const std::string& name, const MultiImageSet& set, int n);

}  // namespace mt
