// The submodules of an exported program and their calls, from the nodes' nn_module_stack: a
// call is the nodes carrying its key ("L__self__layer1.0@1" is layer1.0's second call); its
// output is what it produced and the rest of the program used (the exported call signature's
// outputs when exported with preserve_module_call_signature, the region's boundary values
// otherwise); its ':input' the first tensor it read from outside. What cannot be hooked
// faithfully has its reason: modules with no nodes, modules only inside torch.cond / while_loop
// / no_grad / autocast subgraphs, calls whose outputs are used before the call ends.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "export/pt2_plan.h"
#include "export/pt2_schema.h"
#include "program/program.h"

namespace torchscope::pt2 {

struct ModuleCall {
  std::string key;
  std::vector<size_t> steps;  // its top-level steps, in order
  std::vector<int> outputs;   // slots of what it returns
  std::vector<int> inputs;    // slots of what it reads from outside (parameters excepted), first the ':input'
  bool exact = false;         // outputs and inputs from the exported call signature
  // How its outputs nest (the signature's out_spec), when every output is a tensor.
  std::optional<TreeSpec> outSpec;
};

struct ModuleMap {
  std::vector<std::pair<std::string, std::string>> submodules;  // path, type name; root first
  ModuleSurvey survey;
  std::map<std::string, std::vector<ModuleCall>> calls;  // hookable paths' calls, in order
  std::map<std::string, std::vector<size_t>> ownSteps;   // steps whose innermost module is the path
};

// `weights`: the slots of parameters, buffers and constants (never a call's input).
ModuleMap mapModules(const ExportedProgram& program, const Plan& plan, const std::set<int>& weights);

}  // namespace torchscope::pt2
