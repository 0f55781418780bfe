#include "attribution.h"

#include <ATen/core/grad_mode.h>

#include "addon.h"
#include "async_work.h"
#include "attribution_plan.h"
#include "errors.h"
#include "resources.h"
#include "tensor.h"
#include "values.h"

namespace torchscope {

namespace attribution {

at::Tensor repeatRows(const at::Tensor& tensor, int64_t times, bool interleave) {
  if (times == 1) return tensor;
  if (interleave) return tensor.repeat_interleave(times, 0);
  return at::cat(std::vector<at::Tensor>(static_cast<size_t>(times), tensor), 0);
}

std::vector<c10::IValue> repeatArgs(const std::vector<c10::IValue>& args, int64_t rows, int64_t times, bool interleave) {
  std::vector<c10::IValue> out;
  out.reserve(args.size());
  for (const auto& arg : args) {
    out.push_back(mapTensors(arg, [&](const at::Tensor& t) {
      // Tensors without the batch's rows (a 0-dim scale, a shared table) are the same for every copy.
      return t.dim() > 0 && t.size(0) == rows ? repeatRows(t, times, interleave) : t;
    }));
  }
  return out;
}

ObjectiveSpec repeatObjectives(const ObjectiveSpec& objective, int64_t times, bool interleave) {
  if (objective.objectives.size() == 1 || times == 1) return objective;
  ObjectiveSpec out{objective.layer, {}};
  const auto& rows = objective.objectives;
  if (interleave) {
    for (const auto& row : rows) out.objectives.insert(out.objectives.end(), static_cast<size_t>(times), row);
  } else {
    for (int64_t k = 0; k < times; ++k) out.objectives.insert(out.objectives.end(), rows.begin(), rows.end());
  }
  return out;
}

at::Tensor fullBaseline(const Batch& batch) {
  const at::Tensor& x = batch.x();
  if (!batch.baseline) return at::full_like(x, batch.baselineValue);
  return batch.baseline->to(x.device(), x.scalar_type()).expand_as(x).contiguous();
}

std::vector<c10::IValue> withInput(const Batch& batch, const at::Tensor& x) {
  std::vector<c10::IValue> args = batch.args;
  args.at(static_cast<size_t>(batch.input)) = x;
  return args;
}

at::Tensor forwardObjective(ModelState& model, std::vector<c10::IValue> args, const ObjectiveSpec& objective, bool fast) {
  at::NoGradGuard noGrad;
  ProgramSpec spec;
  if (objective.needsLayer()) spec.capture = {objective.layer};
  spec.returnOutput = objective.needsOutput();
  spec.optimize = fast && model.optimize;
  const auto program = model.program(spec);
  RunResult run = runProgram(*program, std::move(args), {});
  requireAllRan(*program, run);
  const at::Tensor activation =
      objective.needsLayer() ? firstTensor(run.captures.at(objective.layer).back(), "layer '" + objective.layer + "'") : at::Tensor();
  const at::Tensor output = objective.needsOutput() ? firstTensor(run.output, "the model's output") : at::Tensor();
  const at::Tensor& rowsOf = output.defined() ? output : activation;
  return objectiveValues(objective, rowsOf.dim() > 0 ? rowsOf.size(0) : 1, activation, output);
}

namespace {

bool isGradientMethod(const std::string& method) {
  return method == "saliency" || method == "inputXGradient" || method == "integratedGradients" ||
         method == "layerIntegratedGradients" || method == "layerGradCam";
}

bool integrates(const std::string& method) { return method == "integratedGradients" || method == "layerIntegratedGradients"; }

// Rows a gradient pass may take: the peak bytes of one row's forward and backward, measured,
// against half the memory available now (Captum's default is every step in one pass, which
// is what runs whenever it fits).
int64_t rowsThatFit(ModelState& model, const Batch& batch, const AttributionSpec& spec) {
  GradientSpec probe;
  probe.objective = ObjectiveSpec{batch.objective.layer, {batch.objective.objectives.front()}};
  if (spec.method == "layerIntegratedGradients") {
    probe.layers = {spec.layer};
  } else {
    probe.inputs = {batch.input};
  }
  AllocationPeakMeter meter;
  {
    std::vector<c10::IValue> oneRow;
    for (const auto& arg : batch.args) {
      oneRow.push_back(mapTensors(arg, [&](const at::Tensor& t) { return t.dim() > 0 && t.size(0) == batch.rows ? t.narrow(0, 0, 1) : t; }));
    }
    computeGradients(model, std::move(oneRow), probe);
  }
  const uint64_t perRow = std::max<uint64_t>(meter.peakBytes(), 1);
  return std::max<int64_t>(1, static_cast<int64_t>(availableMemoryBytes() / 2 / perRow));
}

}  // namespace

}  // namespace attribution

AttributionPlan planAttribution(const std::shared_ptr<ModelState>& model, std::vector<c10::IValue> inputs,
                                const AttributionSpec& spec) {
  using namespace attribution;
  if (spec.input < 0 || spec.input >= static_cast<int64_t>(inputs.size()) || !inputs[static_cast<size_t>(spec.input)].isTensor()) {
    throw Error(code::kInvalidArgument, "input " + std::to_string(spec.input) + " is not a tensor argument of forward (" +
                                            std::to_string(inputs.size()) + " given)");
  }
  auto batch = std::make_shared<Batch>();
  batch->input = spec.input;
  const at::Tensor& x = inputs[static_cast<size_t>(spec.input)].toTensor();
  if (x.dim() == 0) throw Error(code::kShape, "the attributed input is a scalar: it needs a batch dimension");
  batch->rows = x.size(0);
  batch->args = std::move(inputs);
  batch->baseline = spec.baseline;
  batch->baselineValue = spec.baselineValue;
  if (batch->baseline && !at::is_expandable_to(batch->baseline->sizes(), x.sizes())) {
    throw Error(code::kShape, "baseline of shape " + c10::str(batch->baseline->sizes()) + " does not broadcast to the input's " +
                                  c10::str(x.sizes()));
  }
  batch->objective = spec.objective;
  if (spec.objective.objectives.size() != 1 && static_cast<int64_t>(spec.objective.objectives.size()) != batch->rows) {
    throw Error(code::kInvalidArgument, std::to_string(spec.objective.objectives.size()) + " targets for a batch of " +
                                            std::to_string(batch->rows) + ": give one, or one per batch element");
  }
  const bool gradientMethod = isGradientMethod(spec.method);
  const bool layerMethod = spec.method == "layerIntegratedGradients" || spec.method == "layerGradCam";
  if (!gradientMethod && spec.method != "occlusion" && spec.method != "featureAblation") {
    throw Error(code::kInvalidArgument, "unknown attribution method '" + spec.method + "'");
  }
  if (!layerMethod && !at::isFloatingType(x.scalar_type())) {
    throw Error(code::kDtype, "the attributed input is " + std::string(c10::toString(x.scalar_type())) + ": " + spec.method +
                                  " needs a floating-point input (attribute token ids with layerIntegratedGradients on "
                                  "their embedding layer)");
  }
  if (!spec.noise.empty() && !gradientMethod) throw Error(code::kInvalidArgument, "noise wraps a gradient method, not " + spec.method);

  Context context{model, spec, spec.internalBatchSize};
  if (integrates(spec.method) && context.internalBatchSize == 0) {
    const int64_t wanted = spec.steps * batch->rows * (spec.noise.empty() ? 1 : std::min(spec.samples, spec.samplesBatchSize > 0 ? spec.samplesBatchSize : spec.samples));
    context.internalBatchSize = std::min(wanted, rowsThatFit(*model, *batch, spec));
  }
  AttributionPlan plan;
  auto out = std::make_shared<Attributed>();
  if (!spec.noise.empty()) {
    planNoiseTunnel(context, batch, out, plan.steps);
  } else if (gradientMethod) {
    planGradientMethod(context, batch, out, plan.steps);
  } else {
    planPerturbationMethod(context, batch, out, plan.steps);
  }
  const int64_t used = integrates(spec.method) ? context.internalBatchSize : 0;
  plan.finish = [out, used] { return AttributionOutcome{out->attributions, out->delta, used}; };
  return plan;
}

struct AttributionRun::State {
  std::shared_ptr<ModelState> model;
  AttributionPlan plan;
  size_t next = 0;
  std::atomic<bool> aborted{false};
};

void AttributionRun::define(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = DefineClass(env, "AttributionRun",
                                   {InstanceMethod<&AttributionRun::steps>("steps"),
                                    InstanceMethod<&AttributionRun::abort>("abort"),
                                    InstanceMethod<&AttributionRun::result>("result"),
                                    InstanceMethod<&AttributionRun::dispose>("dispose")});
  addonData(env).attributionClass = Napi::Persistent(cls);
  exports.Set("AttributionRun", cls);
}

AttributionRun::AttributionRun(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AttributionRun>(info) {
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throwJs(info.Env(), code::kInvalidArgument, "attribution runs are created by torch.attribute(), not by `new`");
  }
  std::unique_ptr<std::shared_ptr<State>> state(info[0].As<Napi::External<std::shared_ptr<State>>>().Data());
  state_ = std::move(*state);
}

AttributionRun::~AttributionRun() {
  if (state_) state_->aborted.store(true);  // a chunk in flight stops at its next step
}

std::shared_ptr<AttributionRun::State> AttributionRun::live(Napi::Env env) const {
  if (!state_) throwJs(env, code::kDisposed, "this attribution run has been disposed");
  return state_;
}

Napi::Value AttributionRun::start(Napi::Env env, std::shared_ptr<ModelState> model, std::vector<c10::IValue> inputs,
                                  AttributionSpec spec, Napi::Object keepAlive) {
  auto state = std::make_shared<State>();
  state->model = std::move(model);
  auto args = std::make_shared<std::vector<c10::IValue>>(std::move(inputs));
  auto request = std::make_shared<AttributionSpec>(std::move(spec));
  return queueWork(
      env, code::kRuntime,
      [state, args, request] {
        for (auto& arg : *args) arg = toDevice(arg, state->model->device);
        if (request->baseline) *request->baseline = request->baseline->to(state->model->device);
        if (request->featureMask) *request->featureMask = request->featureMask->to(state->model->device);
        state->plan = planAttribution(state->model, std::move(*args), *request);
      },
      [state](Napi::Env env) -> Napi::Value {
        auto* holder = new std::shared_ptr<State>(state);
        return addonData(env).attributionClass.New({Napi::External<std::shared_ptr<State>>::New(env, holder)});
      },
      {keepAlive});
}

Napi::Value AttributionRun::steps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    if (!info[0].IsNumber()) throw Error(code::kInvalidArgument, "steps(n): n must be a number");
    const int64_t count = info[0].As<Napi::Number>().Int64Value();
    return queueWork(
        env, code::kRuntime,
        [state, count] {
          for (int64_t i = 0; i < count && state->next < state->plan.steps.size() && !state->aborted.load() && !workCancelled(); ++i) {
            state->plan.steps[state->next]();
            state->plan.steps[state->next] = nullptr;  // what the step held goes now
            state->next += 1;
          }
        },
        [state](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("done", static_cast<double>(state->next));
          out.Set("total", static_cast<double>(state->plan.steps.size()));
          out.Set("aborted", Napi::Boolean::New(env, state->aborted.load()));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value AttributionRun::abort(const Napi::CallbackInfo& info) {
  if (state_) state_->aborted.store(true);
  return info.Env().Undefined();
}

Napi::Value AttributionRun::result(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kRuntime, [&] {
    auto state = live(env);
    if (state->next < state->plan.steps.size()) {
      throw Error(code::kInvalidArgument, "the attribution has " + std::to_string(state->plan.steps.size() - state->next) + " step(s) left");
    }
    auto outcome = std::make_shared<AttributionOutcome>();
    return queueWork(
        env, code::kRuntime,
        [state, outcome] {
          *outcome = state->plan.finish();
          outcome->attributions = outcome->attributions.detach().cpu();
          if (outcome->delta.defined()) outcome->delta = outcome->delta.detach().to(c10::kCPU, at::kDouble).contiguous();
        },
        [outcome](Napi::Env env) -> Napi::Value {
          Napi::Object out = Napi::Object::New(env);
          out.Set("attributions", TensorHandle::wrap(env, outcome->attributions));
          if (outcome->delta.defined()) {
            Napi::Array delta = Napi::Array::New(env, static_cast<size_t>(outcome->delta.numel()));
            for (int64_t i = 0; i < outcome->delta.numel(); ++i) delta.Set(static_cast<uint32_t>(i), outcome->delta.data_ptr<double>()[i]);
            out.Set("convergenceDelta", delta);
          }
          out.Set("internalBatchSize", static_cast<double>(outcome->internalBatchSize));
          return out;
        },
        {info.This().As<Napi::Object>()});
  });
}

Napi::Value AttributionRun::dispose(const Napi::CallbackInfo& info) {
  if (state_) state_->aborted.store(true);
  state_.reset();
  return info.Env().Undefined();
}

}  // namespace torchscope
