// Entry point: registers the native classes and functions that lib/native/binding.ts types.
#include "bindings/addon.h"

#include <napi.h>

#include "bindings/async_work.h"
#include "bindings/feature_stats_handle.h"
#include "bindings/info.h"
#include "bindings/model_handle.h"
#include "bindings/probe_handle.h"
#include "bindings/sae_handle.h"
#include "bindings/sae_train.h"
#include "bindings/session_handle.h"
#include "bindings/tensor_handle.h"

namespace torchscope {

Napi::Object init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  initAsyncWork(env);
  TensorHandle::define(env, exports);
  ModelHandle::define(env, exports);
  SessionHandle::define(env, exports);
  SaeHandle::define(env, exports);
  FeatureStatsHandle::define(env, exports);
  ProbeHandle::define(env, exports);
  CancelToken::define(env, exports);
  infoExports(env, exports);
  saeTrainExports(env, exports);
  // [sync] at process exit, from the main thread (lib/native/binding.ts): see async_work.h.
  exports.Set("stopComputeThread", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                stopComputeThread(info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 0);
                return info.Env().Undefined();
              }));
  return exports;
}

NODE_API_MODULE(torchscope, init)

}  // namespace torchscope
