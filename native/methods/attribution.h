// Attribution methods, natively, with Captum's definitions and defaults (captum/attr/_core):
// which inputs, or which units of a layer, made an objective (Captum's `target`) what it is.
// Gradient methods (saliency, inputXGradient, integratedGradients, layerIntegratedGradients,
// layerGradCam) run on native gradient passes (gradients.h), perturbation methods (occlusion,
// featureAblation) on forward passes; noise (SmoothGrad, VarGrad) wraps a gradient method.
// A run is a plan of steps (stepped_job.h), each one batched forward (and backward) pass.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/names.h"
#include "methods/objective.h"
#include "methods/stepped_job.h"
#include "model/model_state.h"

namespace torchscope {

// Every field comes from the request: lib/methods/attribution.ts holds the defaults (Captum's).
struct AttributionSpec {
  AttributionMethod method = AttributionMethod::kSaliency;
  ObjectiveSpec objective;
  int64_t input = 0;                   // which forward argument is attributed (its baseline, for layer methods)
  std::optional<at::Tensor> baseline;  // broadcastable to the input; else `baselineValue`
  double baselineValue = 0;
  bool abs = false;               // saliency: the gradient's magnitude
  bool multiplyByInputs = false;  // integrated gradients: times (input - baseline)
  int64_t steps = 0;              // integrated gradients
  Integration integration = Integration::kGaussLegendre;
  int64_t internalBatchSize = 0;  // rows per pass; 0: every step in one pass unless memory says otherwise
  bool convergenceDelta = false;
  std::string layer;              // layer methods
  bool relu = false;              // grad-cam
  std::vector<int64_t> upsample;  // grad-cam: the size to interpolate to; empty: none
  Upsample upsampleMode = Upsample::kNearest;
  std::vector<int64_t> window, strides;   // occlusion: over every dim but the batch
  std::optional<at::Tensor> featureMask;  // feature ablation: integer ids
  int64_t perturbationsPerEval = 1;
  Noise noise = Noise::kNone;  // around a gradient method
  int64_t samples = 0, samplesBatchSize = 0;
  double stdev = 0;
  uint64_t seed = 0;
  NumericsOverride numerics;  // the call's precision / upcast over the model's
};

// The plan of a run (stepped_job.h) on `inputs` (forward's arguments, as JS gave them): its
// steps, then { attributions, convergenceDelta?, internalBatchSize } (the rows per pass
// integrated gradients used). Runs on the compute thread; may run a pass to size integrated
// gradients'.
RunPlan planAttribution(const std::shared_ptr<ModelState>& model, std::vector<c10::IValue> inputs, AttributionSpec spec);

}  // namespace torchscope
