#include "sae/train_schedule.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace torchscope {

namespace {

constexpr double kPi = 3.14159265358979323846;  // math.pi

// Python's %: the sign of the divisor.
int64_t floorMod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

}  // namespace

void checkLrSchedule(const LrScheduleSpec& spec) {
  TS_CHECK(spec.trainingSteps >= 1, code::kInvalidArgument, "SAE training needs at least 1 step, got ", spec.trainingSteps);
  TS_CHECK(spec.warmupSteps >= 0 && spec.decaySteps >= 0, code::kInvalidArgument, "lrWarmupSteps and lrDecaySteps must be >= 0");
  TS_CHECK(spec.warmupSteps + spec.decaySteps <= spec.trainingSteps, code::kInvalidArgument, "lrWarmupSteps (", spec.warmupSteps,
           ") + lrDecaySteps (", spec.decaySteps, ") must not exceed the ", spec.trainingSteps, " training steps");
  const int64_t mainSteps = spec.trainingSteps - spec.warmupSteps - spec.decaySteps;
  TS_CHECK(spec.lr > 0 && spec.lrEnd >= 0, code::kInvalidArgument, "lr must be > 0 and lrEnd >= 0");
  if (spec.scheduler == LrScheduler::kCosineAnnealing) {
    TS_CHECK(mainSteps >= 1, code::kInvalidArgument,
             "lrScheduler 'cosineannealing' needs at least 1 step between the warm-up and the decay");
  }
  if (spec.scheduler == LrScheduler::kCosineAnnealingWarmRestarts) {
    TS_CHECK(spec.restartCycles >= 1 && mainSteps / spec.restartCycles >= 1, code::kInvalidArgument,
             "lrScheduler 'cosineannealingwarmrestarts' needs nRestartCycles >= 1 cycles of at least 1 step each (", mainSteps,
             " steps between the warm-up and the decay)");
  }
  // The decay starts from lr_end (from lr for 'constant'): torch's LinearLR takes lr_end / lr in (0, 1].
  if (spec.decaySteps > 0 && spec.scheduler != LrScheduler::kConstant) {
    TS_CHECK(spec.lrEnd > 0 && spec.lrEnd <= spec.lr, code::kInvalidArgument,
             "lrDecaySteps decays from lrEnd, which must be in (0, lr], got ", spec.lrEnd);
  }
}

LrSchedule::LrSchedule(const LrScheduleSpec& spec) : base_(spec.lr), etaMin_(spec.lrEnd), lr_(spec.lr) {
  checkLrSchedule(spec);
  // get_lr_scheduler builds the main scheduler first, then the warm-up, then the decay; each
  // constructor takes an initial step that writes the group's lr.
  const int64_t mainSteps = spec.trainingSteps - spec.warmupSteps - spec.decaySteps;
  Phase main{spec.scheduler == LrScheduler::kConstant          ? Kind::kConstant
             : spec.scheduler == LrScheduler::kCosineAnnealing ? Kind::kCosine
                                                               : Kind::kRestarts};
  main.period = spec.scheduler == LrScheduler::kCosineAnnealingWarmRestarts ? mainSteps / spec.restartCycles : mainSteps;
  stepPhase(main, true);
  if (spec.warmupSteps > 0) {
    Phase warmup{Kind::kLinear, 1.0 / static_cast<double>(spec.warmupSteps), 1.0, spec.warmupSteps - 1};
    stepPhase(warmup, true);
    phases_.push_back(warmup);
    milestones_.push_back(spec.warmupSteps);
  }
  phases_.push_back(main);
  if (spec.decaySteps > 0) {
    const double decayFrom = spec.scheduler == LrScheduler::kConstant ? spec.lr : spec.lrEnd;
    Phase decay{Kind::kLinear, decayFrom / spec.lr, 0.0, spec.decaySteps};
    stepPhase(decay, true);
    phases_.push_back(decay);
    milestones_.push_back(spec.trainingSteps - spec.decaySteps);
  }
  // SequentialLR: the lr back to initial_lr, every scheduler's step undone, then the first
  // phase's initial step again.
  lr_ = base_;
  for (Phase& phase : phases_) phase.lastEpoch -= 1;
  const auto first = std::upper_bound(milestones_.begin(), milestones_.end(), 0) - milestones_.begin();
  stepPhase(phases_[first], true);
}

