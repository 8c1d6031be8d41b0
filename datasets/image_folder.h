// Image-folder datasets: image files (PNG, JPEG, BMP, decoded by stb_image)
// named in an attribute file that gives any number of named tasks, each binary
// or multi-class. The result is a MultiImageSet of uint8 C x H x W images.
//
// Attribute files (the format is detected from the first line):
//
//   CelebA   list_attr_celeba.txt
//              line 1: the number of images
//              line 2: the attribute names (whitespace separated)
//              then:   "000001.jpg  -1  1  1 -1 ..." one row per image
//            Every value must be -1 or 1; every task is binary, stored 0/1
//            (-1 -> 0, 1 -> 1).
//
//   CSV      header "file,task1,task2,..." then "img.png,3,1,-1,..." rows.
//            Values are integer class ids. A header name may declare its class
//            count as "name:K" (K >= 2); a column without one takes its kind
//            from its values: only {-1,1} or only {0,1} -> binary, otherwise
//            K = max + 1 (negative values are then an error). Binary columns
//            accept 0/1 and -1/1 (-1 -> 0). Fields are trimmed of blanks; the
//            file name cannot contain a comma. (Declare K when a train and a
//            test file are read separately, so both agree on it.)
//
// Partition file (optional; CelebA's list_eval_partition.txt): rows
// "file.jpg 0|1|2" (blank- or comma-separated) for train / validation / test.
// Every image of the attribute file must have a row; extra rows are ignored.
//
// Images: decoded with the channel count the model wants (stb converts: RGB
// -> grey by luma, grey -> RGB by replication; alpha is dropped), optionally
// centre-cropped to a square, resized with stb_image_resize to H x W (its
// default filters) when the size differs, and stored channel-major (C x H x W).
// Decoding runs in parallel over images (OpenMP); the result does not depend on
// the thread count, and the first failing image in file order is reported.
// Before decoding, the size the file declares is read from its header and
// must be within kMaxImageSide per side and kMaxImagePixels in all: a 57-byte
// GIF can declare an 18735 x 14406 canvas, which stb_image would allocate
// (hundreds of MB, once per decoding thread) before finding the file empty.
// Likewise a PNG's chunks must lie inside the file (stb_image sizes its
// buffer by a chunk's declared length before reading it) and a binary PNM
// must be as long as its pixels.
//
// Errors (mt::Error) name the file and, where there is one, the line:
//   "list_attr_celeba.txt:7: expected 41 columns, got 40"
//   "list_attr_celeba.txt:4: attribute 'Smiling' value 0 is not -1 or 1"
//   "labels.csv:3: task 'digit' value 12 outside [0, 10)"
//   "DIR/a.png: cannot open image (No such file or directory), listed at labels.csv:5"
//   "DIR/b.jpg: cannot decode image (<stb_image's reason>), listed at labels.csv:6"
//   "DIR/c.gif: image declares 18735x14406 pixels, outside the limit (sides
//    1..16384, at most 16777216 pixels), listed at labels.csv:7"
//   "DIR/d.png: PNG chunk 'IDAT' at byte 98 declares 2019451701 bytes, past
//    the end of the file (209 bytes), listed at labels.csv:8"
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "datasets/multi_mnist.h"

namespace mt {

// The largest image accepted, as declared in its header: 16384 pixels per
// side and 2^24 pixels in all (4096 x 4096; a 12-megapixel photo fits), so one
// decode costs at most ~64 MB for RGB and ~150 MB for a GIF's canvases.
inline constexpr int kMaxImageSide = 16384;
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 24;

// Which rows of a partition file to keep (CelebA's 0 / 1 / 2).
enum class Partition { All = -1, Train = 0, Val = 1, Test = 2 };

// The parsed attribute file: one row per image, one column per task.
struct AttributeTable {
  std::string source;                        // the file's path, for messages
  std::vector<std::string> files;            // image file names as listed
  std::vector<int> lines;                    // 1-based line of each row in source
  std::vector<std::string> task_names;
  std::vector<int> num_classes;              // 2 for binary tasks
  std::vector<bool> binary;
  std::vector<std::vector<int32_t>> labels;  // labels[task][row], in [0, num_classes)

  int rows() const { return static_cast<int>(files.size()); }
};

AttributeTable read_celeba_attributes(const std::string& path);
AttributeTable read_csv_attributes(const std::string& path);
// CelebA when the first non-blank line is a single integer, CSV otherwise.
AttributeTable read_attribute_file(const std::string& path);

// The partition (0, 1 or 2) of each row of `table`, read from a partition file.
std::vector<int> read_partition_file(const std::string& path, const AttributeTable& table);

// Decodes one image file into out[c*h*w] (channel-major), converted to
// `channels` (1 or 3), centre-cropped to a square if asked, resized to h x w.
// `where` is appended to error messages (e.g. ", listed at labels.csv:5").
void load_image_chw(const std::string& path, int channels, int h, int w, bool center_crop, uint8_t* out,
                    const std::string& where = "");

struct ImageFolderOptions {
  std::string images_dir;       // folder the listed names are relative to (absolute names are kept)
  std::string labels_path;      // CelebA attribute file or CSV
  std::string partition_path;   // optional; needed when partition != All
  Partition partition = Partition::All;
  int channels = 3;             // 1 (grey) or 3 (RGB): the model's input channels
  int height = 64, width = 64;  // the model's input size
  bool center_crop = false;     // crop the largest centred square before resizing
  std::vector<std::string> tasks;  // keep these tasks, in this order; empty: all
  int max_images = 0;           // keep the first N selected rows (file order); 0: all
  float mean = 0.5f, std = 0.5f;   // stored in the set (the loader's normalisation)
};

// The CelebA layout under `root`: root/img_align_celeba/, root/list_attr_celeba.txt
// and root/list_eval_partition.txt; the other options keep their defaults.
ImageFolderOptions celeba_options(const std::string& root, Partition partition);

// Reads the attribute file (and the partition file), selects rows and tasks,
// decodes every image. The set's binary[t] marks binary tasks. Throws
// mt::Error on any bad input (see the top of this file), on an unknown task
// name (listing the valid ones), and when no image is selected.
MultiImageSet load_image_folder(const ImageFolderOptions& o);

// Mean and standard deviation of all pixel values of a set, scaled to [0, 1]
// (compute them on the training set and copy them to the test set). A set of
// constant images gets std 1, so the result is always usable as normalisation.
std::pair<float, float> pixel_stats(const MultiImageSet& s);

}  // namespace mt
