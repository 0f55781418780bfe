// Per-environment state of the addon (one per Node.js worker thread).
#pragma once

#include <napi.h>

namespace torchscope {

struct AddonData {
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference modelClass;
  Napi::FunctionReference sessionClass;
  Napi::ThreadSafeFunction completions;  // compute thread -> JS thread (async_work.cpp)
  size_t pendingJobs = 0;
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace torchscope
