#include "torchscript/attention_fusion.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/custom_operator.h>

#include <optional>
#include <vector>

#include "torchscript/graph_nodes.h"

namespace torchscope {

namespace jit = torch::jit;

namespace {

// What one attention's recorded ops are.
struct Recorded {
  double scale = 1.0;
  bool divide = false;
  int64_t dim0 = -2;
  int64_t dim1 = -1;
  std::optional<at::ScalarType> softmaxType;
  std::optional<at::ScalarType> cast;
};

at::Tensor recordedAttention(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, const std::optional<at::Tensor>& mask,
                             const Recorded& r) {
  at::Tensor scores = at::matmul(query, key.transpose(r.dim0, r.dim1));
  if (r.scale != 1.0 || r.divide) scores = r.divide ? scores.div(r.scale) : scores.mul(r.scale);
  if (mask) scores = scores.add(*mask);
  at::Tensor probabilities = at::softmax(scores, -1, r.softmaxType);
  if (r.cast) probabilities = probabilities.to(*r.cast);
  return at::matmul(probabilities, value);
}

bool lastTwo(int64_t a, int64_t b) {
  const auto norm = [](int64_t d) { return d < 0 ? d + 4 : d; };
  return (norm(a) == 2 && norm(b) == 3) || (norm(a) == 3 && norm(b) == 2);
}

at::Tensor attention(const at::Tensor& query, const at::Tensor& key, const at::Tensor& value, const std::optional<at::Tensor>& mask,
                     const Recorded& r) {
  const auto fits = [](const at::Tensor& t) { return t.dim() == 4 && t.scalar_type() == at::kFloat && t.device().is_cpu(); };
  const bool floatMask = !mask || (mask->scalar_type() == at::kFloat && mask->device().is_cpu() && mask->dim() <= 4);
  const bool floatSoftmax = !r.softmaxType || *r.softmaxType == at::kFloat;
  const bool noCast = !r.cast || *r.cast == at::kFloat;
  if (fits(query) && fits(key) && fits(value) && floatMask && floatSoftmax && noCast && lastTwo(r.dim0, r.dim1) &&
      query.size(3) == key.size(3) && key.size(2) == value.size(2) && query.numel() > 0 && key.numel() > 0) {
    return at::scaled_dot_product_attention(query, key, value, mask, 0.0, false, r.divide ? 1.0 / r.scale : r.scale);
  }
  return recordedAttention(query, key, value, mask, r);
}

jit::RegisterOperators registerAttention({jit::Operator(
    std::string(kAttentionOperator) +
        "(Tensor query, Tensor key, Tensor value, Tensor? mask, float scale, bool divide, int dim0, int dim1, ScalarType? softmax_dtype, ScalarType? cast) -> Tensor",
    [](jit::Stack& stack) {
      Recorded r;
      r.cast = jit::pop(stack).toOptional<at::ScalarType>();
      r.softmaxType = jit::pop(stack).toOptional<at::ScalarType>();
      r.dim1 = jit::pop(stack).toInt();
      r.dim0 = jit::pop(stack).toInt();
      r.divide = jit::pop(stack).toBool();
      r.scale = jit::pop(stack).toDouble();
      const std::optional<at::Tensor> mask = jit::pop(stack).toOptional<at::Tensor>();
      const at::Tensor value = jit::pop(stack).toTensor();
      const at::Tensor key = jit::pop(stack).toTensor();
      const at::Tensor query = jit::pop(stack).toTensor();
      jit::push(stack, attention(query, key, value, mask, r));
    },
    c10::AliasAnalysisKind::FROM_SCHEMA)});

// The node producing `value` when it is `kind` and nothing else reads `value`.
jit::Node* soleProducer(jit::Value* value, c10::Symbol kind) {
  return value->node()->kind() == kind && value->uses().size() == 1 ? value->node() : nullptr;
}

std::optional<c10::IValue> constant(jit::Value* value) {
  return value->node()->kind() == c10::prim::Constant ? jit::toIValue(value) : std::nullopt;
}

// A constant number, or a 0-dim floating tensor as a trace records a Python float.
std::optional<double> constantScalar(jit::Value* value) {
  const auto c = constant(value);
  if (!c) return std::nullopt;
  if (c->isDouble()) return c->toDouble();
  if (c->isInt()) return static_cast<double>(c->toInt());
  if (c->isTensor() && c->toTensor().dim() == 0 && c->toTensor().is_floating_point()) return c->toTensor().item<double>();
  return std::nullopt;
}

std::optional<at::ScalarType> constantType(jit::Value* value) {
  const auto c = constant(value);
  if (c && c->isInt()) return static_cast<at::ScalarType>(c->toInt());
  return std::nullopt;
}

bool constantNone(jit::Value* value) { return value->type()->kind() == c10::TypeKind::NoneType; }

// The matched attention: its operands and what its ops record.
struct Match {
  jit::Value* query;
  jit::Value* key;
  jit::Value* value;
  jit::Value* mask = nullptr;
  Recorded recorded;
};

// Back from scaled scores through a scale to q k^T.
std::optional<Match> productOf(jit::Value* scores, Match match) {
  for (const c10::Symbol kind : {c10::aten::mul, c10::aten::div}) {
    if (jit::Node* scale = soleProducer(scores, kind); scale != nullptr && scale->inputs().size() == 2) {
      const auto factor = constantScalar(scale->input(1));
      if (!factor || *factor == 0.0) return std::nullopt;
      match.recorded.scale = *factor;
      match.recorded.divide = kind == c10::aten::div;
      scores = scale->input(0);
      break;
    }
  }
  jit::Node* product = soleProducer(scores, c10::aten::matmul);
  jit::Node* transpose = product ? soleProducer(product->input(1), c10::aten::transpose) : nullptr;
  if (transpose == nullptr) return std::nullopt;
  const auto dim0 = constant(transpose->input(1));
  const auto dim1 = constant(transpose->input(2));
  if (!dim0 || !dim1 || !dim0->isInt() || !dim1->isInt() || !lastTwo(dim0->toInt(), dim1->toInt())) return std::nullopt;
  match.query = product->input(0);
  match.key = transpose->input(0);
  match.recorded.dim0 = dim0->toInt();
  match.recorded.dim1 = dim1->toInt();
  return match;
}

// Back from softmax's input through an added mask (either operand) to the scaled scores.
std::optional<Match> scoresOf(jit::Value* scores, const Match& match) {
  jit::Node* add = soleProducer(scores, c10::aten::add);
  const auto alpha = add != nullptr && add->inputs().size() == 3 ? constantScalar(add->input(2)) : std::nullopt;
  if (!alpha || *alpha != 1.0) return productOf(scores, match);
  for (int side = 0; side < 2; ++side) {
    Match masked = match;
    masked.mask = add->input(1 - side);
    if (auto found = productOf(add->input(side), masked)) return found;
  }
  return std::nullopt;
}

// The attention whose last op is `output` (matmul(probabilities, value)), or none.
std::optional<Match> attentionOf(jit::Node* output) {
  Match match;
  match.value = output->input(1);
  jit::Value* probabilities = output->input(0);
  if (jit::Node* dropout = soleProducer(probabilities, c10::aten::dropout); dropout != nullptr) {
    const auto train = constant(dropout->input(2));
    if (!train || !train->isBool() || train->toBool()) return std::nullopt;
    probabilities = dropout->input(0);
  }
  if (jit::Node* cast = soleProducer(probabilities, c10::aten::to); cast != nullptr) {
    // to(Tensor, ScalarType dtype, bool non_blocking, bool copy, MemoryFormat?) alone.
    const auto type = cast->inputs().size() == 5 ? constantType(cast->input(1)) : std::nullopt;
    if (!type || !constantNone(cast->input(4))) return std::nullopt;
    match.recorded.cast = type;
    probabilities = cast->input(0);
  }
  jit::Node* softmax = soleProducer(probabilities, c10::aten::softmax);
  if (softmax == nullptr || softmax->inputs().size() != 3) return std::nullopt;
  const auto dim = constant(softmax->input(1));
  if (!dim || !dim->isInt() || (dim->toInt() != -1 && dim->toInt() != 3)) return std::nullopt;
  if (!constantNone(softmax->input(2))) {
    match.recorded.softmaxType = constantType(softmax->input(2));
    if (!match.recorded.softmaxType) return std::nullopt;
  }
  return scoresOf(softmax->input(0), match);
}

}  // namespace

int fuseAttention(std::shared_ptr<jit::Graph>& graph) {
  const std::vector<jit::Node*> products = nodesOfKind(graph, c10::aten::matmul);
  static const c10::Symbol attentionSymbol = c10::Symbol::fromQualString(kAttentionOperator);
  int fused = 0;
  for (jit::Node* output : products) {
    if (output->inputs().size() != 2) continue;
    const auto match = attentionOf(output);
    if (!match) continue;
    const Recorded& r = match->recorded;
    jit::WithInsertPoint here(output);
    const auto optionalType = [&](const std::optional<at::ScalarType>& type) {
      return type ? graph->insertConstant(static_cast<int64_t>(*type)) : graph->insertConstant(c10::IValue());
    };
    std::vector<jit::Value*> inputs{match->query,
                                    match->key,
                                    match->value,
                                    match->mask ? match->mask : graph->insertConstant(c10::IValue()),
                                    graph->insertConstant(r.scale),
                                    graph->insertConstant(r.divide),
                                    graph->insertConstant(r.dim0),
                                    graph->insertConstant(r.dim1),
                                    optionalType(r.softmaxType),
                                    optionalType(r.cast)};
    jit::Node* attention = graph->insertNode(graph->create(attentionSymbol, inputs));
    attention->output()->copyMetadata(output->output());
    attention->output()->setType(c10::TensorType::get());
    output->output()->replaceAllUsesWith(attention->output());
    ++fused;
  }
  if (fused > 0) jit::EliminateDeadCode(graph);
  return fused;
}

}  // namespace torchscope
