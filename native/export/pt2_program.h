// Programs of an exported model: its compiled plan run step by step with hooks placed by
// module call and node (pt2_modules.h). A module's hooks run after the last node of each call
// (innermost module first, as eager forward hooks nest); its ':input' hooks before the first,
// given to that call's nodes only; a node's right after it. Kinds run in the TorchScript
// backend's order (torchscript/hooks.h): replace, patch, gradient tap, record (captures are
// copies taken then, so later in-place ops cannot change them), SAE read and write. Without
// the output, the run stops after the last hook.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "export/pt2_loaded.h"
#include "program/program.h"

namespace torchscope {

class ExportProgram : public Program {
 public:
  // Throws UNKNOWN_LAYER / UNHOOKABLE_LAYER for hook points it cannot place.
  ExportProgram(const ProgramSpec& spec, std::shared_ptr<const pt2::LoadedProgram> loaded);
  RunResult run(std::vector<c10::IValue> inputs, const std::vector<PatchArgs>& patches, const std::vector<at::Tensor>& replacements,
                const std::vector<std::shared_ptr<const Sae>>& saes) const override;
  ProgramSummary summary() const override;

  // A hook point placed at a step: its request name, the slots of its value (one: that value;
  // several: a tuple of them), and for an ':input', the slot its call's nodes read instead.
  struct Hook {
    std::string name;
    std::vector<int> slots;
    int given = -1;
    size_t depth = 0;                     // of its module path, for nesting order
    const pt2::TreeSpec* spec = nullptr;  // how a module call's outputs nest, when exported with its signature
  };

 private:
  class Run;
  void place(const std::string& target);
  void placeModule(const std::string& target, const HookPoint& point);
  void placeNode(const std::string& target, const HookPoint& point);

  std::shared_ptr<const pt2::LoadedProgram> loaded_;
  std::vector<pt2::Step> steps_;  // the plan's, with ':input' reads redirected
  int slots_ = 0;
  std::map<int, int> origin_;  // an ':input' hook's slot -> the slot it was given from
  std::vector<std::vector<Hook>> before_;
  std::vector<std::vector<Hook>> after_;
  std::vector<bool> runs_;                 // steps that run (pt2_schedule.h)
  std::vector<std::vector<int>> release_;  // slots dead after each step
  size_t end_ = 0;                         // steps run
  double buildMs_ = 0;
};

}  // namespace torchscope
