#include "methods/stepped_job.h"

#include "core/errors.h"
#include "core/ivalues.h"

namespace torchscope {

namespace {

class PlannedJob : public SteppedJob {
 public:
  explicit PlannedJob(RunPlan plan) : plan_(std::move(plan)) {}

  c10::IValue steps(int64_t count, const std::function<bool()>& stop) override {
    for (int64_t i = 0; i < count && next_ < plan_.steps.size() && !stop(); ++i) {
      plan_.steps[next_]();
      plan_.steps[next_] = nullptr;  // what the step held goes now
      next_ += 1;
    }
    return Record().set("done", static_cast<int64_t>(next_)).set("total", static_cast<int64_t>(plan_.steps.size()));
  }

  c10::IValue result(const c10::IValue&) override {
    TS_CHECK(next_ == plan_.steps.size(), code::kInvalidArgument, "the run has ", plan_.steps.size() - next_, " step(s) left");
    return plan_.finish();
  }

 private:
  RunPlan plan_;
  size_t next_ = 0;
};

}  // namespace

void SteppedJob::supply(std::vector<at::Tensor> inputs) {
  TS_CHECK(inputs.empty(), code::kInvalidArgument, "this job takes no inputs with its steps");
}

std::shared_ptr<SteppedJob> plannedJob(RunPlan plan) { return std::make_shared<PlannedJob>(std::move(plan)); }

}  // namespace torchscope
