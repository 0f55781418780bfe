#include "methods/logit_lens.h"

#include <ATen/core/grad_mode.h>

#include "core/errors.h"
#include "core/ivalues.h"
#include "methods/gradients.h"

namespace torchscope {

c10::IValue logitLens(ModelState& model, std::vector<c10::IValue> inputs, const LensSpec& spec) {
  at::NoGradGuard noGrad;
  TS_CHECK(!spec.layers.empty() && !spec.head.empty(), code::kInvalidArgument, "the logit lens needs layers and a head");
  for (const std::string& path : spec.head) model.format->submoduleSchema(path, "head module");  // each is a module with a forward
  ProgramNeeds needs;
  needs.capture = spec.layers;
  std::sort(needs.capture.begin(), needs.capture.end());
  needs.capture.erase(std::unique(needs.capture.begin(), needs.capture.end()), needs.capture.end());
  needs.returnOutput = false;  // the forward stops at the last layer read
  needs.saes = spec.saeSplices;
  const auto program = model.program(needs, spec.numerics, Optimize::kNever);
  for (auto& input : inputs) input = toDevice(input, model.device);
  RunResult run = program->run(std::move(inputs), {}, {}, spec.saes);
  requireAllRan(*program, run);
  std::vector<at::Tensor> perLayer;
  for (size_t i = 0; i < spec.layers.size(); ++i) {
    c10::IValue value = firstTensor(run.captures.at(spec.layers[i]).back(), "layer '" + spec.layers[i] + "'");
    for (const std::string& path : spec.head) {
      try {
        value = model.format->callSubmodule(path, "head module", {value}, program->spec.precision, program->spec.device);
      } catch (const Error& e) {
        if (std::string(e.code()) != code::kInvalidArgument) throw;
        TS_FAIL(code::kInvalidArgument, "head module '", path, "' cannot take layer '", spec.layers[i], "''s value alone: ", e.what());
      }
      value = firstTensor(value, "head module '" + path + "''s output");
    }
    perLayer.push_back(value.toTensor());
  }
  const at::Tensor logits = at::stack(perLayer, 0);
  if (spec.topK <= 0) return Record().set("logits", model.returned(logits, spec.numerics));
  const int64_t k = std::min<int64_t>(spec.topK, logits.size(-1));
  auto [values, indices] = at::topk(logits, k, -1);
  return Record().set("logits", model.returned(values, spec.numerics)).set("indices", indices.cpu());
}

}  // namespace torchscope
