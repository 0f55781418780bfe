// Every libtorch call that does real work runs on torchscope's compute thread and settles a
// Promise; the JS thread only copies arguments in (the "baton") and builds results out.
//
// One compute thread, not the libuv pool: libtorch's OpenMP runtime keeps a thread team per
// calling thread, and hopping between pool threads made each call pay for a cold team
// (ResNet-18 at batch 1: 30 ms from the pool, 19 ms from one thread). Calls therefore run
// one at a time, in order, each using every core through libtorch's intra-op threads.
#pragma once

#include <napi.h>

#include <functional>
#include <vector>

namespace torchscope {

using WorkFn = std::function<void()>;                       // compute thread, no JS
using ResolveFn = std::function<Napi::Value(Napi::Env)>;    // JS thread, builds the result

// Queues `work`; the returned Promise resolves with `resolve`'s value, or rejects with a
// JS error carrying a code (see errors.h). `fallbackCode` classifies libtorch errors that
// match no more specific code. `keepAlive` objects (wrappers whose native state the work
// reads) are referenced until the work settles, so GC cannot finalize them mid-run.
Napi::Promise queueWork(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve,
                        const std::vector<Napi::Object>& keepAlive = {});

// Per-environment set-up (the completion channel back to the JS thread), called at init.
void initAsyncWork(Napi::Env env);

}  // namespace torchscope
