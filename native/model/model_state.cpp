#include "model/model_state.h"

#include "core/device.h"
#include "core/errors.h"
#include "core/ivalues.h"
#include "export/pt2_archive.h"
#include "export/pt2_model.h"
#include "torchscript/torchscript_model.h"

namespace torchscope {

std::shared_ptr<const Program> ModelState::program(const ProgramNeeds& needs, const NumericsOverride& call, Optimize optimize) {
  ProgramSpec spec;
  static_cast<ProgramNeeds&>(spec) = needs;
  spec.optimize = this->optimize && optimize == Optimize::kAsLoaded;
  spec.precision = call.precision.value_or(precision);
  spec.device = device.type();
  return programs.get(*format, spec);
}

c10::IValue ModelState::returned(const c10::IValue& value, const NumericsOverride& call) const {
  return toDevice(call.upcast.value_or(upcast) ? upcastReduced(value) : value, c10::kCPU);
}

at::Tensor ModelState::returned(const at::Tensor& tensor, const NumericsOverride& call) const {
  return (call.upcast.value_or(upcast) ? upcastReduced(tensor) : tensor).cpu();
}

std::shared_ptr<ModelState> loadModel(const std::string& path, const LoadOptions& options) {
  auto state = std::make_shared<ModelState>();
  state->optimize = options.optimize;
  state->precision = options.precision;
  state->upcast = options.upcast;
  state->device = resolveDevice(options.device);
  if (isPt2Archive(path)) {
    TS_CHECK(!options.sharesTensorsOf, code::kModelLoad, "'", path, "' is a torch.export program: a decoding step is a TorchScript file");
    state->format = ExportModel::load(path, state->device, options.policy);
  } else {
    auto model = TorchScriptModel::load(path, state->device, options.policy);
    if (options.sharesTensorsOf) {
      TS_CHECK(options.sharesTensorsOf->device == state->device, code::kInvalidArgument,
               "a model shares tensors only with one on its device (", options.sharesTensorsOf->device.str(), ")");
      model->shareTensorsOf(*options.sharesTensorsOf->format);
    }
    state->format = std::move(model);
  }
  return state;
}

}  // namespace torchscope
