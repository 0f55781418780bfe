// The JS-visible model handle (lib/model/model.ts wraps it in the public Model class): a
// model's state (model/model_state.h) behind ModelHandle.load, its description (modules,
// device, forwardArguments), dispose, and the methods. Each method's binding (its request
// parser and its entry) lives in bindings/methods/, registered by name with
// TORCHSCOPE_MODEL_METHOD, so that adding a method touches its method file, its binding file
// and its lib/ file.
#pragma once

#include <napi.h>

#include <memory>

#include "model/model_state.h"

namespace torchscope {

// A method entry: the JS call's arguments and the model's live state (DISPOSED checked);
// returns what JS receives (a Promise for asynchronous methods). Runs inside the entry boundary.
using ModelMethod = Napi::Value (*)(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model);

struct ModelMethodRegistration {
  ModelMethodRegistration(const char* name, ModelMethod method);
};

// Registers `method` as ModelHandle.prototype[name] (at load, before the module initialises).
#define TORCHSCOPE_MODEL_METHOD(name, method) static const ::torchscope::ModelMethodRegistration registration_##method(name, method)

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit ModelHandle(const Napi::CallbackInfo& info);
  ~ModelHandle() override;
  // The live model a JS value wraps (INVALID_ARGUMENT for another value, DISPOSED).
  static std::shared_ptr<ModelState> unwrap(Napi::Value value);

 private:
  // [async] load(path, { device, optimize, precision, upcast, trusted, maxInflatedBytes,
  //   sharesTensorsOf? }, cancelToken?) -> ModelHandle. The file is checked before libtorch
  //   loads it (model_file.h); with sharesTensorsOf (a model) it adopts that model's tensors
  //   where names match (ModelState's LoadOptions). Rejects MODEL_LOAD / DEVICE.
  static Napi::Value load(const Napi::CallbackInfo& info);
  // [sync] [{ path, type, callSites, unhookable }, ...] for every submodule, root ("") first;
  //   `unhookable` says why no hook point reaches it ('' when one does).
  Napi::Value modules(const Napi::CallbackInfo& info);
  // [sync] 'cpu' | 'cuda:N'
  Napi::Value device(const Napi::CallbackInfo& info);
  // [sync] [{ name, type }, ...]: forward's arguments after self, as its schema declares them
  Napi::Value forwardArguments(const Napi::CallbackInfo& info);
  // [sync] releases the module once in-flight calls finish; later calls reject DISPOSED.
  Napi::Value dispose(const Napi::CallbackInfo& info);
  // A registered method (the callback's data is its ModelMethod).
  Napi::Value invoke(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelState> live(Napi::Env env) const;
  void release();

  std::shared_ptr<ModelState> state_;
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace torchscope
