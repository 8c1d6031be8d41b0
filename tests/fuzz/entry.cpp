// The libFuzzer entry of one target of targets.h, chosen at build time:
// the Makefile compiles this file once per target with -DMT_FUZZ_TARGET=NAME.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) { return mt::fuzz::MT_FUZZ_TARGET(data, size); }
