#include "model.h"

#include <torch/csrc/jit/serialization/import.h>
#include <ATen/core/grad_mode.h>

#include "addon.h"
#include "async_work.h"
#include "device.h"
#include "errors.h"
#include "maximize.h"
#include "tensor.h"
#include "values.h"

namespace torchscope {

namespace {

std::vector<std::string> stringList(Napi::Value value) {
  std::vector<std::string> out;
  if (!value.IsArray()) return out;
  auto array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(array.Get(i).As<Napi::String>().Utf8Value());
  return out;
}

std::vector<int64_t> intList(Napi::Value value) {
  std::vector<int64_t> out;
  if (!value.IsArray()) return out;
  auto array = value.As<Napi::Array>();
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(array.Get(i).As<Napi::Number>().Int64Value());
  return out;
}

// A run request copied out of JS on the main thread (the worker never touches JS values).
struct RunRequest {
  ProgramSpec spec;
  std::vector<PatchArgs> patches;  // in spec.patch order
};

RunRequest parseRunRequest(Napi::Object options) {
  RunRequest request;
  request.spec.capture = stringList(options.Get("capture"));
  std::sort(request.spec.capture.begin(), request.spec.capture.end());
  request.spec.capture.erase(std::unique(request.spec.capture.begin(), request.spec.capture.end()),
                             request.spec.capture.end());
  request.spec.returnOutput = options.Get("output").ToBoolean();
  std::map<std::string, PatchArgs> byLayer;
  if (options.Get("patch").IsArray()) {
    auto patches = options.Get("patch").As<Napi::Array>();
    for (uint32_t i = 0; i < patches.Length(); ++i) {
      auto entry = patches.Get(i).As<Napi::Object>();
      PatchArgs args;
      args.mode = entry.Get("mode").As<Napi::Number>().Int64Value();
      if (!entry.Get("value").IsUndefined() && !entry.Get("value").IsNull()) {
        args.value = TensorHandle::unwrap(entry.Get("value"));
      }
      if (entry.Get("scale").IsNumber()) args.scale = entry.Get("scale").As<Napi::Number>().DoubleValue();
      args.channels = intList(entry.Get("channels"));
      args.positions = intList(entry.Get("positions"));
      byLayer[entry.Get("layer").As<Napi::String>().Utf8Value()] = std::move(args);
    }
  }
  for (auto& [layer, args] : byLayer) {
    request.spec.patch.push_back(layer);
    request.patches.push_back(std::move(args));
  }
  return request;
}

}  // namespace

void ModelHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "ModelHandle",
                                   {StaticMethod<&ModelHandle::load>("load"),
                                    InstanceMethod<&ModelHandle::modules>("modules"),
                                    InstanceMethod<&ModelHandle::device>("device"),
                                    InstanceMethod<&ModelHandle::run>("run"),
                                    InstanceMethod<&ModelHandle::inspect>("inspect"),
                                    InstanceMethod<&ModelHandle::maximize>("maximize"),
                                    InstanceMethod<&ModelHandle::dispose>("dispose")});
  addonData(env).modelClass = Napi::Persistent(cls);
  exports.Set("ModelHandle", cls);
}

ModelHandle::ModelHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument, "models are created by torch.load(), not by `new`");
  }
  std::unique_ptr<std::shared_ptr<ModelState>> state(info[0].As<Napi::External<std::shared_ptr<ModelState>>>().Data());
  state_ = std::move(*state);
}

std::shared_ptr<ModelState> ModelHandle::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this model has been disposed");
  return state_;
}

Napi::Value ModelHandle::load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = info[0].As<Napi::String>().Utf8Value();
  const std::string deviceName = info[1].As<Napi::String>().Utf8Value();
  auto state = std::make_shared<ModelState>();
  state->optimize = info[2].ToBoolean();
  return queueWork(
      env, code::kModelLoad,
      [state, path, deviceName] {
        state->device = resolveDevice(deviceName);
        try {
          state->module = torch::jit::load(path, state->device);
        } catch (const c10::Error& e) {
          std::string message = e.what_without_backtrace();
          // torch.save'd state_dicts and eager pickles are zip files too, without TorchScript code.
          if (message.find("constants.pkl") != std::string::npos || message.find("code/") != std::string::npos) {
            message = "'" + path + "' is not a TorchScript file (a state_dict or pickled module saved with "
                      "torch.save?). Export with torch.jit.trace or torch.jit.script, then torch.jit.save. (" +
                      message + ")";
          }
          throw Error(code::kModelLoad, message);
        }
        // Inference semantics (dropout off, BatchNorm running stats), as Python's model.eval();
        // parameters never need gradients: only inputs do (activation maximization).
        state->module.eval();
        for (const auto& parameter : state->module.parameters()) parameter.requires_grad_(false);
        for (const auto& child : state->module.named_modules()) {
          state->submodules.emplace_back(child.name, child.value.type()->name()->name());
        }
        for (auto& [path, hookability] : surveyModules(state->module)) state->survey[path] = std::move(hookability);
        state->forwardSchema = state->module.get_method("forward").function().getSchema();
      },
      [state](Napi::Env env) -> Napi::Value {
        auto* holder = new std::shared_ptr<ModelState>(state);
        return addonData(env).modelClass.New({Napi::External<std::shared_ptr<ModelState>>::New(env, holder)});
      });
}