void LrSchedule::step() {
  lastEpoch_ += 1;
  const auto index = std::upper_bound(milestones_.begin(), milestones_.end(), lastEpoch_) - milestones_.begin();
  if (index > 0 && milestones_[index - 1] == lastEpoch_) {
    restartPhase(phases_[index]);
  } else {
    stepPhase(phases_[index], false);
  }
}

void LrSchedule::stepPhase(Phase& phase, bool initial) {
  if (initial) phase.stepCount = 0;
  if (phase.kind == Kind::kRestarts) {
    // CosineAnnealingWarmRestarts.step(), T_mult 1 (it counts no _step_count).
    int64_t epoch;
    if (phase.lastEpoch < 0) {
      epoch = 0;
      phase.restartPeriod = phase.period;
      phase.restartCur = 0;
    } else {
      epoch = phase.lastEpoch + 1;
      phase.restartCur += 1;
      if (phase.restartCur >= phase.restartPeriod) phase.restartCur %= phase.restartPeriod;
    }
    phase.lastEpoch = epoch;
  } else {
    phase.stepCount += 1;
    phase.lastEpoch += 1;
  }
  lr_ = nextLr(phase, initial);
}

void LrSchedule::restartPhase(Phase& phase) {
  phase.lastEpoch = 0;
  switch (phase.kind) {
    case Kind::kLinear: {
      const double done = (phase.endFactor - phase.startFactor) * static_cast<double>(std::min<int64_t>(phase.totalIters, 0));
      lr_ = base_ * (phase.startFactor + done / static_cast<double>(phase.totalIters));
      return;
    }
    case Kind::kCosine: lr_ = etaMin_ + (base_ - etaMin_) * (1 + std::cos(kPi * 0 / static_cast<double>(phase.period))) / 2; return;
    case Kind::kConstant:
    case Kind::kRestarts: lr_ = nextLr(phase, false); return;
  }
}

double LrSchedule::nextLr(const Phase& phase, bool initial) const {
  const double epoch = static_cast<double>(phase.lastEpoch);
  switch (phase.kind) {
    case Kind::kConstant: return base_ * 1.0;
    case Kind::kLinear: {
      if (phase.lastEpoch == 0) return lr_ * phase.startFactor;
      if (initial || phase.lastEpoch > phase.totalIters) return lr_;
      const double slope = phase.endFactor - phase.startFactor;
      return lr_ * (1.0 + slope / (static_cast<double>(phase.totalIters) * phase.startFactor + (epoch - 1) * slope));
    }
    case Kind::kCosine: {
      const double period = static_cast<double>(phase.period);
      if (initial) return lr_;
      if (phase.stepCount == 1 && phase.lastEpoch > 0) return etaMin_ + (base_ - etaMin_) * (1 + std::cos(epoch * kPi / period)) / 2;
      if (floorMod(phase.lastEpoch - 1 - phase.period, 2 * phase.period) == 0) {
        return lr_ + (base_ - etaMin_) * (1 - std::cos(kPi / period)) / 2;
      }
      return (1 + std::cos(kPi * epoch / period)) / (1 + std::cos(kPi * (epoch - 1) / period)) * (lr_ - etaMin_) + etaMin_;
    }
    case Kind::kRestarts:
      return etaMin_ +
             (base_ - etaMin_) * (1 + std::cos(kPi * static_cast<double>(phase.restartCur) / static_cast<double>(phase.restartPeriod))) / 2;
  }
  return lr_;
}

CoefficientSchedule::CoefficientSchedule(double value, int64_t warmupSteps)
    : final_(value), warmupSteps_(warmupSteps), current_(warmupSteps > 0 ? 0.0 : value) {}

void CoefficientSchedule::step() {
  current_ = step_ < warmupSteps_ ? final_ * (static_cast<double>(step_ + 1) / static_cast<double>(warmupSteps_)) : final_;
  step_ += 1;
}

}  // namespace torchscope
