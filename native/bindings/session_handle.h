// The JS face of every stepped job (methods/stepped_job.h): attribution runs, patching sweeps and
// maximization sessions are one class, driven by one loop in lib/core/session.ts.
#pragma once

#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "methods/stepped_job.h"
#include "model/model_state.h"

namespace torchscope {

class SessionHandle : public Napi::ObjectWrap<SessionHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  // [async] runs `start` on the compute thread (it may run passes: plan, probe memory) ->
  // SessionHandle. `what` names the job in errors ("attribution run"); `keepAlive` (the
  // model's handle) stays referenced while it starts; the job keeps `model` alive after.
  static Napi::Value start(Napi::Env env, const char* what, std::shared_ptr<ModelState> model,
                           std::function<std::shared_ptr<SteppedJob>()> start, Napi::Object keepAlive);
  explicit SessionHandle(const Napi::CallbackInfo& info);
  ~SessionHandle() override;

  struct State;

 private:
  // [async] steps(n, inputs?) runs up to n more steps (fewer after abort()), handing the job
  // `inputs` (tensors) first -> the job's progress and { aborted }
  Napi::Value steps(const Napi::CallbackInfo& info);
  // [sync] stop before the next step
  Napi::Value abort(const Napi::CallbackInfo& info);
  // [async] result(argument?) -> the job's result
  Napi::Value result(const Napi::CallbackInfo& info);
  // [sync] frees the job once a chunk in flight finishes; later calls reject DISPOSED. Idempotent.
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<State> live(Napi::Env env) const;
  void release();

  std::shared_ptr<State> state_;
  std::string what_;  // the job, for errors once it is disposed
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace torchscope
