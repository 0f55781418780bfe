// An exported program loaded and compiled, as its model and every program built for it share
// it: the compiled plan, the slots of its weights, its module calls, its user inputs (with the
// shapes it was exported for) and how its outputs nest.
#pragma once

#include <ATen/core/function_schema.h>

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "export/pt2_modules.h"
#include "export/pt2_plan.h"
#include "export/pt2_schema.h"
#include "program/program.h"

namespace torchscope::pt2 {

struct UserInput {
  std::string name;  // as forward takes it ("input_ids")
  int slot = -1;
  bool tensor = true;              // else a SymInt
  std::optional<TensorMeta> meta;  // the exported shape and dtype
};

struct LoadedProgram {
  std::string path;
  ExportedProgram program;
  std::shared_ptr<const Plan> plan;
  Env weights;  // an environment with the parameters, buffers and constants bound
  std::set<int> weightSlots;
  ModuleMap modules;
  std::vector<UserInput> inputs;
  std::optional<TreeSpec> outSpec;  // how the user outputs nest; none: a tuple of them
  c10::FunctionSchema forwardSchema{"forward", "", {}, {}};
  int64_t bytes = 0;

  // An environment with `inputs` (forward's, in order) bound, after checking them against the
  // exported inputs: INVALID_ARGUMENT for the wrong number or kind, DTYPE, and SHAPE for a
  // shape the program was not exported for (a static size other than the exported one, a
  // dynamic size outside its range or unequal to another of the same symbol).
  Env bind(std::vector<c10::IValue> inputs) const;
  // Forward's output from a run's environment: nested as the export's output spec says
  // (Hugging Face outputs and dicts as string-keyed records, tuples and lists as tuples).
  c10::IValue output(const Env& env) const;
};

// `leaves` nested as `spec` says: dicts and records (a Hugging Face output) as string-keyed
// dicts, tuples and lists as tuples, a lone leaf as itself.
c10::IValue nestLeaves(const TreeSpec& spec, const std::vector<c10::IValue>& leaves);
// The leaves of a value nested so (tensors and other non-containers), in order.
void flattenLeaves(const c10::IValue& value, std::vector<c10::IValue>& leaves);

// Loads `path` (a .pt2 archive) on `device`. Throws MODEL_LOAD.
std::shared_ptr<const LoadedProgram> loadProgram(const std::string& path, const c10::Device& device, const LoadPolicy& policy);

}  // namespace torchscope::pt2
