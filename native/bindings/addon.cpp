// Entry point: registers the native classes and functions that lib/native.ts types.
#include <napi.h>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "core/device.h"
#include "methods/maximize.h"
#include "model/model.h"
#include "methods/planned_run.h"
#include "bindings/tensor.h"

namespace torchscope {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  initAsyncWork(env);
  TensorHandle::define(env, exports);
  ModelHandle::define(env, exports);
  MaximizeSession::define(env, exports);
  PlannedRun::define(env, exports);
  CancelToken::define(env, exports);
  deviceExports(env, exports);
  // [sync] at process exit, from the main thread (lib/native.ts): see async_work.h.
  exports.Set("stopComputeThread", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                stopComputeThread(info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0);
                return info.Env().Undefined();
              }));
  return exports;
}

NODE_API_MODULE(torchscope, init)

}  // namespace torchscope
