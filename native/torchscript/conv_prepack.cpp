#include "torchscript/conv_prepack.h"

#include <ATen/Context.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/passes/graph_rewrite_helper.h>
#include <torch/csrc/jit/runtime/custom_operator.h>
#include <torch/csrc/jit/runtime/operator.h>
#include <torch/custom_class.h>

#include <algorithm>
#include <list>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "torchscript/graph_nodes.h"
#include "torchscript/libtorch_operation.h"

namespace torchscope {

namespace jit = torch::jit;

namespace {

std::optional<c10::IValue> constantInput(const jit::Node* node, size_t index) { return jit::toIValue(node->input(index)); }

// The ReLU that is the convolution's only reader, to fuse; none when anything else (a capture,
// a patch, another op) reads the convolution's own output.
jit::Node* soleRelu(jit::Node* convolution) {
  const auto& uses = convolution->output()->uses();
  if (uses.size() != 1 || uses[0].offset != 0) return nullptr;
  jit::Node* user = uses[0].user;
  const bool relu = user->kind() == c10::aten::relu || user->kind() == c10::aten::relu_;
  return relu && user->owningBlock() == convolution->owningBlock() ? user : nullptr;
}

// A 2-D convolution argument for dimension d: one entry stands for both.
int64_t entry(const std::vector<int64_t>& list, size_t d) { return list.at(d % list.size()); }

bool validList(const c10::IValue& value, int64_t least) {
  if (!value.isIntList()) return false;
  const std::vector<int64_t> entries = value.toIntVector();
  return (entries.size() == 1 || entries.size() == 2) &&
         std::all_of(entries.begin(), entries.end(), [&](int64_t entry) { return entry >= least; });
}

// One convolution's weight (at its type, channels-last) and arguments, and oneDNN's contexts
// packed from it for the input sizes used last (conv_prepack.h says why per size).
class PackedConvolution : public torch::CustomClassHolder {
 public:
  PackedConvolution(at::Tensor weight, std::optional<at::Tensor> bias, std::vector<int64_t> stride, std::vector<int64_t> padding,
                    std::vector<int64_t> dilation, int64_t groups, bool relu)
      : weight_(std::move(weight)),
        bias_(std::move(bias)),
        stride_(std::move(stride)),
        padding_(std::move(padding)),
        dilation_(std::move(dilation)),
        groups_(groups),
        relu_(relu) {}

  // The context for inputs of `sizes`, packed now if none is kept for them; throws what oneDNN
  // throws for a convolution it does not take.
  c10::IValue contextFor(std::vector<int64_t> sizes) {
    // Programs run on one compute thread; the lock keeps the list whole should that change.
    std::lock_guard<std::mutex> lock(mutex_);
    auto kept = std::find_if(contexts_.begin(), contexts_.end(), [&](const auto& entry) { return entry.first == sizes; });
    if (kept != contexts_.end()) {
      contexts_.splice(contexts_.begin(), contexts_, kept);  // most recently used first
      return contexts_.front().second;
    }
    static std::optional<jit::Operation> prepack = libtorchOperation("mkldnn_prepacked::conv2d_prepack");
    TORCH_CHECK(prepack.has_value(), "this libtorch has no mkldnn_prepacked::conv2d_prepack");
    jit::Stack stack{weight_,
                     bias_ ? c10::IValue(*bias_) : c10::IValue(),
                     stride_,
                     padding_,
                     dilation_,
                     groups_,
                     c10::List<int64_t>(sizes),
                     std::string(relu_ ? "relu" : "none")};
    (*prepack)(stack);
    contexts_.emplace_front(std::move(sizes), stack.at(0));
    if (contexts_.size() > kPackedSizes) contexts_.pop_back();
    return contexts_.front().second;
  }

