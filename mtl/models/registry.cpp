// The model registry: every architecture the command line can build.
#include "engine/error.h"
#include "mtl/models/mdmtn.h"
#include "mtl/models/model.h"
#include "mtl/models/multilenet.h"
#include "mtl/models/resnet.h"

namespace mt {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"multilenet", "multilenet-stl", "mdmtn",
                                                 "hps",        "mdmtn-cifar",    "hps-cifar",
                                                 "resnet18",   "resnet18-w8"};
  return names;
}

// "resnet18-w<N>" with N in 1..999.
static bool is_resnet_width_name(const std::string& name) {
  return name.compare(0, 10, "resnet18-w") == 0 && name.size() > 10 && name.size() <= 13 &&
         name.find_first_not_of("0123456789", 10) == std::string::npos && std::stoi(name.substr(10)) > 0;
}

bool is_model_name(const std::string& name) {
  for (const auto& n : model_names())
    if (n == name) return true;
  return is_resnet_width_name(name);
}

std::shared_ptr<MultiTaskModel> make_model(const std::string& name, const std::vector<Task>& tasks,
                                           const Shape& input_chw) {
  if (name == "multilenet") return std::make_shared<MultiLeNet>(tasks, input_chw);
  if (name == "multilenet-stl") return std::make_shared<IndependentMultiLeNet>(tasks, input_chw);
  if (name == "mdmtn") return std::make_shared<Mdmtn>(tasks, input_chw, MdmtnConfig{true, false});
  if (name == "hps") return std::make_shared<Mdmtn>(tasks, input_chw, MdmtnConfig{false, false});
  if (name == "mdmtn-cifar") return std::make_shared<Mdmtn>(tasks, input_chw, MdmtnConfig{true, true});
  if (name == "hps-cifar") return std::make_shared<Mdmtn>(tasks, input_chw, MdmtnConfig{false, true});
  if (name == "resnet18") return std::make_shared<ResNet18>(tasks, input_chw);
  if (is_resnet_width_name(name))  // resnet18-w<N>: width N
    return std::make_shared<ResNet18>(tasks, input_chw, std::stoi(name.substr(10)));
  std::string valid;
  for (const auto& n : model_names()) valid += (valid.empty() ? "" : ", ") + n;
  throw Error("unknown model '" + name + "' (valid: " + valid + ")");
}

}  // namespace mt
