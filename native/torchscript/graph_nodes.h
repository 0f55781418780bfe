// The nodes of a graph, nested blocks included, in order: what the inference rewrites scan
// before they change anything (conv_prepack.h, linear_prepack.h, attention_fusion.h,
// written_out_ops.h).
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <memory>
#include <vector>

namespace torchscope {

std::vector<torch::jit::Node*> allNodes(const std::shared_ptr<torch::jit::Graph>& graph);
std::vector<torch::jit::Node*> nodesOfKind(const std::shared_ptr<torch::jit::Graph>& graph, c10::Symbol kind);

}  // namespace torchscope
