// Prepacked convolutions, for optimized programs on the CPU (float32, and bfloat16 inference). libtorch's own inference
// rewrite (optimize_for_inference) keeps oneDNN's blocked layout between ops but hands each
// convolution a plain weight, which oneDNN reorders at every call (ResNet-18 batch 1: ~5 of 33
// ms), and its blocked kernels are slower than the channels-last ones at small batches. Here each
// 2-D convolution with constant weights becomes oneDNN's prepacked one (torchscope::prepacked_conv2d,
// over mkldnn_prepacked::conv2d_run): the weight is reordered once per input size to the
// channels-last kernel's own layout, and a ReLU that alone reads the convolution is fused into it. The program
// then gets channels-last image inputs, which these convolutions keep. Under autocast to
// bfloat16 oneDNN also reorders each weight at every call (ResNet-18 batch 1: 3.1 of 9.3 ms), so
// a bfloat16 program that takes no gradient has its convolutions prepacked at bfloat16: the same
// kernel on the same operands (bit-identical to ATen's bfloat16 convolution on the 350 shapes
// and layouts checked), without the reorder.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// `torchscope::prepacked_conv2d(Tensor input, Any packed, Tensor? bias, int[] weight_size,
// int[] stride, int[] padding, int[] dilation, int groups, bool relu, ScalarType dtype) -> Tensor`:
// runs oneDNN's context packed for the input's size (`packed` is a torchscope.PackedConvolution)
// on a 4-D CPU input it fits (of its dtype, or float32, cast to it as autocast would); any other
// input (unbatched, empty, of another channel count, type or device) takes ATen's convolution
// path, which computes it or says why as it would for the unrewritten graph. oneDNN's own op
// would read past a 3-D input's sizes.
inline constexpr const char* kPrepackedConvolutionOperator = "torchscope::prepacked_conv2d";

// oneDNN packs a weight for one input size: the layout its kernel reads depends on the size on
// some CPUs (AVX2: blocks of 24 or 32 output channels by spatial size, 3x3 kernels included; 1x1
// weights everywhere), and a weight packed for another size is reordered at every call, through
// oneDNN's generic reorder where no jit one fits (AVX2, ResNet-18 batch 1: 14-18 ms for each
// 256-channel 3x3 weight, optimize 2x slower than exact). So each convolution keeps its weight and
// packs it per input size at the first call of that size, keeping the kPackedSizes sizes used
// last; the build packs it once for a typical size (kPrepackSpatialHint square, batch 1) to check
// that oneDNN takes the convolution at all.
inline constexpr int64_t kPrepackSpatialHint = 56;
inline constexpr size_t kPackedSizes = 4;

// Rewrites the frozen graph's 2-D convolutions whose float32 weight, bias and arguments are
// constants, packed at `type` (float32, or bfloat16 for a program run under autocast, which
// would cast them so at every call); returns how many. Zero where this libtorch has no oneDNN,
// leaving the graph's convolutions as they were.
int prepackConvolutions(std::shared_ptr<torch::jit::Graph>& graph, at::ScalarType type);

}  // namespace torchscope
