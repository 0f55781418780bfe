#include "torchscript/max_pool.h"

#include <ATen/ATen.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/passes/inliner.h>
#include <torch/csrc/jit/runtime/custom_operator.h>

#include <functional>
#include <map>
#include <vector>

namespace torchscope {

namespace jit = torch::jit;

namespace {

bool poolsFasterChannelsLast(const at::Tensor& input) {
  const bool floating = input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble;
  return input.dim() == 4 && floating && input.layout() == at::kStrided && input.device().is_cpu() && input.numel() > 0 &&
         input.is_contiguous() && !input.is_contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor maxPool2d(const at::Tensor& input, const std::vector<int64_t>& kernelSize, const std::vector<int64_t>& stride,
                     const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceilMode) {
  if (!poolsFasterChannelsLast(input)) return at::max_pool2d(input, kernelSize, stride, padding, dilation, ceilMode);
  const at::Tensor pooled =
      at::max_pool2d(input.contiguous(at::MemoryFormat::ChannelsLast), kernelSize, stride, padding, dilation, ceilMode);
  return pooled.contiguous();
}

jit::RegisterOperators registerMaxPool({jit::Operator(
    std::string(kMaxPoolOperator) +
        "(Tensor self, int[] kernel_size, int[] stride, int[] padding, int[] dilation, bool ceil_mode) -> Tensor",
    [](jit::Stack& stack) {
      const bool ceilMode = jit::pop(stack).toBool();
      const std::vector<int64_t> dilation = jit::pop(stack).toIntVector();
      const std::vector<int64_t> padding = jit::pop(stack).toIntVector();
      const std::vector<int64_t> stride = jit::pop(stack).toIntVector();
      const std::vector<int64_t> kernelSize = jit::pop(stack).toIntVector();
      const at::Tensor input = jit::pop(stack).toTensor();
      jit::push(stack, maxPool2d(input, kernelSize, stride, padding, dilation, ceilMode));
    },
    c10::AliasAnalysisKind::FROM_SCHEMA)});

bool isMaxPool(const jit::Node* node) {
  static const char* schema =
      "aten::max_pool2d(Tensor self, int[2] kernel_size, int[2] stride=[], int[2] padding=0, int[2] dilation=1, "
      "bool ceil_mode=False) -> Tensor";
  return node->kind() == c10::aten::max_pool2d && node->matches(schema);
}

// Whether a method's or function's code, or code it calls, max-pools. Memoized per callee; a
// callee is taken as not pooling while it is being looked at, so a call cycle in a file ends.
class PoolingCalls {
 public:
  // What a module method call (prim::CallMethod) or a function call (prim::CallFunction: a
  // scripted model's F.max_pool2d) runs.
  jit::GraphFunction* callee(const jit::Node* call) const {
    jit::Function* function = nullptr;
    if (call->kind() == c10::prim::CallMethod) {
      auto classType = call->input(0)->type()->cast<c10::ClassType>();
      function = classType ? classType->findMethod(call->s(c10::attr::name)) : nullptr;
    } else if (call->kind() == c10::prim::CallFunction && call->input(0)->node()->kind() == c10::prim::Constant) {
      auto functionType = call->input(0)->type()->cast<c10::FunctionType>();
      function = functionType ? functionType->function() : nullptr;
    }
    return function ? jit::tryToGraphFunction(*function) : nullptr;
  }

  bool pools(jit::GraphFunction* function) {
    auto [found, added] = pools_.emplace(function, false);
    if (!added) return found->second;
    const bool result = pools(function->graph()->block());
    pools_[function] = result;
    return result;
  }

 private:
  bool pools(jit::Block* block) {
    for (jit::Node* node : block->nodes()) {
      if (isMaxPool(node)) return true;
      if (jit::GraphFunction* function = callee(node); function && pools(function)) return true;
      for (jit::Block* nested : node->blocks()) {
        if (pools(nested)) return true;
      }
    }
    return false;
  }

  std::map<jit::GraphFunction*, bool> pools_;
};

}  // namespace

int poolChannelsLast(const std::shared_ptr<jit::Graph>& graph) {
  static const c10::Symbol maxPoolOperator = c10::Symbol::fromQualString(kMaxPoolOperator);
  PoolingCalls calls;
  std::vector<jit::Node*> pools;
  std::function<void(jit::Block*)> visit = [&](jit::Block* block) {
    for (jit::Node* node = block->nodes().front(); node != block->return_node();) {
      jit::GraphFunction* function = calls.callee(node);
      if (function && calls.pools(function)) {
        jit::Node* before = node->prev();
        if (node->kind() == c10::prim::CallFunction) node->removeInput(0);  // the function: the callee's graph does not take it
        jit::inlineCallTo(node, function, function->graph().get());
        node = before->next();  // continue with the inlined body
        continue;
      }
      if (isMaxPool(node)) pools.push_back(node);
      for (jit::Block* nested : node->blocks()) visit(nested);
      node = node->next();
    }
  };
  visit(graph->block());
  for (jit::Node* pool : pools) {
    jit::WithInsertPoint here(pool);
    jit::Node* replacement = graph->insertNode(graph->create(maxPoolOperator, pool->inputs()));
    replacement->output()->copyMetadata(pool->output());
    pool->output()->replaceAllUsesWith(replacement->output());
    pool->destroy();
  }
  return static_cast<int>(pools.size());
}

}  // namespace torchscope
