#include "torchscript/gelu_pattern.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <cmath>
#include <functional>
#include <optional>
#include <vector>

namespace torchscope {

namespace jit = torch::jit;

namespace {

// A constant scalar (a number, or a 0-dim tensor as a trace records a Python float) equal to
// `target` to float rounding.
bool constantNear(jit::Value* value, double target) {
  if (value->node()->kind() != c10::prim::Constant) return false;
  const auto constant = jit::toIValue(value);
  if (!constant) return false;
  double v = 0;
  if (constant->isDouble()) {
    v = constant->toDouble();
  } else if (constant->isInt()) {
    v = static_cast<double>(constant->toInt());
  } else if (constant->isTensor() && constant->toTensor().dim() == 0 && constant->toTensor().is_floating_point()) {
    v = constant->toTensor().item<double>();
  } else {
    return false;
  }
  return std::abs(v - target) <= 1e-6 * std::max(1.0, std::abs(target));
}

// The node producing `value` when it is `kind` and `value` has no other reader.
jit::Node* soleProducer(jit::Value* value, c10::Symbol kind) {
  return value->node()->kind() == kind && value->uses().size() == 1 ? value->node() : nullptr;
}

// For a binary op `node`: the operand other than a constant near `target`, or none.
jit::Value* besideConstant(jit::Node* node, double target) {
  if (node == nullptr) return nullptr;
  if (constantNear(node->input(1), target)) return node->input(0);
  if (constantNear(node->input(0), target)) return node->input(1);
  return nullptr;
}

bool addWithAlphaOne(jit::Node* node) { return node != nullptr && node->inputs().size() == 3 && constantNear(node->input(2), 1.0); }

// The formula's x when `tanh` is its tanh, else none.
jit::Value* formulaInput(jit::Node* tanh) {
  jit::Value* inner = besideConstant(soleProducer(tanh->input(0), c10::aten::mul), std::sqrt(2.0 / M_PI));
  jit::Node* sum = inner ? soleProducer(inner, c10::aten::add) : nullptr;
  if (!addWithAlphaOne(sum)) return nullptr;
  for (int side = 0; side < 2; ++side) {
    jit::Value* x = sum->input(side);
    jit::Value* cubed = besideConstant(soleProducer(sum->input(1 - side), c10::aten::mul), 0.044715);
    jit::Node* power = cubed ? soleProducer(cubed, c10::aten::pow) : nullptr;
    if (power != nullptr && power->input(0) == x && constantNear(power->input(1), 3.0)) return x;
  }
  return nullptr;
}

// The formula's result node (0.5 x times (1 + tanh)), given its tanh and x; none if not that.
jit::Node* formulaOutput(jit::Node* tanh, jit::Value* x) {
  if (tanh->output()->uses().size() != 1) return nullptr;
  jit::Node* onePlus = tanh->output()->uses()[0].user;
  if (onePlus->kind() != c10::aten::add || !addWithAlphaOne(onePlus) || besideConstant(onePlus, 1.0) != tanh->output()) return nullptr;
  if (onePlus->output()->uses().size() != 1) return nullptr;
  jit::Node* product = onePlus->output()->uses()[0].user;
  if (product->kind() != c10::aten::mul || product->inputs().size() != 2) return nullptr;
  jit::Value* half = product->input(0) == onePlus->output() ? product->input(1) : product->input(0);
  return besideConstant(soleProducer(half, c10::aten::mul), 0.5) == x ? product : nullptr;
}

}  // namespace

int recognizeTanhGelu(std::shared_ptr<jit::Graph>& graph) {
  std::vector<jit::Node*> tanhs;
  std::function<void(jit::Block*)> collect = [&](jit::Block* block) {
    for (jit::Node* node : block->nodes()) {
      for (jit::Block* nested : node->blocks()) collect(nested);
      if (node->kind() == c10::aten::tanh) tanhs.push_back(node);
    }
  };
  collect(graph->block());
  int replaced = 0;
  for (jit::Node* tanh : tanhs) {
    jit::Value* x = formulaInput(tanh);
    jit::Node* output = x ? formulaOutput(tanh, x) : nullptr;
    if (output == nullptr) continue;
    jit::WithInsertPoint here(output);
    jit::Value* approximate = graph->insertConstant(std::string("tanh"));
    jit::Node* gelu = graph->insertNode(graph->create(c10::aten::gelu, {x, approximate}));
    gelu->output()->copyMetadata(output->output());
    output->output()->replaceAllUsesWith(gelu->output());
    ++replaced;
  }
  if (replaced > 0) jit::EliminateDeadCode(graph);
  return replaced;
}

}  // namespace torchscope
