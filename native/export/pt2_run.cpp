#include "export/pt2_run.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "core/errors.h"

namespace torchscope::pt2 {

namespace {

c10::IValue pythonOperator(const std::string& op, const c10::IValue& a, const c10::IValue& b) {
  auto asInt = [](const c10::IValue& v) {
    return v.isInt() ? v.toInt() : v.isBool() ? static_cast<int64_t>(v.toBool()) : static_cast<int64_t>(v.toDouble());
  };
  if (a.isDouble() || b.isDouble()) {
    const double x = a.isDouble() ? a.toDouble() : static_cast<double>(asInt(a));
    const double y = b.isNone() ? 0 : b.isDouble() ? b.toDouble() : static_cast<double>(asInt(b));
    if (op == "add") return x + y;
    if (op == "sub") return x - y;
    if (op == "mul") return x * y;
    if (op == "neg") return -x;
    if (op == "floordiv") return std::floor(x / y);
    if (op == "mod") return x - std::floor(x / y) * y;
    if (op == "eq") return x == y;
    if (op == "ne") return x != y;
    if (op == "lt") return x < y;
    if (op == "le") return x <= y;
    if (op == "gt") return x > y;
    if (op == "ge") return x >= y;
  }
  const int64_t x = asInt(a);
  const int64_t y = b.isNone() ? 0 : asInt(b);
  TS_CHECK(!((op == "floordiv" || op == "mod") && y == 0), code::kInvalidArgument, "integer division by zero in the exported program");
  if (op == "add") return x + y;
  if (op == "sub") return x - y;
  if (op == "mul") return x * y;
  if (op == "neg") return -x;
  // Python's floor division and modulo round toward negative infinity.
  if (op == "floordiv") return x / y - ((x % y != 0) && ((x < 0) != (y < 0)) ? 1 : 0);
  if (op == "mod") return ((x % y) + y) % y;
  if (op == "eq") return x == y;
  if (op == "ne") return x != y;
  if (op == "lt") return x < y;
  if (op == "le") return x <= y;
  if (op == "gt") return x > y;
  return x >= y;
}

bool truth(const c10::IValue& value) {
  if (value.isTensor()) {
    const at::Tensor& t = value.toTensor();
    TS_CHECK(t.numel() == 1, code::kInvalidArgument, "a torch.cond / while_loop predicate has ", t.numel(), " elements, not one");
    return t.item<bool>();
  }
  if (value.isBool()) return value.toBool();
  if (value.isInt()) return value.toInt() != 0;
  return value.toDouble() != 0;
}

std::vector<c10::IValue> subplanInputs(const Step& step, const Env& env, size_t from, size_t until) {
  std::vector<c10::IValue> inputs;
  for (size_t i = from; i < until; ++i) inputs.push_back(argumentValue(step.args[i], env));
  return inputs;
}

void bindResults(const Step& step, std::vector<c10::IValue> results, Env& env) {
  TS_CHECK(results.size() == step.outputs.size(), code::kInternal, "a step returned ", results.size(), " values for ", step.outputs.size());
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& slots = step.outputs[i];
    if (!step.listOutputs[i]) {
      if (slots[0] >= 0) env[slots[0]] = std::move(results[i]);
      continue;
    }
    const auto list = results[i].toListRef();
    TS_CHECK(list.size() == slots.size(), code::kShape, "an operator returned ", list.size(), " values where the exported program has ",
             slots.size(), ": this input's shape is not one the program was exported for");
    for (size_t j = 0; j < slots.size(); ++j) {
      if (slots[j] >= 0) env[slots[j]] = list[j];
    }
  }
}

// Restores autocast's state for a device when a region ends.
class AutocastRegion {
 public:
  AutocastRegion(c10::DeviceType device, bool enabled, c10::ScalarType type)
      : device_(device), wasEnabled_(at::autocast::is_autocast_enabled(device)), previousType_(at::autocast::get_autocast_dtype(device)) {
    at::autocast::set_autocast_enabled(device, enabled);
    at::autocast::set_autocast_dtype(device, type);
  }
  ~AutocastRegion() {
    at::autocast::set_autocast_enabled(device_, wasEnabled_);
    at::autocast::set_autocast_dtype(device_, previousType_);
  }

 private:
  c10::DeviceType device_;
  bool wasEnabled_;
  c10::ScalarType previousType_;
};

}  // namespace

c10::IValue argumentValue(const ArgSource& source, const Env& env) {
  switch (source.kind) {
    case ArgSource::kLiteral: return source.literal;
    case ArgSource::kSlot: return env[source.slot];
    case ArgSource::kWrappedScalar: {
      const c10::IValue& number = env[source.slot];
      at::Tensor wrapped = number.isDouble() ? at::scalar_tensor(number.toDouble(), at::kDouble)
                           : number.isBool() ? at::scalar_tensor(number.toBool(), at::kBool)
                                             : at::scalar_tensor(number.toInt(), at::kLong);
      wrapped.unsafeGetTensorImpl()->set_wrapped_number(true);
      return wrapped;
    }
    case ArgSource::kTensors: {
      c10::List<at::Tensor> list;
      list.reserve(source.slots.size());
      for (int slot : source.slots) list.push_back(env[slot].toTensor());
      return list;
    }
    case ArgSource::kOptionalTensors: {
      c10::List<std::optional<at::Tensor>> list;
      list.reserve(source.slots.size());
      for (int slot : source.slots) list.push_back(slot < 0 ? std::nullopt : std::optional<at::Tensor>(env[slot].toTensor()));
      return list;
    }
    case ArgSource::kInts: {
      c10::List<int64_t> list;
      list.reserve(source.slots.size());
      for (size_t i = 0; i < source.slots.size(); ++i) list.push_back(source.slots[i] >= 0 ? env[source.slots[i]].toInt() : source.ints[i]);
      return list;
    }
  }
  return {};
}

