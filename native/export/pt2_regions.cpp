#include "export/pt2_regions.h"

#include <map>

namespace torchscope::pt2 {

namespace {

constexpr const char* kSetGradEnabled = "torch.ops.higher_order.wrap_with_set_grad_enabled";
constexpr const char* kAutocast = "torch.ops.higher_order.wrap_with_autocast";

bool named(const Value& value) {
  return value.kind == Value::kTensor ||
         ((value.kind == Value::kSymInt || value.kind == Value::kSymFloat || value.kind == Value::kSymBool) && value.syms[0].named());
}

const std::string& nameOf(const Value& value) { return value.kind == Value::kTensor ? value.names[0] : value.syms[0].name; }

// `value` with every name it holds mapped by `rename`.
Value renamed(Value value, const std::map<std::string, std::string>& rename, const std::string& prefix) {
  auto map = [&](const std::string& name) {
    if (name.empty()) return name;
    auto found = rename.find(name);
    return found != rename.end() ? found->second : prefix + name;
  };
  for (std::string& name : value.names) name = map(name);
  for (SymValue& sym : value.syms) {
    if (sym.named()) sym.name = map(sym.name);
  }
  return value;
}

class Inliner {
 public:
  explicit Inliner(Graph& out) : out_(out) {}

  void add(const Node& node) {
    const bool grad = node.target == kSetGradEnabled;
    if ((!grad && node.target != kAutocast) || !inline_(node, grad)) out_.nodes.push_back(node);
  }

 private:
  // Inlines a region node; false (left as it is) where its operands or results are literals.
  bool inline_(const Node& node, bool grad) {
    const size_t graphAt = grad ? 1 : 4;
    if (node.inputs.size() <= graphAt || node.inputs[graphAt].value.kind != Value::kGraph) return false;
    const Graph& region = *node.inputs[graphAt].value.graph;
    std::vector<std::string> operands;
    for (size_t i = graphAt + 1; i < node.inputs.size(); ++i) {
      const Value& value = node.inputs[i].value;
      if (value.kind == Value::kTensors) {
        operands.insert(operands.end(), value.names.begin(), value.names.end());
      } else if (named(value)) {
        operands.push_back(nameOf(value));
      } else {
        return false;
      }
    }
    if (operands.size() != region.inputs.size() || region.outputs.size() != node.outputs.size()) return false;
    for (const Value& value : region.inputs) {
      if (!named(value)) return false;
    }
    for (size_t i = 0; i < region.outputs.size(); ++i) {
      if (!named(region.outputs[i]) || !named(node.outputs[i])) return false;
    }
    const std::string prefix = node.name + ".";
    std::map<std::string, std::string> rename;
    for (size_t i = 0; i < operands.size(); ++i) rename[nameOf(region.inputs[i])] = operands[i];

    Node enter = node;
    enter.synthetic = grad ? Synthetic::kEnterGradMode : Synthetic::kEnterAutocast;
    enter.name = prefix + "enter";
    enter.inputs.assign(node.inputs.begin(), node.inputs.begin() + static_cast<std::ptrdiff_t>(graphAt));
    enter.outputs.clear();
    out_.nodes.push_back(enter);
    // The region's own nodes, regions inside it inlined too.
    Graph inner;
    Inliner nested(inner);
    for (const Node& child : region.nodes) nested.add(child);
    for (Node child : inner.nodes) {
      child.name = prefix + child.name;
      if (child.synthetic == Synthetic::kExitRegion) child.inputs[0].value.strings[0] = prefix + child.inputs[0].value.strings[0];
      for (NamedValue& input : child.inputs) {
        if (input.value.kind != Value::kGraph) input.value = renamed(input.value, rename, prefix);
      }
      for (Value& output : child.outputs) output = renamed(output, rename, prefix);
      out_.nodes.push_back(std::move(child));
    }
    for (const auto& [name, meta] : inner.tensors) out_.tensors.emplace(rename.count(name) ? rename.at(name) : prefix + name, meta);
    for (const auto& [name, meta] : region.tensors) out_.tensors.emplace(rename.count(name) ? rename.at(name) : prefix + name, meta);
    for (size_t i = 0; i < node.outputs.size(); ++i) {
      Node alias;
      alias.synthetic = Synthetic::kAlias;
      alias.target = "torchscope.alias";
      alias.name = prefix + "output_" + std::to_string(i);
      alias.inputs.push_back({"", renamed(region.outputs[i], rename, prefix)});
      alias.outputs.push_back(node.outputs[i]);
      alias.modules = node.modules;
      out_.nodes.push_back(std::move(alias));
    }
    Node exit;
    exit.synthetic = Synthetic::kExitRegion;
    exit.target = "torchscope.exit_region";
    exit.name = prefix + "exit";
    exit.modules = node.modules;
    Value saved;
    saved.kind = Value::kString;
    saved.strings.push_back(enter.name);
    exit.inputs.push_back({"", saved});
    out_.nodes.push_back(std::move(exit));
    return true;
  }

  Graph& out_;
};

}  // namespace

Graph inlineRegions(const Graph& graph) {
  Graph out;
  out.inputs = graph.inputs;
  out.outputs = graph.outputs;
  out.tensors = graph.tensors;
  Inliner inliner(out);
  for (const Node& node : graph.nodes) inliner.add(node);
  return out;
}

}  // namespace torchscope::pt2
