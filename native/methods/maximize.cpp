#include "methods/maximize.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "bindings/addon.h"
#include "bindings/async_work.h"
#include "core/errors.h"
#include "core/resources.h"
#include "bindings/tensor.h"

namespace torchscope {

namespace {

[[noreturn]] void badObjective(const std::string& message) { throw Error(code::kInvalidArgument, message); }

}  // namespace

struct MaximizeSession::State {
  std::shared_ptr<ModelState> model;
  MaximizeSpec spec;
  std::shared_ptr<const Program> program;
  at::Generator generator;
  std::unique_ptr<ImageParam> param;
  at::Tensor expAvg, expAvgSq;  // Adam's moments
  std::atomic<bool> aborted{false};
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
    RunResult run = runProgram(*program, {input}, {});
    requireAllRan(*program, run);
    const at::Tensor activation = spec.layer.empty() || !program->spec.capture.size()
                                      ? at::Tensor()
                                      : run.captures.at(spec.layer).back().toTensor();
    const at::Tensor output = run.output.isTensor() ? run.output.toTensor() : at::Tensor();
    const auto batch = static_cast<int64_t>(spec.objectives.size());
    at::Tensor objective = at::zeros({}, image.options());
    for (int64_t b = 0; b < batch; ++b) {
      objective = objective + evaluateObjective(spec.objectives[static_cast<size_t>(b)],
                                       activation.defined() ? activation[b] : at::Tensor(),
                                       output.defined() ? output[b] : at::Tensor(), spec.layer);
    }
    objective = objective / static_cast<double>(batch);
    const at::Tensor loss = regularization(image, spec.regularizers) - objective;
    loss.backward();
    const double value = objective.item<double>();
    if (!std::isfinite(value)) throw Error(code::kRuntime, "the objective became " + std::to_string(value) + " at step " + std::to_string(step) + " (try a smaller lr)");
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
    const at::Tensor denom = (expAvgSq.sqrt() / std::pow(biasCorrection2, 0.5)).add_(spec.eps);
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
      const at::Tensor probe = at::zeros({spec.image.batch, spec.image.channels, side, side}, at::TensorOptions(model->device)).requires_grad_(true);
      RunResult run = runProgram(*program, {spec.normalize ? imagenetNormalize(probe) : probe}, {});
      requireAllRan(*program, run);
      const c10::IValue& value = spec.layer.empty() || program->spec.capture.empty() ? run.output : run.captures.at(spec.layer).back();
      if (value.isTensor() && value.toTensor().requires_grad()) value.toTensor().sum().backward();
    }
    const double scale = static_cast<double>(spec.image.height * spec.image.width) / (side * side);
    return static_cast<uint64_t>(static_cast<double>(meter.peakBytes()) * scale);
  }

  // What the model sees for the current image, without the random transforms.
  at::Tensor modelView(const at::Tensor& image) const { return spec.normalize ? imagenetNormalize(image) : image; }
};

void MaximizeSession::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "MaximizeSession",
                                   {InstanceMethod<&MaximizeSession::steps>("steps"),
                                    InstanceMethod<&MaximizeSession::abort>("abort"),
                                    InstanceMethod<&MaximizeSession::result>("result"),
                                    InstanceMethod<&MaximizeSession::dispose>("dispose")});
  addonData(env).sessionClass = Napi::Persistent(cls);
  exports.Set("MaximizeSession", cls);
}

namespace {

// Larger images are probed for the memory a step needs before the run starts.
constexpr int64_t kProbedPixels = 512 * 512;

// The session's own tensors: the parameter, its gradient, Adam's two moments, the best image.
int64_t sessionBytes(const MaximizeSpec& spec) {
  const int64_t pixels = spec.image.batch * spec.image.channels * spec.image.height * spec.image.width;
  return 5 * pixels * static_cast<int64_t>(sizeof(float));
}

}  // namespace

MaximizeSession::MaximizeSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MaximizeSession>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument, "sessions are created by torch.maximize(), not by `new`");
  }
  std::unique_ptr<std::shared_ptr<State>> state(info[0].As<Napi::External<std::shared_ptr<State>>>().Data());
  state_ = std::move(*state);
  env_ = info.Env();
  reportedBytes_ = sessionBytes(state_->spec);
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), reportedBytes_);
}

MaximizeSession::~MaximizeSession() {
  if (processExiting()) keepUntilExit(std::move(state_));
  release();
}

