// One forward for an objective, as every method that evaluates one runs it (gradients,
// attribution, maximization, patching sweeps): a program that captures the objective's layer and
// returns the model's output only when the objective reads it, run on the arguments, and the
// values the objective reads from it.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "methods/objective.h"
#include "model/model_state.h"
#include "sae/sae.h"

namespace torchscope {

struct ObjectiveRun {
  std::shared_ptr<const Program> program;
  RunResult run;
  at::Tensor activation;  // the objective layer's last call (its first tensor); undefined when not read
  at::Tensor output;      // the model's output (its first tensor); undefined when not read
  int64_t rows() const;   // batch elements: the leading size of what the objective reads
  // [rows] values of `objective` on what this run read.
  at::Tensor values(const ObjectiveSpec& objective) const;
};

// What `objective` needs of a program on top of `needs`: its layer captured, and the model's
// output returned exactly when it reads it.
ProgramNeeds withObjective(const ObjectiveSpec& objective, ProgramNeeds needs);

// `needs` adds to what the objective itself needs (other captures, patches with `patches` in
// needs.patch's order, gradient taps, differentiable); the output is returned exactly when the
// objective reads it. Throws LAYER_NOT_RUN when a targeted
// layer did not run.
// `saes` are needs.saes's SAEs, in that order.
ObjectiveRun runForObjective(ModelState& model, std::vector<c10::IValue> args, const ObjectiveSpec& objective, ProgramNeeds needs,
                             Optimize optimize, const NumericsOverride& numerics, const std::vector<PatchArgs>& patches = {},
                             const std::vector<std::shared_ptr<const Sae>>& saes = {});

}  // namespace torchscope
