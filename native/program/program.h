// Instrumented programs, whatever the model's format: what a method needs of one, the spec it is
// built and cached by, what a run returns, and the interface a model format implements
// (ModelFormat: its submodules and hook points, forward's signature, its programs, a
// submodule's own forward). TorchScript graphs are the first format (native/torchscript/).
#pragma once

#include <ATen/core/function_schema.h>
#include <ATen/core/ivalue.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "program/hook_points.h"
#include "program/precision.h"

namespace torchscope {

class Sae;

// A sparse autoencoder spliced into a program: it reads the value at hook point `read` and
// replaces the value at `write` (the same point, but for a transcoder) by its output, plus the
// error term (the clean value minus the SAE's output on the clean input) when `errorTerm`. Its
// values are hook points of their own: `read` + kSaeFeaturesSuffix and the other stages.
struct SaeSplice {
  std::string read;
  std::string write;
  bool errorTerm = true;
};

// What a method needs of a program; values (patch tensors, channels) are run-time inputs, not
// part of it. ModelState::program completes it into a ProgramSpec with the model's options and
// the call's numerics, the one place those are decided.
struct ProgramNeeds {
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
  // Sparse autoencoders spliced in, sorted by the hook point they read (unique): their run-time
  // objects come in this order (Program::run).
  std::vector<SaeSplice> saes;
  bool returnOutput = true;  // false: stop once the last capture is taken
  // Its backward is taken (gradients, maximize). oneDNN-rewritten programs have none, so such a
  // program is built exact where optimize would rewrite; a frozen-only one differentiates as the
  // exact one does (at reduced precision: same values, without casting the weights every step).
  bool differentiable = false;
};

// A program as built and cached: what was needed, and how it computes.
struct ProgramSpec : ProgramNeeds {
  // Freeze the program and apply libtorch's inference optimisations (conv-BN folding,
  // oneDNN layouts): faster, captured values within 1e-4 relative instead of 1e-5. Models
  // with bfloat16/float16 weights, and programs run at a reduced precision, are frozen only:
  // those rewrites round differently there, and their fused ops are not autocast ops (a
  // reduced-precision program has its autocast weights cast once instead, same values).
  bool optimize = false;
  // Autocast to a reduced precision while the program runs (precision.h): the call's, else the model's.
  Precision precision = Precision::kFloat32;
  c10::DeviceType device = c10::kCPU;  // the model's: where autocast applies (not part of the key)
  std::string key() const;
  // Every hooked layer (captured, patched, tapped, or where an SAE reads or writes), sorted: the
  // order of the program's records.
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

struct RunResult {
  c10::IValue output;                                        // None unless requested
  std::map<std::string, std::vector<c10::IValue>> captures;  // every call, in call order
  std::map<std::string, std::vector<at::Tensor>> taps;       // spec.gradient's values, every call
  std::map<std::string, int64_t> calls;                      // hook runs per targeted layer
};

// For tests and the curious: the module paths still called and the op counts of the fully
// inlined program, which show what a capture really computes.
struct ProgramSummary {
  std::vector<std::string> calledModules;
  std::map<std::string, int> opCounts;
  std::string graph;
  std::string numerics;
  std::string precision;     // 'fp32', 'bf16' or 'fp16': what its matmul-like ops compute in
  std::string memoryFormat;  // 'channels_last' or 'contiguous': how it is given image inputs
  double buildMs = 0;
};

// An instrumented program, as a model format builds it (ModelFormat::build).
class Program {
 public:
  explicit Program(ProgramSpec spec) : spec(std::move(spec)) {}
  virtual ~Program() = default;
  // Runs it. `inputs` are forward's arguments (checked and defaulted against forward's schema,
  // INVALID_ARGUMENT); `patches` are in spec.patch order, `replacements` in spec.replace order.
  // `saes` are spec.saes's objects, in that order.
  virtual RunResult run(std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches,
                        const std::vector<at::Tensor>& replacements = {},
                        const std::vector<std::shared_ptr<const Sae>>& saes = {}) const = 0;
  // What it computes, for torch.inspect.
  virtual ProgramSummary summary() const = 0;

