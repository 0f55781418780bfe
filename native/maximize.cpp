#include "maximize.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <chrono>
#include <cmath>
#include <limits>

#include "addon.h"
#include "async_work.h"
#include "errors.h"
#include "tensor.h"

namespace torchscope {

bool Objective::needsLayer() const {
  if (kind == kSum) {
    for (const auto& term : terms) if (term.second.needsLayer()) return true;
    return false;
  }
  return kind != kLogit;
}

bool Objective::needsOutput() const {
  if (kind == kSum) {
    for (const auto& term : terms) if (term.second.needsOutput()) return true;
    return false;
  }
  return kind == kLogit;
}

namespace {

[[noreturn]] void badObjective(const std::string& message) { throw Error(code::kInvalidArgument, message); }

int64_t checkedIndex(int64_t index, int64_t size, const char* what, const std::string& where) {
  if (index < 0 || index >= size) {
    badObjective(std::string(what) + " " + std::to_string(index) + " is out of range for " + where + " (size " +
                 std::to_string(size) + ")");
  }
  return index;
}

// One batch element: `activation` is [C, ...] from the layer, `output` the model's output row.
at::Tensor evaluate(const Objective& objective, const at::Tensor& activation, const at::Tensor& output,
                    const std::string& layer) {
  const std::string where = "layer '" + layer + "'";
  switch (objective.kind) {
    case Objective::kChannel:
      return activation.select(0, checkedIndex(objective.index, activation.size(0), "channel", where)).mean();
    case Objective::kNeuron: {
      if (activation.dim() != 3) badObjective("a neuron objective needs a [C, H, W] output; " + where + " gives " + c10::str(activation.sizes()));
      const int64_t c = checkedIndex(objective.index, activation.size(0), "channel", where);
      const int64_t y = checkedIndex(objective.y.value_or(activation.size(1) / 2), activation.size(1), "y", where);
      const int64_t x = checkedIndex(objective.x.value_or(activation.size(2) / 2), activation.size(2), "x", where);
      return activation[c][y][x];
    }
    case Objective::kDirection: {
      if (objective.direction.dim() != 1 || objective.direction.size(0) != activation.size(0)) {
        badObjective("direction of shape " + c10::str(objective.direction.sizes()) + " does not match the " +
                     std::to_string(activation.size(0)) + " channels of " + where);
      }
      std::vector<int64_t> shape(static_cast<size_t>(activation.dim()), 1);
      shape[0] = activation.size(0);
      const at::Tensor direction = objective.direction.to(activation.options()).view(shape);
      return (activation * direction).sum(0).mean();
    }
    case Objective::kLogit: {
      const at::Tensor row = output.reshape({-1});
      return row[checkedIndex(objective.index, row.size(0), "class", "the model output")];
    }
    case Objective::kSum: {
      at::Tensor total = at::zeros({}, activation.defined() ? activation.options() : output.options());
      for (const auto& [weight, term] : objective.terms) total = total + weight * evaluate(term, activation, output, layer);
      return total;
    }
  }
  badObjective("unknown objective");
}

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
      objective = objective + evaluate(spec.objectives[static_cast<size_t>(b)],
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

  // What the model sees for the current image, without the random transforms.
  at::Tensor modelView(const at::Tensor& image) const { return spec.normalize ? imagenetNormalize(image) : image; }
};

void MaximizeSession::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "MaximizeSession",
                                   {InstanceMethod<&MaximizeSession::steps>("steps"),
                                    InstanceMethod<&MaximizeSession::abort>("abort"),
                                    InstanceMethod<&MaximizeSession::result>("result")});
  addonData(env).sessionClass = Napi::Persistent(cls);
  exports.Set("MaximizeSession", cls);
}

MaximizeSession::MaximizeSession(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MaximizeSession>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument, "sessions are created by torch.maximize(), not by `new`");
  }
  std::unique_ptr<std::shared_ptr<State>> state(info[0].As<Napi::External<std::shared_ptr<State>>>().Data());
  state_ = std::move(*state);
}

Napi::Value MaximizeSession::start(Napi::Env env, std::shared_ptr<ModelState> model, MaximizeSpec spec,
                                   Napi::Object keepAlive) {
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
        // Autograd needs the exact program: oneDNN layouts of optimized ones have no backward.
        programSpec.optimize = false;
        state->program = state->model->program(programSpec);
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
  const int64_t count = info[0].As<Napi::Number>().Int64Value();
  auto state = state_;
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
}

Napi::Value MaximizeSession::abort(const Napi::CallbackInfo& info) {
  state_->aborted.store(true);
  return info.Env().Undefined();
}

Napi::Value MaximizeSession::result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto state = state_;
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
}

