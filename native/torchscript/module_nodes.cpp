#include "torchscript/module_nodes.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/errors.h"

namespace torchscope {

namespace jit = torch::jit;

namespace {

bool isNamed(const jit::Node* node) {
  if (node->kind().is_prim() || node->outputs().size() != 1) return false;
  return node->output()->type()->cast<c10::TensorType>() != nullptr;
}

// Kernels that compute attention whole: no softmax of its own to hook.
bool isFusedAttention(const jit::Node* node) {
  static const std::set<std::string> kernels = {
      "aten::scaled_dot_product_attention",        "aten::_scaled_dot_product_attention_math",
      "aten::_scaled_dot_product_flash_attention", "aten::_scaled_dot_product_efficient_attention",
      "aten::_native_multi_head_attention",        "aten::_transformer_encoder_layer_fwd"};
  return kernels.count(node->kind().toQualString()) > 0;
}

bool isSoftmax(const jit::Node* node) {
  static const std::set<std::string> kinds = {"aten::softmax", "aten::_softmax", "aten::special_softmax"};
  return kinds.count(node->kind().toQualString()) > 0;
}

std::string listed(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace

std::vector<jit::Node*> nodesInOrder(jit::Node* first, jit::Node* end) {
  std::vector<jit::Node*> nodes;
  for (jit::Node* node = first; node != end && node->kind() != c10::prim::Return; node = node->next()) {
    nodes.push_back(node);
    for (jit::Block* nested : node->blocks()) {
      auto inner = nodesInOrder(nested->nodes().front(), nested->return_node());
      nodes.insert(nodes.end(), inner.begin(), inner.end());
    }
  }
  return nodes;
}

std::vector<NamedNode> namedNodes(jit::Graph& graph) {
  std::vector<NamedNode> named;
  std::map<std::string, int> uses;
  for (jit::Node* node : nodesInOrder(graph.block()->nodes().front(), graph.block()->return_node())) {
    if (!isNamed(node)) continue;
    const std::string op = node->kind().toUnqualString();
    const int use = uses[op]++;
    named.push_back({use == 0 ? op : op + "_" + std::to_string(use), node});
  }
  return named;
}

jit::Node* findNode(jit::Graph& graph, const HookPoint& point) {
  const auto named = namedNodes(graph);
  if (point.node != kPatternSuffix) {
    for (const NamedNode& entry : named) {
      if (entry.name == point.node) return entry.node;
    }
    TS_FAIL(code::kUnknownLayer, "module '", point.module, "''s forward has no operation '", point.node, "' (model.nodes('", point.module,
            "') lists them)");
  }
  std::vector<std::string> softmaxes;
  jit::Node* found = nullptr;
  for (const NamedNode& entry : named) {
    if (!isSoftmax(entry.node)) continue;
    softmaxes.push_back(point.module + kNodeSeparator + entry.name);
    found = entry.node;
  }
  if (softmaxes.size() == 1) return found;
  const std::string layer = point.module + kPatternSuffix;
  for (jit::Node* node : nodesInOrder(graph.block()->nodes().front(), graph.block()->return_node())) {
    TS_CHECK(!isFusedAttention(node), code::kUnknownLayer, "layer '", layer, "': its attention is fused into one kernel (",
             node->kind().toQualString(), ") that computes no pattern; export the model with eager attention ",
             "(Hugging Face: attn_implementation='eager') for attention patterns");
  }
  TS_CHECK(!softmaxes.empty(), code::kUnknownLayer, "layer '", layer, "': module '", point.module,
           "''s own forward computes no softmax, so it holds no attention pattern (its submodules may)");
  TS_FAIL(code::kUnknownLayer, "layer '", layer, "': module '", point.module, "''s forward has ", softmaxes.size(),
          " softmaxes; hook the one meant: ", listed(softmaxes));
}

std::vector<ModuleNode> describeNodes(jit::Graph& graph) {
  const auto named = namedNodes(graph);
  const auto softmaxes = std::count_if(named.begin(), named.end(), [](const NamedNode& entry) { return isSoftmax(entry.node); });
  std::vector<ModuleNode> nodes;
  for (const NamedNode& entry : named)
    nodes.push_back({entry.name, entry.node->kind().toQualString(), softmaxes == 1 && isSoftmax(entry.node)});
  return nodes;
}

}  // namespace torchscope
