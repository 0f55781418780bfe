#include "methods/batching.h"

#include "core/ivalues.h"

namespace torchscope {

at::Tensor repeatRows(const at::Tensor& tensor, int64_t times, bool interleave) {
  if (times == 1) return tensor;
  if (interleave) return tensor.repeat_interleave(times, 0);
  return at::cat(std::vector<at::Tensor>(static_cast<size_t>(times), tensor), 0);
}

std::vector<c10::IValue> repeatArgs(const std::vector<c10::IValue>& args, int64_t rows, int64_t times, bool interleave) {
  std::vector<c10::IValue> out;
  out.reserve(args.size());
  for (const auto& arg : args) {
    out.push_back(mapTensors(arg, [&](const at::Tensor& t) {
      // Tensors without the batch's rows (a 0-dim scale, a shared table) are the same for every copy.
      return t.dim() > 0 && t.size(0) == rows ? repeatRows(t, times, interleave) : t;
    }));
  }
  return out;
}

ObjectiveSpec repeatObjectives(const ObjectiveSpec& objective, int64_t times, bool interleave) {
  if (objective.objectives.size() == 1 || times == 1) return objective;
  ObjectiveSpec out{objective.layer, {}};
  const auto& rows = objective.objectives;
  if (interleave) {
    for (const auto& row : rows) out.objectives.insert(out.objectives.end(), static_cast<size_t>(times), row);
  } else {
    for (int64_t k = 0; k < times; ++k) out.objectives.insert(out.objectives.end(), rows.begin(), rows.end());
  }
  return out;
}

}  // namespace torchscope
