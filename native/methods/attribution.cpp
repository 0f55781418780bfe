#include "methods/attribution.h"

#include <ATen/core/grad_mode.h>

#include "core/errors.h"
#include "core/ivalues.h"
#include "core/resources.h"
#include "methods/attribution_plan.h"
#include "methods/objective_run.h"

namespace torchscope {

namespace attribution {

at::Tensor fullBaseline(const Batch& batch) {
  const at::Tensor& x = batch.x();
  if (!batch.baseline) return at::full_like(x, batch.baselineValue);
  return batch.baseline->to(x.device(), x.scalar_type()).expand_as(x).contiguous();
}

std::vector<c10::IValue> withInput(const Batch& batch, const at::Tensor& x) {
  std::vector<c10::IValue> args = batch.args;
  args.at(static_cast<size_t>(batch.input)) = x;
  return args;
}

at::Tensor forwardObjective(ModelState& model, std::vector<c10::IValue> args, const ObjectiveSpec& objective, Optimize optimize,
                            const NumericsOverride& numerics) {
  at::NoGradGuard noGrad;
  return runForObjective(model, std::move(args), objective, {}, optimize, numerics).values(objective);
}

namespace {

bool isGradientMethod(AttributionMethod method) {
  return method != AttributionMethod::kOcclusion && method != AttributionMethod::kFeatureAblation;
}

bool integrates(AttributionMethod method) {
  return method == AttributionMethod::kIntegratedGradients || method == AttributionMethod::kLayerIntegratedGradients;
}

// Rows a gradient pass may take: the peak bytes of one row's forward and backward, measured,
// against half the memory available now (Captum's default is every step in one pass, which
// is what runs whenever it fits).
int64_t rowsThatFit(ModelState& model, const Batch& batch, const AttributionSpec& spec) {
  GradientSpec probe;
  probe.numerics = spec.numerics;
  probe.objective = ObjectiveSpec{batch.objective.layer, {batch.objective.objectives.front()}};
  if (spec.method == AttributionMethod::kLayerIntegratedGradients) {
    probe.layers = {spec.layer};
  } else {
    probe.inputs = {batch.input};
  }
  AllocationPeakMeter meter;
  {
    std::vector<c10::IValue> oneRow;
    for (const auto& arg : batch.args) {
      oneRow.push_back(
          mapTensors(arg, [&](const at::Tensor& t) { return t.dim() > 0 && t.size(0) == batch.rows ? t.narrow(0, 0, 1) : t; }));
    }
    computeGradients(model, std::move(oneRow), probe);
  }
  const uint64_t perRow = std::max<uint64_t>(meter.peakBytes(), 1);
  return std::max<int64_t>(1, static_cast<int64_t>(availableMemoryBytes() / 2 / perRow));
}

}  // namespace

}  // namespace attribution

RunPlan planAttribution(const std::shared_ptr<ModelState>& model, std::vector<c10::IValue> inputs, AttributionSpec spec) {
  using namespace attribution;
  for (auto& input : inputs) input = toDevice(input, model->device);
  if (spec.baseline) *spec.baseline = spec.baseline->to(model->device);
  if (spec.featureMask) *spec.featureMask = spec.featureMask->to(model->device);
  TS_CHECK(spec.input >= 0 && spec.input < static_cast<int64_t>(inputs.size()) && inputs[static_cast<size_t>(spec.input)].isTensor(),
           code::kInvalidArgument, "input ", spec.input, " is not a tensor argument of forward (", inputs.size(), " given)");
  auto batch = std::make_shared<Batch>();
  batch->input = spec.input;
  const at::Tensor& x = inputs[static_cast<size_t>(spec.input)].toTensor();
  TS_CHECK(x.dim() > 0, code::kShape, "the attributed input is a scalar: it needs a batch dimension");
  batch->rows = x.size(0);
  batch->args = std::move(inputs);
  batch->baseline = spec.baseline;
  batch->baselineValue = spec.baselineValue;
  TS_CHECK(!batch->baseline || at::is_expandable_to(batch->baseline->sizes(), x.sizes()), code::kShape, "baseline of shape ",
           batch->baseline->sizes(), " does not broadcast to the input's ", x.sizes());
  batch->objective = spec.objective;
  TS_CHECK(spec.objective.objectives.size() == 1 || static_cast<int64_t>(spec.objective.objectives.size()) == batch->rows,
           code::kInvalidArgument, spec.objective.objectives.size(), " targets for a batch of ", batch->rows,
           ": give one, or one per batch element");
  const bool gradientMethod = isGradientMethod(spec.method);
  const bool layerMethod = spec.method == AttributionMethod::kLayerIntegratedGradients || spec.method == AttributionMethod::kLayerGradCam;
  const char* method = nameOf(kAttributionMethods, spec.method);
  TS_CHECK(layerMethod || at::isFloatingType(x.scalar_type()), code::kDtype, "the attributed input is ", c10::toString(x.scalar_type()),
           ": ", method, " needs a floating-point input (attribute token ids with layerIntegratedGradients on their embedding layer)");
  TS_CHECK(spec.noise == Noise::kNone || gradientMethod, code::kInvalidArgument, "noise wraps a gradient method, not ", method);

  Context context{model, spec, spec.internalBatchSize};
  if (integrates(spec.method) && context.internalBatchSize == 0) {
    const int64_t wanted =
        spec.steps * batch->rows *
        (spec.noise == Noise::kNone ? 1 : std::min(spec.samples, spec.samplesBatchSize > 0 ? spec.samplesBatchSize : spec.samples));
    context.internalBatchSize = std::min(wanted, rowsThatFit(*model, *batch, spec));
  }
  RunPlan plan;
  auto out = std::make_shared<Attributed>();
  if (spec.noise != Noise::kNone) {
    planNoiseTunnel(context, batch, out, plan.steps);
  } else if (gradientMethod) {
    planGradientMethod(context, batch, out, plan.steps);
  } else {
    planPerturbationMethod(context, batch, out, plan.steps);
  }
  const int64_t used = integrates(spec.method) ? context.internalBatchSize : 0;
  plan.finish = [out, used, model, numerics = spec.numerics]() -> c10::IValue {
    // A layer method's attributions are in the layer's type: bfloat16 under bf16 unless upcast.
    Record result;
    result.set("attributions", model->returned(out->attributions.detach(), numerics));
    if (out->delta.defined()) result.set("convergenceDelta", numberList(out->delta));
    return result.set("internalBatchSize", used);
  };
  return plan;
}

}  // namespace torchscope
