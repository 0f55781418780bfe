#include "methods/forward.h"

#include <ATen/core/grad_mode.h>

#include "core/errors.h"
#include "core/ivalues.h"

namespace torchscope {

c10::IValue runModel(ModelState& model, std::vector<c10::IValue> inputs, const RunRequest& request) {
  at::NoGradGuard noGrad;
  for (auto& input : inputs) input = toDevice(input, model.device);
  const RunResult result =
      model.program(request.needs, request.numerics, Optimize::kAsLoaded)->run(std::move(inputs), request.patches, {}, request.saes);
  Record captures;
  for (const auto& [layer, calls] : result.captures) {
    c10::impl::GenericList perCall(c10::AnyType::get());
    for (const auto& call : calls) perCall.push_back(model.returned(call, request.numerics));
    captures.set(layer, perCall);
  }
  Record counts;
  for (const auto& [layer, count] : result.calls) counts.set(layer, count);
  return Record().set("output", model.returned(result.output, request.numerics)).set("captures", captures).set("calls", counts);
}

c10::IValue callSubmodule(ModelState& model, const std::string& path, std::vector<c10::IValue> inputs) {
  at::NoGradGuard noGrad;
  for (auto& input : inputs) input = toDevice(input, model.device);
  return model.returned(model.format->callSubmodule(path, "submodule", std::move(inputs), model.precision, model.device.type()), {});
}

c10::IValue submoduleSignature(ModelState& model, const std::string& path) {
  c10::impl::GenericList out(c10::AnyType::get());
  for (const SubmoduleArgument& argument : model.format->submoduleArguments(path, "submodule")) {
    out.push_back(Record()
                      .set("name", argument.name)
                      .set("type", argument.type)
                      .set("supplied", argument.supplied)
                      .set("hasDefault", argument.hasDefault)
                      .set("source", argument.source));
  }
  return out;
}

c10::IValue submoduleNodes(ModelState& model, const std::string& path) {
  c10::impl::GenericList out(c10::AnyType::get());
  for (const ModuleNode& node : model.format->nodes(path)) {
    Record record;
    record.set("name", node.name).set("op", node.op).set("pattern", node.pattern);
    if (node.shaped) record.set("shape", c10::List<int64_t>(node.shape));
    out.push_back(record);
  }
  return out;
}

c10::IValue inspectProgram(ModelState& model, const RunRequest& request) {
  const ProgramSummary summary = model.program(request.needs, request.numerics, Optimize::kAsLoaded)->summary();
  Record opCounts;
  for (const auto& [kind, count] : summary.opCounts) opCounts.set(kind, count);
  c10::List<std::string> called;
  for (const auto& path : summary.calledModules) called.push_back(path);
  return Record()
      .set("calledModules", called)
      .set("opCounts", opCounts)
      .set("graph", summary.graph)
      .set("numerics", summary.numerics)
      .set("precision", summary.precision)
      .set("memoryFormat", summary.memoryFormat)
      .set("buildMs", summary.buildMs)
      .set("programsCached", static_cast<int64_t>(model.programs.size()));
}

}  // namespace torchscope
