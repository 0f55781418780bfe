#include "bindings/feature_stats_handle.h"

#include <ATen/core/grad_mode.h>

#include "bindings/async_work.h"
#include "bindings/js_errors.h"
#include "bindings/requests.h"
#include "bindings/tensor_handle.h"
#include "core/errors.h"

namespace torchscope {

void FeatureStatsHandle::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(
      env, "FeatureStatsHandle",
      {InstanceMethod<&FeatureStatsHandle::add>("add"), InstanceMethod<&FeatureStatsHandle::result>("result"),
       InstanceMethod<&FeatureStatsHandle::stateSizes>("stateSizes"), InstanceMethod<&FeatureStatsHandle::dispose>("dispose"),
       StaticMethod<&FeatureStatsHandle::logitEffects>("logitEffects"), StaticMethod<&FeatureStatsHandle::decoderRows>("decoderRows")});
  exports.Set("FeatureStatsHandle", cls);
}

FeatureStatsHandle::FeatureStatsHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FeatureStatsHandle>(info) {
  Napi::Env env = info.Env();
  entryPoint(env, code::kInvalidArgument, [&] {
    const RequestReader request(info[0], "dashboard spec");
    FeatureStatsSpec spec;
    if (request.has("sae")) spec.sae = request.sae("sae");
    spec.features = request.integers("features");
    spec.contextSize = request.integer("contextSize", 1, kMaxIndex);
    spec.k = request.integer("k", 1, kMaxIndex);
    spec.buffered = request.boolean("buffered");
    if (spec.buffered) {
      spec.before = request.integer("before", 0, kMaxIndex);
      spec.after = request.integer("after", 0, kMaxIndex);
    }
    spec.intervals = request.integer("intervals", 1, kMaxIndex);
    spec.intervalSize = request.integer("intervalSize", 1, kMaxIndex);
    spec.bins = request.integer("bins", 1, kMaxIndex);
    spec.seed = static_cast<uint64_t>(request.integer("seed", 0, kMaxSafeInteger));
    if (request.has("tensorOps")) spec.tensorOps = request.boolean("tensorOps");
    stats_ = std::make_shared<FeatureStats>(std::move(spec));
    return env.Undefined();
  });
}

std::shared_ptr<FeatureStats> FeatureStatsHandle::live(Napi::Env env) const {
  if (!stats_) throwJs(env, code::kDisposed, "these dashboard statistics have been disposed");
  return stats_;
}

Napi::Value FeatureStatsHandle::add(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto stats = live(env);
    TS_CHECK(info[0].IsNumber(), code::kInvalidArgument, "add(pass, activations, tokens?): pass must be 1 or 2");
    const int pass = info[0].As<Napi::Number>().Int32Value();
    const at::Tensor activations = TensorHandle::unwrap(info[1]);
    const at::Tensor tokens =
        info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull() ? TensorHandle::unwrap(info[2]) : at::Tensor();
    CancelFlag cancel = info.Length() > 3 ? CancelToken::flagOf(info[3]) : nullptr;
    return queueWork(
        env, code::kRuntime, [stats, pass, activations, tokens] { stats->add(pass, activations, tokens); },
        [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {}, cancel);
  });
}

Napi::Value FeatureStatsHandle::result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto stats = live(env);
    return queueValue(env, code::kRuntime, [stats] { return stats->result(); });
  });
}

Napi::Value FeatureStatsHandle::stateSizes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto stats = live(env);
    return queueValue(env, code::kRuntime, [stats] { return stats->stateSizes(); });
  });
}

Napi::Value FeatureStatsHandle::dispose(const Napi::CallbackInfo& info) {
  stats_.reset();
  return info.Env().Undefined();
}

Napi::Value FeatureStatsHandle::logitEffects(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&] {
    const RequestReader request(info[0], "logit effects request");
    const int64_t k = request.integer("k", 1, kMaxIndex), bins = request.integer("bins", 1, kMaxIndex);
    at::Tensor logits;
    std::shared_ptr<const Sae> sae;
    std::vector<int64_t> features;
    at::Tensor unembed;
    if (request.has("logits")) {
      logits = request.tensor("logits");
    } else {
      sae = request.sae("sae");
      features = request.integers("features");
      unembed = request.tensor("unembed");
    }
    return queueValue(env, code::kRuntime, [logits, sae, features, unembed, k, bins] {
      at::NoGradGuard noGrad;
      return torchscope::logitEffects(logits.defined() ? logits : decoderLogits(*sae, features, unembed), k, bins);
    });
  });
}

Napi::Value FeatureStatsHandle::decoderRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&] {
    const RequestReader request(info[0], "decoder rows request");
    std::shared_ptr<const Sae> sae = request.sae("sae");
    std::vector<int64_t> features = request.integers("features");
    return queueValue(env, code::kRuntime, [sae, features] { return c10::IValue(torchscope::decoderRows(*sae, features)); });
  });
}

}  // namespace torchscope
