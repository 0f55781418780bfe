// Every libtorch call that does real work runs here, on the libuv thread pool, and settles
// a Promise; the JS thread only copies arguments in (the "baton") and builds results out.
#pragma once

#include <napi.h>

#include <functional>
#include <vector>

namespace torchscope {

using WorkFn = std::function<void()>;                       // worker thread, no JS
using ResolveFn = std::function<Napi::Value(Napi::Env)>;    // JS thread, builds the result

// Queues `work`; the returned Promise resolves with `resolve`'s value, or rejects with a
// JS error carrying a code (see errors.h). `fallbackCode` classifies libtorch errors that
// match no more specific code. `keepAlive` objects (wrappers whose native state the work
// reads) are referenced until the work settles, so GC cannot finalize them mid-run.
Napi::Promise queueWork(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve,
                        const std::vector<Napi::Object>& keepAlive = {});

}  // namespace torchscope
