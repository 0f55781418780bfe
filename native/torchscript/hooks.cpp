#include "torchscript/hooks.h"

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/constant_propagation.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/inliner.h>

#include <algorithm>
#include <set>

#include "core/errors.h"
#include "program/patch.h"
#include "torchscript/gradient_tap.h"
#include "torchscript/module_calls.h"
#include "torchscript/module_nodes.h"
#include "torchscript/sae_ops.h"
#include "torchscript/snapshot.h"

namespace torchscope {

namespace jit = torch::jit;
using c10::Symbol;
namespace prim = c10::prim;
namespace aten = c10::aten;
namespace attr = c10::attr;

namespace {

// PyTorch kernels that compute a whole module, submodules included, in one call: the "fast
// path" scripted TransformerEncoderLayer and MultiheadAttention take in inference. Submodules
// never run there, so hooks on them would never fire.
bool isFusedModuleKernel(const jit::Node* node) {
  static const std::set<Symbol> kernels = {Symbol::fromQualString("aten::_transformer_encoder_layer_fwd"),
                                           Symbol::fromQualString("aten::_native_multi_head_attention")};
  return kernels.count(node->kind()) > 0;
}

// Python's TransformerEncoderLayer also leaves its fast path while a hook is attached to the
// layer itself (it checks its own modules' hooks); MultiheadAttention does not check, and a
// hook on it sees the fused kernel's output. A hooked module turns off only the former.
bool offWhileHooked(const jit::Node* node) {
  static const Symbol kernel = Symbol::fromQualString("aten::_transformer_encoder_layer_fwd");
  return node->kind() == kernel;
}

bool callsKernelOffWhileHooked(jit::Block* block) {
  for (jit::Node* node : block->nodes()) {
    if (offWhileHooked(node)) return true;
    for (jit::Block* nested : node->blocks()) {
      if (callsKernelOffWhileHooked(nested)) return true;
    }
  }
  return false;
}

// An SAE spliced in: its program input, and once it has read its hook point, the value read
// and the features (which its output is decoded from, where it writes).
struct Splice {
  SaeSplice splice;
  jit::Value* sae = nullptr;
  jit::Value* x = nullptr;
  jit::Value* features = nullptr;
};

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
  Instrumenter(std::shared_ptr<jit::Graph> graph, const ProgramSpec& spec)
      : graph_(std::move(graph)), self_(graph_->inputs().at(0)), spec_(spec) {
    for (const std::string& layer : spec_.targets()) callSites_[layer] = 0;
    for (const std::string& layer : spec_.patch) {
      const std::string stem = "patch_" + std::to_string(patches_.size()) + "_";
      patches_[layer] = PatchInputs{graph_->addInput(stem + "mode")->setType(c10::IntType::get()),
                                    graph_->addInput(stem + "value")->setType(c10::OptionalType::create(c10::TensorType::get())),
                                    graph_->addInput(stem + "scale")->setType(c10::FloatType::get()),
                                    graph_->addInput(stem + "channels")->setType(c10::ListType::ofInts()),
                                    graph_->addInput(stem + "positions")->setType(c10::ListType::ofInts())};
    }
    for (const std::string& layer : spec_.replace) {
      replacements_[layer] = graph_->addInput("replace_" + std::to_string(replacements_.size()))->setType(c10::TensorType::get());
    }
    for (const SaeSplice& splice : spec_.saes) {
      saes_[splice.read] = Splice{splice, graph_->addInput("sae_" + std::to_string(saes_.size()))->setType(saeObjectType())};
      saeWrites_[splice.write] = splice.read;
    }
  }

  std::map<std::string, int> run() {
    visit(graph_->block());
    // A layer without hook points fails the build; the caller says why.
    for (const auto& [layer, sites] : callSites_) {
      if (sites == 0) return callSites_;
    }
    rewriteReturn();
    // Drops the fused branches turned off (so the program holds no fused kernel it cannot take).
    if (forcedBranches_) jit::ConstantPropagationImmutableTypes(graph_);
    // A replaced value leaves what computed it unused; module calls are never dead code, so
    // they are inlined first, and then what is dead goes.
    if (!spec_.replace.empty()) jit::Inline(*graph_);
    jit::EliminateDeadCode(graph_);
    return callSites_;
  }

