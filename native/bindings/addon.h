// Per-environment state of the addon (one per Node.js worker thread).
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

namespace torchscope {

struct Channel;  // the compute thread's way back into this environment (async_work.cpp)

// The JS side of a call in flight: what only the JS thread may touch.
struct PendingCall {
  Napi::Promise::Deferred deferred;
  std::vector<Napi::ObjectReference> keepAlive;
};

struct AddonData {
  Napi::FunctionReference tensorClass;
  Napi::FunctionReference modelClass;
  Napi::FunctionReference sessionClass;
  Napi::FunctionReference saeClass;
  Napi::FunctionReference probeClass;
  Napi::FunctionReference cancelTokenClass;
  std::shared_ptr<Channel> channel;
  std::unordered_map<uint64_t, PendingCall> pending;  // by call id
  uint64_t nextCall = 0;

  // At environment cleanup, while the environment can still delete references.
  void releaseReferences() {
    pending.clear();
    for (auto* reference : {&tensorClass, &modelClass, &sessionClass, &saeClass, &probeClass, &cancelTokenClass}) reference->Reset();
  }
};

inline AddonData& addonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace torchscope
