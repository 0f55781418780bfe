#include "torchscript/linear_prepack.h"

#include <ATen/Context.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/custom_operator.h>
#include <torch/custom_class.h>

#include <optional>
#include <string>
#include <vector>

#include "torchscript/graph_nodes.h"
#include "torchscript/libtorch_operation.h"

namespace torchscope {

namespace jit = torch::jit;

namespace {

constexpr const char* kReorderOperator = "mkldnn::_reorder_linear_weight";
constexpr const char* kLinearOperator = "mkldnn::_linear_pointwise";

// A linear's weight [out, in] and oneDNN's reorder of it. An opaque oneDNN tensor cannot be a
// graph constant (the executor's passes hash and print constants); a custom class can.
class PackedLinear : public torch::CustomClassHolder {
 public:
  PackedLinear(at::Tensor weight, at::Tensor packed) : weight(std::move(weight)), packed(std::move(packed)) {}
  const at::Tensor weight;
  const at::Tensor packed;
};

const auto registerPackedLinear = torch::class_<PackedLinear>("torchscope", "PackedLinear");

// oneDNN's linear with the post-op on a float32 CPU input; ATen's linear and activation on any
// other (which computes it, or says why, as the unrewritten graph would).
at::Tensor prepackedLinear(const at::Tensor& input, const PackedLinear& packed, const std::optional<at::Tensor>& bias,
                           const std::string& attr, const std::optional<std::string>& algorithm) {
  if (input.scalar_type() == at::kFloat && input.device().is_cpu() && input.layout() == at::kStrided && input.dim() >= 2 &&
      input.size(-1) == packed.weight.size(1)) {
    static std::optional<jit::Operation> run = libtorchOperation(kLinearOperator);
    jit::Stack stack{input,
                     packed.packed,
                     bias ? c10::IValue(*bias) : c10::IValue(),
                     attr,
                     c10::List<std::optional<at::Scalar>>(),
                     algorithm ? c10::IValue(*algorithm) : c10::IValue()};
    (*run)(stack);
    return stack.at(0).toTensor();
  }
  at::Tensor output = at::linear(input, packed.weight, bias);
  if (attr == "gelu") return at::gelu(output, algorithm.value_or("none"));
  if (attr == "relu") return at::relu(output);
  if (attr == "swish") return at::silu(output);
  return output;
}

jit::RegisterOperators registerPrepackedLinear({jit::Operator(
    std::string(kPrepackedLinearOperator) + "(Tensor input, Any packed, Tensor? bias, str attr, str? algorithm) -> Tensor",
    [](jit::Stack& stack) {
      const std::optional<std::string> algorithm = jit::pop(stack).toOptional<std::string>();
      const std::string attr = jit::pop(stack).toStringRef();
      const std::optional<at::Tensor> bias = jit::pop(stack).toOptional<at::Tensor>();
      const auto packed = jit::pop(stack).toCustomClass<PackedLinear>();
      const at::Tensor input = jit::pop(stack).toTensor();
      jit::push(stack, prepackedLinear(input, *packed, bias, attr, algorithm));
    },
    c10::AliasAnalysisKind::FROM_SCHEMA)});

// A constant dense float32 CPU tensor of `rank` dimensions.
std::optional<at::Tensor> constantTensor(jit::Value* value, int64_t rank) {
  if (value->node()->kind() != c10::prim::Constant) return std::nullopt;
  const auto constant = jit::toIValue(value);
  if (!constant || !constant->isTensor()) return std::nullopt;
  const at::Tensor tensor = constant->toTensor();
  const bool dense = tensor.layout() == at::kStrided && tensor.device().is_cpu() && tensor.scalar_type() == at::kFloat;
  if (!dense || tensor.dim() != rank || tensor.requires_grad()) return std::nullopt;
  return tensor;
}

bool constantOne(jit::Value* value) {
  const auto constant = jit::toIValue(value);
  return constant && ((constant->isInt() && constant->toInt() == 1) || (constant->isDouble() && constant->toDouble() == 1.0));
}

// One linear layer: which of its node's inputs it reads (read when it is rewritten: an earlier
// rewrite may have replaced it), its weight as [out, in], its bias's input (or none).
struct Linear {
  jit::Node* node;
  size_t input;
  at::Tensor weight;
  std::optional<size_t> bias;
};

std::optional<Linear> linearOf(jit::Node* node) {
  if (node->kind() == c10::aten::linear) {
    const auto weight = constantTensor(node->input(1), 2);
    jit::Value* bias = node->input(2);
    const bool noBias = bias->type()->kind() == c10::TypeKind::NoneType;
    if (!weight || !(noBias || constantTensor(bias, 1))) return std::nullopt;
    return Linear{node, 0, *weight, 2};
  }
  // A linear whose weight freezing transposed (frozen_linear_transpose): matmul(x, weight [in, out]).
  if (node->kind() == c10::aten::matmul) {
    const auto weight = constantTensor(node->input(1), 2);
    if (!weight) return std::nullopt;
    return Linear{node, 0, weight->t().contiguous(), std::nullopt};
  }
  // Hugging Face's Conv1D: addmm(bias, x.view(-1, in), weight [in, out]).
  if (node->kind() == c10::aten::addmm) {
    const auto weight = constantTensor(node->input(2), 2);
    const auto bias = constantTensor(node->input(0), 1);
    if (!weight || !bias || bias->size(0) != weight->size(1) || !constantOne(node->input(3)) || !constantOne(node->input(4)))
      return std::nullopt;
    return Linear{node, 1, weight->t().contiguous(), 0};
  }
  return std::nullopt;
}

// The node that alone reads `value`, in its block; none when anything else reads it.
jit::Node* soleReader(jit::Value* value) {
  const auto& uses = value->uses();
  if (uses.size() != 1 || uses[0].offset != 0 || uses[0].user->owningBlock() != value->node()->owningBlock()) return nullptr;
  return uses[0].user;
}

// The activation fused into a linear: oneDNN's post-op name and algorithm, the activation, and
// the view between them (a Conv1D's) when there is one.
struct PostOp {
  jit::Node* activation = nullptr;
  jit::Node* view = nullptr;
  std::string attr = "none";
  std::optional<std::string> algorithm;
};

PostOp postOpOf(jit::Node* linear) {
  PostOp post;
  jit::Node* reader = soleReader(linear->output());
  if (reader != nullptr && (reader->kind() == c10::aten::view || reader->kind() == c10::aten::reshape)) {
    post.view = reader;
    reader = soleReader(reader->output());
  }
  if (reader == nullptr) return {};
  if (reader->kind() == c10::aten::gelu) {
    const auto approximate = jit::toIValue(reader->input(1));
    if (!approximate || !approximate->isString()) return {};
    post.attr = "gelu";
    post.algorithm = approximate->toStringRef();
  } else if (reader->kind() == c10::aten::relu) {
    post.attr = "relu";
  } else if (reader->kind() == c10::aten::silu) {
    post.attr = "swish";
  } else {
    return {};
  }
  post.activation = reader;
  return post;
}

}  // namespace

int prepackLinears(std::shared_ptr<jit::Graph>& graph) {
  static std::optional<jit::Operation> reorder = libtorchOperation(kReorderOperator);
  if (!reorder || !libtorchOperation(kLinearOperator) || !at::hasMKLDNN() || !at::globalContext().userEnabledMkldnn()) return 0;
  std::vector<Linear> linears;
  for (jit::Node* node : allNodes(graph)) {
    if (auto linear = linearOf(node)) linears.push_back(*linear);
  }
  static const c10::Symbol linearSymbol = c10::Symbol::fromQualString(kPrepackedLinearOperator);
  int prepacked = 0;
  for (const Linear& linear : linears) {
    jit::Stack stack{linear.weight, c10::IValue()};
    (*reorder)(stack);
    const PostOp post = postOpOf(linear.node);
    jit::WithInsertPoint here(linear.node);
    const auto packed =
        jit::tryInsertConstant(*graph, c10::IValue(c10::make_intrusive<PackedLinear>(linear.weight, stack.at(0).toTensor())));
    if (!packed) continue;
    jit::Value* attr = graph->insertConstant(post.attr);
    jit::Value* algorithm = post.algorithm ? graph->insertConstant(*post.algorithm) : graph->insertConstant(c10::IValue());
    jit::Value* bias = linear.bias ? linear.node->input(*linear.bias) : graph->insertConstant(c10::IValue());
    jit::Node* fused = graph->insertNode(graph->create(linearSymbol, {linear.node->input(linear.input), *packed, bias, attr, algorithm}));
    fused->output()->copyMetadata(linear.node->output());
    fused->output()->setType(c10::TensorType::get());
    if (post.activation != nullptr) {
      // The activation's readers read the fused result (through the view when there was one).
      jit::Value* result = fused->output();
      if (post.view != nullptr) {
        post.view->replaceInput(0, fused->output());
        result = post.view->output();
      }
      post.activation->output()->replaceAllUsesWith(result);
      post.activation->destroy();
    }
    linear.node->output()->replaceAllUsesWith(fused->output());
    linear.node->destroy();
    ++prepacked;
  }
  jit::EliminateDeadCode(graph);
  return prepacked;
}

}  // namespace torchscope
