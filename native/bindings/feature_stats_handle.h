// The JS face of a dashboard's streaming statistics (methods/feature_stats.h): made from a spec
// on the JS thread, fed batches of pass 1 then pass 2, each on the compute thread, and read once.
// lib/dashboard/ drives it; the state it holds stays k candidates per feature (stateSizes).
#pragma once

#include <napi.h>

#include <memory>

#include "methods/feature_stats.h"

namespace torchscope {

class FeatureStatsHandle : public Napi::ObjectWrap<FeatureStatsHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);

  // [sync] new FeatureStatsHandle({ sae?, features, contextSize, k, buffered, before, after,
  //   intervals, intervalSize, bins, seed, tensorOps? })
  explicit FeatureStatsHandle(const Napi::CallbackInfo& info);

 private:
  // [async] add(pass, activations, tokens?, cancel?) -> undefined
  Napi::Value add(const Napi::CallbackInfo& info);
  // [async] result() -> the statistics' tensors (FeatureStats::result)
  Napi::Value result(const Napi::CallbackInfo& info);
  // [async] stateSizes() -> { topValue, topIndex, topWindow, sampleIndex, sampleWindow: shapes, bytes }
  Napi::Value stateSizes(const Napi::CallbackInfo& info);
  // [sync] frees the state once calls in flight finish; later calls reject DISPOSED. Idempotent.
  Napi::Value dispose(const Napi::CallbackInfo& info);
  // [async] logitEffects({ logits?, sae?, features?, unembed?, k, bins }) -> logitEffects()'s record,
  // of `logits` [F, vocab], or of the SAE's decoder rows of `features` times `unembed`.
  static Napi::Value logitEffects(const Napi::CallbackInfo& info);
  // [async] decoderRows({ sae, features }) -> the SAE's decoder rows, float32 [F, d_out]
  static Napi::Value decoderRows(const Napi::CallbackInfo& info);

  std::shared_ptr<FeatureStats> live(Napi::Env env) const;

  std::shared_ptr<FeatureStats> stats_;
};

}  // namespace torchscope
