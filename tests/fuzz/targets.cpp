// The fuzz targets of targets.h. Each writes the input to an in-memory file
// (memfd) and hands the parser its path, /proc/self/fd/N, as a user's file
// would be handed: the parsers read paths, and this reads them the same way.
#include "tests/fuzz/targets.h"

#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "datasets/cifar10.h"
#include "datasets/idx.h"
#include "datasets/image_folder.h"
#include "engine/error.h"
#include "layers/layers.h"
#include "mtl/methods/chebyshev.h"
#include "optim/adam.h"
#include "optim/checkpoint.h"

namespace mt::fuzz {
namespace {

// Path of in-memory file number `slot`, now holding exactly the n bytes at p.
std::string as_file(int slot, const void* p, size_t n) {
  static int fds[4] = {-1, -1, -1, -1};
  int& fd = fds[slot];
  if (fd < 0) fd = ::memfd_create("mt-fuzz", 0);
  if (fd < 0 || ::ftruncate(fd, 0) != 0) __builtin_trap();
  for (size_t done = 0; done < n;) {
    const ssize_t w = ::pwrite(fd, static_cast<const char*>(p) + done, n - done, (off_t)done);
    if (w <= 0) __builtin_trap();
    done += (size_t)w;
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

// Runs f, accepting mt::Error (a refused input); anything else escapes.
template <class F>
int refused_or_accepted(F&& f) {
  try {
    f();
  } catch (const Error&) {
  }
  return 0;
}

// The model of the weights and checkpoint corpora: 4 -> 3 -> 2 with a ReLU.
std::shared_ptr<Sequential> small_mlp() {
  return std::make_shared<Sequential>(std::initializer_list<std::shared_ptr<Module>>{
      std::make_shared<Linear>(4, 3), std::make_shared<ReLU>(), std::make_shared<Linear>(3, 2)});
}

}  // namespace

int safetensors(const uint8_t* data, size_t size) {
  const std::string p = as_file(0, data, size);
  refused_or_accepted([&] { load_safetensors(p); });
  return refused_or_accepted([&] {
    auto m = small_mlp();
    load_module(p, *m);
  });
}

int checkpoint(const uint8_t* data, size_t size) {
  const std::string p = as_file(0, data, size);
  return refused_or_accepted([&] {
    auto m = small_mlp();
    Adam opt(m->named_parameters(), 0.01);
    load_checkpoint(p, *m, opt, {{"architecture", "fuzz-mlp"}});
  });
}

int idx(const uint8_t* data, size_t size) {
  const std::string p = as_file(0, data, size);
  refused_or_accepted([&] { read_idx_images(p); });
  return refused_or_accepted([&] { read_idx_labels(p); });
}

int cifar10(const uint8_t* data, size_t size) {
  const std::string p = as_file(0, data, size);
  return refused_or_accepted([&] { read_cifar10_file(p); });
}

int labels(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t ff = in.find('\f');
  const std::string attr = as_file(0, in.data(), ff == std::string::npos ? in.size() : ff);
  const std::string part = ff == std::string::npos ? std::string() : in.substr(ff + 1);
  const std::string partp = as_file(1, part.data(), part.size());
  AttributeTable fixed;  // the partition file alone, against two listed images
  fixed.source = "fuzz.csv";
  fixed.files = {"a.png", "b.png"};
  fixed.lines = {2, 3};
  bool parsed = false;
  AttributeTable t;
  refused_or_accepted([&] {
    t = read_attribute_file(attr);
    parsed = true;
  });
  return refused_or_accepted([&] { read_partition_file(partp, parsed ? t : fixed); });
}

int image(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  // The first byte chooses the model's input: grey or RGB, centre crop or not, side 1, 7, 32 or 64.
  const uint8_t opt = data[0];
  const std::string img = as_file(0, data + 1, size - 1);
  const std::string csv = "file,task\n" + img + ",1\n";
  ImageFolderOptions o;
  o.labels_path = as_file(1, csv.data(), csv.size());
  o.channels = opt & 1 ? 3 : 1;
  o.center_crop = (opt & 2) != 0;
  static const int sides[4] = {1, 7, 32, 64};
  o.height = o.width = sides[(opt >> 2) & 3];
  return refused_or_accepted([&] { load_image_folder(o); });
}

int prefs(const uint8_t* data, size_t size) {
  const std::string p = as_file(0, data, size);
  return refused_or_accepted([&] { parse_pref_file(p); });
}

}  // namespace mt::fuzz
