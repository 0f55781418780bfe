// logitLens (methods/logit_lens.h): the request parsed on the JS thread, the method queued on the
// compute thread, its IValue result marshalled by queueValue. lib/methods/logit-lens.ts is its JS side.
#include "bindings/async_work.h"
#include "bindings/model_handle.h"
#include "bindings/requests.h"
#include "bindings/values.h"
#include "methods/logit_lens.h"

namespace torchscope {

namespace {

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
  parseSaes(request, spec.saeSplices, spec.saes);
  return queueValue(
      info.Env(), code::kRuntime, [model, inputs, spec] { return logitLens(*model, inputs, spec); }, {info.This().As<Napi::Object>()},
      CancelToken::flagOf(info[2]));
}
TORCHSCOPE_MODEL_METHOD("logitLens", lens);

}  // namespace

}  // namespace torchscope