  const ProgramSpec spec;
  std::map<std::string, int> callSites;  // hook points per requested layer
  double buildMs = 0;                    // time taken to build it (once per spec)
};

// Throws for SAE splices that cannot be built: one spliced at another's value, two reading one
// hook point (INVALID_ARGUMENT), or an SAE value requested where no SAE reads (UNKNOWN_LAYER).
void checkSaeSplices(const ProgramSpec& spec);

// Throws LAYER_NOT_RUN, naming them, when a targeted layer's hooks did not run in `result`
// (its call sites lie in a branch this input did not take).
void requireAllRan(const Program& program, const RunResult& result);

// An operation inside a module's forward that can be hooked ('<module path>/<name>').
struct ModuleNode {
  std::string name;
  std::string op;        // e.g. "aten::softmax"
  bool pattern = false;  // the softmax that '<module path>:pattern' names
  // Its value's shape where the file records it (an exported program: -1 for a dynamic size).
  bool shaped = false;
  std::vector<int64_t> shape;
};

// An argument of a submodule's forward (after self), as a call of the submodule alone fills it.
struct SubmoduleArgument {
  std::string name;
  std::string type;
  // The model supplies it (a tied weight, a constant table), found where the submodule's caller
  // computes it from its own parameters and constants; otherwise the caller of model.call gives it.
  bool supplied = false;
  bool hasDefault = false;
  // Where its value comes from: "transformer.wte.weight", "computed by 'model' from forward's
  // inputs"; empty when no call of the submodule was found.
  std::string source;
};

// How a model file is read: files are untrusted (torchscript/model_file.h for TorchScript's).
struct LoadPolicy {
  bool trusted = false;           // run code with effects outside tensor computation
  uint64_t maxInflatedBytes = 0;  // 0: the default, 4 x the file's size + 64 MiB, at most physical memory
};

// A model in some file format, as the methods use it.
class ModelFormat {
 public:
  virtual ~ModelFormat() = default;
  // Every submodule (path, type name), root "" first, and whether each can be hooked.
  virtual const std::vector<std::pair<std::string, std::string>>& submodules() const = 0;
  virtual const ModuleSurvey& survey() const = 0;
  // forward's signature (argument 0 is the module itself): how JS inputs are converted.
  virtual const c10::FunctionSchema& forwardSchema() const = 0;
  // The spec a build of `spec` has (a format may build some programs otherwise than asked): the
  // cache's key.
  virtual ProgramSpec canonical(ProgramSpec spec) const { return spec; }
  // The instrumented program. Throws UNKNOWN_LAYER for a path that is not a submodule and
  // UNHOOKABLE_LAYER (with the survey's reason) for one that forward never calls.
  virtual std::shared_ptr<const Program> build(const ProgramSpec& spec) const = 0;
  // A submodule's own forward: its arguments (UNKNOWN_LAYER for no such path, INVALID_ARGUMENT
  // for one without a plain forward, naming it as `role`), the signature of what a caller
  // gives (self, then the arguments not supplied), and a call of it on `inputs` (the
  // arguments not supplied; INVALID_ARGUMENT when they do not fit), autocast to `precision`
  // on `device`.
  virtual std::vector<SubmoduleArgument> submoduleArguments(const std::string& path, const std::string& role) const = 0;
  virtual c10::FunctionSchema submoduleSchema(const std::string& path, const std::string& role) const = 0;
  virtual c10::IValue callSubmodule(const std::string& path, const std::string& role, std::vector<c10::IValue> inputs, Precision precision,
                                    c10::DeviceType device) const = 0;
  // The operations of a submodule's forward that can be hooked, in order (UNKNOWN_LAYER for no
  // such path; INVALID_ARGUMENT for one without a plain forward).
  virtual std::vector<ModuleNode> nodes(const std::string& path) const = 0;
  // Bytes of its tensors, reported to V8.
  virtual int64_t bytes() const = 0;
  // Its parameters and buffers by state_dict name, which a model loaded to share them (a
  // decoding step beside its model) adopts. INVALID_ARGUMENT where the format cannot give them.
  virtual std::map<std::string, at::Tensor> namedTensors() const;
};

// Programs of one model, built once per spec; safe to use from several threads.
class ProgramCache {
 public:
  std::shared_ptr<const Program> get(const ModelFormat& format, ProgramSpec spec);
  size_t size();

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const Program>> programs_;
};

}  // namespace torchscope
