#include "torchscript/gradient_tap.h"

#include <torch/csrc/jit/runtime/custom_operator.h>

namespace torchscope {

namespace {

torch::jit::RegisterOperators registerGradientTap({torch::jit::Operator(
    std::string(kGradientTapOperator) + "(Tensor(a) x) -> Tensor(a)",
    [](torch::jit::Stack& stack) {
      at::Tensor x = torch::jit::pop(stack).toTensor();
      torch::jit::push(stack, x.requires_grad() ? x : x.detach().requires_grad_(true));
    },
    c10::AliasAnalysisKind::FROM_SCHEMA)});

}  // namespace

}  // namespace torchscope
