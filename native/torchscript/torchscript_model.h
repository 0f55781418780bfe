// The TorchScript backend's model format: a TorchScript file (torch.jit.trace / script), checked
// before libtorch loads it (model_file.h), its submodules surveyed for hook points
// (module_calls.h), its programs built from forward's graph (torchscript_program.h).
#pragma once

#include <torch/csrc/jit/api/module.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "program/program.h"
#include "torchscript/model_file.h"
#include "torchscript/supplied_arguments.h"

namespace torchscope {

class TorchScriptModel : public ModelFormat {
 public:
  // Loads `path` on `device` in inference mode (dropout off, BatchNorm's running statistics),
  // parameters without gradients. Throws MODEL_LOAD (with the cause) or DEVICE.
  static std::shared_ptr<TorchScriptModel> load(const std::string& path, const c10::Device& device, const LoadPolicy& policy);

  const std::vector<std::pair<std::string, std::string>>& submodules() const override { return submodules_; }
  const ModuleSurvey& survey() const override { return survey_; }
  const c10::FunctionSchema& forwardSchema() const override { return forwardSchema_; }
  ProgramSpec canonical(ProgramSpec spec) const override;
  std::shared_ptr<const Program> build(const ProgramSpec& spec) const override;
  std::vector<SubmoduleArgument> submoduleArguments(const std::string& path, const std::string& role) const override;
  c10::FunctionSchema submoduleSchema(const std::string& path, const std::string& role) const override;
  c10::IValue callSubmodule(const std::string& path, const std::string& role, std::vector<c10::IValue> inputs, Precision precision,
                            c10::DeviceType device) const override;
  std::vector<ModuleNode> nodes(const std::string& path) const override;
  int64_t bytes() const override { return bytes_; }
  std::map<std::string, at::Tensor> namedTensors() const override;
  // Adopts `owner`'s tensors in place of its own where the names match: a decoding step then
  // holds no second copy of its model's weights. MODEL_LOAD where a tensor of the same name
  // differs (another model's step). Before any program is built.
  void shareTensorsOf(const ModelFormat& owner);

 private:
  torch::jit::Method forwardOf(const std::string& path, const std::string& role) const;
  // The arguments a submodule is supplied with, found once per path.
  SuppliedArguments& suppliedArguments(const std::string& path, const std::string& role) const;

  torch::jit::Module module_;
  std::vector<std::pair<std::string, std::string>> submodules_;  // path, type name
  std::map<std::string, torch::jit::Module> modulesByPath_;
  ModuleSurvey survey_;
  c10::FunctionSchema forwardSchema_{"forward", "", {}, {}};
  int64_t bytes_ = 0;
  mutable std::mutex suppliedMutex_;
  mutable std::map<std::string, std::unique_ptr<SuppliedArguments>> supplied_;
};

}  // namespace torchscope
