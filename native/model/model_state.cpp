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
    state->format = ExportModel::load(path, state->device, options.policy);
  } else {
    state->format = TorchScriptModel::load(path, state->device, options.policy);
  }
  return state;
}

}  // namespace torchscope
