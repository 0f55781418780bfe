#include "bindings/probe_handle.h"

#include <ATen/core/grad_mode.h>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "bindings/js_errors.h"
#include "bindings/requests.h"
#include "bindings/tensor_handle.h"
#include "bindings/values.h"
#include "core/errors.h"
#include "core/ivalues.h"

namespace torchscope {

void ProbeHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "ProbeHandle",
                                   {StaticMethod<&ProbeHandle::fit>("fit"), InstanceMethod<&ProbeHandle::predict>("predict"),
                                    InstanceMethod<&ProbeHandle::probabilities>("probabilities"),
                                    InstanceMethod<&ProbeHandle::score>("score"), InstanceMethod<&ProbeHandle::dispose>("dispose")});
  addonData(env).probeClass = Napi::Persistent(cls);
  exports.Set("ProbeHandle", cls);
}

ProbeHandle::ProbeHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProbeHandle>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throwJs(info.Env(), code::kInvalidArgument, "probes come from torch.probe.fit(), not `new`");
  std::unique_ptr<std::shared_ptr<const LinearProbe>> owned(info[0].As<Napi::External<std::shared_ptr<const LinearProbe>>>().Data());
  probe_ = std::move(*owned);
  env_ = info.Env();
  reportedBytes_ = probe_->bytes();
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
}

ProbeHandle::~ProbeHandle() {
  if (processExiting() && probe_) keepUntilExit(std::const_pointer_cast<LinearProbe>(probe_));
  release();
}

void ProbeHandle::release() {
  if (reportedBytes_ != 0 && env_ != nullptr) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reportedBytes_);
  reportedBytes_ = 0;
  probe_.reset();
}

std::shared_ptr<const LinearProbe> ProbeHandle::live(Napi::Env env) const {
  if (!probe_) throwJs(env, code::kDisposed, "this probe has been disposed");
  return probe_;
}

Napi::Value ProbeHandle::fit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&] {
    const RequestReader request(info[0], "probe request");
    ProbeSpec spec;
    spec.kind = parseName(kProbeKinds, request.string("kind"), "kind");
    spec.multiclass = parseName(kProbeMulticlass, request.string("multiclass"), "multiclass");
    spec.l2 = request.number("l2");
    spec.fitIntercept = request.boolean("fitIntercept");
    spec.maxIterations = request.integer("maxIterations", 0, kMaxIndex);
    spec.tolerance = request.number("tolerance");
    spec.iid = request.boolean("iid");
    const int64_t classes = request.integer("classes", 0, kMaxIndex);
    const at::Tensor x = request.tensor("x");
    const at::Tensor labels = request.tensor("labels");
    const at::Tensor rows = request.has("rows") ? request.tensor("rows") : at::Tensor();
    auto made = std::make_shared<std::shared_ptr<const LinearProbe>>();
    return queueWork(
        env, code::kInvalidArgument,
        [made, spec, classes, x, labels, rows] {
          at::NoGradGuard noGrad;
          *made = std::make_shared<const LinearProbe>(
              LinearProbe::fit(spec, probeRows(x, rows), probeRows(labels, rows), classes, [] { return workCancelled(); }));
        },
        [made](Napi::Env env) -> Napi::Value {
          const LinearProbe& probe = **made;
          Record record;
          record.set("weight", probe.weight().cpu()).set("bias", probe.bias().cpu());
          record.set("direction", probe.direction().defined() ? c10::IValue(probe.direction().cpu()) : c10::IValue());
          record.set("iterations", probe.iterations()).set("converged", probe.converged());
          Napi::Object out = toJs(env, record).As<Napi::Object>();
          out.Set("probe", addonData(env).probeClass.New({Napi::External<std::shared_ptr<const LinearProbe>>::New(
                               env, new std::shared_ptr<const LinearProbe>(*made))}));
          return out;
        },
        {}, CancelToken::flagOf(info[1]));
  });
}

// predict and probabilities: the probe's `method` on x, queued, the result on the CPU.
Napi::Value ProbeHandle::onRows(const Napi::CallbackInfo& info, at::Tensor (LinearProbe::*method)(const at::Tensor&) const) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto probe = live(env);
    const at::Tensor x = TensorHandle::unwrap(info[0]);
    return queueValue(env, code::kRuntime, [probe, x, method] {
      at::NoGradGuard noGrad;
      return c10::IValue(((*probe).*method)(x).cpu());
    });
  });
}

Napi::Value ProbeHandle::predict(const Napi::CallbackInfo& info) { return onRows(info, &LinearProbe::predict); }

Napi::Value ProbeHandle::probabilities(const Napi::CallbackInfo& info) { return onRows(info, &LinearProbe::probabilities); }

Napi::Value ProbeHandle::score(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto probe = live(env);
    const at::Tensor x = TensorHandle::unwrap(info[0]);
    const at::Tensor labels = TensorHandle::unwrap(info[1]);
    const at::Tensor rows = info.Length() > 2 && !info[2].IsUndefined() ? TensorHandle::unwrap(info[2]) : at::Tensor();
    return queueValue(
        env, code::kRuntime,
        [probe, x, labels, rows] {
          at::NoGradGuard noGrad;
          return c10::IValue(probe->score(probeRows(x, rows), probeRows(labels, rows)));
        },
        {}, CancelToken::flagOf(info[3]));
  });
}

Napi::Value ProbeHandle::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace torchscope
