#include "methods/attribution.h"

#include <ATen/core/grad_mode.h>

#include "methods/attribution_plan.h"
#include "core/errors.h"
#include "core/resources.h"
#include "bindings/tensor.h"
#include "bindings/values.h"

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

at::Tensor forwardObjective(ModelState& model, std::vector<c10::IValue> args, const ObjectiveSpec& objective, bool fast,
                            const NumericsOverride& numerics) {
  at::NoGradGuard noGrad;
  ProgramSpec spec;
  if (objective.needsLayer()) spec.capture = {objective.layer};
  spec.returnOutput = objective.needsOutput();
  spec.optimize = fast && model.optimize;
  const auto program = model.program(spec, numerics);
  RunResult run = runProgram(*program, std::move(args), {});
  requireAllRan(*program, run);
  const at::Tensor activation =
      objective.needsLayer() ? firstTensor(run.captures.at(objective.layer).back(), "layer '" + objective.layer + "'") : at::Tensor();
  const at::Tensor output = objective.needsOutput() ? firstTensor(run.output, "the model's output") : at::Tensor();
  const at::Tensor& rowsOf = output.defined() ? output : activation;
  return objectiveValues(objective, rowsOf.dim() > 0 ? rowsOf.size(0) : 1, activation, output);
}

namespace {

bool isGradientMethod(const std::string& method) {
  return method == "saliency" || method == "inputXGradient" || method == "integratedGradients" ||
         method == "layerIntegratedGradients" || method == "layerGradCam";
}

bool integrates(const std::string& method) { return method == "integratedGradients" || method == "layerIntegratedGradients"; }

// Rows a gradient pass may take: the peak bytes of one row's forward and backward, measured,
// against half the memory available now (Captum's default is every step in one pass, which
// is what runs whenever it fits).
int64_t rowsThatFit(ModelState& model, const Batch& batch, const AttributionSpec& spec) {
  GradientSpec probe;
  probe.numerics = spec.numerics;
  probe.objective = ObjectiveSpec{batch.objective.layer, {batch.objective.objectives.front()}};
  if (spec.method == "layerIntegratedGradients") {
    probe.layers = {spec.layer};
  } else {
    probe.inputs = {batch.input};
  }
  AllocationPeakMeter meter;
  {
    std::vector<c10::IValue> oneRow;
    for (const auto& arg : batch.args) {
      oneRow.push_back(mapTensors(arg, [&](const at::Tensor& t) { return t.dim() > 0 && t.size(0) == batch.rows ? t.narrow(0, 0, 1) : t; }));
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
  if (spec.input < 0 || spec.input >= static_cast<int64_t>(inputs.size()) || !inputs[static_cast<size_t>(spec.input)].isTensor()) {
    throw Error(code::kInvalidArgument, "input " + std::to_string(spec.input) + " is not a tensor argument of forward (" +
                                            std::to_string(inputs.size()) + " given)");
  }
  auto batch = std::make_shared<Batch>();
  batch->input = spec.input;
  const at::Tensor& x = inputs[static_cast<size_t>(spec.input)].toTensor();
  if (x.dim() == 0) throw Error(code::kShape, "the attributed input is a scalar: it needs a batch dimension");
  batch->rows = x.size(0);
  batch->args = std::move(inputs);
  batch->baseline = spec.baseline;
  batch->baselineValue = spec.baselineValue;
  if (batch->baseline && !at::is_expandable_to(batch->baseline->sizes(), x.sizes())) {
    throw Error(code::kShape, "baseline of shape " + c10::str(batch->baseline->sizes()) + " does not broadcast to the input's " +
                                  c10::str(x.sizes()));
  }
  batch->objective = spec.objective;
  if (spec.objective.objectives.size() != 1 && static_cast<int64_t>(spec.objective.objectives.size()) != batch->rows) {
    throw Error(code::kInvalidArgument, std::to_string(spec.objective.objectives.size()) + " targets for a batch of " +
                                            std::to_string(batch->rows) + ": give one, or one per batch element");
  }
  const bool gradientMethod = isGradientMethod(spec.method);
  const bool layerMethod = spec.method == "layerIntegratedGradients" || spec.method == "layerGradCam";
  if (!gradientMethod && spec.method != "occlusion" && spec.method != "featureAblation") {
    throw Error(code::kInvalidArgument, "unknown attribution method '" + spec.method + "'");
  }
  if (!layerMethod && !at::isFloatingType(x.scalar_type())) {
    throw Error(code::kDtype, "the attributed input is " + std::string(c10::toString(x.scalar_type())) + ": " + spec.method +
                                  " needs a floating-point input (attribute token ids with layerIntegratedGradients on "
                                  "their embedding layer)");
  }
  if (!spec.noise.empty() && !gradientMethod) throw Error(code::kInvalidArgument, "noise wraps a gradient method, not " + spec.method);

  Context context{model, spec, spec.internalBatchSize};
  if (integrates(spec.method) && context.internalBatchSize == 0) {
    const int64_t wanted = spec.steps * batch->rows * (spec.noise.empty() ? 1 : std::min(spec.samples, spec.samplesBatchSize > 0 ? spec.samplesBatchSize : spec.samples));
    context.internalBatchSize = std::min(wanted, rowsThatFit(*model, *batch, spec));
  }
  RunPlan plan;
  auto out = std::make_shared<Attributed>();
  if (!spec.noise.empty()) {
    planNoiseTunnel(context, batch, out, plan.steps);
  } else if (gradientMethod) {
    planGradientMethod(context, batch, out, plan.steps);
  } else {
    planPerturbationMethod(context, batch, out, plan.steps);
  }
  const int64_t used = integrates(spec.method) ? context.internalBatchSize : 0;
  plan.finish = [out, used, model, numerics = spec.numerics]() -> ResolveFn {
    // A layer method's attributions are in the layer's type: bfloat16 under bf16 unless upcast.
    const at::Tensor attributions = model->returned(out->attributions.detach(), numerics);
    const at::Tensor delta = out->delta.defined() ? out->delta.detach().to(c10::kCPU, at::kDouble).contiguous() : at::Tensor();
    return [attributions, delta, used](Napi::Env env) -> Napi::Value {
      Napi::Object result = Napi::Object::New(env);
      result.Set("attributions", TensorHandle::wrap(env, attributions));
      if (delta.defined()) {
        Napi::Array values = Napi::Array::New(env, static_cast<size_t>(delta.numel()));
        for (int64_t i = 0; i < delta.numel(); ++i) values.Set(static_cast<uint32_t>(i), delta.data_ptr<double>()[i]);
        result.Set("convergenceDelta", values);
      }
      result.Set("internalBatchSize", static_cast<double>(used));
      return result;
    };
  };
  return plan;
}

}  // namespace torchscope
