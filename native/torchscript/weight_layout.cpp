#include "torchscript/weight_layout.h"

#include <torch/csrc/jit/runtime/custom_operator.h>

namespace torchscope {

namespace {

// A graph operator, outside the dispatcher: autograd never sees it, and the weights it returns
// (constants that require no grad) enter the convolution as they are. Conservative aliasing:
// its result is one of its inputs.
torch::jit::RegisterOperators registerWeightLayout({torch::jit::Operator(
    std::string(kWeightLayoutOperator) + "(Tensor input, Tensor contiguous, Tensor channels_last) -> Tensor",
    [](torch::jit::Stack& stack) {
      at::Tensor channelsLast = torch::jit::pop(stack).toTensor();
      at::Tensor contiguous = torch::jit::pop(stack).toTensor();
      const at::Tensor input = torch::jit::pop(stack).toTensor();
      // oneDNN's convolution runs channels-last when the input's suggested format is (ATen's
      // mkldnn_conv_use_channels_last): the same test.
      const bool inputChannelsLast = input.suggest_memory_format() == at::MemoryFormat::ChannelsLast;
      torch::jit::push(stack, inputChannelsLast ? std::move(channelsLast) : std::move(contiguous));
    },
    c10::AliasAnalysisKind::CONSERVATIVE)});

}  // namespace

}  // namespace torchscope
