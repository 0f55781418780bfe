// Inside the attribution files: the batch a method attributes, what it leaves behind, and the
// helpers the methods share. Steps are planned with shapes known and run later: a step reads
// its batch when it runs (the noise tunnel fills a batch just before its method's steps).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "methods/attribution.h"
#include "methods/batching.h"
#include "methods/gradients.h"

namespace torchscope::attribution {

using Step = std::function<void()>;

// Forward's arguments with the attributed one at `input`, its baseline and the objectives.
struct Batch {
  std::vector<c10::IValue> args;
  int64_t input = 0;
  int64_t rows = 0;
  std::optional<at::Tensor> baseline;  // broadcastable to the input; else baselineValue
  double baselineValue = 0;
  ObjectiveSpec objective;  // one, or one per row

  const at::Tensor& x() const { return args.at(static_cast<size_t>(input)).toTensor(); }
};

struct Attributed {
  at::Tensor attributions;
  at::Tensor delta;  // [rows], with convergenceDelta
};

struct Context {
  std::shared_ptr<ModelState> model;
  AttributionSpec spec;
  int64_t internalBatchSize = 0;  // rows per gradient pass, decided before planning
};

// The baseline as a tensor of the input's shape and dtype (Captum's _tensorize_baseline).
at::Tensor fullBaseline(const Batch& batch);
// `x` with the baseline substituted, as the forward's argument list.
std::vector<c10::IValue> withInput(const Batch& batch, const at::Tensor& x);

// The objective's values [rows] on `args`, without gradients: the model's optimized program
// where `optimize` allows (perturbation methods), else the exact one.
at::Tensor forwardObjective(ModelState& model, std::vector<c10::IValue> args, const ObjectiveSpec& objective, Optimize optimize,
                            const NumericsOverride& numerics);

// Integration points and weights on [0, 1], as Captum's approximation_methods.
void integrationPoints(Integration method, int64_t steps, std::vector<double>& alphas, std::vector<double>& weights);

// Method planners: append the steps that fill `out` for `batch`.
void planGradientMethod(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                        std::vector<Step>& steps);
void planPerturbationMethod(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                            std::vector<Step>& steps);
// The noise tunnel around a gradient method; the outcome's attributions in `out`.
void planNoiseTunnel(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                     std::vector<Step>& steps);

}  // namespace torchscope::attribution
