#include "methods/planned_run.h"

#include "bindings/addon.h"
#include "core/errors.h"

namespace torchscope {

struct PlannedRun::State {
  std::shared_ptr<ModelState> model;  // alive while the run's steps may use it
  RunPlan plan;
  size_t next = 0;
  std::atomic<bool> aborted{false};
};

void PlannedRun::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "PlannedRun",
                                   {InstanceMethod<&PlannedRun::steps>("steps"),
                                    InstanceMethod<&PlannedRun::abort>("abort"),
                                    InstanceMethod<&PlannedRun::result>("result"),
                                    InstanceMethod<&PlannedRun::dispose>("dispose")});
  addonData(env).plannedRunClass = Napi::Persistent(cls);
  exports.Set("PlannedRun", cls);
}

PlannedRun::PlannedRun(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PlannedRun>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument, "planned runs are created by torch.attribute() and torch.patchingSweep(), not by `new`");
  }
  std::unique_ptr<std::shared_ptr<State>> state(info[0].As<Napi::External<std::shared_ptr<State>>>().Data());
  state_ = std::move(*state);
}

PlannedRun::~PlannedRun() {
  if (state_) state_->aborted.store(true);  // a chunk in flight stops at its next step
}

std::shared_ptr<PlannedRun::State> PlannedRun::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this attribution run has been disposed");
  return state_;
}

Napi::Value PlannedRun::start(Napi::Env env, std::shared_ptr<ModelState> model, std::function<RunPlan()> plan,
                              Napi::Object keepAlive) {
  auto state = std::make_shared<State>();
  state->model = std::move(model);
  return queueWork(
      env, code::kRuntime, [state, plan] { state->plan = plan(); },
      [state](Napi::Env env) -> Napi::Value {
        auto* holder = new std::shared_ptr<State>(state);
        return addonData(env).plannedRunClass.New({Napi::External<std::shared_ptr<State>>::New(env, holder)});
      },
      {keepAlive});
}

Napi::Value PlannedRun::steps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    if (!info[0].IsNumber()) throw Error(code::kInvalidArgument, "steps(n): n must be a number");
    const int64_t count = info[0].As<Napi::Number>().Int64Value();
    return queueWork(
        env, code::kRuntime,
        [state, count] {
          for (int64_t i = 0; i < count && state->next < state->plan.steps.size() && !state->aborted.load() && !workCancelled(); ++i) {
            state->plan.steps[state->next]();
            state->plan.steps[state->next] = nullptr;  // what the step held goes now
            state->next += 1;
          }
        },
        [state](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("done", static_cast<double>(state->next));
          out.Set("total", static_cast<double>(state->plan.steps.size()));
          out.Set("aborted", Napi::Boolean::New(env, state->aborted.load()));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value PlannedRun::abort(const Napi::CallbackInfo& info) {
  if (state_) state_->aborted.store(true);
  return info.Env().Undefined();
}

Napi::Value PlannedRun::result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    if (state->next < state->plan.steps.size()) {
      throw Error(code::kInvalidArgument, "the run has " + std::to_string(state->plan.steps.size() - state->next) + " step(s) left");
    }
    auto build = std::make_shared<ResolveFn>();
    return queueWork(
        env, code::kRuntime, [state, build] { *build = state->plan.finish(); },
        [build](Napi::Env env) -> Napi::Value { return (*build)(env); }, {info.This().As<Napi::Object>()});
  });
}

Napi::Value PlannedRun::dispose(const Napi::CallbackInfo& info) {
  if (state_) state_->aborted.store(true);
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace torchscope
