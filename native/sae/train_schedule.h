// The schedules of SAE training, as SAELens 6.18 builds them (sae_lens/training/optim.py): the
// learning rate (get_lr_scheduler: an optional linear warm-up, the main scheduler, an optional
// linear decay, chained by torch's SequentialLR) and a loss coefficient's linear warm-up
// (CoefficientScheduler). The learning rate follows torch.optim.lr_scheduler step by step: its
// schedulers update the previous value by chainable factors and switch phases through
// SequentialLR's quirks (a closed form at each milestone), which rounds differently from any
// closed form, so they are emulated as they run rather than written as formulas.
#pragma once

#include <cstdint>
#include <vector>

#include "core/names.h"

namespace torchscope {

struct LrScheduleSpec {
  LrScheduler scheduler = LrScheduler::kConstant;
  double lr = 0;
  double lrEnd = 0;  // cosine schedulers' eta_min, and where the decay starts (SAELens's lr_end)
  int64_t warmupSteps = 0, decaySteps = 0;
  int64_t trainingSteps = 0;  // what the schedule is planned over
  int64_t restartCycles = 1;  // cosineannealingwarmrestarts
};

// Checks a spec as SAELens and torch's constructors would (INVALID_ARGUMENT naming the option).
void checkLrSchedule(const LrScheduleSpec& spec);

class LrSchedule {
 public:
  explicit LrSchedule(const LrScheduleSpec& spec);
  // The learning rate of the next optimizer step (param_groups[0]["lr"]).
  double lr() const { return lr_; }
  // After each optimizer step: SequentialLR.step().
  void step();

 private:
  enum class Kind { kConstant, kCosine, kRestarts, kLinear };
  // One of torch's schedulers, with the state its get_lr reads.
  struct Phase {
    Kind kind;
    double startFactor = 1, endFactor = 1;  // linear
    int64_t totalIters = 0;                 // linear
    int64_t period = 0;                     // cosine T_max, restarts T_0
    int64_t lastEpoch = -1, stepCount = 0;
    int64_t restartCur = -1, restartPeriod = 0;  // restarts T_cur, T_i
  };

  // LRScheduler.step() (CosineAnnealingWarmRestarts overrides it); `initial` is _initial_step's.
  void stepPhase(Phase& phase, bool initial);
  // _update_lr(0): SequentialLR at a milestone (the closed form where torch has one).
  void restartPhase(Phase& phase);
  // get_lr(), reading and giving the group's learning rate.
  double nextLr(const Phase& phase, bool initial) const;

  double base_;    // initial_lr
  double etaMin_;  // the cosine schedulers'
  double lr_;
  std::vector<Phase> phases_;
  std::vector<int64_t> milestones_;
  int64_t lastEpoch_ = 0;  // SequentialLR's
};

// A coefficient warmed up linearly from 0 over `warmupSteps` steps (SAELens's CoefficientScheduler).
class CoefficientSchedule {
 public:
  CoefficientSchedule(double value, int64_t warmupSteps);
  double value() const { return current_; }
  void step();

 private:
  double final_;
  int64_t warmupSteps_;
  int64_t step_ = 0;
  double current_;
};

}  // namespace torchscope
