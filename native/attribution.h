// Attribution methods, natively, with Captum's definitions and defaults (captum/attr/_core):
// which inputs, or which units of a layer, made an objective (Captum's `target`) what it is.
// Gradient methods (saliency, inputXGradient, integratedGradients, layerIntegratedGradients,
// layerGradCam) run on native gradient passes (gradients.h), perturbation methods (occlusion,
// featureAblation) on forward passes; noise (SmoothGrad, VarGrad) wraps a gradient method.
// A run is a plan of steps, each one batched forward (and backward) pass, that JS drives a few
// at a time: progress between them, abort within one, other calls interleave.
#pragma once

#include <ATen/ATen.h>
#include <napi.h>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model.h"
#include "objective.h"

namespace torchscope {

// Every field comes from the request: lib/attribution.ts holds the defaults (Captum's).
struct AttributionSpec {
  std::string method;
  ObjectiveSpec objective;
  int64_t input = 0;  // which forward argument is attributed (its baseline, for layer methods)
  std::optional<at::Tensor> baseline;  // broadcastable to the input; else `baselineValue`
  double baselineValue = 0;
  bool abs = false;               // saliency: the gradient's magnitude
  bool multiplyByInputs = false;  // integrated gradients: times (input - baseline)
  int64_t steps = 0;              // integrated gradients
  std::string integration;
  int64_t internalBatchSize = 0;  // rows per pass; 0: every step in one pass unless memory says otherwise
  bool convergenceDelta = false;
  std::string layer;              // layer methods
  bool relu = false;              // grad-cam
  std::vector<int64_t> upsample;  // grad-cam: the size to interpolate to; empty: none
  std::string upsampleMode;
  std::vector<int64_t> window, strides;   // occlusion: over every dim but the batch
  std::optional<at::Tensor> featureMask;  // feature ablation: integer ids
  int64_t perturbationsPerEval = 1;
  std::string noise;  // '' (none), 'smoothgrad', 'smoothgrad_sq', 'vargrad': around a gradient method
  int64_t samples = 0, samplesBatchSize = 0;
  double stdev = 0;
  uint64_t seed = 0;
};

// What a finished run hands back.
struct AttributionOutcome {
  at::Tensor attributions;
  at::Tensor delta;               // defined with convergenceDelta: one value per batch element (per sample with noise)
  int64_t internalBatchSize = 0;  // rows per pass that integrated gradients used
};

// The steps of a run, planned on the compute thread once inputs are on the model's device.
struct AttributionPlan {
  std::vector<std::function<void()>> steps;
  std::function<AttributionOutcome()> finish;
};

AttributionPlan planAttribution(const std::shared_ptr<ModelState>& model, std::vector<c10::IValue> inputs,
                                const AttributionSpec& spec);

class AttributionRun : public Napi::ObjectWrap<AttributionRun> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  // [async] plans a run of `spec` on `inputs` (forward's arguments) -> AttributionRun
  static Napi::Value start(Napi::Env env, std::shared_ptr<ModelState> model, std::vector<c10::IValue> inputs,
                           AttributionSpec spec, Napi::Object keepAlive);
  explicit AttributionRun(const Napi::CallbackInfo& info);
  ~AttributionRun() override;

  struct State;

 private:
  // [async] runs up to n more steps (fewer after abort()) -> { done, total, aborted }
  Napi::Value steps(const Napi::CallbackInfo& info);
  // [sync] stop before the next step
  Napi::Value abort(const Napi::CallbackInfo& info);
  // [async] once every step ran -> { attributions, convergenceDelta?, internalBatchSize }
  Napi::Value result(const Napi::CallbackInfo& info);
  // [sync] frees the run's tensors once a chunk in flight finishes; idempotent.
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<State> live(Napi::Env env) const;

  std::shared_ptr<State> state_;
};

}  // namespace torchscope