void MaximizeSession::release() {
  if (reportedBytes_ != 0 && env_ != nullptr) Napi::MemoryManagement::AdjustExternalMemory(Napi::Env(env_), -reportedBytes_);
  reportedBytes_ = 0;
  if (state_) state_->aborted.store(true);  // a chunk in flight stops at its next step
  state_.reset();
}

std::shared_ptr<MaximizeSession::State> MaximizeSession::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this maximize session has been disposed");
  return state_;
}

Napi::Value MaximizeSession::start(Napi::Env env, std::shared_ptr<ModelState> model, MaximizeSpec spec,
                                   Napi::Object keepAlive) {
  // The image and Adam's state alone, before anything is allocated (activations come on top).
  checkFits(static_cast<uint64_t>(sessionBytes(spec)),
            "maximize of " + std::to_string(spec.image.batch) + " image(s) of " + std::to_string(spec.image.height) + "x" +
                std::to_string(spec.image.width));
  auto state = std::make_shared<State>();
  state->model = std::move(model);
  state->spec = std::move(spec);
  return queueWork(
      env, code::kRuntime,
      [state] {
        const MaximizeSpec& spec = state->spec;
        bool needsLayer = false, needsOutput = false;
        for (const auto& objective : spec.objectives) {
          needsLayer = needsLayer || objective.needsLayer();
          needsOutput = needsOutput || objective.needsOutput();
        }
        if (needsLayer && spec.layer.empty()) badObjective("this objective needs a layer");
        ProgramSpec programSpec;
        if (needsLayer) programSpec.capture = {spec.layer};
        programSpec.returnOutput = needsOutput;
        programSpec.optimize = state->model->optimize;
        programSpec.differentiable = true;
        state->program = state->model->program(programSpec, spec.numerics);
        if (spec.image.height * spec.image.width > kProbedPixels && state->model->device.is_cpu()) {
          checkFits(state->estimateStepBytes() + static_cast<uint64_t>(sessionBytes(spec)),
                    "one step of maximize at " + std::to_string(spec.image.height) + "x" + std::to_string(spec.image.width) +
                        " (estimated from a 64x64 probe)");
        }
        state->generator = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
        state->param = std::make_unique<ImageParam>(spec.image, state->model->device, state->generator);
      },
      [state](Napi::Env env) -> Napi::Value {
        auto* holder = new std::shared_ptr<State>(state);
        return addonData(env).sessionClass.New({Napi::External<std::shared_ptr<State>>::New(env, holder)});
      },
      {keepAlive});
}

Napi::Value MaximizeSession::steps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    if (!info[0].IsNumber()) throw Error(code::kInvalidArgument, "steps(n): n must be a number");
    const int64_t count = info[0].As<Napi::Number>().Int64Value();
    auto objectives = std::make_shared<std::vector<double>>();
    return queueWork(
        env, code::kRuntime,
        [state, count, objectives] {
          for (int64_t i = 0; i < count && !state->aborted.load() && !workCancelled(); ++i) {
            objectives->push_back(state->runStep());
          }
        },
        [state, objectives](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          Napi::Array values = Napi::Array::New(env, objectives->size());
          for (size_t i = 0; i < objectives->size(); ++i) values.Set(static_cast<uint32_t>(i), (*objectives)[i]);
          out.Set("objectives", values);
          out.Set("aborted", Napi::Boolean::New(env, state->aborted.load()));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value MaximizeSession::abort(const Napi::CallbackInfo& info) {
  if (state_) state_->aborted.store(true);
  return info.Env().Undefined();
}

Napi::Value MaximizeSession::result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    auto image = std::make_shared<at::Tensor>();
    auto input = std::make_shared<at::Tensor>();
    const bool best = info[0].ToBoolean();
    return queueWork(
        env, code::kRuntime,
        [state, image, input, best] {
          at::NoGradGuard noGrad;
          const bool useBest = best && state->bestImage.defined();
          *image = (useBest ? state->bestImage : state->param->image()).detach();
          *input = state->modelView(*image).to(c10::kCPU);
          *image = image->to(c10::kCPU);
        },
        [state, image, input](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("image", TensorHandle::wrap(env, *image));
          out.Set("input", TensorHandle::wrap(env, *input));
          out.Set("bestStep", Napi::Number::New(env, static_cast<double>(state->bestStep)));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value MaximizeSession::dispose(const Napi::CallbackInfo& info) {
  release();
  return info.Env().Undefined();
}

}  // namespace torchscope
