#include "torchscript/snapshot.h"

#include <torch/csrc/jit/runtime/custom_operator.h>

#include "core/ivalues.h"

namespace torchscope {

namespace {

// A JIT operator rather than a dispatcher one: its argument is any TorchScript value (the
// generic `t`), which the dispatcher cannot key on; the clones inside go through the
// dispatcher, so autograd records them.
torch::jit::RegisterOperators registerSnapshot({torch::jit::Operator(
    std::string(kSnapshotOperator) + "(t x) -> t",
    [](torch::jit::Stack& stack) {
      c10::IValue value = torch::jit::pop(stack);
      torch::jit::push(stack, mapTensors(value, [](const at::Tensor& tensor) { return tensor.clone(); }));
    },
    c10::AliasAnalysisKind::FROM_SCHEMA)});

}  // namespace

}  // namespace torchscope