void runStep(const Plan& plan, const Step& step, Env& env) {
  switch (step.kind) {
    case Step::kOperator: {
      torch::jit::Stack stack;
      stack.reserve(step.args.size());
      for (const ArgSource& arg : step.args) stack.push_back(argumentValue(arg, env));
      step.op->callBoxed(stack);
      bindResults(step, std::move(stack), env);
      return;
    }
    case Step::kSymSize: {
      const at::Tensor& tensor = argumentValue(step.args[0], env).toTensor();
      const int64_t dim = c10::maybe_wrap_dim(argumentValue(step.args[1], env).toInt(), tensor.dim());
      bindResults(step, {tensor.size(dim)}, env);
      return;
    }
    case Step::kSymNumel: bindResults(step, {argumentValue(step.args[0], env).toTensor().numel()}, env); return;
    case Step::kPythonOperator: {
      const c10::IValue b = step.args.size() > 1 ? argumentValue(step.args[1], env) : c10::IValue();
      bindResults(step, {pythonOperator(step.pythonOperator, argumentValue(step.args[0], env), b)}, env);
      return;
    }
    case Step::kCond: {
      const bool taken = truth(argumentValue(step.args[0], env));
      bindResults(step, runPlan(*step.subplans[taken ? 0 : 1], subplanInputs(step, env, 1, step.args.size())), env);
      return;
    }
    case Step::kWhileLoop: {
      std::vector<c10::IValue> carried = subplanInputs(step, env, 0, step.carried);
      const std::vector<c10::IValue> additional = subplanInputs(step, env, step.carried, step.args.size());
      auto with = [&](std::vector<c10::IValue> values) {
        values.insert(values.end(), additional.begin(), additional.end());
        return values;
      };
      while (truth(runPlan(*step.subplans[0], with(carried)).at(0))) carried = runPlan(*step.subplans[1], with(carried));
      bindResults(step, std::move(carried), env);
      return;
    }
    case Step::kSetGradEnabled: {
      c10::AutoGradMode mode(step.flag);
      bindResults(step, runPlan(*step.subplans[0], subplanInputs(step, env, 0, step.args.size())), env);
      return;
    }
    case Step::kAutocast: {
      AutocastRegion region(step.autocastDevice, step.flag, step.autocastType);
      bindResults(step, runPlan(*step.subplans[0], subplanInputs(step, env, 0, step.args.size())), env);
      return;
    }
    case Step::kEnterGradMode: {
      const bool previous = c10::GradMode::is_enabled();
      c10::GradMode::set_enabled(step.flag);
      bindResults(step, {c10::ivalue::Tuple::create({c10::IValue(int64_t{-1}), c10::IValue(previous)})}, env);
      return;
    }
    case Step::kEnterAutocast: {
      const c10::DeviceType device = step.autocastDevice;
      c10::IValue saved =
          c10::ivalue::Tuple::create({c10::IValue(static_cast<int64_t>(device)), c10::IValue(at::autocast::is_autocast_enabled(device)),
                                      c10::IValue(at::autocast::get_autocast_dtype(device))});
      at::autocast::set_autocast_enabled(device, step.flag);
      at::autocast::set_autocast_dtype(device, step.autocastType);
      bindResults(step, {std::move(saved)}, env);
      return;
    }
    case Step::kExitRegion: {
      const auto& saved = argumentValue(step.args[0], env).toTupleRef().elements();
      const int64_t device = saved[0].toInt();
      if (device < 0) {
        c10::GradMode::set_enabled(saved[1].toBool());
      } else {
        at::autocast::set_autocast_enabled(static_cast<c10::DeviceType>(device), saved[1].toBool());
        at::autocast::set_autocast_dtype(static_cast<c10::DeviceType>(device), saved[2].toScalarType());
      }
      return;
    }
    case Step::kAlias: bindResults(step, {argumentValue(step.args[0], env)}, env); return;
  }
}

ModeGuard::ModeGuard()
    : grad_(c10::GradMode::is_enabled()),
      cpu_(at::autocast::is_autocast_enabled(c10::kCPU)),
      cuda_(at::autocast::is_autocast_enabled(c10::kCUDA)),
      cpuType_(at::autocast::get_autocast_dtype(c10::kCPU)),
      cudaType_(at::autocast::get_autocast_dtype(c10::kCUDA)) {}

ModeGuard::~ModeGuard() {
  c10::GradMode::set_enabled(grad_);
  at::autocast::set_autocast_enabled(c10::kCPU, cpu_);
  at::autocast::set_autocast_enabled(c10::kCUDA, cuda_);
  at::autocast::set_autocast_dtype(c10::kCPU, cpuType_);
  at::autocast::set_autocast_dtype(c10::kCUDA, cudaType_);
}

std::vector<c10::IValue> runPlan(const Plan& plan, const std::vector<c10::IValue>& inputs) {
  TS_CHECK(inputs.size() == plan.inputs.size(), code::kInternal, "a subgraph given ", inputs.size(), " inputs for ", plan.inputs.size());
  Env env(static_cast<size_t>(plan.slots));
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (plan.inputs[i] >= 0) env[plan.inputs[i]] = inputs[i];
  }
  {
    ModeGuard modes;
    for (const Step& step : plan.steps) runStep(plan, step, env);
  }
  std::vector<c10::IValue> outputs;
  outputs.reserve(plan.outputs.size());
  for (const ArgSource& output : plan.outputs) outputs.push_back(argumentValue(output, env));
  return outputs;
}

}  // namespace torchscope::pt2
