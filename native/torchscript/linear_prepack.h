// Linear layers prepacked for oneDNN, for optimized float32 programs on the CPU. ATen's linear
// goes to MKL, whose kernels on an AMD CPU run well below oneDNN's (GPT-2 small's LM head at 512
// tokens: 431 ms against 238 ms; its MLP's first layer 17.5 against 11.4), and libtorch's own
// inference rewrite leaves transformer linears alone. Here each linear with a constant float32
// weight (aten::linear, and aten::addmm as Hugging Face's Conv1D writes one: the weight
// transposed, and as freezing leaves it: matmul by a transposed constant) becomes oneDNN's linear
// (mkldnn::_linear_pointwise) on the weight reordered once for it, and
// the activation that alone reads it (GELU, ReLU, SiLU; through the view a Conv1D adds) is
// fused into it as oneDNN's post-op. Exact to float rounding (~1e-6 relative). A hook that
// reads the linear's output, or the value before the activation, is another reader: then that
// layer keeps its activation apart, so what the hook sees is what exact mode computes.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// `torchscope::prepacked_linear(Tensor input, Any packed, Tensor? bias, str attr, str? algorithm)
// -> Tensor`: oneDNN's linear on the weight reordered for it (`packed`, a
// torchscope.PackedLinear), with `attr` ('none', 'gelu' with algorithm 'none' or 'tanh', 'relu',
// 'swish') as its post-op, on a float32 CPU input; ATen's linear and activation on any other.
inline constexpr const char* kPrepackedLinearOperator = "torchscope::prepacked_linear";

// Rewrites the frozen graph's linear layers as above; returns how many. Zero where this libtorch
// has no oneDNN (or it is disabled), leaving the graph as it was.
int prepackLinears(std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace torchscope
