#include "torchscript/supplied_arguments.h"

#include <torch/csrc/jit/api/function_impl.h>

#include <functional>
#include <map>
#include <set>
#include <unordered_map>

#include "core/errors.h"
#include "torchscript/module_calls.h"
#include "torchscript/module_nodes.h"

namespace torchscope {

namespace jit = torch::jit;
namespace prim = c10::prim;
namespace attr = c10::attr;

namespace {

std::string describeModule(const std::string& path) { return path.empty() ? "the model" : "'" + path + "'"; }

// The first call of `relative`'s forward in a forward method of `caller` (whose self is the
// graph's first input), or null.
jit::Node* findCall(const jit::Module& caller, const std::string& relative, std::shared_ptr<jit::Graph>& graph) {
  for (const jit::Method& method : caller.get_methods()) {
    if (!isForwardMethod(method.name())) continue;
    graph = jit::toGraphFunction(method.function()).graph();
    for (jit::Node* node : nodesInOrder(graph->block()->nodes().front(), graph->return_node())) {
      if (node->kind() != prim::CallMethod || !isForwardMethod(node->s(attr::name))) continue;
      if (modulePath(node->input(0), graph->inputs().at(0)) == relative) return node;
    }
  }
  return nullptr;
}

// Whether `value` is computed from `self`'s attributes and constants alone, by ops without
// effects: the same at every call.
class Independence {
 public:
  explicit Independence(const jit::Value* self) : self_(self) {}
  bool operator()(jit::Value* value) {
    if (value == self_) return true;
    auto found = memo_.find(value);
    if (found != memo_.end()) return found->second;
    jit::Node* node = value->node();
    bool independent = node->kind() != prim::Param && node->kind() != prim::CallMethod && node->kind() != prim::CallFunction &&
                       node->blocks().empty() && !node->hasSideEffects() && !node->isNondeterministic();
    for (jit::Value* input : node->inputs()) independent = independent && (*this)(input);
    return memo_[value] = independent;
  }

 private:
  const jit::Value* self_;
  std::map<const jit::Value*, bool> memo_;
};

}  // namespace

SuppliedArguments::SuppliedArguments(const jit::Module& module, const std::string& path) {
  jit::Module self = module;
  std::vector<std::pair<std::string, jit::Module>> ancestors{{"", module}};  // root first
  size_t start = 0;
  while (start < path.size()) {
    const size_t dot = path.find('.', start);
    const std::string name = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    self = self.attr(name).toModule();
    ancestors.emplace_back(path.substr(0, dot == std::string::npos ? path.size() : dot), self);
    start = dot == std::string::npos ? path.size() : dot + 1;
  }
  self_ = self;
  const auto& schema = self_.get_method("forward").function().getSchema();
  for (size_t i = 1; i < schema.arguments().size(); ++i) {
    const auto& argument = schema.arguments()[i];
    arguments_.push_back({argument.name(), argument.type()->str(), false, argument.default_value().has_value(), ""});
    defaults_.push_back(argument.default_value());
  }
  // The nearest module whose forward calls it: its parent, or one further up.
  ancestors.pop_back();
  for (auto ancestor = ancestors.rbegin(); ancestor != ancestors.rend(); ++ancestor) {
    const std::string relative = ancestor->first.empty() ? path : path.substr(ancestor->first.size() + 1);
    std::shared_ptr<jit::Graph> graph;
    jit::Node* call = findCall(ancestor->second, relative, graph);
    if (call == nullptr) continue;
    jit::Value* callerSelf = graph->inputs().at(0);
    Independence independent(callerSelf);
    std::vector<jit::Value*> supplied;
    for (size_t i = 1; i < call->inputs().size() && i <= arguments_.size(); ++i) {
      jit::Value* value = call->input(i);
      SubmoduleArgument& argument = arguments_[i - 1];
      if (!independent(value)) {
        argument.source = "computed by " + describeModule(ancestor->first) + " from forward's inputs";
        continue;
      }
      argument.supplied = true;
      const auto attribute = modulePath(value, callerSelf);
      argument.source = attribute ? (ancestor->first.empty() ? *attribute : ancestor->first + "." + *attribute)
                                  : "computed by " + describeModule(ancestor->first) + " from its parameters and constants";
      supplied.push_back(value);
    }
    if (supplied.empty()) return;
    // The nodes computing them, copied in order into a graph of the caller alone.
    std::set<jit::Node*> needed;
    std::function<void(jit::Value*)> need = [&](jit::Value* value) {
      if (value == callerSelf || !needed.insert(value->node()).second) return;
      for (jit::Value* input : value->node()->inputs()) need(input);
    };
    for (jit::Value* value : supplied) need(value);
    supplier_ = std::make_shared<jit::Graph>();
    std::unordered_map<jit::Value*, jit::Value*> copies{{callerSelf, supplier_->addInput("self")->setType(callerSelf->type())}};
    for (jit::Node* node : nodesInOrder(graph->block()->nodes().front(), graph->return_node())) {
      if (!needed.count(node)) continue;
      jit::Node* copy = supplier_->appendNode(supplier_->createClone(node, [&](jit::Value* v) { return copies.at(v); }));
      for (size_t i = 0; i < node->outputs().size(); ++i) copies[node->output(i)] = copy->output(i);
    }
    for (jit::Value* value : supplied) supplier_->registerOutput(copies.at(value));
    caller_ = ancestor->second;
    return;
  }
}

jit::Stack SuppliedArguments::stack(const std::string& path, std::vector<c10::IValue> inputs) {
  if (supplier_) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!computed_) {
      jit::GraphFunction supplier(c10::QualifiedName("torchscope.supplied_arguments"), supplier_, nullptr);
      jit::Stack stack{caller_._ivalue()};
      supplier.run(stack);
      supplied_ = std::move(stack);
      computed_ = true;
    }
  }
  jit::Stack stack{self_._ivalue()};
  size_t nextSupplied = 0;
  size_t nextInput = 0;
  size_t given = 0;  // arguments the caller gives
  for (size_t i = 0; i < arguments_.size(); ++i) {
    const SubmoduleArgument& argument = arguments_[i];
    if (argument.supplied) {
      stack.push_back(supplied_.at(nextSupplied++));
      continue;
    }
    given += 1;
    if (nextInput < inputs.size()) {
      stack.push_back(std::move(inputs[nextInput++]));
      continue;
    }
    TS_CHECK(defaults_[i].has_value(), code::kInvalidArgument, "module '", path, "' needs its argument '", argument.name, "' (",
             argument.type, ")", argument.source.empty() ? "" : ", " + argument.source, ": give it");
    stack.push_back(*defaults_[i]);
  }
  TS_CHECK(inputs.size() <= given, code::kInvalidArgument, "module '", path, "' takes ", given, " input(s) from its caller, got ",
           inputs.size());
  return stack;
}

}  // namespace torchscope
