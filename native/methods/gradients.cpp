#include "methods/gradients.h"

#include <torch/csrc/autograd/autograd.h>

#include "core/errors.h"

namespace torchscope {

at::Tensor firstTensor(const c10::IValue& value, const std::string& what) {
  if (value.isTensor()) return value.toTensor();
  if (value.isTuple() || value.isList()) {
    const auto items = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
    for (const auto& item : items) {
      if (item.isTensor()) return item.toTensor();
    }
  }
  throw Error(code::kInvalidArgument, what + " is a " + value.tagKind() + " holding no tensor: an objective reads a tensor");
}

GradientResult computeGradients(ModelState& model, std::vector<c10::IValue> inputs, const GradientSpec& spec,
                                const std::vector<at::Tensor>& extraSources) {
  at::AutoGradMode gradients(true);
  std::vector<at::Tensor> sources;
  for (const int64_t index : spec.inputs) {
    if (index < 0 || index >= static_cast<int64_t>(inputs.size()) || !inputs[static_cast<size_t>(index)].isTensor()) {
      throw Error(code::kInvalidArgument, "input " + std::to_string(index) + " is not a tensor argument of forward (" +
                                              std::to_string(inputs.size()) + " given)");
    }
    auto& input = inputs[static_cast<size_t>(index)];
    const at::Tensor tensor = input.toTensor();
    if (!at::isFloatingType(tensor.scalar_type())) {
      throw Error(code::kDtype, "input " + std::to_string(index) + " is " + std::string(c10::toString(tensor.scalar_type())) +
                                    ": only floating-point inputs have gradients (attribute token ids through their "
                                    "embedding layer)");
    }
    // A fresh leaf: the caller's tensor is left as it was.
    const at::Tensor leaf = tensor.detach().requires_grad_(true);
    input = leaf;
    sources.push_back(leaf);
  }

  ProgramSpec programSpec;
  if (spec.objective.needsLayer()) programSpec.capture = {spec.objective.layer};
  programSpec.patch = spec.patchLayers;
  programSpec.gradient = spec.layers;
  programSpec.returnOutput = spec.objective.needsOutput();
  programSpec.optimize = model.optimize;
  programSpec.differentiable = true;
  const auto program = model.program(programSpec, spec.numerics);
  RunResult run = runProgram(*program, std::move(inputs), spec.patches);
  requireAllRan(*program, run);

  const at::Tensor activation =
      spec.objective.needsLayer() ? firstTensor(run.captures.at(spec.objective.layer).back(), "layer '" + spec.objective.layer + "'") : at::Tensor();
  const at::Tensor output = spec.objective.needsOutput() ? firstTensor(run.output, "the model's output") : at::Tensor();
  const int64_t rows = (output.defined() ? output : activation).dim() > 0 ? (output.defined() ? output : activation).size(0) : 1;
  const at::Tensor values = objectiveValues(spec.objective, rows, activation, output);

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

}  // namespace torchscope