 private:
  bool isTarget(const std::string& name) const { return callSites_.count(name) > 0; }
  // Whether a call of module `path` is inlined: a hook point lies inside it.
  bool leadsToTarget(const std::string& path) const {
    return std::any_of(callSites_.begin(), callSites_.end(), [&](const auto& target) {
      const HookPoint point = parseHookPoint(target.first);
      return containsModule(path, point.module) || (point.inside() && point.module == path);
    });
  }

  // The hook points on operations of module `path`'s forward, by name.
  std::vector<std::pair<std::string, HookPoint>> operationTargets(const std::string& path) const {
    std::vector<std::pair<std::string, HookPoint>> targets;
    for (const auto& target : callSites_) {
      HookPoint point = parseHookPoint(target.first);
      if (point.inside() && point.stage.empty() && point.module == path) targets.emplace_back(target.first, std::move(point));
    }
    return targets;
  }

  // Every block visited is code of a module that is hooked or holds a hooked module (the
  // model's forward, or a body inlined on the way to a hook point).
  void visit(jit::Block* block) {
    for (jit::Node* node = block->nodes().front(); node != block->return_node();) {
      if (node->kind() == prim::If) takeUnfusedBranch(node);
      if (node->kind() == prim::CallMethod) {
        auto path = modulePath(node->input(0), self_);
        auto classType = node->input(0)->type()->cast<c10::ClassType>();
        const std::string method = node->s(attr::name);
        const bool forward = path && isForwardMethod(method);
        const bool hookedOutput = forward && isTarget(*path);
        const bool hookedInput = forward && isTarget(*path + kInputSuffix);
        // Its input's hooks run first, on the call's argument: the call, or the body inlined
        // from it below, takes what they give.
        if (hookedInput) hookInput(*path + kInputSuffix, node);
        const bool hooked = hookedOutput || hookedInput;
        // The unoptimized graph: the optimized one has every nested call already inlined.
        auto* callee = classType ? &jit::toGraphFunction(classType->getMethod(method)) : nullptr;
        // Inline calls on the way to a hook point so the calls inside become visible, and a
        // hooked module whose fast path Python leaves while it is hooked, so that its unfused
        // branch can be chosen.
        if (path && callee && (leadsToTarget(*path) || (hooked && callsKernelOffWhileHooked(callee->graph()->block())))) {
          // Hooked operations are found in the callee's graph, then at the same place in the
          // inlined copy (which keeps the callee's order), before anything else is inlined there.
          std::vector<std::pair<std::string, size_t>> operations;
          const auto calleeNodes = nodesInOrder(callee->graph()->block()->nodes().front(), callee->graph()->return_node());
          for (const auto& [name, point] : operationTargets(*path)) {
            const jit::Node* target = findNode(*callee->graph(), point);
            operations.emplace_back(name, std::find(calleeNodes.begin(), calleeNodes.end(), target) - calleeNodes.begin());
          }
          jit::Node* before = node->prev();
          jit::Node* after = node->next();
          auto outputs = jit::inlineCallTo(node, callee, callee->graph().get());
          const auto inlined = nodesInOrder(before->next(), after);
          TS_CHECK(operations.empty() || inlined.size() == calleeNodes.size(), code::kInternal, "module '", *path,
                   "''s inlined forward has ", inlined.size(), " nodes, its graph ", calleeNodes.size());
          for (const auto& [name, position] : operations) {
            jit::Node* target = inlined.at(position);
            TS_CHECK(target->kind() == calleeNodes.at(position)->kind(), code::kInternal, "layer '", name,
                     "' not found again once inlined");
            hookOutput(name, target->output(), target->next());
          }
          if (hookedOutput) hookOutput(*path, outputs.at(0), after);
          node = before->next();  // continue with the inlined body
          continue;
        }
        if (hookedOutput) {
          jit::Node* after = node->next();
          hookOutput(*path, node->output(), after);
          node = after;
          continue;
        }
      }
      for (jit::Block* nested : node->blocks()) visit(nested);
      node = node->next();
    }
  }

