#include "model/model.h"

#include <ATen/core/grad_mode.h>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "core/device.h"
#include "core/errors.h"
#include "methods/maximize.h"
#include "model/model_file.h"
#include "bindings/requests.h"
#include "core/resources.h"
#include "bindings/tensor.h"
#include "bindings/values.h"

namespace torchscope {

void ModelHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "ModelHandle",
                                   {StaticMethod<&ModelHandle::load>("load"),
                                    InstanceMethod<&ModelHandle::modules>("modules"),
                                    InstanceMethod<&ModelHandle::device>("device"),
                                    InstanceMethod<&ModelHandle::forwardArguments>("forwardArguments"),
                                    InstanceMethod<&ModelHandle::run>("run"),
                                    InstanceMethod<&ModelHandle::call>("call"),
                                    InstanceMethod<&ModelHandle::inspect>("inspect"),
                                    InstanceMethod<&ModelHandle::gradients>("gradients"),
                                    InstanceMethod<&ModelHandle::attribute>("attribute"),
                                    InstanceMethod<&ModelHandle::patchingSweep>("patchingSweep"),
                                    InstanceMethod<&ModelHandle::logitLens>("logitLens"),
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
  env_ = info.Env();
  reportedBytes_ = state_->bytes;
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
}

ModelHandle::~ModelHandle() {
  if (processExiting()) keepUntilExit(std::move(state_));
  release();
}

void ModelHandle::release() {
  if (reportedBytes_ != 0 && env_ != nullptr) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reportedBytes_);
  reportedBytes_ = 0;
  state_.reset();
}

std::shared_ptr<ModelState> ModelHandle::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this model has been disposed");
  return state_;
}

c10::IValue ModelState::returned(const c10::IValue& value, const NumericsOverride& call) const {
  return toDevice(call.upcast.value_or(upcast) ? upcastReduced(value) : value, c10::kCPU);
}

at::Tensor ModelState::returned(const at::Tensor& tensor, const NumericsOverride& call) const {
  return (call.upcast.value_or(upcast) ? upcastReduced(tensor) : tensor).cpu();
}

Napi::Value ModelHandle::load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kModelLoad, [&] {
    if (!info[0].IsString()) throw Error(code::kInvalidArgument, "load: the path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const RequestReader options(info[1], "load options");
    const std::string deviceName = options.string("device");
    LoadPolicy policy;
    policy.trusted = options.boolean("trusted");
    if (options.has("maxInflatedBytes")) policy.maxInflatedBytes = static_cast<uint64_t>(options.integer("maxInflatedBytes", 1, 1LL << 53));
    auto state = std::make_shared<ModelState>();
    state->optimize = options.boolean("optimize");
    state->precision = parsePrecision(options.string("precision"));
    state->upcast = options.boolean("upcast");
    return queueWork(
        env, code::kModelLoad,
        [state, path, deviceName, policy] {
          state->device = resolveDevice(deviceName);
          state->module = loadModelFile(path, state->device, policy);
          // Inference semantics (dropout off, BatchNorm running stats), as Python's model.eval();
          // parameters never need gradients: only inputs do (activation maximization).
          state->module.eval();
          for (const auto& parameter : state->module.parameters()) parameter.requires_grad_(false);
          for (const auto& child : state->module.named_modules()) {
            state->submodules.emplace_back(child.name, child.value.type()->name()->name());
            state->modulesByPath.emplace(child.name, child.value);
          }
          try {
            for (auto& [name, hookability] : surveyModules(state->module)) state->survey[name] = std::move(hookability);
            state->forwardSchema = state->module.get_method("forward").function().getSchema();
          } catch (const std::exception& e) {
            throw Error(code::kModelLoad, "'" + path + "' has no usable forward: " + e.what());
          }
          state->bytes = moduleBytes(state->module);
        },
        [state](Napi::Env env) -> Napi::Value {
          auto* holder = new std::shared_ptr<ModelState>(state);
          return addonData(env).modelClass.New({Napi::External<std::shared_ptr<ModelState>>::New(env, holder)});
        },
        {}, CancelToken::flagOf(info[2]));
  });
}

