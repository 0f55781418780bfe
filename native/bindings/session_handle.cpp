#include "bindings/session_handle.h"

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "bindings/js_errors.h"
#include "bindings/tensor_handle.h"
#include "bindings/values.h"
#include "core/ivalues.h"

namespace torchscope {

struct SessionHandle::State {
  std::string what;
  std::shared_ptr<ModelState> model;  // alive while the job's steps may use it
  std::shared_ptr<SteppedJob> job;
  std::atomic<bool> aborted{false};
};

void SessionHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "SessionHandle",
                                   {InstanceMethod<&SessionHandle::steps>("steps"), InstanceMethod<&SessionHandle::abort>("abort"),
                                    InstanceMethod<&SessionHandle::result>("result"), InstanceMethod<&SessionHandle::dispose>("dispose")});
  addonData(env).sessionClass = Napi::Persistent(cls);
  exports.Set("SessionHandle", cls);
}

SessionHandle::SessionHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SessionHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument,
            "sessions are created by torch.attribute(), torch.patchingSweep() and torch.maximize(), not by `new`");
  }
  std::unique_ptr<std::shared_ptr<State>> state(info[0].As<Napi::External<std::shared_ptr<State>>>().Data());
  state_ = std::move(*state);
  what_ = state_->what;
  env_ = info.Env();
  reportedBytes_ = state_->job->bytes();
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
}

SessionHandle::~SessionHandle() {
  if (processExiting()) keepUntilExit(std::move(state_));
  release();
}

void SessionHandle::release() {
  if (reportedBytes_ != 0 && env_ != nullptr) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reportedBytes_);
  reportedBytes_ = 0;
  if (state_) state_->aborted.store(true);  // a chunk in flight stops at its next step
  state_.reset();
}

std::shared_ptr<SessionHandle::State> SessionHandle::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this " + what_ + " has been disposed");
  return state_;
}

Napi::Value SessionHandle::start(Napi::Env env, const char* what, std::shared_ptr<ModelState> model,
                                 std::function<std::shared_ptr<SteppedJob>()> start, Napi::Object keepAlive) {
  auto state = std::make_shared<State>();
  state->what = what;
  state->model = std::move(model);
  return queueWork(
      env, code::kRuntime, [state, start = std::move(start)] { state->job = start(); },
      [state](Napi::Env env) -> Napi::Value {
        auto* holder = new std::shared_ptr<State>(state);
        return addonData(env).sessionClass.New({Napi::External<std::shared_ptr<State>>::New(env, holder)});
      },
      {keepAlive});
}

Napi::Value SessionHandle::steps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    TS_CHECK(info[0].IsNumber(), code::kInvalidArgument, "steps(n): n must be a number");
    const int64_t count = info[0].As<Napi::Number>().Int64Value();
    // Inputs for these steps (SAE training's batches): an array of tensors, or nothing.
    std::vector<at::Tensor> inputs;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      TS_CHECK(info[1].IsArray(), code::kInvalidArgument, "steps(n, inputs): inputs must be an array of tensors");
      const Napi::Array array = info[1].As<Napi::Array>();
      for (uint32_t i = 0; i < array.Length(); ++i) inputs.push_back(TensorHandle::unwrap(array.Get(i)));
    }
    auto progress = std::make_shared<c10::IValue>();
    return queueWork(
        env, code::kRuntime,
        [state, count, inputs = std::move(inputs), progress]() mutable {
          state->job->supply(std::move(inputs));
          *progress = state->job->steps(count, [&state] { return state->aborted.load() || workCancelled(); });
        },
        [state, progress](Napi::Env env) -> Napi::Value {
          Napi::Object out = toJs(env, *progress).As<Napi::Object>();
          out.Set("aborted", Napi::Boolean::New(env, state->aborted.load()));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value SessionHandle::abort(const Napi::CallbackInfo& info) {
  if (state_) state_->aborted.store(true);
  return info.Env().Undefined();
}

Napi::Value SessionHandle::result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    const c10::IValue argument = info[0].IsBoolean() ? c10::IValue(info[0].As<Napi::Boolean>().Value()) : c10::IValue();
    return queueValue(env, code::kRuntime, [state, argument] { return state->job->result(argument); }, {info.This().As<Napi::Object>()});
  });
}

Napi::Value SessionHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace torchscope
