#include "methods/logit_lens.h"

#include <ATen/core/grad_mode.h>

#include "core/errors.h"
#include "methods/gradients.h"
#include "program/precision.h"
#include "bindings/values.h"

namespace torchscope {

LensResult logitLens(ModelState& model, std::vector<c10::IValue> inputs, const LensSpec& spec) {
  at::NoGradGuard noGrad;
  if (spec.layers.empty() || spec.head.empty()) throw Error(code::kInvalidArgument, "the logit lens needs layers and a head");
  std::vector<torch::jit::Method> head;
  for (const std::string& path : spec.head) {
    auto found = model.modulesByPath.find(path);
    if (found == model.modulesByPath.end()) throw Error(code::kUnknownLayer, "no submodule named '" + path + "'");
    auto method = found->second.find_method("forward");
    if (!method) throw Error(code::kInvalidArgument, "head module '" + path + "' has no method 'forward'");
    head.push_back(*method);
  }
  ProgramSpec programSpec;
  programSpec.capture = spec.layers;
  std::sort(programSpec.capture.begin(), programSpec.capture.end());
  programSpec.capture.erase(std::unique(programSpec.capture.begin(), programSpec.capture.end()), programSpec.capture.end());
  programSpec.returnOutput = false;  // the forward stops at the last layer read
  const auto program = model.program(programSpec, spec.numerics);
  for (auto& input : inputs) input = toDevice(input, model.device);
  RunResult run = runProgram(*program, std::move(inputs), {});
  requireAllRan(*program, run);
  std::vector<at::Tensor> perLayer;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    c10::IValue value = firstTensor(run.captures.at(spec.layers[i]).back(), "layer '" + spec.layers[i] + "'");
    for (size_t h = 0; h < head.size(); ++h) {
      torch::jit::Stack stack{head[h].owner()._ivalue(), value};
      try {
        head[h].function().getSchema().checkAndNormalizeInputs(stack);
      } catch (const c10::Error& e) {
        throw Error(code::kInvalidArgument, "head module '" + spec.head[h] + "' cannot take layer '" + spec.layers[i] +
                                                "''s value alone: " + e.what_without_backtrace());
      }
      {
        PrecisionScope precision(program->spec.precision, program->spec.device);
        head[h].function().run(stack);
      }
      value = firstTensor(stack.back(), "head module '" + spec.head[h] + "''s output");
    }
    perLayer.push_back(value.toTensor());
  }
  LensResult result;
  const at::Tensor logits = at::stack(perLayer, 0);
  if (spec.topK > 0) {
    const int64_t k = std::min<int64_t>(spec.topK, logits.size(-1));
    auto [values, indices] = at::topk(logits, k, -1);
    result.logits = model.returned(values, spec.numerics);
    result.indices = indices.cpu();
  } else {
    result.logits = model.returned(logits, spec.numerics);
  }
  return result;
}

}  // namespace torchscope
