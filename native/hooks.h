// Native forward hooks for TorchScript modules. TorchScript has no runtime hooks (they are
// compiled into the caller at script time), so a hook is built by rewriting the forward
// graph: calls to modules on the way to a requested layer are inlined, and after each call
// of the layer itself the graph snapshots its output (capture) or rewrites it (patch).
// The rewritten program for one (model, layer set) is built once and cached.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace torchscope {

// What a program must do; values (patch tensors, channels) are run-time inputs, not part of it.
struct ProgramSpec {
  std::vector<std::string> capture;  // sorted, unique layer paths
  std::vector<std::string> patch;    // sorted, unique layer paths
  bool returnOutput = true;          // false: stop once the last capture is taken
  // Freeze the program and apply libtorch's inference optimisations (conv-BN folding,
  // oneDNN layouts): faster, captured values within 1e-4 relative instead of 1e-5.
  bool optimize = false;
  std::string key() const;
};

// The run-time part of one patch (see patch.h for the meaning of each field).
struct PatchArgs {
  int64_t mode = 0;
  std::optional<at::Tensor> value;
  double scale = 1.0;
  std::vector<int64_t> channels;
  std::vector<int64_t> positions;
};

struct Program {
  ProgramSpec spec;
  c10::IValue self;  // the module object the program reads attributes from (keeps a frozen copy alive)
  std::shared_ptr<torch::jit::GraphFunction> function;
  std::optional<c10::FunctionSchema> forwardSchema;           // the model's forward, to check inputs
  std::map<std::string, int> callSites;  // call sites found per requested layer
};

struct RunResult {
  c10::IValue output;                                         // None unless requested
  std::map<std::string, std::vector<c10::IValue>> captures;  // every call, in call order
};

// Builds the instrumented program. Throws torchscope::Error(UNKNOWN_LAYER) for a path that is
// not a submodule or is never called by forward.
std::shared_ptr<const Program> instrument(const torch::jit::Module& module, const ProgramSpec& spec);

// Runs it. `inputs` are forward's arguments (checked and defaulted against forward's schema);
// `patches` are in spec.patch order.
RunResult runProgram(const Program& program, std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches);

// Programs of one model, built once per spec; safe to use from several threads.
class ProgramCache {
 public:
  std::shared_ptr<const Program> get(const torch::jit::Module& module, const ProgramSpec& spec);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Program>> programs_;
};

// For tests and the curious: the module paths still called and the op counts of the fully
// inlined program, which show what a capture really computes.
struct ProgramSummary {
  std::vector<std::string> calledModules;
  std::map<std::string, int> opCounts;
  std::string graph;
};
ProgramSummary summarize(const Program& program);

}  // namespace torchscope