  // Scripted fast paths return early: `if <fast path allowed>: return fused_kernel(...)`,
  // the unfused code after it. Forcing the condition of the `if` that directly holds the
  // kernel keeps the unfused code, in which the submodules run.
  void takeUnfusedBranch(jit::Node* node) {
    auto holdsKernel = [](jit::Block* block) { return std::any_of(block->nodes().begin(), block->nodes().end(), isFusedModuleKernel); };
    const bool inThen = holdsKernel(node->blocks().at(0));
    const bool inElse = holdsKernel(node->blocks().at(1));
    if (inThen == inElse) return;
    jit::WithInsertPoint guard(node);
    node->replaceInput(0, graph_->insertConstant(!inThen));
    forcedBranches_ = true;
  }

  // The hooks of one hook point, inserted at the current insert point, in order: patch the
  // value, tap it for its gradient, record what the hooked side sees (a deep copy when
  // captured, a count otherwise). Returns the value that side is given.
  jit::Value* runHooks(const std::string& name, jit::Value* value) {
    jit::Value* seen = value;
    if (auto found = replacements_.find(name); found != replacements_.end()) seen = replaced(name, value, found->second);
    if (auto found = patches_.find(name); found != patches_.end()) seen = patched(name, seen, found->second);
    jit::Value* given = seen;
    if (spec_.taps(name)) {
      auto [tapped, copy] = tap(name, seen);
      records_.push_back(graph_->insert(aten::append, {tapList(name), tapped})->node());
      given = copy;
    }
    jit::Value* record = spec_.captures(name) ? snapshot(seen) : graph_->insertConstant(static_cast<int64_t>(1));
    records_.push_back(graph_->insert(aten::append, {recordList(name, record->type()), record})->node());
    callSites_[name] += 1;
    // An SAE reading here encodes what the rest of forward would see; one writing here gives
    // the rest of forward its output instead.
    if (auto reading = saes_.find(name); reading != saes_.end()) encode(reading->second, given);
    if (auto writing = saeWrites_.find(name); writing != saeWrites_.end()) given = spliced(saes_.at(writing->second), given);
    return given;
  }

  // The hooks of an SAE's value, when a request names it.
  jit::Value* stageHooks(const std::string& name, jit::Value* value) { return isTarget(name) ? runHooks(name, value) : value; }

  void encode(Splice& splice, jit::Value* value) {
    const std::string& read = splice.splice.read;
    splice.x = firstTensor(read, value);
    jit::Value* pre =
        stageHooks(read + kSaeFeaturesPreSuffix, graph_->insert(Symbol::fromQualString(kSaePreOperator), {splice.sae, splice.x}));
    splice.features =
        stageHooks(read + kSaeFeaturesSuffix, graph_->insert(Symbol::fromQualString(kSaeFeaturesOperator), {splice.sae, pre, splice.x}));
  }

  jit::Value* spliced(const Splice& splice, jit::Value* value) {
    const std::string& read = splice.splice.read;
    const std::string& write = splice.splice.write;
    TS_CHECK(splice.features != nullptr, code::kInvalidArgument, "the transcoder writing at '", write, "' must read '", read,
             "' before it");
    jit::Value* target = firstTensor(write, value);
    jit::Value* clean = graph_->insert(Symbol::fromQualString(kSaeDecodeOperator), {splice.sae, splice.features, splice.x});
    jit::Value* decoded = stageHooks(read + kSaeReconstructionSuffix, clean);
    jit::Value* error = graph_->insertConstant(c10::IValue());
    if (splice.splice.errorTerm) {
      // The error term is of the clean input: while nothing edits the features, the output just
      // decoded is that input's, and is not computed again.
      const bool edited = edits(read + kSaeFeaturesPreSuffix) || edits(read + kSaeFeaturesSuffix);
      error = edited ? graph_->insert(Symbol::fromQualString(kSaeErrorOperator), {splice.sae, splice.x, target})
                     : graph_->insert(Symbol::fromQualString(kSaeErrorOfOperator), {clean, target});
      error = stageHooks(read + kSaeErrorSuffix, error);
    }
    return replaced(write, value, graph_->insert(Symbol::fromQualString(kSaeOutputOperator), {decoded, error, target}));
  }

