#include "torchscript/graph_nodes.h"

#include <algorithm>
#include <functional>
#include <iterator>

namespace torchscope {

std::vector<torch::jit::Node*> allNodes(const std::shared_ptr<torch::jit::Graph>& graph) {
  std::vector<torch::jit::Node*> nodes;
  std::function<void(torch::jit::Block*)> collect = [&](torch::jit::Block* block) {
    for (torch::jit::Node* node : block->nodes()) {
      for (torch::jit::Block* nested : node->blocks()) collect(nested);
      nodes.push_back(node);
    }
  };
  collect(graph->block());
  return nodes;
}

std::vector<torch::jit::Node*> nodesOfKind(const std::shared_ptr<torch::jit::Graph>& graph, c10::Symbol kind) {
  std::vector<torch::jit::Node*> found;
  const auto nodes = allNodes(graph);
  std::copy_if(nodes.begin(), nodes.end(), std::back_inserter(found), [&](torch::jit::Node* node) { return node->kind() == kind; });
  return found;
}

}  // namespace torchscope
