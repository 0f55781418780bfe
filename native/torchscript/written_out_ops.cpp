#include "torchscript/written_out_ops.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>

#include <cmath>
#include <optional>
#include <vector>

#include "torchscript/graph_nodes.h"

namespace torchscope {

namespace jit = torch::jit;

namespace {

// A constant scalar: a number, or a 0-dim tensor as a trace records a Python float.
std::optional<double> constantNumber(jit::Value* value) {
  if (value->node()->kind() != c10::prim::Constant) return std::nullopt;
  const auto constant = jit::toIValue(value);
  if (!constant) return std::nullopt;
  if (constant->isDouble()) return constant->toDouble();
  if (constant->isInt()) return static_cast<double>(constant->toInt());
  if (constant->isTensor() && constant->toTensor().dim() == 0 && constant->toTensor().is_floating_point())
    return constant->toTensor().item<double>();
  return std::nullopt;
}

// A constant scalar equal to `target` to float rounding.
bool constantNear(jit::Value* value, double target) {
  const auto v = constantNumber(value);
  return v && std::abs(*v - target) <= 1e-6 * std::max(1.0, std::abs(target));
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

// A cast to float32 (to(x, dtype, non_blocking, copy, memory_format)) with nothing else reading it.
bool floatCast(jit::Node* node) {
  if (node == nullptr || node->kind() != c10::aten::to || node->inputs().size() != 5) return false;
  const auto type = jit::toIValue(node->input(1));
  return type && type->isInt() && type->toInt() == static_cast<int64_t>(at::kFloat);
}

// The RMSNorm whose rsqrt is `rsqrt`: its input x, weight, epsilon and result node, when it is one.
struct RmsNorm {
  jit::Value* x;
  jit::Value* weight;
  double eps;
  jit::Node* output;
};

std::optional<RmsNorm> rmsNormOf(jit::Node* rsqrt) {
  jit::Node* shifted = soleProducer(rsqrt->input(0), c10::aten::add);
  const auto eps = addWithAlphaOne(shifted) ? constantNumber(shifted->input(1)) : std::nullopt;
  if (!eps) return std::nullopt;
  jit::Node* mean = soleProducer(shifted->input(0), c10::aten::mean);
  if (mean == nullptr || mean->inputs().size() != 4) return std::nullopt;
  const auto dims = jit::toIValue(mean->input(1));
  const auto keep = jit::toIValue(mean->input(2));
  if (!dims || !dims->isIntList() || dims->toIntVector() != std::vector<int64_t>{-1} || !keep || !keep->isBool() || !keep->toBool() ||
      mean->input(3)->type()->kind() != c10::TypeKind::NoneType)
    return std::nullopt;
  jit::Node* square = soleProducer(mean->input(0), c10::aten::pow);
  if (square == nullptr || !constantNear(square->input(1), 2.0)) return std::nullopt;
  jit::Value* x = square->input(0);
  // x * rsqrt(...), then an optional cast back to float32, then weight * (that).
  if (rsqrt->output()->uses().size() != 1) return std::nullopt;
  jit::Node* scaled = rsqrt->output()->uses()[0].user;
  if (scaled->kind() != c10::aten::mul || scaled->inputs().size() != 2 || scaled->input(0) != x || scaled->output()->uses().size() != 1)
    return std::nullopt;
  jit::Node* next = scaled->output()->uses()[0].user;
  jit::Value* normalized = scaled->output();
  if (floatCast(next) && next->input(0) == normalized && next->output()->uses().size() == 1) {
    normalized = next->output();
    next = normalized->uses()[0].user;
  }
  if (next->kind() != c10::aten::mul || next->inputs().size() != 2) return std::nullopt;
  jit::Value* weight = next->input(0) == normalized ? next->input(1) : next->input(0);
  const auto w = weight->node()->kind() == c10::prim::Constant ? jit::toIValue(weight) : std::nullopt;
  if (!w || !w->isTensor() || w->toTensor().dim() != 1 || w->toTensor().scalar_type() != at::kFloat) return std::nullopt;
  return RmsNorm{x, weight, *eps, next};
}

}  // namespace

int recognizeRmsNorm(std::shared_ptr<jit::Graph>& graph) {
  int replaced = 0;
  for (jit::Node* rsqrt : nodesOfKind(graph, c10::aten::rsqrt)) {
    const auto norm = rmsNormOf(rsqrt);
    if (!norm) continue;
    jit::WithInsertPoint here(norm->output);
    const int64_t width = jit::toIValue(norm->weight)->toTensor().size(0);
    jit::Value* shape = graph->insertConstant(c10::List<int64_t>({width}));
    jit::Value* eps = graph->insertConstant(norm->eps);
    jit::Node* fused = graph->insertNode(graph->create(c10::aten::rms_norm, {norm->x, shape, norm->weight, eps}));
    fused->output()->copyMetadata(norm->output->output());
    norm->output->output()->replaceAllUsesWith(fused->output());
    ++replaced;
  }
  if (replaced > 0) jit::EliminateDeadCode(graph);
  return replaced;
}

int recognizeTanhGelu(std::shared_ptr<jit::Graph>& graph) {
  int replaced = 0;
  for (jit::Node* tanh : nodesOfKind(graph, c10::aten::tanh)) {
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
