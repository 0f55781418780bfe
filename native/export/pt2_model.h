// The torch.export backend's model format: a `.pt2` archive (torch.export.save), read as
// untrusted input (pt2_archive.h), compiled into a plan the dispatcher runs node by node
// (pt2_plan.h), its modules mapped from nn_module_stack (pt2_modules.h), its programs placing
// hooks at module calls and nodes (pt2_program.h). Every method runs on it through ModelFormat.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "export/pt2_loaded.h"
#include "program/program.h"

namespace torchscope {

class ExportModel : public ModelFormat {
 public:
  // Throws MODEL_LOAD with the cause.
  static std::shared_ptr<ExportModel> load(const std::string& path, const c10::Device& device, const LoadPolicy& policy);

  const std::vector<std::pair<std::string, std::string>>& submodules() const override { return loaded_->modules.submodules; }
  const ModuleSurvey& survey() const override { return loaded_->modules.survey; }
  const c10::FunctionSchema& forwardSchema() const override { return loaded_->forwardSchema; }
  // An exported program runs as exported: `optimize` builds the exact program.
  ProgramSpec canonical(ProgramSpec spec) const override;
  std::shared_ptr<const Program> build(const ProgramSpec& spec) const override;
  std::vector<SubmoduleArgument> submoduleArguments(const std::string& path, const std::string& role) const override;
  c10::FunctionSchema submoduleSchema(const std::string& path, const std::string& role) const override;
  c10::IValue callSubmodule(const std::string& path, const std::string& role, std::vector<c10::IValue> inputs, Precision precision,
                            c10::DeviceType device) const override;
  std::vector<ModuleNode> nodes(const std::string& path) const override;
  int64_t bytes() const override { return loaded_->bytes; }
  // Parameters and buffers by the names the signature gives them (state_dict's).
  std::map<std::string, at::Tensor> namedTensors() const override;

 private:
  // The first call of a hookable submodule and the values it reads from outside it.
  const pt2::ModuleCall& firstCall(const std::string& path, const std::string& role) const;
  std::vector<int> outsideReads(const pt2::ModuleCall& call) const;

  std::shared_ptr<const pt2::LoadedProgram> loaded_;
};

}  // namespace torchscope
