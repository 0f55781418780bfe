// GELU as Hugging Face's gelu_new writes it out (NewGELUActivation: GPT-2, GPT-Neo, GPT-J):
// 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))), eight elementwise passes over the MLP's
// widest tensor, recognized in optimized programs and replaced by aten::gelu(x, 'tanh'), the same
// function in one pass (~1e-7 relative), which linear_prepack.h then fuses into the linear
// before it. Only when nothing else reads the formula's intermediate values: a hook on the
// activation module reads its output, which the replacement gives.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// Replaces each such formula in the frozen graph; returns how many.
int recognizeTanhGelu(std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace torchscope
