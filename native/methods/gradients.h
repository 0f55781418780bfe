// Gradients of a declarative objective with respect to forward's inputs and to layers'
// outputs, through libtorch's autograd on the instrumented program: the forward stops at the
// objective's layer when the model's output is not needed, patches apply as in a run, and a
// layer's gradient is what a full backward hook gets as grad_output. Parameters never get
// gradients: autograd runs towards the requested tensors only.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "methods/objective.h"
#include "model/model_state.h"
#include "program/program.h"
#include "sae/sae.h"

namespace torchscope {

struct GradientSpec {
  ObjectiveSpec objective;
  std::vector<int64_t> inputs;           // forward argument indices whose gradient is wanted
  std::vector<std::string> layers;       // sorted, unique: layers whose output's gradient is wanted
  std::vector<std::string> patchLayers;  // sorted, unique; `patches` in the same order
  std::vector<PatchArgs> patches;
  std::vector<SaeSplice> saeSplices;  // sorted by the hook point read; `saes` in the same order
  std::vector<std::shared_ptr<const Sae>> saes;
  NumericsOverride numerics;  // the call's precision / upcast over the model's
};

struct GradientResult {
  at::Tensor objective;                                   // [N], one value per batch element
  std::vector<at::Tensor> inputs;                         // per GradientSpec::inputs
  std::map<std::string, std::vector<at::Tensor>> layers;  // per layer, one per call
  std::map<std::string, std::vector<at::Tensor>> values;  // the layers' values the gradients are of
  std::vector<at::Tensor> extra;                          // per `extraSources`
};

// One forward and one backward pass (results detached). `inputs` are forward's arguments on
// the model's device; `extraSources` are tensors that require grad and feed the forward (a
// patch value, for layer integrated gradients): their gradients come back in `extra`. A
// requested tensor the objective does not depend on gets a zero gradient.
GradientResult computeGradients(ModelState& model, std::vector<c10::IValue> inputs, const GradientSpec& spec,
                                const std::vector<at::Tensor>& extraSources = {});

// torch.gradients: the inputs (forward's arguments, from JS) moved to the model's device, one
// pass, and what JS receives: { objective: number[], inputs: Tensor[], layers: { layer: Tensor[]
// per call }, values: { layer: the values those are gradients of, per call } }, on the CPU,
// float32 where upcast asks.
c10::IValue gradients(ModelState& model, std::vector<c10::IValue> inputs, const GradientSpec& spec);

}  // namespace torchscope
