// The operations inside a module's own forward, named so that a request can hook one
// ('<module path>/<node>', program/hook_points.h). A name is the op's ("softmax"; "add_" for
// aten::add_), with _1, _2... for its later uses in the same forward, as torch.fx names nodes;
// only ops that give one tensor are named (not prim:: bookkeeping: constants, attribute reads,
// calls of submodules, which are hook points of their own).
#pragma once

#include <torch/csrc/jit/ir/ir.h>

#include <string>
#include <vector>

#include "program/program.h"

namespace torchscope {

struct NamedNode {
  std::string name;
  torch::jit::Node* node;
};

// Every named operation of `graph`, in order (nested blocks included).
std::vector<NamedNode> namedNodes(torch::jit::Graph& graph);

// Every node of `block` from `first` up to `end` (exclusive; the block's return for all), each
// followed by the nodes of its nested blocks: the order in which a copy of the block (an
// inlined call) holds the same nodes.
std::vector<torch::jit::Node*> nodesInOrder(torch::jit::Node* first, torch::jit::Node* end);

// The node `point` names in `graph`, the forward of module `point.module`: by name, or for
// kPatternSuffix the one softmax. Throws UNKNOWN_LAYER saying what the forward has instead
// (its attention fused into one kernel, no softmax, several).
torch::jit::Node* findNode(torch::jit::Graph& graph, const HookPoint& point);

// `graph`'s named operations as ModelFormat::nodes lists them.
std::vector<ModuleNode> describeNodes(torch::jit::Graph& graph);

}  // namespace torchscope
