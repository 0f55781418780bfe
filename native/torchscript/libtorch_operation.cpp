#include "torchscript/libtorch_operation.h"

namespace torchscope {

std::optional<torch::jit::Operation> libtorchOperation(const char* name) {
  for (const auto& op : torch::jit::getAllOperatorsFor(c10::Symbol::fromQualString(name))) {
    if (op->schema().overload_name().empty()) return op->getOperation();
  }
  return std::nullopt;
}

}  // namespace torchscope
