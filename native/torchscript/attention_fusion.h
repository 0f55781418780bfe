// Attention fused for optimized programs: eager attention as a trace records it, softmax(q k^T
// x scale + mask) v, over matmul, mul/div, add, softmax, matmul and the no-ops between them (an
// eval-mode dropout, a cast to the same type), becomes one torchscope::attention op, which runs
// ATen's scaled_dot_product_attention (one fused kernel: GPT-2 small's attention at 512 tokens,
// 12.8 ms a layer against 6.9) on 4-D float32 CPU operands and the recorded ops on any others.
// The mask is added as a float mask, exactly as eager adds it (a fully masked row gives what
// eager gives). Only where nothing else reads the scores or the probabilities: a hook on a
// pattern or on one of these ops keeps that attention unfused.
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>

namespace torchscope {

// `torchscope::attention(Tensor query, Tensor key, Tensor value, Tensor? mask, float scale,
// bool divide, int dim0, int dim1, ScalarType? softmax_dtype, ScalarType? cast) -> Tensor`:
// what the recorded ops compute: matmul(query, key.transpose(dim0, dim1)), times scale (or
// divided by it), plus mask, softmax over the last dimension (at softmax_dtype), cast, matmul
// with value.
inline constexpr const char* kAttentionOperator = "torchscope::attention";

// Fuses each such attention in the frozen graph; returns how many.
int fuseAttention(std::shared_ptr<torch::jit::Graph>& graph);

}  // namespace torchscope
