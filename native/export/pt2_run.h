// Running a compiled plan (pt2_plan.h): a step's arguments read from the environment's slots
// (Python numbers in tensor arguments wrapped as PyTorch wraps them), its operator called
// boxed through the dispatcher (so autograd records it), its results bound to their slots;
// higher-order steps run their subplans (the branch a torch.cond predicate takes, a while_loop
// until its condition fails, a region under its grad mode or autocast).
#pragma once

#include "export/pt2_plan.h"

namespace torchscope::pt2 {

// The value an argument source gives in `env`.
c10::IValue argumentValue(const ArgSource& source, const Env& env);

// Runs one step of `plan` in `env`.
void runStep(const Plan& plan, const Step& step, Env& env);

// Runs a whole plan on `inputs` (one per graph input), returning its outputs.
std::vector<c10::IValue> runPlan(const Plan& plan, const std::vector<c10::IValue>& inputs);

// Restores the thread's grad mode and CPU and CUDA autocast state when it ends: steps that stop
// inside an inlined region (an error, a run cut after its last hook) leave no mode behind.
class ModeGuard {
 public:
  ModeGuard();
  ~ModeGuard();
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  bool grad_;
  bool cpu_;
  bool cuda_;
  c10::ScalarType cpuType_;
  c10::ScalarType cudaType_;
};

}  // namespace torchscope::pt2