Napi::Value ModelHandle::modules(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInternal, [&]() -> Napi::Value {
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
  });
}

Napi::Value ModelHandle::device(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal, [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), deviceName(live(info.Env())->device));
  });
}

Napi::Value ModelHandle::forwardArguments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInternal, [&]() -> Napi::Value {
    const auto& arguments = live(env)->forwardSchema.arguments();
    Napi::Array out = Napi::Array::New(env);
    for (size_t i = 1; i < arguments.size(); ++i) {  // 0 is self
      Napi::Array entry = Napi::Array::New(env, 2);
      entry.Set(0u, arguments[i].name());
      entry.Set(1u, arguments[i].type()->str());
      out.Set(out.Length(), entry);
    }
    return out;
  });
}

Napi::Value ModelHandle::run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    auto inputs = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[0], state->forwardSchema));
    auto request = std::make_shared<RunRequest>(parseRunRequest(info[1]));
    auto result = std::make_shared<RunResult>();
    return queueWork(
        env, code::kRuntime,
        [state, inputs, request, result] {
          at::NoGradGuard noGrad;
          for (auto& input : *inputs) input = toDevice(input, state->device);
          request->spec.optimize = state->optimize;
          *result = runProgram(*state->program(request->spec, request->numerics), std::move(*inputs), request->patches);
          result->output = state->returned(result->output, request->numerics);
          for (auto& [layer, calls] : result->captures) {
            for (auto& call : calls) call = state->returned(call, request->numerics);
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
        {info.This().As<Napi::Object>()}, CancelToken::flagOf(info[2]));
  });
}

Napi::Value ModelHandle::call(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    if (!info[0].IsString()) throw Error(code::kInvalidArgument, "call(path, inputs): the path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    auto found = state->modulesByPath.find(path);
    if (found == state->modulesByPath.end()) throw Error(code::kUnknownLayer, "no submodule named '" + path + "'");
    auto method = found->second.find_method("forward");
    if (!method) {
      throw Error(code::kInvalidArgument, "submodule '" + path + "' has no method 'forward' (an overloaded forward has forward__0, forward__1...; " +
                                              "call the module that calls it)");
    }
    auto inputs = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[1], method->function().getSchema()));
    auto output = std::make_shared<c10::IValue>();
    auto module = std::make_shared<torch::jit::Method>(std::move(*method));
    return queueWork(
        env, code::kRuntime,
        [state, module, inputs, output] {
          at::NoGradGuard noGrad;
          torch::jit::Stack stack{module->owner()._ivalue()};
          for (auto& input : *inputs) stack.push_back(toDevice(input, state->device));
          try {
            module->function().getSchema().checkAndNormalizeInputs(stack);
          } catch (const c10::Error& e) {
            throw Error(code::kInvalidArgument, e.what_without_backtrace());
          }
          {
            PrecisionScope precision(state->precision, state->device.type());
            module->function().run(stack);
          }
          *output = state->returned(stack.back(), {});
        },
        [output](Napi::Env env) -> Napi::Value { return toJs(env, *output); },
        {info.This().As<Napi::Object>()}, CancelToken::flagOf(info[2]));
  });
}

