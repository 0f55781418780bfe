#include "hooks.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/freeze_module.h>
#include <torch/csrc/jit/passes/frozen_graph_optimizations.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <set>

#include "errors.h"
#include "patch.h"

namespace torchscope {

namespace jit = torch::jit;
using c10::Symbol;
namespace prim = c10::prim;
namespace aten = c10::aten;
namespace attr = c10::attr;

namespace {

// The module path that `value` (a module object) refers to, "" for `self`; nullopt when it
// is not a chain of attribute reads starting at `self` (e.g. a module picked from a list
// at run time), which torchscope cannot name.
std::optional<std::string> modulePath(jit::Value* value, const jit::Value* self) {
  std::vector<std::string> names;
  while (value != self) {
    jit::Node* node = value->node();
    if (node->kind() != prim::GetAttr) return std::nullopt;
    names.push_back(node->s(attr::name));
    value = node->input(0);
  }
  std::string path;
  for (auto name = names.rbegin(); name != names.rend(); ++name) {
    path += (path.empty() ? "" : ".") + *name;
  }
  return path;
}

// A module call: traced models compile the 2nd, 3rd... call of one module (a ReLU used
// twice in a block) as methods forward1, forward2...
bool isForward(const std::string& method) {
  return method.rfind("forward", 0) == 0 &&
         std::all_of(method.begin() + 7, method.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// True when the module at `outer` contains the module at `inner` (and is not it).
bool contains(const std::string& outer, const std::string& inner) {
  if (outer.empty()) return !inner.empty();
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '.';
}

// Graph inputs that carry one patch's run-time arguments.
struct PatchInputs {
  jit::Value* mode;
  jit::Value* value;
  jit::Value* scale;
  jit::Value* channels;
  jit::Value* positions;
};

class Instrumenter {
 public:
  Instrumenter(std::shared_ptr<jit::Graph> graph, Program& program)
      : graph_(std::move(graph)), self_(graph_->inputs().at(0)), program_(program) {
    const ProgramSpec& spec = program_.spec;
    targets_.insert(spec.capture.begin(), spec.capture.end());
    targets_.insert(spec.patch.begin(), spec.patch.end());
    for (const std::string& layer : spec.patch) {
      const std::string stem = "patch_" + std::to_string(patches_.size()) + "_";
      patches_[layer] = PatchInputs{
          graph_->addInput(stem + "mode")->setType(c10::IntType::get()),
          graph_->addInput(stem + "value")->setType(c10::OptionalType::create(c10::TensorType::get())),
          graph_->addInput(stem + "scale")->setType(c10::FloatType::get()),
          graph_->addInput(stem + "channels")->setType(c10::ListType::ofInts()),
          graph_->addInput(stem + "positions")->setType(c10::ListType::ofInts())};
    }
  }

  void run() {
    visit(graph_->block());
    for (const std::string& layer : targets_) {
      if (program_.callSites[layer] == 0) {
        throw Error(code::kUnknownLayer, "layer '" + layer +
                                             "' is a submodule, but forward never calls it in a way torchscope "
                                             "can follow (it may be unused, or picked from a container at run time)");
      }
    }
    rewriteReturn();
    jit::EliminateDeadCode(graph_);
  }

 private:
  bool isTarget(const std::string& path) const { return targets_.count(path) > 0; }
  bool leadsToTarget(const std::string& path) const {
    return std::any_of(targets_.begin(), targets_.end(), [&](const std::string& t) { return contains(path, t); });
  }

  void visit(jit::Block* block) {
    for (jit::Node* node = block->nodes().front(); node != block->return_node();) {
      if (node->kind() == prim::CallMethod) {
        auto path = modulePath(node->input(0), self_);
        auto classType = node->input(0)->type()->cast<c10::ClassType>();
        const std::string method = node->s(attr::name);
        const bool hooked = path && isForward(method) && isTarget(*path);
        if (path && classType && leadsToTarget(*path)) {
          // Inline the call so the calls inside it become visible; continue with its body.
          jit::Node* before = node->prev();
          jit::Node* after = node->next();
          // The unoptimized graph: the optimized one has every nested call already inlined.
          auto& callee = jit::toGraphFunction(classType->getMethod(method));
          auto outputs = jit::inlineCallTo(node, &callee, callee.graph().get());
          if (hooked) hook(*path, outputs.at(0), after);
          node = before->next();
          continue;
        }
        if (hooked) {
          jit::Node* after = node->next();
          hook(*path, node->output(), after);
          node = after;
          continue;
        }
      }
      for (jit::Block* nested : node->blocks()) visit(nested);
      node = node->next();
    }
  }

  // Runs after each call of `layer`: patch its output (later uses see the patched value),
  // then capture what later uses see.
  void hook(const std::string& layer, jit::Value* output, jit::Node* insertBefore) {
    jit::WithInsertPoint guard(insertBefore);
    jit::Value* seen = output;
    if (auto found = patches_.find(layer); found != patches_.end()) {
      seen = patched(layer, output, found->second);
      output->replaceAllUsesAfterNodeWith(seen->node(), seen);
    }
    if (std::binary_search(program_.spec.capture.begin(), program_.spec.capture.end(), layer)) {
      jit::Value* list = captureList(layer, seen->type());
      captures_.push_back(graph_->insert(aten::append, {list, snapshot(seen)})->node());
    }
    program_.callSites[layer] += 1;
  }

  jit::Value* patched(const std::string& layer, jit::Value* output, const PatchInputs& in) {
    if (output->type()->cast<c10::TensorType>()) {
      return graph_->insert(Symbol::fromQualString(kPatchOperator),
                            {output, in.mode, in.value, in.scale, in.channels, in.positions,
                             graph_->insertConstant(layer)});
    }
    if (output->type()->cast<c10::TupleType>()) {
      // Modules returning tuples (attention returns (output, weights)): patch the first tensor.
      auto elements = graph_->insertNode(graph_->createTupleUnpack(output))->outputs().vec();
      for (auto& element : elements) {
        if (element->type()->cast<c10::TensorType>()) {
          element = patched(layer, element, in);
          return graph_->insertNode(graph_->createTuple(elements))->output();
        }
      }
    }
    throw Error(code::kInvalidArgument, "layer '" + layer + "' returns " + output->type()->str() +
                                            ": only a tensor, or a tuple holding one, can be patched");
  }

  // A copy of the value as the module returned it, so later in-place ops (ReLU(inplace=True))
  // cannot change what was captured: what a Python hook storing output.clone() sees.
  jit::Value* snapshot(jit::Value* value) {
    if (value->type()->cast<c10::TensorType>()) return graph_->insert(aten::clone, {value});
    if (value->type()->cast<c10::TupleType>()) {
      auto elements = graph_->insertNode(graph_->createTupleUnpack(value))->outputs().vec();
      for (auto& element : elements) element = snapshot(element);
      return graph_->insertNode(graph_->createTuple(elements))->output();
    }
    return value;
  }

  jit::Value* captureList(const std::string& layer, const c10::TypePtr& type) {
    const c10::TypePtr elementType = c10::unshapedType(type);
    auto found = lists_.find(layer);
    if (found != lists_.end()) {
      const auto listElement = found->second->type()->expectRef<c10::ListType>().getElementType();
      if (!elementType->isSubtypeOf(*listElement)) {
        throw Error(code::kInvalidArgument, "layer '" + layer + "' returns " + listElement->str() +
                                                " at one call and " + elementType->str() + " at another");
      }
      return found->second;
    }
    // Created at the top of the graph so it dominates every call site, loops included.
    jit::Node* list = graph_->createList(elementType, {});
    list->insertAfter(graph_->block()->param_node());
    return lists_[layer] = list->output();
  }

  // Returns (forward's output?, capture lists...). Without the output, everything after the
  // last capture is cut: a layer2 capture never runs layer3, layer4 or fc.
  void rewriteReturn() {
    std::vector<jit::Value*> results;
    if (program_.spec.returnOutput) {
      results.assign(graph_->outputs().begin(), graph_->outputs().end());
    }
    while (!graph_->outputs().empty()) graph_->eraseOutput(0);
    if (!program_.spec.returnOutput) cutAfterLastCapture();
    for (const std::string& layer : program_.spec.capture) results.push_back(lists_.at(layer));
    jit::WithInsertPoint guard(graph_->block()->return_node());
    graph_->registerOutput(graph_->insertNode(graph_->createTuple(results))->output());
  }

  void cutAfterLastCapture() {
    jit::Block* top = graph_->block();
    jit::Node* last = nullptr;
    for (jit::Node* node : captures_) {
      while (node->owningBlock() != top) node = node->owningBlock()->owningNode();
      if (last == nullptr || node->isAfter(last)) last = node;
    }
    if (last == nullptr) return;
    // Last first, so every node's users are gone before it is.
    for (jit::Node* node = top->return_node()->prev(); node != last;) {
      jit::Node* previous = node->prev();
      node->destroy();
      node = previous;
    }
  }

  std::shared_ptr<jit::Graph> graph_;
  jit::Value* self_;
  Program& program_;
  std::set<std::string> targets_;
  std::map<std::string, PatchInputs> patches_;
  std::map<std::string, jit::Value*> lists_;
  std::vector<jit::Node*> captures_;
};

void countOps(jit::Block* block, std::map<std::string, int>& counts) {
  for (jit::Node* node : block->nodes()) {
    counts[node->kind().toQualString()] += 1;
    for (jit::Block* nested : node->blocks()) countOps(nested, counts);
  }
}

void collectCalls(jit::Block* block, const jit::Value* self, std::set<std::string>& calls) {
  for (jit::Node* node : block->nodes()) {
    if (node->kind() == prim::CallMethod) {
      auto path = modulePath(node->input(0), self);
      const std::string method = node->s(attr::name);
      if (path) calls.insert(*path + (isForward(method) ? "" : ":" + method));
    }
    for (jit::Block* nested : node->blocks()) collectCalls(nested, self, calls);
  }
}

}  // namespace

std::string ProgramSpec::key() const {
  std::string key;
  for (const auto& layer : capture) key += layer + ",";
  key += "|";
  for (const auto& layer : patch) key += layer + ",";
  return key + (returnOutput ? "|output" : "|cut") + (optimize ? "|optimized" : "|exact");
}

namespace {

// Programs run on the simple executor: the profiling one specializes on input shapes and
// re-optimizes when they change, which random-transform inputs do every step (maximize spent
// seconds per step re-profiling); on the CPU it brings nothing else.
std::shared_ptr<jit::GraphFunction> simpleFunction(std::shared_ptr<jit::Graph> graph) {
  return std::make_shared<jit::GraphFunction>(c10::QualifiedName("torchscope.instrumented_forward"), std::move(graph),
                                              nullptr, jit::ExecutorExecutionMode::SIMPLE);
}

// The program as a method of a frozen copy of the module, optimized for inference. The copy
// shares the module's tensors (clone in place gives new types, same data); folding makes new
// ones only for the weights it rewrites.
void buildOptimized(const torch::jit::Module& module, Program& program) {
  static const std::string name = "torchscope_program";
  torch::jit::Module base = module.clone(/*inplace=*/true);
  auto graph = jit::toGraphFunction(base.get_method("forward").function()).graph()->copy();
  Instrumenter(graph, program).run();
  auto* function = base._ivalue()->compilation_unit()->create_function(
      c10::QualifiedName(*base.type()->name(), name), graph);
  base.type()->addMethod(function);
  torch::jit::Module frozen = jit::freeze_module(base, {name});
  // torch::jit::freeze would optimize forward only; the program is another method.
  auto frozenGraph = jit::toGraphFunction(frozen.get_method(name).function()).graph();
  jit::OptimizeFrozenGraph(frozenGraph, /*optimize_numerics=*/true);
  frozen = jit::optimize_for_inference(frozen, {name});
  program.function = simpleFunction(jit::toGraphFunction(frozen.get_method(name).function()).graph());
  program.forwardSchema = frozen.get_method("forward").function().getSchema();  // self is the frozen type
  program.self = frozen._ivalue();
}

void buildExact(const torch::jit::Module& module, Program& program) {
  auto graph = jit::toGraphFunction(module.get_method("forward").function()).graph()->copy();
  Instrumenter(graph, program).run();
  program.function = simpleFunction(graph);
  program.forwardSchema = module.get_method("forward").function().getSchema();
  program.self = module._ivalue();
}

}  // namespace

std::shared_ptr<const Program> instrument(const torch::jit::Module& module, const ProgramSpec& spec) {
  std::set<std::string> known;
  for (const auto& child : module.named_modules()) known.insert(child.name);
  for (const auto* layers : {&spec.capture, &spec.patch}) {
    for (const std::string& layer : *layers) {
      if (layer.empty() || !known.count(layer)) throw Error(code::kUnknownLayer, "no submodule named '" + layer + "'");
    }
  }
  auto program = std::make_shared<Program>();
  program->spec = spec;
  if (spec.optimize) {
    buildOptimized(module, *program);
  } else {
    buildExact(module, *program);
  }
  return program;
}

RunResult runProgram(const Program& program, std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches) {
  jit::Stack stack;
  stack.reserve(inputs.size() + 1 + patches.size() * 5);
  stack.push_back(program.self);
  for (auto& input : inputs) stack.push_back(std::move(input));
  try {
    program.forwardSchema->checkAndNormalizeInputs(stack);
  } catch (const c10::Error& e) {
    throw Error(code::kInvalidArgument, e.what_without_backtrace());
  }
  for (const PatchArgs& patch : patches) {
    stack.emplace_back(patch.mode);
    stack.emplace_back(patch.value);
    stack.emplace_back(patch.scale);
    stack.emplace_back(c10::List<int64_t>(patch.channels));
    stack.emplace_back(c10::List<int64_t>(patch.positions));
  }
  program.function->run(stack);
  auto results = stack.back().toTuple()->elements().vec();
  RunResult result;
  size_t next = 0;
  if (program.spec.returnOutput) result.output = results.at(next++);
  for (const std::string& layer : program.spec.capture) {
    result.captures[layer] = results.at(next++).toList().vec();
  }
  return result;
}

std::shared_ptr<const Program> ProgramCache::get(const torch::jit::Module& module, const ProgramSpec& spec) {
  const std::string key = spec.key();
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = programs_.find(key);
  if (found != programs_.end()) return found->second;
  auto program = instrument(module, spec);
  programs_[key] = program;
  return program;
}

ProgramSummary summarize(const Program& program) {
  ProgramSummary summary;
  auto graph = program.function->graph();
  summary.graph = graph->toString();
  std::set<std::string> calls;
  collectCalls(graph->block(), graph->inputs().at(0), calls);
  summary.calledModules.assign(calls.begin(), calls.end());
  auto inlined = graph->copy();
  jit::Inline(*inlined);
  countOps(inlined->block(), summary.opCounts);
  return summary;
}

}  // namespace torchscope
