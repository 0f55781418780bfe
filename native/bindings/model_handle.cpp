#include "bindings/model_handle.h"

#include <vector>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "bindings/js_errors.h"
#include "bindings/requests.h"

namespace torchscope {

namespace {

struct RegisteredMethod {
  const char* name;
  ModelMethod method;
};

std::vector<RegisteredMethod>& registeredMethods() {
  static std::vector<RegisteredMethod> methods;
  return methods;
}

}  // namespace

ModelMethodRegistration::ModelMethodRegistration(const char* name, ModelMethod method) { registeredMethods().push_back({name, method}); }

void ModelHandle::define(Napi::Env env, Napi::Object exports) {
  std::vector<PropertyDescriptor> properties = {StaticMethod<&ModelHandle::load>("load"), InstanceMethod<&ModelHandle::modules>("modules"),
                                                InstanceMethod<&ModelHandle::device>("device"),
                                                InstanceMethod<&ModelHandle::forwardArguments>("forwardArguments"),
                                                InstanceMethod<&ModelHandle::dispose>("dispose")};
  for (const RegisteredMethod& registered : registeredMethods()) {
    properties.push_back(InstanceMethod(registered.name, &ModelHandle::invoke, napi_default, reinterpret_cast<void*>(registered.method)));
  }
  Napi::Function cls = DefineClass(env, "ModelHandle", properties);
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
  reportedBytes_ = state_->format->bytes();
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

std::shared_ptr<ModelState> ModelHandle::unwrap(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addonData(env).modelClass.Value())) {
    throwJs(env, code::kInvalidArgument, "expected a model (torch.load)");
  }
  return Unwrap(value.As<Napi::Object>())->live(env);
}

std::shared_ptr<ModelState> ModelHandle::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this model has been disposed");
  return state_;
}

Napi::Value ModelHandle::load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kModelLoad, [&] {
    TS_CHECK(info[0].IsString(), code::kInvalidArgument, "load: the path must be a string");
    const std::string path = info[0].As<Napi::String>().Utf8Value();
    const RequestReader request(info[1], "load options");
    LoadOptions options;
    options.device = request.string("device");
    options.optimize = request.boolean("optimize");
    options.precision = parseName(kPrecisions, request.string("precision"), "precision");
    options.upcast = request.boolean("upcast");
    options.policy.trusted = request.boolean("trusted");
    if (request.has("sharesTensorsOf")) options.sharesTensorsOf = request.model("sharesTensorsOf");
    if (request.has("maxInflatedBytes"))
      options.policy.maxInflatedBytes = static_cast<uint64_t>(request.integer("maxInflatedBytes", 1, kMaxSafeInteger));
    auto state = std::make_shared<std::shared_ptr<ModelState>>();
    return queueWork(
        env, code::kModelLoad, [state, path, options] { *state = loadModel(path, options); },
        [state](Napi::Env env) -> Napi::Value {
          auto* holder = new std::shared_ptr<ModelState>(*state);
          return addonData(env).modelClass.New({Napi::External<std::shared_ptr<ModelState>>::New(env, holder)});
        },
        {}, CancelToken::flagOf(info[2]));
  });
}

Napi::Value ModelHandle::modules(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInternal, [&]() -> Napi::Value {
    auto state = live(env);
    const auto& submodules = state->format->submodules();
    Napi::Array out = Napi::Array::New(env, submodules.size());
    for (size_t i = 0; i < submodules.size(); ++i) {
      const auto& [path, type] = submodules[i];
      const Hookability& hookability = state->format->survey().at(path);
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("path", path);
      entry.Set("type", type);
      entry.Set("callSites", hookability.callSites);
      entry.Set("unhookable", hookability.reason);
      out.Set(static_cast<uint32_t>(i), entry);
    }
    return out;
  });
}

Napi::Value ModelHandle::device(const Napi::CallbackInfo& info) {
  return entryPoint(info.Env(), code::kInternal,
                    [&]() -> Napi::Value { return Napi::String::New(info.Env(), live(info.Env())->device.str()); });
}

Napi::Value ModelHandle::forwardArguments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInternal, [&]() -> Napi::Value {
    const auto& arguments = live(env)->format->forwardSchema().arguments();
    Napi::Array out = Napi::Array::New(env);
    for (size_t i = 1; i < arguments.size(); ++i) {  // 0 is self
      Napi::Object entry = Napi::Object::New(env);
      entry.Set("name", arguments[i].name());
      entry.Set("type", arguments[i].type()->str());
      out.Set(out.Length(), entry);
    }
    return out;
  });
}

Napi::Value ModelHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

Napi::Value ModelHandle::invoke(const Napi::CallbackInfo& info) {
  const auto method = reinterpret_cast<ModelMethod>(info.Data());
  return entryPoint(info.Env(), code::kRuntime, [&] { return method(info, live(info.Env())); });
}

}  // namespace torchscope
