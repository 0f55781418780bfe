// A long native job as a plan of steps (each one batched forward, and backward, pass) that JS
// drives a few at a time: progress between them, abort within one, other calls interleave,
// and the event loop never waits. Attribution runs and patching sweeps are planned runs.
#pragma once

#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

#include "bindings/async_work.h"
#include "model/model.h"

namespace torchscope {

struct RunPlan {
  std::vector<std::function<void()>> steps;     // compute thread, in order
  std::function<ResolveFn()> finish;            // compute thread, after the last step: the result's builder
};

class PlannedRun : public Napi::ObjectWrap<PlannedRun> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  // [async] plans on the compute thread (`plan` may run passes to decide, e.g. probe memory)
  // -> PlannedRun. `keepAlive` (the model's handle) stays referenced while planning.
  static Napi::Value start(Napi::Env env, std::shared_ptr<ModelState> model, std::function<RunPlan()> plan,
                           Napi::Object keepAlive);
  explicit PlannedRun(const Napi::CallbackInfo& info);
  ~PlannedRun() override;

  struct State;

 private:
  // [async] runs up to n more steps (fewer after abort()) -> { done, total, aborted }
  Napi::Value steps(const Napi::CallbackInfo& info);
  // [sync] stop before the next step
  Napi::Value abort(const Napi::CallbackInfo& info);
  // [async] once every step ran: what the plan's finish builds
  Napi::Value result(const Napi::CallbackInfo& info);
  // [sync] frees the run's tensors once a chunk in flight finishes; idempotent
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<State> live(Napi::Env env) const;

  std::shared_ptr<State> state_;
};

}  // namespace torchscope
