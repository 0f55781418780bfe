// Prepacked convolutions, for optimized programs on the CPU (float32, and bfloat16 inference). libtorch's own inference
// rewrite (optimize_for_inference) keeps oneDNN's blocked layout between ops but hands each
// convolution a plain weight, which oneDNN reorders at every call (ResNet-18 batch 1: ~5 of 33
// ms), and its blocked kernels are slower than the channels-last ones at small batches. Here each
// 2-D convolution with constant weights becomes oneDNN's prepacked one (torchscope::prepacked_conv2d,
// over mkldnn_prepacked::conv2d_run): the weight is reordered once, at build, to the channels-last
// kernel's own layout, and a ReLU that alone reads the convolution is fused into it. The program
// then gets channels-last image inputs, which these convolutions keep. Under autocast to
// bfloat16 oneDNN also reorders each weight at every call (ResNet-18 batch 1: 3.1 of 9.3 ms), so
// a bfloat16 program that takes no gradient has its convolutions prepacked at bfloat16: the same
// kernel on the same operands (bit-identical to ATen's bfloat16 convolution on the 350 shapes
// and layouts checked), without the reorder.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// `torchscope::prepacked_conv2d(Tensor input, Any context, Tensor? bias, int[] weight_size,
// int[] stride, int[] padding, int[] dilation, int groups, bool relu, ScalarType dtype) -> Tensor`:
// runs the prepacked context on a 4-D CPU input it fits (of its dtype, or float32, cast to it as
// autocast would); any other input (unbatched, empty, of another shape, type or device) takes
// ATen's convolution path, which computes it or says why as it would for the unrewritten graph.
// oneDNN's own op would read past a 3-D input's sizes.
inline constexpr const char* kPrepackedConvolutionOperator = "torchscope::prepacked_conv2d";

// Prepacking needs an input size to plan for; a typical one. For 3x3 and larger kernels the
// layout oneDNN picks does not depend on the input's height and width (checked on ResNet-18 from 8
// to 112). A 1x1 weight's does (ResNet-18: blocks of 64 output channels at 56x56, 32 at 28x28,
// 48 at 14x14); its contiguous strides also count as channels-last, so ATen packs it for the
// blocked kernel, and oneDNN reorders it at each call with a fast jit reorder (0.02-0.1 ms).
// Packing it channels-last (a clone's unambiguous strides) was tried: at another size its reorder
// became oneDNN's generic one, 8 ms a call for ResNet-18's 512x256 downsample.
inline constexpr int64_t kPrepackSpatialHint = 56;

// Rewrites the frozen graph's 2-D convolutions whose float32 weight, bias and arguments are
// constants, prepacked at `type` (float32, or bfloat16 for a program run under autocast, which
// would cast them so at every call); returns how many. Zero where this libtorch has no oneDNN,
// leaving the graph's convolutions as they were.
int prepackConvolutions(std::shared_ptr<torch::jit::Graph>& graph, at::ScalarType type);

}  // namespace torchscope
