// The one configuration of a training run (`mtl train`, `mtl sweep`'s runs and the
// library's train()), and the data part that `mtl eval` and `mtl predict` share.
//
// A field left unset (an empty optional, an empty string or list) takes the default
// of the chosen method and model, filled in by resolve_train_config():
//   every method but chebyshev-al   SGD, lr 0.05, momentum 0.9, 10 epochs, StepLR off,
//                                   no validation split, model multilenet (resnet18 on
//                                   the many-task sets, mdmtn-cifar on cifar10-mnist)
//   chebyshev-al                    the reference's recipe (Hotegni et al.): Adam, lr
//                                   2.5e-3 x 0.5 per outer iteration, 3 search + 10
//                                   retrain outer iterations of 3 epochs, mu0 2.5e-8,
//                                   rho 2, 10,000 validation images, model mdmtn
//                                   (the -cifar models: their own values)
// validate_train_config() is the one place a setting is checked: names, ranges and
// combinations (a flag of one method given to another is an error naming it). Its
// errors are UsageErrors that name the command-line flag.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/error.h"

namespace mt {

// A bad setting: the command line exits with status 2 (other errors: 1).
struct UsageError : Error {
  explicit UsageError(const std::string& what) : Error(what) {}
};

// Training diverged (a non-finite loss, task weight or parameter).
struct DivergedError : Error {
  explicit DivergedError(const std::string& what) : Error(what) {}
};

// Sources beside make_dataset's composites (mtl/train/data_sources.h).
struct DataSourceOptions {
  std::string images;           // imagefolder: folder the listed names are relative to; celeba: the root
  std::string labels;           // imagefolder: attribute file (CSV or CelebA layout)
  std::string partition;        // imagefolder: optional partition file (celeba: the root's)
  std::string tasks;            // "a,b,c": task names (all three sets); "K": the grid's first K tasks
  int image_size = 0;           // side in pixels; 0: 64 for folders, 56 for the grid
  std::optional<int> channels;  // folders: 1 (grey) or 3 (RGB, the default)
  int max_images = 0;           // folders: keep the first N selected rows (per partition); 0: all
  std::optional<double> test_fraction;  // folders without a partition: share held out as the test set [0.2]
};

// Where the images come from.
struct DataConfig {
  std::string dataset = "multimnist";
  std::string data_dir = "data";
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  std::string cifar_dir;               // cifar10-mnist's CIFAR-10 files; empty: data/cifar10
  uint64_t data_seed = 0;              // composition of the Multi* sets, the grid, the folders' test split
  int train_limit = 0;                 // use only the first N training images (0 = all)
  int test_limit = 0;                  // use only the first N test images (0 = all)
  DataSourceOptions source;            // mnist-grid, imagefolder, celeba
};

struct TrainConfig : DataConfig {
  // model
  std::optional<std::string> model;    // see above; "single-task" runs model multilenet-stl
  int width = 0;                       // > 0: resnet18 of this width ("resnet18-w<N>")
  // method (mtl/methods/method.h)
  std::string method = "mgda-ub";
  std::vector<double> weights;         // fixed: w_t
  std::optional<std::string> normalization;  // mgda, mgda-ub: none | l2 | loss | loss+  [none]
  std::optional<std::string> solver;         // mgda, mgda-ub with >= 3 tasks: min_norm_algo_names()  [wolfe]
  std::optional<std::string> heads;          // mgda, mgda-ub: alpha | own | mean (head t trains on alpha_t L_t, L_t or L_t / K)  [alpha]
  std::optional<double> gradnorm_alpha;      // gradnorm: the asymmetry alpha  [1.5]
  // the gradient-balancing methods (mtl/methods/gram_method.h, loss_method.h); unset:
  // MethodOptions' defaults
  std::optional<std::string> gradients;      // pcgrad, cagrad, imtl-g, nash-mtl, upgrad: representation | parameters
  std::optional<double> cagrad_c;            // cagrad: radius c of the ball around the mean gradient  [0.4]
  std::optional<double> nash_max_norm;       // nash-mtl: clip of the shared gradient's norm, 0 off  [1]
  std::optional<double> upgrad_reg;          // upgrad: ridge on the trace-normalised Gram matrix  [1e-4]
  std::optional<double> dwa_temperature;     // dwa: T  [2]
  std::optional<double> famo_lr, famo_gamma;  // famo: Adam step and weight decay of the logits  [0.025, 1e-3]
  std::optional<double> stch_mu;             // stch: smoothing mu  [1]
  std::optional<int> stch_warmup;            // stch: warm-up epochs on sum_t log L_t  [1]
  // chebyshev-al (mtl/methods/chebyshev_al.h, mtl/train/sparse_recipe.h)
  std::vector<double> prefs;           // k = (k_0 sparsity, k_1..k_K)  [0.01,0.8,0.19]
  std::vector<double> ref_point;       // a  [zeros]
  std::optional<double> eps;           // augmentation epsilon  [1e-4]
  std::optional<double> mu;            // mu0  [published 2.5e-8 (-cifar 6.8e-8); standard 1]
  std::optional<double> rho;           // mu <- rho mu per outer iteration  [2]
  std::optional<std::string> al_variant;  // published | standard  [published]
  std::optional<int> search_iters, retrain_iters, epochs_per_iter;  // [3, 10, 3]
  std::optional<double> min_sparsity;        // percent  [mdmtn 20, hps 10; -cifar 10, 5]
  std::optional<double> max_layer_sparsity;  // [0.8; -cifar mdmtn 0.3, hps 0.15]
  std::optional<double> sim_preference;      // [0.7; -cifar 0.8]
  std::optional<double> lr_decay;            // lr <- lr x this per outer iteration [0.5; -cifar 0.98]
  // optimisation
  std::optional<int> epochs;           // total, counting those of a resumed checkpoint
  int batch = 256;
  std::optional<std::string> optimizer;  // sgd | adam | adamw
  std::optional<double> lr;
  std::optional<double> momentum;      // sgd
  std::optional<double> weight_decay;  // [0]
  std::optional<int> lr_step;          // StepLR every lr_step epochs  [off: a constant lr]
  std::optional<double> lr_gamma;      // [0.1]
  std::optional<int> lr_first_step;    // first decay after this many epochs  [lr_step]
  // run
  uint64_t seed = 0;                   // initialisation, dropout, t, shuffling, validation split
  std::optional<int> threads;          // unset: leave the engine's setting (MTL_THREADS or all cores)
  std::optional<int> val;              // images of the training set held out for validation
  std::string out;                     // empty: default_out_dir(), or the --resume file's directory
  std::string resume;                  // checkpoint to continue from
  bool force = false;                  // allow replacing another run's files in out
  int stop_after = 0;                  // > 0: stop after this many epochs in total (continue with resume)
};

// "runs/<dataset>-<method>-s<seed>"
std::string default_out_dir(const TrainConfig& c);

// The settings with every default filled in (see above); out is the default or the
// --resume file's directory when empty. Call validate_train_config first.
TrainConfig resolve_train_config(const TrainConfig& c);

// Every check that needs neither data nor files. Throws UsageError naming the flag.
// named = false skips the dataset and model names (the user's own data and model).
void validate_train_config(const TrainConfig& c, bool named = true);
// The data part alone (mtl eval and mtl predict use it with their own dataset rules).
void validate_data_config(const DataConfig& c);

// Datasets and their defaults (mtl/train/data_sources.cpp).
const std::vector<std::string>& train_dataset_names();
bool is_many_task_dataset(const std::string& name);  // mnist-grid, imagefolder, celeba
std::string default_model_for(const std::string& dataset);
// The models the Chebyshev-AL procedure runs (LayerTracer models): mdmtn, hps and -cifar.
const std::vector<std::string>& sparse_model_names();

}  // namespace mt
