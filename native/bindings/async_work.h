// Every libtorch call that does real work runs on torchscope's compute thread and settles a
// Promise; the JS thread only copies arguments in (the "baton") and builds results out.
//
// One compute thread, not the libuv pool: libtorch's OpenMP runtime keeps a thread team per
// calling thread, and hopping between pool threads made each call pay for a cold team
// (ResNet-18 at batch 1: 30 ms from the pool, 19 ms from one thread). Calls therefore run
// one at a time, in order, each using every core through libtorch's intra-op threads.
//
// Lifetimes: the compute thread outlives every environment (the main one and each worker
// thread's). When an environment goes away (worker.terminate()), its queued calls are dropped
// unrun, its cleanup waits for its call in flight (which stops early where it can) and drops
// the result: nothing ever calls into a gone environment, and the process never exits under a
// running call. At process exit (lib/native/binding.ts calls stopComputeThread from
// the main thread's 'exit' event: exit() runs no cleanup hooks, and static destructors
// registered by libtorch's lazily built state run before any atexit handler registered at
// load), queued calls are dropped and exit waits for the call in flight (up to 10 s, then
// leaves without static destructors), so that libtorch's static state is not torn down under it.
#pragma once

#include <ATen/core/ivalue.h>
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

namespace torchscope {

using WorkFn = std::function<void()>;                     // compute thread, no JS
using ResolveFn = std::function<Napi::Value(Napi::Env)>;  // JS thread, builds the result

// Set from JS (an AbortSignal's abort): a queued call that has not started rejects ABORTED.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

// Queues `work`; the returned Promise resolves with `resolve`'s value, or rejects with a
// JS error carrying a code (see errors.h). `fallbackCode` classifies libtorch errors that
// match no more specific code. `keepAlive` objects (wrappers whose native state the work
// reads) are referenced until the work settles, so GC cannot finalize them mid-run.
Napi::Promise queueWork(Napi::Env env, const char* fallbackCode, WorkFn work, ResolveFn resolve,
                        const std::vector<Napi::Object>& keepAlive = {}, CancelFlag cancel = nullptr);

// queueWork for a method whose result is a libtorch value: it reaches JS through toJs
// (bindings/values.h), the one path every result takes.
Napi::Promise queueValue(Napi::Env env, const char* fallbackCode, std::function<c10::IValue()> work,
                         const std::vector<Napi::Object>& keepAlive = {}, CancelFlag cancel = nullptr);

// Per-environment set-up (the completion channel back to the JS thread), called at init.
void initAsyncWork(Napi::Env env);

// At process exit: drops every queued call and waits for the one in flight (later calls never
// run); if it is still running after 10 s, ends the process with `exitCode` at once.
void stopComputeThread(int exitCode);

// After stopComputeThread the process is ending: native objects still alive (models, tensors,
// sessions) are then kept rather than freed, since the OS takes the memory back at once, while
// freeing it piece by piece cost ~0.15 s per GB at exit (jest waits 500 ms for a worker).
bool processExiting();
void keepUntilExit(std::shared_ptr<void> object);

// On the compute thread: true when nobody waits for the current call any more (its
// environment is gone, or it was cancelled); long work (maximize steps) stops early.
bool workCancelled();

// [sync] cancelToken() -> { cancel() }: JS hands it to a call, and cancel() on abort.
class CancelToken : public Napi::ObjectWrap<CancelToken> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit CancelToken(const Napi::CallbackInfo& info);
  // The flag of a token passed from JS; nullptr for undefined. Throws INVALID_ARGUMENT otherwise.
  static CancelFlag flagOf(Napi::Value value);

 private:
  Napi::Value cancel(const Napi::CallbackInfo& info);
  CancelFlag flag_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace torchscope
