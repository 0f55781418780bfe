// gradients and logitLens (methods/gradients.h, methods/logit_lens.h): one-pass methods.
#include "bindings/async_work.h"
#include "bindings/model_handle.h"
#include "bindings/requests.h"
#include "bindings/values.h"
#include "methods/gradients.h"
#include "methods/logit_lens.h"

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
  spec.numerics = parseNumerics(request);
  return queueValue(
      info.Env(), code::kRuntime, [model, inputs, spec] { return torchscope::gradients(*model, inputs, spec); },
      {info.This().As<Napi::Object>()}, CancelToken::flagOf(info[2]));
}
TORCHSCOPE_MODEL_METHOD("gradients", gradients);

// [async] logitLens(inputs[], { layers[], head[], topK, precision?, upcast? }, cancelToken?)
//   -> { logits } or, with topK, { logits (the k largest), indices }.
Napi::Value lens(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto inputs = toForwardInputs(info[0], model->format->forwardSchema());
  const RequestReader request(info[1], "logit lens request");
  LensSpec spec;
  spec.layers = request.strings("layers");
  spec.head = request.strings("head");
  spec.topK = request.integer("topK", 0, kMaxIndex);
  spec.numerics = parseNumerics(request);
  return queueValue(
      info.Env(), code::kRuntime, [model, inputs, spec] { return logitLens(*model, inputs, spec); }, {info.This().As<Napi::Object>()},
      CancelToken::flagOf(info[2]));
}
TORCHSCOPE_MODEL_METHOD("logitLens", lens);

}  // namespace

}  // namespace torchscope
