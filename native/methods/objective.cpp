#include "methods/objective.h"

#include "core/errors.h"

namespace torchscope {

namespace {

int64_t checkedIndex(int64_t index, int64_t size, const char* what, const std::string& where) {
  if (index < 0 || index >= size) {
    TS_FAIL(code::kInvalidArgument,
            std::string(what) + " " + std::to_string(index) + " is out of range for " + where + " (size " + std::to_string(size) + ")");
  }
  return index;
}

bool anyTerm(const Objective& objective, bool (Objective::*test)() const) {
  for (const auto& term : objective.terms) {
    if ((term.second.*test)()) return true;
  }
  return false;
}

// Targets and logits of every row at once (one gather), as Captum selects `output[:, target]`.
std::optional<at::Tensor> selectedOutputs(const std::vector<Objective>& objectives, int64_t rows, const at::Tensor& output) {
  std::vector<int64_t> indices;
  const ObjectiveKind kind = objectives.front().kind;
  for (const Objective& objective : objectives) {
    if (objective.kind != kind || (kind != ObjectiveKind::kTarget && kind != ObjectiveKind::kLogit) || objective.position)
      return std::nullopt;
  }
  const bool targets = kind == ObjectiveKind::kTarget;
  if (targets && output.dim() != 2) {
    TS_FAIL(code::kInvalidArgument, "a target selects output[:, target] of an [N, C] output; the model returns shape " +
                                        c10::str(output.sizes()) + " (use an objective such as { logit } on the flattened row)");
  }
  const at::Tensor flat = output.reshape({rows, -1});
  for (int64_t row = 0; row < rows; ++row) {
    const Objective& objective = objectives[objectives.size() == 1 ? 0 : static_cast<size_t>(row)];
    indices.push_back(checkedIndex(objective.index, flat.size(1), targets ? "target" : "class", "the model output"));
  }
  return flat.gather(1, at::tensor(indices, at::kLong).to(flat.device()).view({rows, 1})).view({rows});
}

bool readsOutput(ObjectiveKind kind) {
  return kind == ObjectiveKind::kLogit || kind == ObjectiveKind::kTarget || kind == ObjectiveKind::kLogitDiff ||
         kind == ObjectiveKind::kLogProb;
}

// The logits an objective reads from one output row: the row itself, or with a position the
// row's [S, V] logits at that position.
at::Tensor logitsOf(const Objective& objective, const at::Tensor& row) {
  if (!objective.position) return row.reshape({-1});
  if (row.dim() != 2) {
    TS_FAIL(code::kInvalidArgument,
            "a position picks a row of [batch, sequence, vocabulary] logits; the output rows have shape " + c10::str(row.sizes()));
  }
  const int64_t length = row.size(0);
  const int64_t position = *objective.position < 0 ? *objective.position + length : *objective.position;
  return row[checkedIndex(position, length, "position", "the output's sequence")];
}

}  // namespace

bool Objective::needsLayer() const {
  if (kind == ObjectiveKind::kSum) return anyTerm(*this, &Objective::needsLayer);
  return !readsOutput(kind);
}

bool Objective::needsOutput() const {
  if (kind == ObjectiveKind::kSum) return anyTerm(*this, &Objective::needsOutput);
  return readsOutput(kind);
}

bool ObjectiveSpec::needsLayer() const {
  for (const auto& objective : objectives) {
    if (objective.needsLayer()) return true;
  }
  return false;
}

bool ObjectiveSpec::needsOutput() const {
  for (const auto& objective : objectives) {
    if (objective.needsOutput()) return true;
  }
  return false;
}

at::Tensor evaluateObjective(const Objective& objective, const at::Tensor& activation, const at::Tensor& output, const std::string& layer) {
  const std::string where = "layer '" + layer + "'";
  switch (objective.kind) {
    case ObjectiveKind::kChannel: return activation.select(0, checkedIndex(objective.index, activation.size(0), "channel", where)).mean();
    case ObjectiveKind::kNeuron: {
      if (activation.dim() != 3)
        TS_FAIL(code::kInvalidArgument, "a neuron objective needs a [C, H, W] output; " + where + " gives " + c10::str(activation.sizes()));
      const int64_t c = checkedIndex(objective.index, activation.size(0), "channel", where);
      const int64_t y = checkedIndex(objective.y.value_or(activation.size(1) / 2), activation.size(1), "y", where);
      const int64_t x = checkedIndex(objective.x.value_or(activation.size(2) / 2), activation.size(2), "x", where);
      return activation[c][y][x];
    }
    case ObjectiveKind::kDirection: {
      // Channels as a patch takes them: dim 1 of [N, C] and [N, C, H, W] outputs, the hidden
      // (last) dim of [N, S, H] ones; the mean is over the rest (space, positions).
      const int64_t dim = activation.dim() == 2 ? 1 : 0;
      if (activation.dim() == 0 || objective.direction.dim() != 1 || objective.direction.size(0) != activation.size(dim)) {
        TS_FAIL(code::kInvalidArgument, "direction of shape " + c10::str(objective.direction.sizes()) + " does not match the channels of " +
                                            where + " (its rows have shape " + c10::str(activation.sizes()) + ")");
      }
      std::vector<int64_t> shape(static_cast<size_t>(activation.dim()), 1);
      shape[static_cast<size_t>(dim)] = activation.size(dim);
      const at::Tensor direction = objective.direction.to(activation.options()).view(shape);
      return (activation * direction).sum(dim).mean();
    }
    case ObjectiveKind::kTarget:
      if (output.dim() != 1) {
        TS_FAIL(code::kInvalidArgument, "a target selects output[:, target] of an [N, C] output; the model's output rows have shape " +
                                            c10::str(output.sizes()) + " (use an objective such as { logit } on the flattened row)");
      }
      return output[checkedIndex(objective.index, output.size(0), "target", "the model output")];
    case ObjectiveKind::kLogit: {
      const at::Tensor logits = logitsOf(objective, output);
      return logits[checkedIndex(objective.index, logits.size(0), "class", "the model output")];
    }
    case ObjectiveKind::kLogitDiff: {
      const at::Tensor logits = logitsOf(objective, output);
      return logits[checkedIndex(objective.index, logits.size(0), "class", "the model output")] -
             logits[checkedIndex(objective.other, logits.size(0), "class", "the model output")];
    }
    case ObjectiveKind::kLogProb: {
      const at::Tensor logits = logitsOf(objective, output);
      return at::log_softmax(logits, 0)[checkedIndex(objective.index, logits.size(0), "class", "the model output")];
    }
    case ObjectiveKind::kSum: {
      at::Tensor total = at::zeros({}, activation.defined() ? activation.options() : output.options());
      for (const auto& [weight, term] : objective.terms) total = total + weight * evaluateObjective(term, activation, output, layer);
      return total;
    }
  }
  TS_FAIL(code::kInvalidArgument, "unknown objective");
}

at::Tensor objectiveValues(const ObjectiveSpec& spec, int64_t rows, const at::Tensor& activation, const at::Tensor& output) {
  if (spec.objectives.size() != 1 && static_cast<int64_t>(spec.objectives.size()) != rows) {
    TS_FAIL(code::kInvalidArgument, std::to_string(spec.objectives.size()) + " objectives for a batch of " + std::to_string(rows) +
                                        ": give one, or one per batch element");
  }
  for (const at::Tensor* value : {&activation, &output}) {
    if (value->defined() && (value->dim() == 0 || value->size(0) != rows)) {
      TS_FAIL(code::kInvalidArgument, std::string(value == &output ? "the model's output" : "layer '" + spec.layer + "'") + " has shape " +
                                          c10::str(value->sizes()) + ", not one row per batch element (" + std::to_string(rows) + ")");
    }
  }
  if (output.defined()) {
    if (auto selected = selectedOutputs(spec.objectives, rows, output)) return *selected;
  }
  std::vector<at::Tensor> values;
  values.reserve(static_cast<size_t>(rows));
  for (int64_t row = 0; row < rows; ++row) {
    values.push_back(evaluateObjective(spec.objectives[spec.objectives.size() == 1 ? 0 : static_cast<size_t>(row)],
                                       activation.defined() ? activation[row] : at::Tensor(), output.defined() ? output[row] : at::Tensor(),
                                       spec.layer));
  }
  return at::stack(values);
}

}  // namespace torchscope
