// The forward methods: a run of the instrumented program (captures, patches, the output), a
// submodule's own forward (model.call) and what it takes (model.signature), the operations of a
// submodule's forward that can be hooked (model.nodes), and a program's description (torch.inspect).
#pragma once

#include <ATen/core/ivalue.h>

#include <string>
#include <vector>

#include "model/model_state.h"
#include "sae/sae.h"

namespace torchscope {

// A run (capture, patch, output) or inspect request.
struct RunRequest {
  ProgramNeeds needs;
  std::vector<PatchArgs> patches;                // in needs.patch order
  std::vector<std::shared_ptr<const Sae>> saes;  // in needs.saes order
  NumericsOverride numerics;                     // the call's precision / upcast over the model's
};

// { output, captures: { layer: [value per call] }, calls: { layer: hook runs } }, on the CPU.
// `inputs` are forward's arguments as JS gave them.
c10::IValue runModel(ModelState& model, std::vector<c10::IValue> inputs, const RunRequest& request);

// What the submodule at `path` returns for `inputs` (converted against its forward's signature,
// ModelFormat::submoduleSchema), checked (INVALID_ARGUMENT), without gradients, at the model's
// precision, on the CPU.
c10::IValue callSubmodule(ModelState& model, const std::string& path, std::vector<c10::IValue> inputs);

// [{ name, type, supplied, hasDefault, source }] per argument of the submodule's forward after
// self (ModelFormat::submoduleArguments).
c10::IValue submoduleSignature(ModelState& model, const std::string& path);

// [{ name, op, pattern }] per operation of the submodule's forward that can be hooked (ModelFormat::nodes).
c10::IValue submoduleNodes(ModelState& model, const std::string& path);

// { calledModules, opCounts, graph, numerics, precision, memoryFormat, buildMs, programsCached }
// of the program `request` builds.
c10::IValue inspectProgram(ModelState& model, const RunRequest& request);

}  // namespace torchscope
