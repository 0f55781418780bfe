// run, call, signature, nodes and inspect (methods/forward.h).
#include "bindings/async_work.h"
#include "bindings/model_handle.h"
#include "bindings/requests.h"
#include "bindings/values.h"
#include "methods/forward.h"

namespace torchscope {

namespace {

RunRequest parseRunRequest(Napi::Value value) {
  const RequestReader request(value, "run request");
  RunRequest out;
  out.needs.capture = sortedUnique(request.strings("capture"));
  out.needs.returnOutput = request.boolean("output");
  parsePatches(request, out.needs.patch, out.patches);
  parseSaes(request, out.needs.saes, out.saes);
  out.needs.gradient = sortedUnique(request.strings("gradient"));  // inspect: a gradients program
  out.numerics = parseNumerics(request);
  return out;
}

// [async] run(inputs[], { capture[], patch: [{layer, mode, value, scale, channels, positions}],
//   saes: [{ sae, read, write, errorTerm }], output, precision?, upcast?, gradient? },
//   cancelToken?) -> runModel's record.
//   A plain forward is run(inputs, { output: true }).
Napi::Value run(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto inputs = toForwardInputs(info[0], model->format->forwardSchema());
  auto request = parseRunRequest(info[1]);
  return queueValue(
      info.Env(), code::kRuntime, [model, inputs, request] { return runModel(*model, inputs, request); }, {info.This().As<Napi::Object>()},
      CancelToken::flagOf(info[2]));
}
TORCHSCOPE_MODEL_METHOD("run", run);

// [async] call(path, inputs[], cancelToken?) -> what the submodule's forward returns for
//   `inputs` (converted to its declared types), without gradients, on the CPU.
Napi::Value call(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  TS_CHECK(info[0].IsString(), code::kInvalidArgument, "call(path, inputs): the path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  auto inputs = toForwardInputs(info[1], model->format->submoduleSchema(path, "submodule"));
  return queueValue(
      info.Env(), code::kRuntime, [model, path, inputs] { return callSubmodule(*model, path, inputs); }, {info.This().As<Napi::Object>()},
      CancelToken::flagOf(info[2]));
}
TORCHSCOPE_MODEL_METHOD("call", call);

// A query about one submodule, queued: (path) -> `query(model, path)`.
Napi::Value queuePathQuery(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model, const char* name,
                           c10::IValue (*query)(ModelState&, const std::string&)) {
  TS_CHECK(info[0].IsString(), code::kInvalidArgument, name, "(path): the path must be a string");
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  return queueValue(info.Env(), code::kInternal, [model, path, query] { return query(*model, path); }, {info.This().As<Napi::Object>()});
}

// [async] signature(path) -> [{ name, type, supplied, hasDefault, source }]: the submodule's
//   forward's arguments after self, and which the model supplies when it is called alone.
Napi::Value signature(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  return queuePathQuery(info, model, "signature", submoduleSignature);
}
TORCHSCOPE_MODEL_METHOD("signature", signature);

// [async] nodes(path) -> [{ name, op, pattern, shape? }]: the operations of the submodule's
//   forward that can be hooked as '<path>/<name>' (shape: as the file records it).
Napi::Value nodes(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  return queuePathQuery(info, model, "nodes", submoduleNodes);
}
TORCHSCOPE_MODEL_METHOD("nodes", nodes);

// [async] inspect({ capture[], patch[], output, gradient?, precision? }) -> inspectProgram's record.
Napi::Value inspect(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto request = parseRunRequest(info[0]);
  return queueValue(info.Env(), code::kInternal, [model, request] { return inspectProgram(*model, request); },
                    {info.This().As<Napi::Object>()});
}
TORCHSCOPE_MODEL_METHOD("inspect", inspect);

}  // namespace

}  // namespace torchscope
