#include "methods/maximize.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <limits>

#include "core/errors.h"
#include "core/ivalues.h"
#include "core/resources.h"
#include "methods/objective_run.h"

namespace torchscope {

namespace {

// Larger images are probed for the memory a step needs before the run starts.
constexpr int64_t kProbedPixels = 512 * 512;

// The session's own tensors: the parameter, its gradient, Adam's two moments, the best image.
int64_t sessionBytes(const MaximizeSpec& spec) {
  const int64_t pixels = spec.image.batch * spec.image.channels * spec.image.height * spec.image.width;
  return 5 * pixels * static_cast<int64_t>(sizeof(float));
}

class MaximizeJob : public SteppedJob {
 public:
  MaximizeJob(std::shared_ptr<ModelState> model, MaximizeSpec spec) : model(std::move(model)), spec(std::move(spec)) {}

  c10::IValue steps(int64_t count, const std::function<bool()>& stop) override {
    std::vector<double> objectives;
    for (int64_t i = 0; i < count && !stop(); ++i) objectives.push_back(runStep());
    return Record().set("objectives", numberList(objectives));
  }

  c10::IValue result(const c10::IValue& argument) override {
    at::NoGradGuard noGrad;
    const bool useBest = argument.isBool() && argument.toBool() && bestImage.defined();
    const at::Tensor image = (useBest ? bestImage : param->image()).detach();
    return Record().set("image", image.to(c10::kCPU)).set("input", modelView(image).to(c10::kCPU)).set("bestStep", bestStep);
  }

  int64_t bytes() const override { return sessionBytes(spec); }

  // The program (built now: a layer that cannot be hooked fails here, not at the first step) and
  // the parameters; for large images, first the memory one step needs.
  void start() {
    program = model->program(withObjective(spec.objective, programNeeds()), spec.numerics, Optimize::kAsLoaded);
    if (spec.image.height * spec.image.width > kProbedPixels && model->device.is_cpu()) {
      checkFits(estimateStepBytes() + static_cast<uint64_t>(sessionBytes(spec)),
                c10::str("one step of maximize at ", spec.image.height, "x", spec.image.width, " (estimated from a 64x64 probe)"));
    }
    generator = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
    param = std::make_unique<ImageParam>(spec.image, model->device, generator);
  }

 private:
  // Every step takes the objective's gradient.
  static ProgramNeeds programNeeds() {
    ProgramNeeds needs;
    needs.differentiable = true;
    return needs;
  }

  std::shared_ptr<ModelState> model;
  MaximizeSpec spec;
  std::shared_ptr<const Program> program;
  at::Generator generator;
  std::unique_ptr<ImageParam> param;
  at::Tensor expAvg, expAvgSq;  // Adam's moments
  int64_t step = 0;
  double bestObjective = -std::numeric_limits<double>::infinity();
  int64_t bestStep = -1;
  at::Tensor bestImage;

  // The objective at the current parameters, then one Adam update.
  double runStep() {
    at::AutoGradMode gradients(true);
    at::Tensor& parameter = param->parameter();
    if (parameter.grad().defined()) parameter.mutable_grad() = at::Tensor();
    const at::Tensor image = param->image();
    at::Tensor input = applyTransforms(image, spec.transforms, generator);
    if (spec.normalize) input = imagenetNormalize(input);
    const ObjectiveRun forward = runForObjective(*model, {input}, spec.objective, programNeeds(), Optimize::kAsLoaded, spec.numerics);
    const at::Tensor objective = forward.values(spec.objective).sum() / static_cast<double>(spec.objective.objectives.size());
    const at::Tensor loss = regularization(image, spec.regularizers) - objective;
    loss.backward();
    const double value = objective.item<double>();
    TS_CHECK(std::isfinite(value), code::kRuntime, "the objective became ", value, " at step ", step, " (try a smaller lr)");
    if (value > bestObjective) {
      bestObjective = value;
      bestStep = step;
      bestImage = image.detach().clone();
    }
    adamStep(parameter);
    param->project();
    step += 1;
    return value;
  }

  // Adam as torch.optim.Adam computes it (single-tensor path), rounding included: libtorch's
  // C++ Adam updates the first moment with mul/add where Python uses lerp, and a layer4
  // objective amplifies that last-bit difference past 1e-3 within 20 steps.
  void adamStep(at::Tensor& parameter) {
    at::NoGradGuard noGrad;
    const at::Tensor& grad = parameter.grad();
    if (!expAvg.defined()) {
      expAvg = at::zeros_like(parameter);
      expAvgSq = at::zeros_like(parameter);
    }
    const double t = static_cast<double>(step + 1);
    expAvg.lerp_(grad, 1 - spec.beta1);
    expAvgSq.mul_(spec.beta2).addcmul_(grad, grad, 1 - spec.beta2);
    const double biasCorrection1 = 1 - std::pow(spec.beta1, t);
    const double biasCorrection2 = 1 - std::pow(spec.beta2, t);
    const at::Tensor denom = (expAvgSq.sqrt() / std::pow(biasCorrection2, 0.5)).add_(kAdamEps);
    parameter.addcdiv_(expAvg, denom, -spec.lr / biasCorrection1);
  }

  // Bytes one step needs at its peak (forward, then backward to the image), measured on a
  // small probe image and scaled by the pixel count (activations grow with it), so that a size
  // this machine cannot hold is refused before it is tried rather than killed part way. The
  // probe backpropagates a plain sum: an objective's indices may only exist at the full size.
  uint64_t estimateStepBytes() const {
    constexpr int64_t side = 64;
    at::AutoGradMode gradients(true);
    AllocationPeakMeter meter;
    {
      const at::Tensor probe =
          at::zeros({spec.image.batch, spec.image.channels, side, side}, at::TensorOptions(model->device)).requires_grad_(true);
      RunResult run = program->run({spec.normalize ? imagenetNormalize(probe) : probe}, {});
      requireAllRan(*program, run);
      const c10::IValue& value = spec.objective.needsLayer() ? run.captures.at(spec.objective.layer).back() : run.output;
      if (value.isTensor() && value.toTensor().requires_grad()) value.toTensor().sum().backward();
    }
    const double scale = static_cast<double>(spec.image.height * spec.image.width) / (side * side);
    return static_cast<uint64_t>(static_cast<double>(meter.peakBytes()) * scale);
  }

  // What the model sees for the current image, without the random transforms.
  at::Tensor modelView(const at::Tensor& image) const { return spec.normalize ? imagenetNormalize(image) : image; }
};

}  // namespace

void checkMaximizeFits(const MaximizeSpec& spec) {
  checkFits(static_cast<uint64_t>(sessionBytes(spec)),
            c10::str("maximize of ", spec.image.batch, " image(s) of ", spec.image.height, "x", spec.image.width));
}

std::shared_ptr<SteppedJob> startMaximize(std::shared_ptr<ModelState> model, MaximizeSpec spec) {
  auto job = std::make_shared<MaximizeJob>(std::move(model), std::move(spec));
  job->start();
  return job;
}

}  // namespace torchscope
