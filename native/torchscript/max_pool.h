// Max pooling of contiguous (NCHW) float tensors on the CPU, through ATen's channels-last kernel.
// ATen's NCHW max_pool2d kernel is a scalar loop that also writes int64 indices: in PyTorch's
// own profile it is 15% of a ResNet-18 forward at batch 8 (34 ms of 222). Its channels-last
// kernel computes the same thing vectorized: the same windows visited in the same order with the
// same comparison (`val > max || isnan(val)`, from -inf), so every output is the same element,
// bit for bit, NaN payloads and the sign of zero included. Copying the input channels-last and
// the output back costs less than the difference (ResNet-18's 64x112x112 pool: 4.9 -> 1.1 ms at
// batch 1, 47 -> 12 ms at batch 8), and both copies are differentiable, so programs that take
// gradients get it too.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// `torchscope::max_pool2d(Tensor self, int[] kernel_size, int[] stride, int[] padding,
// int[] dilation, bool ceil_mode) -> Tensor`: aten::max_pool2d's arguments and result (an NCHW
// input gives an NCHW output); any input but a 4-D contiguous float32/float64 CPU one goes to
// aten::max_pool2d as it is, which also gives every error its own message.
inline constexpr const char* kMaxPoolOperator = "torchscope::max_pool2d";

// Rewrites the graph's aten::max_pool2d to torchscope::max_pool2d, first inlining (into this
// graph, the callee left as it is) the module calls that reach one. Returns how many.
int poolChannelsLast(const std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace torchscope