Napi::Value ModelHandle::modules(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  Napi::Array out = Napi::Array::New(env, state->submodules.size());
  for (size_t i = 0; i < state->submodules.size(); ++i) {
    const auto& [path, type] = state->submodules[i];
    const Hookability& hookability = state->survey.at(path);
    Napi::Array entry = Napi::Array::New(env, 4);
    entry.Set(0u, path);
    entry.Set(1u, type);
    entry.Set(2u, hookability.callSites);
    entry.Set(3u, hookability.reason);
    out.Set(static_cast<uint32_t>(i), entry);
  }
  return out;
}

Napi::Value ModelHandle::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), deviceName(live(info.Env())->device));
}

Napi::Value ModelHandle::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  auto inputs = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[0], state->forwardSchema));
  auto request = std::make_shared<RunRequest>(parseRunRequest(info[1].As<Napi::Object>()));
  auto result = std::make_shared<RunResult>();
  return queueWork(
      env, code::kRuntime,
      [state, inputs, request, result] {
        at::NoGradGuard noGrad;
        for (auto& input : *inputs) input = toDevice(input, state->device);
        request->spec.optimize = state->optimize;
        *result = runProgram(*state->program(request->spec), std::move(*inputs), request->patches);
        result->output = toDevice(result->output, c10::kCPU);
        for (auto& [layer, calls] : result->captures) {
          for (auto& call : calls) call = toDevice(call, c10::kCPU);
        }
      },
      [result](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        out.Set("output", toJs(env, result->output));
        Napi::Object captures = Napi::Object::New(env);
        for (const auto& [layer, calls] : result->captures) {
          Napi::Array array = Napi::Array::New(env, calls.size());
          for (size_t i = 0; i < calls.size(); ++i) array.Set(static_cast<uint32_t>(i), toJs(env, calls[i]));
          captures.Set(layer, array);
        }
        out.Set("captures", captures);
        Napi::Object calls = Napi::Object::New(env);
        for (const auto& [layer, count] : result->calls) calls.Set(layer, static_cast<double>(count));
        out.Set("calls", calls);
        return out;
      },
      {info.This().As<Napi::Object>()});
}

Napi::Value ModelHandle::inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = live(env);
  auto request = std::make_shared<RunRequest>(parseRunRequest(info[0].As<Napi::Object>()));
  auto summary = std::make_shared<ProgramSummary>();
  return queueWork(
      env, code::kInternal,
      [state, request, summary] {
        request->spec.optimize = state->optimize;
        *summary = summarize(*state->program(request->spec));
        summary->programsCached = state->programs.size();
      },
      [summary](Napi::Env env) -> Napi::Value {
        Napi::Object out = Napi::Object::New(env);
        Napi::Array calls = Napi::Array::New(env, summary->calledModules.size());
        for (size_t i = 0; i < summary->calledModules.size(); ++i) calls.Set(static_cast<uint32_t>(i), summary->calledModules[i]);
        out.Set("calledModules", calls);
        Napi::Object ops = Napi::Object::New(env);
        for (const auto& [kind, count] : summary->opCounts) ops.Set(kind, count);
        out.Set("opCounts", ops);
        out.Set("graph", summary->graph);
        out.Set("numerics", summary->numerics);
        out.Set("buildMs", summary->buildMs);
        out.Set("programsCached", static_cast<double>(summary->programsCached));
        return out;
      },
      {info.This().As<Napi::Object>()});
}

Napi::Value ModelHandle::maximize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return MaximizeSession::start(env, live(env), parseMaximizeSpec(info[0].As<Napi::Object>()), info.This().As<Napi::Object>());
}

Napi::Value ModelHandle::dispose(const Napi::CallbackInfo& info) {
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace torchscope
