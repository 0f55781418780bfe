#include "bindings/sae_handle.h"

#include <ATen/core/grad_mode.h>

#include <map>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "bindings/js_errors.h"
#include "bindings/requests.h"
#include "bindings/tensor_handle.h"
#include "core/errors.h"
#include "core/ivalues.h"

namespace torchscope {

void SaeHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "SaeHandle",
                                   {StaticMethod<&SaeHandle::create>("create"), InstanceMethod<&SaeHandle::encode>("encode"),
                                    InstanceMethod<&SaeHandle::decode>("decode"), InstanceMethod<&SaeHandle::forward>("forward"),
                                    InstanceMethod<&SaeHandle::errorTerm>("errorTerm"), InstanceMethod<&SaeHandle::weight>("weight"),
                                    InstanceMethod<&SaeHandle::dispose>("dispose")});
  addonData(env).saeClass = Napi::Persistent(cls);
  exports.Set("SaeHandle", cls);
}

std::shared_ptr<const Sae> SaeHandle::unwrap(Napi::Value value) {
  Napi::Env env = value.Env();
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(addonData(env).saeClass.Value())) {
    throwJs(env, code::kInvalidArgument, "expected a sparse autoencoder (torch.sae.load)");
  }
  return Unwrap(value.As<Napi::Object>())->live(env);
}

SaeHandle::SaeHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SaeHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throwJs(info.Env(), code::kInvalidArgument, "SAEs come from torch.sae.load(), not `new`");
  std::unique_ptr<std::shared_ptr<const Sae>> owned(info[0].As<Napi::External<std::shared_ptr<const Sae>>>().Data());
  sae_ = std::move(*owned);
  env_ = info.Env();
  reportedBytes_ = sae_->bytes();
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
}

SaeHandle::~SaeHandle() {
  if (processExiting() && sae_) keepUntilExit(std::const_pointer_cast<Sae>(sae_));
  release();
}

void SaeHandle::release() {
  if (reportedBytes_ != 0 && env_ != nullptr) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reportedBytes_);
  reportedBytes_ = 0;
  sae_.reset();
}

std::shared_ptr<const Sae> SaeHandle::live(Napi::Env env) const {
  if (!sae_) throwJs(env, code::kDisposed, "this sparse autoencoder has been disposed");
  return sae_;
}

Napi::Value SaeHandle::create(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&] {
    const RequestReader request(info[0], "SAE spec");
    SaeSpec spec;
    spec.architecture = parseName(kSaeArchitectures, request.string("architecture"), "architecture");
    spec.normalization = parseName(kSaeNormalizations, request.string("normalization"), "normalization");
    spec.applyBDecToInput = request.boolean("applyBDecToInput");
    spec.reshapeHeads = request.boolean("reshapeHeads");
    spec.k = request.integer("k", 0, kMaxIndex);
    spec.rescaleByDecoderNorm = request.boolean("rescaleByDecoderNorm");
    const RequestReader tensors = request.object("tensors");
    for (auto [tensor, key] : {std::pair{&spec.W_enc, "W_enc"},
                               {&spec.b_enc, "b_enc"},
                               {&spec.W_dec, "W_dec"},
                               {&spec.b_dec, "b_dec"},
                               {&spec.threshold, "threshold"},
                               {&spec.b_gate, "b_gate"},
                               {&spec.b_mag, "b_mag"},
                               {&spec.r_mag, "r_mag"},
                               {&spec.W_skip, "W_skip"}}) {
      if (tensors.has(key)) *tensor = tensors.tensor(key);
    }
    auto made = std::make_shared<std::shared_ptr<const Sae>>();
    return queueWork(
        env, code::kInvalidArgument, [made, spec] { *made = std::make_shared<const Sae>(spec); },
        [made](Napi::Env env) -> Napi::Value {
          return addonData(env).saeClass.New({Napi::External<std::shared_ptr<const Sae>>::New(env, new std::shared_ptr<const Sae>(*made))});
        });
  });
}

Napi::Value SaeHandle::queueOnInputs(const Napi::CallbackInfo& info, Computation compute) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto sae = live(env);
    const at::Tensor first = TensorHandle::unwrap(info[0]);
    const at::Tensor second = info.Length() > 1 && !info[1].IsUndefined() ? TensorHandle::unwrap(info[1]) : at::Tensor();
    return queueValue(env, code::kRuntime, [sae, first, second, compute] {
      // Inference: the SAE's device in, the CPU out, no autograd graph kept.
      at::NoGradGuard noGrad;
      const c10::Device device = sae->spec().W_enc.device();
      return compute(*sae, first.to(device), second.defined() ? second.to(device) : second);
    });
  });
}

Napi::Value SaeHandle::encode(const Napi::CallbackInfo& info) {
  return queueOnInputs(info, [](const Sae& sae, const at::Tensor& x, const at::Tensor&) {
    const at::Tensor pre = sae.featuresPre(x);
    return c10::IValue(Record().set("featuresPre", pre.cpu()).set("features", sae.features(pre, x).cpu()));
  });
}

Napi::Value SaeHandle::decode(const Napi::CallbackInfo& info) {
  return queueOnInputs(
      info, [](const Sae& sae, const at::Tensor& features, const at::Tensor& x) { return c10::IValue(sae.decode(features, x).cpu()); });
}

Napi::Value SaeHandle::forward(const Napi::CallbackInfo& info) {
  return queueOnInputs(info, [](const Sae& sae, const at::Tensor& x, const at::Tensor&) { return c10::IValue(sae.forward(x).cpu()); });
}

Napi::Value SaeHandle::errorTerm(const Napi::CallbackInfo& info) {
  return queueOnInputs(info, [](const Sae& sae, const at::Tensor& x, const at::Tensor&) {
    TS_CHECK(!sae.transcoder(), code::kInvalidArgument, "a transcoder's error is taken at its output point: splice it into a run");
    return c10::IValue(sae.errorTerm(x, x).cpu());
  });
}

Napi::Value SaeHandle::weight(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&] {
    auto sae = live(env);
    TS_CHECK(info[0].IsString(), code::kInvalidArgument, "weight(name): the name must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    const SaeSpec& spec = sae->spec();
    const std::map<std::string, const at::Tensor*> tensors = {
        {"W_enc", &spec.W_enc},   {"b_enc", &spec.b_enc}, {"W_dec", &spec.W_dec}, {"b_dec", &spec.b_dec},  {"threshold", &spec.threshold},
        {"b_gate", &spec.b_gate}, {"b_mag", &spec.b_mag}, {"r_mag", &spec.r_mag}, {"W_skip", &spec.W_skip}};
    auto found = tensors.find(name);
    TS_CHECK(found != tensors.end(), code::kInvalidArgument, "an SAE has no tensor '", name, "'");
    const at::Tensor* tensor = found->second;
    return queueValue(env, code::kRuntime, [sae, tensor] { return tensor->defined() ? c10::IValue(tensor->cpu()) : c10::IValue(); });
  });
}

Napi::Value SaeHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace torchscope
