// Ops Hugging Face writes out elementwise, recognized in optimized programs and replaced by
// ATen's fused kernel for the same function (to float rounding, ~1e-7 relative). Only when
// nothing else reads the formula's intermediate values: a hook on the module reads its output,
// which the replacement gives.
// - GELU as gelu_new writes it (NewGELUActivation: GPT-2, GPT-Neo, GPT-J): 0.5 x (1 + tanh(
//   sqrt(2 / pi) (x + 0.044715 x^3))), eight passes over the MLP's widest tensor, becomes
//   aten::gelu(x, 'tanh'), which linear_prepack.h then fuses into the linear before it.
// - RMSNorm as Llama, Mistral, Qwen and Phi write it: weight * (x * rsqrt(mean(x^2, -1) + eps)),
//   six passes, becomes aten::rms_norm(x, [d], weight, eps).
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// Replace each such formula in the frozen graph; return how many.
int recognizeTanhGelu(std::shared_ptr<torch::jit::Graph>& graph);
int recognizeRmsNorm(std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace torchscope
