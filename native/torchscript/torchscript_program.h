// The TorchScript backend's programs: the model's forward graph rewritten to run hooks
// (hooks.h), optimized where asked (freezing, oneDNN rewrites, prepacked convolutions), run on
// the graph executor with the hooks' run-time arguments.
#pragma once

#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "program/program.h"

namespace torchscope {

class TorchScriptProgram : public Program {
 public:
  using Program::Program;
  RunResult run(std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches, const std::vector<at::Tensor>& replacements,
                const std::vector<std::shared_ptr<const Sae>>& saes) const override;
  ProgramSummary summary() const override;

  c10::IValue self;  // the module object the program reads attributes from (keeps a frozen copy alive)
  std::shared_ptr<torch::jit::GraphFunction> function;
  std::optional<c10::FunctionSchema> forwardSchema;  // the model's forward, to check inputs
  std::string numerics;                              // "exact", "optimized" or "frozen"
  // 4-D floating inputs are given to it channels-last (see runsChannelsLast).
  bool channelsLast = false;
};

// Builds the instrumented program of `module`'s forward. Throws UNKNOWN_LAYER for a path that
// is not a submodule and UNHOOKABLE_LAYER (with the survey's reason) for one that forward never
// calls.
std::shared_ptr<const Program> buildTorchScriptProgram(const torch::jit::Module& module, const ModuleSurvey& survey,
                                                       const ProgramSpec& spec);

// Whether an optimized program of `module` gets libtorch's inference rewrites (else it is
// frozen only): float32, and no bfloat16/float16 weights.
bool rewritesForInference(const torch::jit::Module& module, const ProgramSpec& spec);

}  // namespace torchscope