namespace {

Objective parseObjective(Napi::Value value) {
  if (!value.IsObject()) badObjective("an objective is an object like { channel: 10 }");
  Napi::Object o = value.As<Napi::Object>();
  Objective objective;
  auto integer = [&](const char* key) { return o.Get(key).As<Napi::Number>().Int64Value(); };
  if (o.Has("sum")) {
    objective.kind = Objective::kSum;
    auto terms = o.Get("sum").As<Napi::Array>();
    for (uint32_t i = 0; i < terms.Length(); ++i) {
      Napi::Object term = terms.Get(i).As<Napi::Object>();
      const double weight = term.Has("weight") ? term.Get("weight").As<Napi::Number>().DoubleValue() : 1.0;
      objective.terms.emplace_back(weight, parseObjective(term.Get("objective")));
    }
  } else if (o.Has("neuron")) {
    objective.kind = Objective::kNeuron;
    Napi::Object neuron = o.Get("neuron").As<Napi::Object>();
    objective.index = neuron.Get("channel").As<Napi::Number>().Int64Value();
    if (neuron.Get("y").IsNumber()) objective.y = neuron.Get("y").As<Napi::Number>().Int64Value();
    if (neuron.Get("x").IsNumber()) objective.x = neuron.Get("x").As<Napi::Number>().Int64Value();
  } else if (o.Has("direction")) {
    objective.kind = Objective::kDirection;
    objective.direction = TensorHandle::unwrap(o.Get("direction"));
  } else if (o.Has("logit")) {
    objective.kind = Objective::kLogit;
    objective.index = integer("logit");
  } else {
    objective.kind = Objective::kChannel;
    objective.index = integer("channel");
  }
  return objective;
}

}  // namespace

MaximizeSpec parseMaximizeSpec(Napi::Object options) {
  MaximizeSpec spec;
  spec.layer = options.Get("layer").As<Napi::String>().Utf8Value();
  auto objectives = options.Get("objectives").As<Napi::Array>();
  for (uint32_t i = 0; i < objectives.Length(); ++i) spec.objectives.push_back(parseObjective(objectives.Get(i)));
  Napi::Object image = options.Get("image").As<Napi::Object>();
  spec.image.parameterization = image.Get("parameterization").As<Napi::String>().Utf8Value();
  spec.image.range = image.Get("range").As<Napi::String>().Utf8Value();
  spec.image.decorrelate = image.Get("decorrelate").ToBoolean();
  spec.image.batch = static_cast<int64_t>(spec.objectives.size());
  spec.image.height = image.Get("height").As<Napi::Number>().Int64Value();
  spec.image.width = image.Get("width").As<Napi::Number>().Int64Value();
  spec.image.decayPower = image.Get("decayPower").As<Napi::Number>().DoubleValue();
  if (!image.Get("init").IsUndefined()) spec.image.init = TensorHandle::unwrap(image.Get("init"));
  if (options.Get("transforms").IsArray()) {
    auto transforms = options.Get("transforms").As<Napi::Array>();
    static const std::map<std::string, Transform::Kind> kinds = {
        {"pad", Transform::kPad}, {"jitter", Transform::kJitter}, {"scale", Transform::kScale}, {"rotate", Transform::kRotate}};
    for (uint32_t i = 0; i < transforms.Length(); ++i) {
      Napi::Object t = transforms.Get(i).As<Napi::Object>();
      Transform transform{kinds.at(t.Get("kind").As<Napi::String>().Utf8Value()), {}};
      auto values = t.Get("values").As<Napi::Array>();
      for (uint32_t j = 0; j < values.Length(); ++j) transform.values.push_back(values.Get(j).As<Napi::Number>().DoubleValue());
      spec.transforms.push_back(std::move(transform));
    }
  } else {
    spec.transforms = standardTransforms();
  }
  Napi::Object regs = options.Get("regularizers").As<Napi::Object>();
  auto weight = [&](const char* key) { return regs.Get(key).IsNumber() ? regs.Get(key).As<Napi::Number>().DoubleValue() : 0.0; };
  spec.regularizers = {weight("l1"), weight("l2"), weight("tv"), weight("blur")};
  spec.normalize = options.Get("normalize").ToBoolean();
  spec.lr = options.Get("lr").As<Napi::Number>().DoubleValue();
  spec.beta1 = options.Get("beta1").As<Napi::Number>().DoubleValue();
  spec.beta2 = options.Get("beta2").As<Napi::Number>().DoubleValue();
  spec.seed = static_cast<uint64_t>(options.Get("seed").As<Napi::Number>().Int64Value());
  return spec;
}

}  // namespace torchscope
