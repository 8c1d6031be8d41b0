// Fuzz targets: one function per parser of untrusted files, each taking the
// bytes of one file. A target returns 0 when the parser either accepts the
// bytes or refuses them with mt::Error (the one way bad input may end); any
// other exception, crash or sanitizer report is a finding.
//
// They are built twice: into libFuzzer binaries (`make fuzz`, one per target,
// tests/fuzz/entry.cpp) and into the doctest suite, which replays every file
// of the committed corpora tests/fuzz/corpus/NAME (tests/test_fuzz_corpus.cpp),
// so an input that once crashed stays a test.
//
// Not here yet: config.json as read on resume (the run directory code that
// reads it is being rewritten; its target comes with it).
#pragma once
#include <cstddef>
#include <cstdint>

namespace mt::fuzz {

int safetensors(const uint8_t* data, size_t size);  // weights: load_safetensors, then load_module
int checkpoint(const uint8_t* data, size_t size);   // load_checkpoint into a small MLP and Adam
int idx(const uint8_t* data, size_t size);          // read_idx_images and read_idx_labels, raw or gzip
int cifar10(const uint8_t* data, size_t size);      // read_cifar10_file
int labels(const uint8_t* data, size_t size);       // attribute file (CelebA or CSV) '\f' partition file
int image(const uint8_t* data, size_t size);        // option byte, then an image: load_image_folder
int prefs(const uint8_t* data, size_t size);        // parse_pref_file

struct Target {
  const char* name;  // the folder of its corpus and the binary build/fuzz/fuzz-NAME
  int (*run)(const uint8_t*, size_t);
};
inline constexpr Target kTargets[] = {{"safetensors", safetensors}, {"checkpoint", checkpoint}, {"idx", idx},
                                      {"cifar10", cifar10},         {"labels", labels},         {"image", image},
                                      {"prefs", prefs}};

}  // namespace mt::fuzz
