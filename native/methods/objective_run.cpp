#include "methods/objective_run.h"

#include <algorithm>

#include "core/ivalues.h"

namespace torchscope {

int64_t ObjectiveRun::rows() const {
  const at::Tensor& read = output.defined() ? output : activation;
  return read.defined() && read.dim() > 0 ? read.size(0) : 1;
}

at::Tensor ObjectiveRun::values(const ObjectiveSpec& objective) const { return objectiveValues(objective, rows(), activation, output); }

ProgramNeeds withObjective(const ObjectiveSpec& objective, ProgramNeeds needs) {
  if (objective.needsLayer() && !std::binary_search(needs.capture.begin(), needs.capture.end(), objective.layer)) {
    needs.capture.insert(std::upper_bound(needs.capture.begin(), needs.capture.end(), objective.layer), objective.layer);
  }
  needs.returnOutput = objective.needsOutput();
  return needs;
}

ObjectiveRun runForObjective(ModelState& model, std::vector<c10::IValue> args, const ObjectiveSpec& objective, ProgramNeeds needs,
                             Optimize optimize, const NumericsOverride& numerics, const std::vector<PatchArgs>& patches,
                             const std::vector<std::shared_ptr<const Sae>>& saes) {
  ObjectiveRun out;
  out.program = model.program(withObjective(objective, std::move(needs)), numerics, optimize);
  out.run = out.program->run(std::move(args), patches, {}, saes);
  requireAllRan(*out.program, out.run);
  if (objective.needsLayer()) out.activation = firstTensor(out.run.captures.at(objective.layer).back(), "layer '" + objective.layer + "'");
  if (objective.needsOutput()) out.output = firstTensor(out.run.output, "the model's output");
  return out;
}

}  // namespace torchscope