Napi::Value ModelHandle::inspect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInternal, [&] {
    auto state = live(env);
    auto request = std::make_shared<RunRequest>(parseRunRequest(info[0]));
    auto summary = std::make_shared<ProgramSummary>();
    return queueWork(
        env, code::kInternal,
        [state, request, summary] {
          request->spec.optimize = state->optimize;
          *summary = summarize(*state->program(request->spec, request->numerics));
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
          out.Set("precision", summary->precision);
          out.Set("memoryFormat", summary->memoryFormat);
          out.Set("buildMs", summary->buildMs);
          out.Set("programsCached", static_cast<double>(summary->programsCached));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value ModelHandle::gradients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    auto inputs = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[0], state->forwardSchema));
    auto spec = std::make_shared<GradientSpec>(parseGradientSpec(info[1]));
    auto result = std::make_shared<GradientResult>();
    return queueWork(
        env, code::kRuntime,
        [state, inputs, spec, result] {
          for (auto& input : *inputs) input = toDevice(input, state->device);
          *result = computeGradients(*state, std::move(*inputs), *spec);
          auto toCpu = [&state, &spec](at::Tensor& t) { t = state->returned(t, spec->numerics); };
          toCpu(result->objective);
          for (auto& grad : result->inputs) toCpu(grad);
          for (auto& [layer, calls] : result->layers) {
            for (auto& grad : calls) toCpu(grad);
          }
          result->values.clear();
        },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          const at::Tensor objective = result->objective.to(at::kDouble).contiguous();
          Napi::Array values = Napi::Array::New(env, static_cast<size_t>(objective.numel()));
          for (int64_t i = 0; i < objective.numel(); ++i) values.Set(static_cast<uint32_t>(i), objective.data_ptr<double>()[i]);
          out.Set("objective", values);
          Napi::Array inputs = Napi::Array::New(env, result->inputs.size());
          for (size_t i = 0; i < result->inputs.size(); ++i) inputs.Set(static_cast<uint32_t>(i), TensorHandle::wrap(env, result->inputs[i]));
          out.Set("inputs", inputs);
          Napi::Object layers = Napi::Object::New(env);
          for (const auto& [layer, calls] : result->layers) {
            Napi::Array array = Napi::Array::New(env, calls.size());
            for (size_t i = 0; i < calls.size(); ++i) array.Set(static_cast<uint32_t>(i), TensorHandle::wrap(env, calls[i]));
            layers.Set(layer, array);
          }
          out.Set("layers", layers);
          return out;
        },
        {info.This().As<Napi::Object>()}, CancelToken::flagOf(info[2]));
  });
}

Napi::Value ModelHandle::attribute(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    auto inputs = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[0], state->forwardSchema));
    auto spec = std::make_shared<AttributionSpec>(parseAttributionSpec(info[1]));
    return PlannedRun::start(env, state, [state, inputs, spec] { return planAttribution(state, std::move(*inputs), *spec); },
                             info.This().As<Napi::Object>());
  });
}

Napi::Value ModelHandle::logitLens(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    auto inputs = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[0], state->forwardSchema));
    auto spec = std::make_shared<LensSpec>(parseLensSpec(info[1]));
    auto result = std::make_shared<LensResult>();
    return queueWork(
        env, code::kRuntime, [state, inputs, spec, result] { *result = torchscope::logitLens(*state, std::move(*inputs), *spec); },
        [result](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("logits", TensorHandle::wrap(env, result->logits));
          if (result->indices.defined()) out.Set("indices", TensorHandle::wrap(env, result->indices));
          return out;
        },
        {info.This().As<Napi::Object>()}, CancelToken::flagOf(info[2]));
  });
}

Napi::Value ModelHandle::patchingSweep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    auto clean = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[0], state->forwardSchema));
    auto corrupted = std::make_shared<std::vector<c10::IValue>>(toForwardInputs(info[1], state->forwardSchema));
    auto spec = std::make_shared<SweepSpec>(parseSweepSpec(info[2]));
    return PlannedRun::start(
        env, state, [state, clean, corrupted, spec] { return planSweep(state, std::move(*clean), std::move(*corrupted), *spec); },
        info.This().As<Napi::Object>());
  });
}

Napi::Value ModelHandle::maximize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    return MaximizeSession::start(env, live(env), parseMaximizeSpec(info[0]), info.This().As<Napi::Object>());
  });
}

Napi::Value ModelHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace torchscope
