// Copies of a batch in one batch: the integration steps of integrated gradients, the
// perturbations of occlusion, the noise samples of a noise tunnel, the cells of a patching
// sweep all run as one forward over repeated rows.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/ivalue.h>

#include <vector>

#include "methods/objective.h"

namespace torchscope {

// `times` copies of a tensor's rows: whole (`interleave` false: cat([t] * times), Captum's
// order for integration steps and perturbations) or row by row (true: each row `times` in a
// row, Captum's order for noise samples).
at::Tensor repeatRows(const at::Tensor& tensor, int64_t times, bool interleave);
// Forward's arguments for `times` copies of the batch: every tensor with `rows` rows (inside
// lists, tuples and dicts too) repeated as repeatRows does; other values are the same for all.
std::vector<c10::IValue> repeatArgs(const std::vector<c10::IValue>& args, int64_t rows, int64_t times, bool interleave);
// The objectives for the repeated batch: unchanged when one serves every row.
ObjectiveSpec repeatObjectives(const ObjectiveSpec& objective, int64_t times, bool interleave);

}  // namespace torchscope