  bool edits(const std::string& name) const { return patches_.count(name) > 0 || replacements_.count(name) > 0; }

  // The tensor a hook point's value is (a module's output, or the first tensor of its tuple).
  jit::Value* firstTensor(const std::string& layer, jit::Value* value) {
    if (value->type()->cast<c10::TensorType>()) return value;
    if (value->type()->cast<c10::TupleType>()) {
      for (jit::Value* element : graph_->insertNode(graph_->createTupleUnpack(value))->outputs()) {
        if (element->type()->cast<c10::TensorType>()) return element;
      }
    }
    TS_FAIL(code::kInvalidArgument,
            "layer '" + layer + "' gives " + value->type()->str() + ": an SAE reads a tensor, or a tuple holding one");
  }

  // After a call of module `name`: what its caller uses from here on is what the hooks give.
  void hookOutput(const std::string& name, jit::Value* output, jit::Node* insertBefore) {
    jit::WithInsertPoint guard(insertBefore);
    jit::Value* given = runHooks(name, output);
    if (given != output) output->replaceAllUsesAfterNodeWith(insertBefore->prev(), given);
  }

  // Before a call: its first tensor argument, what a forward pre-hook sees. Only this call
  // takes what the hooks give; other uses of the same value (a residual connection) keep it.
  void hookInput(const std::string& name, jit::Node* call) {
    size_t argument = 0;
    for (size_t i = 1; i < call->inputs().size() && argument == 0; ++i) {
      if (call->input(i)->type()->cast<c10::TensorType>()) argument = i;
    }
    if (argument == 0) {
      TS_FAIL(code::kInvalidArgument, "layer '" + name + "': the module's forward takes no tensor argument");
    }
    jit::WithInsertPoint guard(call);
    call->replaceInput(argument, runHooks(name, call->input(argument)));
  }

  // `value` with its tensor (or a tuple's first tensor) swapped for the run-time replacement.
  jit::Value* replaced(const std::string& layer, jit::Value* value, jit::Value* replacement) {
    if (value->type()->cast<c10::TensorType>()) return replacement;
    if (value->type()->cast<c10::TupleType>()) {
      auto elements = graph_->insertNode(graph_->createTupleUnpack(value))->outputs().vec();
      for (auto& element : elements) {
        if (!element->type()->cast<c10::TensorType>()) continue;
        element = replacement;
        return graph_->insertNode(graph_->createTuple(elements))->output();
      }
    }
    TS_FAIL(code::kInvalidArgument,
            "layer '" + layer + "' gives " + value->type()->str() + ": only a tensor, or a tuple holding one, can be replaced");
  }

