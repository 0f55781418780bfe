// A loaded model as the methods see it: the model in its format (program/program.h's
// ModelFormat: submodules, hook points, forward's signature, programs), its device, the options
// it was loaded with, and the cache of instrumented programs built for it. Shared with in-flight
// work, so dispose() never frees a model that the compute thread is running.
// bindings/model_handle.h is its JS face.
#pragma once

#include <memory>
#include <string>

#include "program/program.h"

namespace torchscope {

struct ModelState;

struct LoadOptions {
  std::string device = "cpu";  // as resolveDevice takes it
  bool optimize = false;       // see ProgramSpec::optimize
  Precision precision = Precision::kFloat32;
  bool upcast = false;
  LoadPolicy policy;
  // A model whose tensors this one adopts where names match (a decoding step beside it).
  std::shared_ptr<const ModelState> sharesTensorsOf;
};

// Whether a method's program may be optimized when the model was loaded with optimize: the
// perturbation and run methods may; methods whose values must be exact (sweeps, the lens,
// layer values of attribution) never are.
enum class Optimize { kAsLoaded, kNever };

struct ModelState {
  std::shared_ptr<const ModelFormat> format;
  c10::Device device{c10::kCPU};
  bool optimize = false;  // see ProgramSpec::optimize
  // Defaults of every call (load's options); a call may override them (NumericsOverride).
  Precision precision = Precision::kFloat32;  // see ProgramSpec::precision
  bool upcast = false;                        // results reach JS as float32 (returned())
  ProgramCache programs;

  // The program for `needs`: the one place a program's numerics are decided. It runs on the
  // model's device, at the call's precision or else the model's, optimized where the model was
  // loaded so and `optimize` allows.
  std::shared_ptr<const Program> program(const ProgramNeeds& needs, const NumericsOverride& call, Optimize optimize);
  // A result as JS receives it: on the CPU, and float32 where a reduced precision computed it
  // and the call (or else the model) asks for upcast. Only at the boundary: inside (sweeps,
  // attribution) values stay in the type computed.
  c10::IValue returned(const c10::IValue& value, const NumericsOverride& call) const;
  at::Tensor returned(const at::Tensor& tensor, const NumericsOverride& call) const;
};

// Loads the file in its format: a torch.export archive (export/pt2_model.h) or a TorchScript
// file (checked before libtorch reads it: torchscript/model_file.h). Compute thread. Throws
// MODEL_LOAD / DEVICE.
std::shared_ptr<ModelState> loadModel(const std::string& path, const LoadOptions& options);

}  // namespace torchscope
