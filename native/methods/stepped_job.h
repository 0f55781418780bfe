// A long method run a chunk of steps at a time (attribution, patching sweeps, maximization, SAE
// training): JS drives it, so progress comes between chunks, other calls interleave, an abort
// stops it within one step, and the event loop never waits. bindings/session_handle.h is its JS
// face: one session class for every such method.
#pragma once

#include <ATen/core/ivalue.h>

#include <functional>
#include <memory>
#include <vector>

namespace torchscope {

class SteppedJob {
 public:
  virtual ~SteppedJob() = default;
  // Runs up to `count` more steps on the compute thread, before each asking `stop`; returns the
  // progress JS receives (a record; the session adds `aborted`).
  virtual c10::IValue steps(int64_t count, const std::function<bool()>& stop) = 0;
  // The job's result (compute thread); `argument` is what JS passed to result().
  virtual c10::IValue result(const c10::IValue& argument) = 0;
  // Inputs JS hands over with a chunk, before its steps (compute thread): SAE training's
  // batches. A job that takes none refuses them.
  virtual void supply(std::vector<at::Tensor> inputs);
  // Bytes the job holds beyond the model's, reported to V8.
  virtual int64_t bytes() const { return 0; }
};

// A job planned as a list of steps, each one batched forward (and backward) pass, then a
// result built from what they left: attribution runs and patching sweeps. Its progress is
// { done, total }; result() requires every step to have run.
struct RunPlan {
  std::vector<std::function<void()>> steps;  // compute thread, in order
  std::function<c10::IValue()> finish;       // compute thread, after the last step
};

std::shared_ptr<SteppedJob> plannedJob(RunPlan plan);

}  // namespace torchscope