  jit::Value* patched(const std::string& layer, jit::Value* output, const PatchInputs& in) {
    if (output->type()->cast<c10::TensorType>()) {
      return graph_->insert(Symbol::fromQualString(kPatchOperator),
                            {output, in.mode, in.value, in.scale, in.channels, in.positions, graph_->insertConstant(layer)});
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
    TS_FAIL(code::kInvalidArgument,
            "layer '" + layer + "' returns " + output->type()->str() + ": only a tensor, or a tuple holding one, can be patched");
  }

  // The tensor whose gradient is wanted (the value, or the first tensor of a tuple) through
  // the gradient tap (it then requires grad), kept as it is for the record, and the value
  // with a copy of it in its place for the hooked side, so that an in-place op there
  // (ReLU(inplace)) rewrites the copy, not the recorded value. Returns {tapped, value with copy}.
  std::pair<jit::Value*, jit::Value*> tap(const std::string& layer, jit::Value* value) {
    const Symbol tapOperator = Symbol::fromQualString(kGradientTapOperator);
    if (value->type()->cast<c10::TensorType>()) {
      jit::Value* tapped = graph_->insert(tapOperator, {value});
      return {tapped, graph_->insert(aten::clone, {tapped})};
    }
    if (value->type()->cast<c10::TupleType>()) {
      auto elements = graph_->insertNode(graph_->createTupleUnpack(value))->outputs().vec();
      for (auto& element : elements) {
        if (!element->type()->cast<c10::TensorType>()) continue;
        jit::Value* tapped = graph_->insert(tapOperator, {element});
        element = graph_->insert(aten::clone, {tapped});
        return {tapped, graph_->insertNode(graph_->createTuple(elements))->output()};
      }
    }
    TS_FAIL(code::kInvalidArgument, "layer '" + layer + "' returns " + value->type()->str() +
                                        ": a gradient is taken of a tensor, or of the first tensor of a tuple");
  }

  jit::Value* tapList(const std::string& layer) {
    auto found = tapLists_.find(layer);
    if (found != tapLists_.end()) return found->second;
    jit::Node* list = graph_->createList(c10::TensorType::get(), {});
    list->insertAfter(graph_->block()->param_node());
    return tapLists_[layer] = list->output();
  }

  // A deep copy of the value as the module returned it, so later in-place ops (ReLU(inplace),
  // relu_ on a tensor of a returned dict) cannot change what was captured.
  jit::Value* snapshot(jit::Value* value) {
    if (value->type()->cast<c10::TensorType>()) return graph_->insert(aten::clone, {value});
    return graph_->insert(Symbol::fromQualString(kSnapshotOperator), {value});
  }

  jit::Value* recordList(const std::string& layer, const c10::TypePtr& type) {
    const c10::TypePtr elementType = c10::unshapedType(type);
    auto found = lists_.find(layer);
    if (found != lists_.end()) {
      const auto listElement = found->second->type()->expectRef<c10::ListType>().getElementType();
      if (!elementType->isSubtypeOf(*listElement)) {
        TS_FAIL(code::kInvalidArgument,
                "layer '" + layer + "' returns " + listElement->str() + " at one call and " + elementType->str() + " at another");
      }
      return found->second;
    }
    // Created at the top of the graph so it dominates every call site, loops included.
    jit::Node* list = graph_->createList(elementType, {});
    list->insertAfter(graph_->block()->param_node());
    return lists_[layer] = list->output();
  }

  // Returns (forward's output?, record lists...). Without the output, everything after the
  // last record is cut: a layer2 capture never runs layer3, layer4 or fc.
  void rewriteReturn() {
    std::vector<jit::Value*> results;
    if (spec_.returnOutput) results.assign(graph_->outputs().begin(), graph_->outputs().end());
    while (!graph_->outputs().empty()) graph_->eraseOutput(0);
    if (!spec_.returnOutput) cutAfterLastRecord();
    for (const auto& target : callSites_) results.push_back(lists_.at(target.first));
    for (const std::string& layer : spec_.gradient) results.push_back(tapLists_.at(layer));
    jit::WithInsertPoint guard(graph_->block()->return_node());
    graph_->registerOutput(graph_->insertNode(graph_->createTuple(results))->output());
  }

  void cutAfterLastRecord() {
    jit::Block* top = graph_->block();
    jit::Node* last = nullptr;
    for (jit::Node* node : records_) {
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
  const ProgramSpec& spec_;
  std::map<std::string, int> callSites_;  // sorted: the order of the records
  std::map<std::string, PatchInputs> patches_;
  std::map<std::string, jit::Value*> replacements_;
  std::map<std::string, Splice> saes_;            // by the hook point read
  std::map<std::string, std::string> saeWrites_;  // hook point written -> read
  std::map<std::string, jit::Value*> lists_;
  std::map<std::string, jit::Value*> tapLists_;
  std::vector<jit::Node*> records_;
  bool forcedBranches_ = false;
};

}  // namespace

std::map<std::string, int> instrumentGraph(const std::shared_ptr<jit::Graph>& graph, const ProgramSpec& spec) {
  return Instrumenter(graph, spec).run();
}

}  // namespace torchscope
