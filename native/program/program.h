// Instrumented programs: a model's forward rewritten to run hooks (native/program/hooks.h), built
// once per (model, layer set), run with the hooks' run-time arguments.
#pragma once

#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/api/function_impl.h>
#include <torch/csrc/jit/api/module.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/module_calls.h"
#include "program/precision.h"

namespace torchscope {

// What a program must do; values (patch tensors, channels) are run-time inputs, not part of it.
struct ProgramSpec {
  std::vector<std::string> capture;  // sorted, unique layer paths
  std::vector<std::string> patch;    // sorted, unique layer paths
  // Sorted, unique layer paths whose output's gradient is wanted: each call's value (the first
  // tensor of a tuple) is recorded as it is, and the rest of forward uses a copy of it, so
  // that in-place ops downstream cannot rewrite it (Captum's layer methods do the same).
  std::vector<std::string> gradient;
  // Sorted, unique hook points whose value is replaced whole by a run-time tensor (patching
  // sweeps): what only computed the old value is then dead and cut from the program, so a
  // sweep of layer 9 does not run layers 0-8 again.
  std::vector<std::string> replace;
  bool returnOutput = true;          // false: stop once the last capture is taken
  // Freeze the program and apply libtorch's inference optimisations (conv-BN folding,
  // oneDNN layouts): faster, captured values within 1e-4 relative instead of 1e-5. Models
  // with bfloat16/float16 weights, and programs run at a reduced precision, are frozen only:
  // those rewrites round differently there, and their fused ops are not autocast ops (a
  // reduced-precision program has its autocast weights cast once instead, same values).
  bool optimize = false;
  // Its backward is taken (gradients, maximize). oneDNN-rewritten programs have none, so such a
  // program is built exact where optimize would rewrite; a frozen-only one differentiates as the
  // exact one does (at reduced precision: same values, without casting the weights every step).
  bool differentiable = false;
  // Autocast to a reduced precision while the program runs (precision.h): the call's, else the model's.
  Precision precision = Precision::kFloat32;
  c10::DeviceType device = c10::kCPU;  // the model's: where autocast applies (not part of the key)
  std::string key() const;
  // Every hooked layer (captured, patched or tapped), sorted: the order of the program's records.
  std::vector<std::string> targets() const;
  bool captures(const std::string& layer) const;
  bool taps(const std::string& layer) const;
  bool replaces(const std::string& layer) const;
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
  std::optional<c10::FunctionSchema> forwardSchema;  // the model's forward, to check inputs
  std::map<std::string, int> callSites;               // hook points per requested layer
  std::string numerics;                               // "exact", "optimized" or "frozen"
  // 4-D floating inputs are given to it channels-last (see runsChannelsLast in program.cpp).
  bool channelsLast = false;
  double buildMs = 0;                                 // time taken to build it (once per spec)
};

struct RunResult {
  c10::IValue output;                                         // None unless requested
  std::map<std::string, std::vector<c10::IValue>> captures;  // every call, in call order
  std::map<std::string, std::vector<at::Tensor>> taps;        // spec.gradient's values, every call
  std::map<std::string, int64_t> calls;                       // hook runs per targeted layer
};

// The submodules a model has, with whether (and why not) they can be hooked.
using ModuleSurvey = std::map<std::string, Hookability>;

// Builds the instrumented program. Throws UNKNOWN_LAYER for a path that is not a submodule
// and UNHOOKABLE_LAYER (with the survey's reason) for one that forward never calls.
std::shared_ptr<const Program> buildProgram(const torch::jit::Module& module, const ModuleSurvey& survey,
                                            const ProgramSpec& spec);

// Runs it. `inputs` are forward's arguments (checked and defaulted against forward's schema);
// `patches` are in spec.patch order, `replacements` in spec.replace order.
RunResult runProgram(const Program& program, std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches,
                     const std::vector<at::Tensor>& replacements = {});

// Throws LAYER_NOT_RUN, naming them, when a targeted layer's hooks did not run in `result`
// (its call sites lie in a branch this input did not take).
void requireAllRan(const Program& program, const RunResult& result);

// Programs of one model, built once per spec; safe to use from several threads.
class ProgramCache {
 public:
  // A differentiable spec that optimize would rewrite is built (and cached) as exact.
  std::shared_ptr<const Program> get(const torch::jit::Module& module, const ModuleSurvey& survey, ProgramSpec spec);
  size_t size();

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
  std::string numerics;
  std::string precision;  // 'fp32', 'bf16' or 'fp16': what its matmul-like ops compute in
  std::string memoryFormat;  // 'channels_last' or 'contiguous': how it is given image inputs
  double buildMs = 0;
  size_t programsCached = 0;  // programs this model has built so far
};
ProgramSummary summarize(const Program& program);

}  // namespace torchscope