 private:
  const at::Tensor weight_;
  const std::optional<at::Tensor> bias_;
  const std::vector<int64_t> stride_, padding_, dilation_;
  const int64_t groups_;
  const bool relu_;
  std::mutex mutex_;
  std::list<std::pair<std::vector<int64_t>, c10::IValue>> contexts_;
};

// Before the operator below, which takes it: static registrations run in this file's order.
const auto registerPackedConvolution = torch::class_<PackedConvolution>("torchscope", "PackedConvolution");

// The weight in channels-last strides that say so even where its sizes leave them ambiguous
// (a 1x1 kernel's contiguous strides are channels-last too, and ideep packs those for its blocked
// kernel, which oneDNN's channels-last one then reorders at every call).
at::Tensor channelsLastWeight(const at::Tensor& weight) {
  const int64_t in = weight.size(1), height = weight.size(2), width = weight.size(3);
  at::Tensor out = at::empty_strided(weight.sizes(), {height * width * in, 1, width * in, in}, weight.options());
  return out.copy_(weight);
}

// One aten::conv2d's weight packed at `type`, or none when its operands are not constants of the
// kind the prepacked op takes or oneDNN refuses them (the convolution then stays as it is).
std::optional<c10::intrusive_ptr<PackedConvolution>> packedConvolution(jit::Node* node, bool fuseRelu, at::ScalarType type) {
  const c10::FunctionSchema* schema = node->maybeSchema();
  if (schema == nullptr || !schema->overload_name().empty()) return std::nullopt;  // not the string-padding overload
  const auto weight = constantInput(node, 1);
  const auto bias = constantInput(node, 2);
  const auto stride = constantInput(node, 3);
  const auto padding = constantInput(node, 4);
  const auto dilation = constantInput(node, 5);
  const auto groups = constantInput(node, 6);
  if (!weight || !bias || !stride || !padding || !dilation || !groups) return std::nullopt;
  if (!weight->isTensor() || !(bias->isNone() || bias->isTensor()) || !groups->isInt()) return std::nullopt;
  const at::Tensor& w = weight->toTensor();
  if (w.dim() != 4 || w.scalar_type() != at::kFloat || !w.device().is_cpu() || w.requires_grad()) return std::nullopt;
  if (bias->isTensor() && (bias->toTensor().scalar_type() != at::kFloat || !bias->toTensor().device().is_cpu())) return std::nullopt;
  // The file is untrusted: arguments the plain convolution would refuse stay with it, which says why at run.
  if (!validList(*stride, 1) || !validList(*padding, 0) || !validList(*dilation, 1)) return std::nullopt;
  if (groups->toInt() < 1 || w.size(0) % groups->toInt() != 0 || w.numel() == 0) return std::nullopt;
  // At a reduced type, weight and bias as autocast casts them (to the type, rounding to nearest).
  auto packed = c10::make_intrusive<PackedConvolution>(
      channelsLastWeight(w.to(type)), bias->isTensor() ? std::optional<at::Tensor>(bias->toTensor().to(type)) : std::nullopt,
      stride->toIntVector(), padding->toIntVector(), dilation->toIntVector(), groups->toInt(), fuseRelu);
  // A typical size the kernel fits in, to learn whether oneDNN takes the convolution.
  int64_t spatial = kPrepackSpatialHint;
  for (size_t d = 0; d < 2; ++d) spatial = std::max(spatial, (w.size(2 + d) - 1) * entry(dilation->toIntVector(), d) + 1);
  try {
    packed->contextFor({1, w.size(1) * groups->toInt(), spatial, spatial});
  } catch (const std::exception&) {  // c10::Error, or ideep's own
    return std::nullopt;             // arguments oneDNN does not take: the plain convolution reports them at run
  }
  return packed;
}

// An input oneDNN's packed convolution takes (of its type, or float32 that autocast would
// cast to it): anything else goes to ATen.
bool fitsContext(const at::Tensor& input, at::ScalarType type, const std::vector<int64_t>& weightSize, const std::vector<int64_t>& padding,
                 const std::vector<int64_t>& dilation, int64_t groups) {
  const bool typed = input.scalar_type() == type || input.scalar_type() == at::kFloat;
  if (input.dim() != 4 || !typed || !input.device().is_cpu() || input.layout() != at::kStrided) return false;
  if (input.numel() == 0 || input.size(1) != weightSize.at(1) * groups) return false;
  for (size_t d = 0; d < 2; ++d) {
    if (input.size(2 + d) + 2 * entry(padding, d) < (weightSize.at(2 + d) - 1) * entry(dilation, d) + 1) return false;
  }
  return true;
}

at::Tensor prepackedConvolution(const at::Tensor& input, PackedConvolution& packed, const std::optional<at::Tensor>& bias,
                                const std::vector<int64_t>& weightSize, const std::vector<int64_t>& stride,
                                const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, int64_t groups, bool relu,
                                at::ScalarType type) {
  static std::optional<jit::Operation> run = libtorchOperation("mkldnn_prepacked::conv2d_run");
  TORCH_CHECK(run.has_value(), "this libtorch has no mkldnn_prepacked::conv2d_run");  // registered with conv2d_prepack
  if (input.dim() == 3) {                                                             // unbatched, as ATen takes it
    return prepackedConvolution(input.unsqueeze(0), packed, bias, weightSize, stride, padding, dilation, groups, relu, type).squeeze(0);
  }
  if (fitsContext(input, type, weightSize, padding, dilation, groups)) {
    // oneDNN reads the tensor as dense in its suggested layout; a strided view is made so.
    jit::Stack stack{input.to(type).contiguous(input.suggest_memory_format()), packed.contextFor(input.sizes().vec())};
    (*run)(stack);
    return stack.at(0).toTensor();
  }
  // ATen's checks and messages, on a weight of the right size that holds no data: for an input
  // they accept here (only an empty one: every other was fitted above) the result is the bias,
  // as the real weight would give.
  const at::Tensor shapeOnly = at::zeros({1}, type).expand(weightSize);
  at::Tensor output = at::conv2d(input, shapeOnly, bias, stride, padding, dilation, groups);
  return relu ? at::relu(output) : output;
}

jit::RegisterOperators registerPrepackedConvolution({jit::Operator(
    std::string(kPrepackedConvolutionOperator) +
        "(Tensor input, Any packed, Tensor? bias, int[] weight_size, int[] stride, int[] padding, int[] dilation, int groups, bool relu, ScalarType dtype) -> Tensor",
    [](jit::Stack& stack) {
      const at::ScalarType type = jit::pop(stack).toScalarType();
      const bool relu = jit::pop(stack).toBool();
      const int64_t groups = jit::pop(stack).toInt();
      const std::vector<int64_t> dilation = jit::pop(stack).toIntVector();
      const std::vector<int64_t> padding = jit::pop(stack).toIntVector();
      const std::vector<int64_t> stride = jit::pop(stack).toIntVector();
      const std::vector<int64_t> weightSize = jit::pop(stack).toIntVector();
      const std::optional<at::Tensor> bias = jit::pop(stack).toOptional<at::Tensor>();
      const auto packed = jit::pop(stack).toCustomClass<PackedConvolution>();
      const at::Tensor input = jit::pop(stack).toTensor();
      jit::push(stack, prepackedConvolution(input, *packed, bias, weightSize, stride, padding, dilation, groups, relu, type));
    },
    c10::AliasAnalysisKind::FROM_SCHEMA)});

}  // namespace

int prepackConvolutions(std::shared_ptr<jit::Graph>& graph, at::ScalarType type) {
  if (!libtorchOperation("mkldnn_prepacked::conv2d_prepack") || !at::hasMKLDNN() || !at::globalContext().userEnabledMkldnn()) return 0;
  static const c10::Symbol prepackedOperator = c10::Symbol::fromQualString(kPrepackedConvolutionOperator);
  jit::graph_rewrite_helper::replaceConvolutionWithAtenConv(graph);
  int prepacked = 0;
  for (jit::Node* node : nodesOfKind(graph, c10::aten::conv2d)) {
    jit::Node* relu = soleRelu(node);
    const auto packed = packedConvolution(node, relu != nullptr, type);
    if (!packed) continue;
    jit::WithInsertPoint here(node);
    const auto contextValue = jit::tryInsertConstant(*graph, c10::IValue(*packed));
    if (!contextValue) continue;
    const at::Tensor weight = jit::toIValue(node->input(1))->toTensor();
    jit::Value* weightSize = graph->insertConstant(c10::List<int64_t>(weight.sizes().vec()));
    jit::Value* fused = graph->insertConstant(relu != nullptr);
    jit::Value* typeValue = graph->insertConstant(type);
    jit::Node* convolution =
        graph->insertNode(graph->create(prepackedOperator, {node->input(0), *contextValue, node->input(2), weightSize, node->input(3),
                                                            node->input(4), node->input(5), node->input(6), fused, typeValue}));
    convolution->output()->copyMetadata(node->output());
    convolution->output()->setType(c10::TensorType::get());
    if (relu != nullptr) {
      relu->output()->replaceAllUsesWith(convolution->output());
      relu->destroy();
    }
    node->output()->replaceAllUsesWith(convolution->output());
    node->destroy();
    ++prepacked;
  }
  jit::EliminateDeadCode(graph);
  return prepacked;
}

}  // namespace torchscope
