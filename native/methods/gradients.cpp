#include "methods/gradients.h"

#include <torch/csrc/autograd/autograd.h>

#include "core/errors.h"
#include "core/ivalues.h"
#include "methods/objective_run.h"

namespace torchscope {

GradientResult computeGradients(ModelState& model, std::vector<c10::IValue> inputs, const GradientSpec& spec,
                                const std::vector<at::Tensor>& extraSources) {
  at::AutoGradMode gradients(true);
  std::vector<at::Tensor> sources;
  for (const int64_t index : spec.inputs) {
    TS_CHECK(index >= 0 && index < static_cast<int64_t>(inputs.size()) && inputs[static_cast<size_t>(index)].isTensor(),
             code::kInvalidArgument, "input ", index, " is not a tensor argument of forward (", inputs.size(), " given)");
    auto& input = inputs[static_cast<size_t>(index)];
    const at::Tensor tensor = input.toTensor();
    TS_CHECK(at::isFloatingType(tensor.scalar_type()), code::kDtype, "input ", index, " is ", c10::toString(tensor.scalar_type()),
             ": only floating-point inputs have gradients (attribute token ids through their embedding layer)");
    // A fresh leaf: the caller's tensor is left as it was.
    const at::Tensor leaf = tensor.detach().requires_grad_(true);
    input = leaf;
    sources.push_back(leaf);
  }

  ProgramNeeds needs;
  needs.patch = spec.patchLayers;
  needs.gradient = spec.layers;
  needs.saes = spec.saeSplices;
  needs.differentiable = true;
  const ObjectiveRun forward =
      runForObjective(model, std::move(inputs), spec.objective, needs, Optimize::kAsLoaded, spec.numerics, spec.patches, spec.saes);
  const RunResult& run = forward.run;
  const at::Tensor values = forward.values(spec.objective);

  GradientResult result;
  for (const auto& [layer, calls] : run.taps) {
    for (const at::Tensor& value : calls) sources.push_back(value);
  }
  sources.insert(sources.end(), extraSources.begin(), extraSources.end());
  std::vector<at::Tensor> grads;
  if (values.requires_grad()) {
    grads = torch::autograd::grad({values}, sources, {at::ones_like(values)}, /*retain_graph=*/false,
                                  /*create_graph=*/false, /*allow_unused=*/true);
  } else {
    grads.resize(sources.size());  // the objective depends on none of them
  }
  size_t next = 0;
  auto take = [&]() {
    const at::Tensor& source = sources[next];
    at::Tensor grad = grads[next++];
    return grad.defined() ? grad : at::zeros_like(source);
  };
  for (size_t i = 0; i < spec.inputs.size(); ++i) result.inputs.push_back(take());
  for (const auto& [layer, calls] : run.taps) {
    for (const at::Tensor& value : calls) {
      result.layers[layer].push_back(take());
      result.values[layer].push_back(value.detach());
    }
  }
  for (size_t i = 0; i < extraSources.size(); ++i) result.extra.push_back(take());
  result.objective = values.detach();
  return result;
}

c10::IValue gradients(ModelState& model, std::vector<c10::IValue> inputs, const GradientSpec& spec) {
  for (auto& input : inputs) input = toDevice(input, model.device);
  const GradientResult result = computeGradients(model, std::move(inputs), spec);
  auto returned = [&](const at::Tensor& t) { return model.returned(t, spec.numerics); };
  std::vector<at::Tensor> inputGradients;
  for (const at::Tensor& grad : result.inputs) inputGradients.push_back(returned(grad));
  auto perLayer = [&](const std::map<std::string, std::vector<at::Tensor>>& byLayer) {
    Record record;
    for (const auto& [layer, calls] : byLayer) {
      std::vector<at::Tensor> perCall;
      for (const at::Tensor& tensor : calls) perCall.push_back(returned(tensor));
      record.set(layer, tensorList(perCall));
    }
    return record;
  };
  return Record()
      .set("objective", numberList(returned(result.objective)))
      .set("inputs", tensorList(inputGradients))
      .set("layers", perLayer(result.layers))
      .set("values", perLayer(result.values));
}

}  // namespace torchscope
