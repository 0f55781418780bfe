// The JS-visible model handle: a loaded TorchScript module, its device, and the cache of
// instrumented programs built for it. lib/model.ts wraps it in the public Model class.
#pragma once

#include <torch/csrc/jit/api/module.h>
#include <napi.h>

#include <atomic>
#include <map>
#include <memory>

#include "program/program.h"

namespace torchscope {

// Everything a queued call needs; shared with in-flight work so dispose() never frees a
// module that a worker thread is running.
struct ModelState {
  torch::jit::Module module;
  c10::Device device{c10::kCPU};
  bool optimize = false;  // see ProgramSpec::optimize
  // Defaults of every call (load's options); a call may override them (NumericsOverride).
  Precision precision = Precision::kFloat32;  // see ProgramSpec::precision
  bool upcast = false;                        // results reach JS as float32 (returned())
  std::vector<std::pair<std::string, std::string>> submodules;  // path, type name
  std::map<std::string, torch::jit::Module> modulesByPath;       // for model.call
  ModuleSurvey survey;                                          // by path: can it be hooked?
  c10::FunctionSchema forwardSchema{"forward", "", {}, {}};     // how JS inputs are converted
  int64_t bytes = 0;                                            // of its tensors, reported to V8
  ProgramCache programs;

  // Every program of the model runs on its device, at the call's precision or else the model's.
  std::shared_ptr<const Program> program(ProgramSpec spec, const NumericsOverride& call) {
    spec.precision = call.precision.value_or(precision);
    spec.device = device.type();
    return programs.get(module, survey, spec);
  }
  // A result as JS receives it: on the CPU, and float32 where a reduced precision computed it
  // and the call (or else the model) asks for upcast. Only at the boundary: inside (sweeps,
  // attribution) values stay in the type computed.
  c10::IValue returned(const c10::IValue& value, const NumericsOverride& call) const;
  at::Tensor returned(const at::Tensor& tensor, const NumericsOverride& call) const;
};

class ModelHandle : public Napi::ObjectWrap<ModelHandle> {
 public:
  static void define(Napi::Env env, Napi::Object exports);
  explicit ModelHandle(const Napi::CallbackInfo& info);
  ~ModelHandle() override;

 private:
  // [async] load(path, { device, optimize, trusted, maxInflatedBytes }, cancelToken?) -> ModelHandle.
  //   The file is checked before libtorch loads it (model_file.h). Rejects MODEL_LOAD / DEVICE.
  static Napi::Value load(const Napi::CallbackInfo& info);
  // [sync] [[path, typeName, callSites, whyNotHookable], ...] for every submodule, root ("") first.
  Napi::Value modules(const Napi::CallbackInfo& info);
  // [sync] 'cpu' | 'cuda:N'
  Napi::Value device(const Napi::CallbackInfo& info);
  // [sync] [[name, type], ...]: forward's arguments after self, as its schema declares them
  Napi::Value forwardArguments(const Napi::CallbackInfo& info);
  // [async] run(inputs[], { capture[], patch: [{layer, mode, value, scale, channels, positions}], output },
  //   cancelToken?)
  //   -> { output, captures: { layer: [value per call] }, calls: { layer: hook runs } }, tensors
  //   brought back to the CPU.
  //   A plain forward is run(inputs, { output: true }).
  Napi::Value run(const Napi::CallbackInfo& info);
  // [async] call(path, inputs[], cancelToken?) -> what the submodule's forward returns for
  //   `inputs` (converted to its declared types), without gradients, brought back to the CPU.
  Napi::Value call(const Napi::CallbackInfo& info);
  // [async] inspect({ capture[], patch[], output })
  //   -> { calledModules, opCounts, graph, numerics, buildMs, programsCached }
  Napi::Value inspect(const Napi::CallbackInfo& info);
  // [async] gradients(inputs[], { objective: { layer, objectives }, inputs[], layers[], patch[] },
  //   cancelToken?) -> { objective: number[], inputs: Tensor[], layers: { layer: Tensor[] per call } }
  //   (see gradients.h), tensors brought back to the CPU.
  Napi::Value gradients(const Napi::CallbackInfo& info);
  // [async] attribute(inputs[], spec) -> PlannedRun (see attribution.h; spec from lib/attribution.ts)
  Napi::Value attribute(const Napi::CallbackInfo& info);
  // [async] logitLens(inputs[], { layers[], head[], topK }, cancelToken?) -> { logits } or, with
  //   topK, { logits (the k largest), indices } (see logit_lens.h)
  Napi::Value logitLens(const Napi::CallbackInfo& info);
  // [async] patchingSweep(clean[], corrupted[], spec) -> PlannedRun (see patching.h; spec from
  //   lib/circuits.ts)
  Napi::Value patchingSweep(const Napi::CallbackInfo& info);
  // [async] maximize(spec) -> MaximizeSession (see maximize.h; spec from lib/maximize.ts)
  Napi::Value maximize(const Napi::CallbackInfo& info);
  // [sync] releases the module once in-flight calls finish; later calls reject DISPOSED.
  Napi::Value dispose(const Napi::CallbackInfo& info);

  std::shared_ptr<ModelState> live(Napi::Env env) const;
  void release();

  std::shared_ptr<ModelState> state_;
  int64_t reportedBytes_ = 0;
  napi_env env_ = nullptr;
};

}  // namespace torchscope
