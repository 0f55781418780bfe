// gradients (methods/gradients.h): one pass forward and backward.
#include "bindings/async_work.h"
#include "bindings/model_handle.h"
#include "bindings/requests.h"
#include "bindings/values.h"
#include "methods/gradients.h"

namespace torchscope {

namespace {

// [async] gradients(inputs[], { objective: { layer, objectives }, inputs[], layers[], patch[],
//   precision?, upcast? }, cancelToken?) -> { objective: number[], inputs: Tensor[], layers: {
//   layer: Tensor[] per call } }.
Napi::Value gradients(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto inputs = toForwardInputs(info[0], model->format->forwardSchema());
  const RequestReader request(info[1], "gradients request");
  GradientSpec spec;
  spec.objective = parseObjectiveSpec(request.object("objective"));
  spec.inputs = request.integers("inputs");
  spec.layers = sortedUnique(request.strings("layers"));
  parsePatches(request, spec.patchLayers, spec.patches);
  parseSaes(request, spec.saeSplices, spec.saes);
  spec.numerics = parseNumerics(request);
  return queueValue(
      info.Env(), code::kRuntime, [model, inputs, spec] { return torchscope::gradients(*model, inputs, spec); },
      {info.This().As<Napi::Object>()}, CancelToken::flagOf(info[2]));
}
TORCHSCOPE_MODEL_METHOD("gradients", gradients);

}  // namespace

}  // namespace torchscope
