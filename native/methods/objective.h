// What a gradient is taken of: a declarative objective evaluated on one batch element of a
// layer's output (channel, neuron, direction) or of the model's output (logit, target), or a
// weighted sum of those. Shared by maximization, gradients and attribution.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "core/names.h"

namespace torchscope {

struct Objective {
  // kLogit: the row of the output flattened, at `index` (with `position`: the row's [S, V]
  // logits at that position); kTarget: output[b, index] of an [N, C] output (Captum's
  // `target`), refused on other shapes; kLogitDiff: logit `index` minus logit `other`;
  // kLogProb: log_softmax of the logits, at `index` (a language model's metrics).
  ObjectiveKind kind = ObjectiveKind::kChannel;
  int64_t index = 0;                                // channel, or class for logits and targets
  int64_t other = 0;                                // kLogitDiff's second class
  std::optional<int64_t> position;                  // output logits: the sequence position (negative: from the end)
  std::optional<int64_t> y, x;                      // neuron position (default: the centre)
  at::Tensor direction;                             // [C]: dim 1 of [N, C] / [N, C, H, W], dim 2 of [N, S, H]
  std::vector<std::pair<double, Objective>> terms;  // weighted sum
  bool needsLayer() const;
  bool needsOutput() const;
};

// Objectives with the layer they read (empty when they read only the model's output): one
// for every batch element, or one per element.
struct ObjectiveSpec {
  std::string layer;
  std::vector<Objective> objectives;
  bool needsLayer() const;
  bool needsOutput() const;
};

// One batch element: `activation` is its row of the layer's output ([C, ...]), `output` its
// row of the model's output. A scalar tensor; INVALID_ARGUMENT for indices out of range.
at::Tensor evaluateObjective(const Objective& objective, const at::Tensor& activation, const at::Tensor& output, const std::string& layer);

// [rows] values, one per batch element, of `spec` on the layer's output and/or the model's
// output (undefined tensors where not needed).
at::Tensor objectiveValues(const ObjectiveSpec& spec, int64_t rows, const at::Tensor& activation, const at::Tensor& output);

}  // namespace torchscope
