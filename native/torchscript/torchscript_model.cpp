#include "torchscript/torchscript_model.h"

#include <torch/csrc/jit/api/function_impl.h>

#include "core/errors.h"
#include "core/resources.h"
#include "program/precision.h"
#include "torchscript/module_calls.h"
#include "torchscript/module_nodes.h"
#include "torchscript/torchscript_program.h"

namespace torchscope {

std::shared_ptr<TorchScriptModel> TorchScriptModel::load(const std::string& path, const c10::Device& device, const LoadPolicy& policy) {
  auto model = std::make_shared<TorchScriptModel>();
  model->module_ = loadModelFile(path, device, policy);
  // Inference semantics (dropout off, BatchNorm running stats), as Python's model.eval();
  // parameters never need gradients: only inputs do (activation maximization).
  model->module_.eval();
  for (const auto& parameter : model->module_.parameters()) parameter.requires_grad_(false);
  for (const auto& child : model->module_.named_modules()) {
    model->submodules_.emplace_back(child.name, child.value.type()->name()->name());
    model->modulesByPath_.emplace(child.name, child.value);
  }
  try {
    for (auto& [name, hookability] : surveyModules(model->module_)) model->survey_[name] = std::move(hookability);
    model->forwardSchema_ = model->module_.get_method("forward").function().getSchema();
  } catch (const std::exception& e) {
    TS_FAIL(code::kModelLoad, "'", path, "' has no usable forward: ", e.what());
  }
  model->bytes_ = moduleBytes(model->module_);
  return model;
}

ProgramSpec TorchScriptModel::canonical(ProgramSpec spec) const {
  // libtorch's inference rewrites have no backward: such a program is built exact.
  if (spec.differentiable && spec.optimize && rewritesForInference(module_, spec)) spec.optimize = false;
  return spec;
}

std::shared_ptr<const Program> TorchScriptModel::build(const ProgramSpec& spec) const {
  return buildTorchScriptProgram(module_, survey_, spec);
}

torch::jit::Method TorchScriptModel::forwardOf(const std::string& path, const std::string& role) const {
  auto found = modulesByPath_.find(path);
  TS_CHECK(found != modulesByPath_.end(), code::kUnknownLayer, "no layer '", path, "' in this model");
  auto method = found->second.find_method("forward");
  TS_CHECK(method.has_value(), code::kInvalidArgument, role, " '", path,
           "' has no method 'forward' (an overloaded forward has forward__0, forward__1...; use the module that calls it)");
  return *method;
}

std::vector<ModuleNode> TorchScriptModel::nodes(const std::string& path) const {
  return describeNodes(*torch::jit::toGraphFunction(forwardOf(path, "module").function()).graph());
}

SuppliedArguments& TorchScriptModel::suppliedArguments(const std::string& path, const std::string& role) const {
  forwardOf(path, role);  // a module with a plain forward, else said so
  std::lock_guard<std::mutex> lock(suppliedMutex_);
  auto& found = supplied_[path];
  if (!found) found = std::make_unique<SuppliedArguments>(module_, path);
  return *found;
}

std::vector<SubmoduleArgument> TorchScriptModel::submoduleArguments(const std::string& path, const std::string& role) const {
  return suppliedArguments(path, role).arguments();
}

c10::FunctionSchema TorchScriptModel::submoduleSchema(const std::string& path, const std::string& role) const {
  const c10::FunctionSchema full = forwardOf(path, role).function().getSchema();
  const auto& arguments = suppliedArguments(path, role).arguments();
  std::vector<c10::Argument> given{full.arguments().at(0)};
  for (size_t i = 0; i < arguments.size(); ++i) {
    if (!arguments[i].supplied) given.push_back(full.arguments().at(i + 1));
  }
  return full.cloneWithArguments(std::move(given));
}

c10::IValue TorchScriptModel::callSubmodule(const std::string& path, const std::string& role, std::vector<c10::IValue> inputs,
                                            Precision precision, c10::DeviceType device) const {
  const torch::jit::Method method = forwardOf(path, role);
  torch::jit::Stack stack = suppliedArguments(path, role).stack(path, std::move(inputs));
  try {
    method.function().getSchema().checkAndNormalizeInputs(stack);
  } catch (const c10::Error& e) {
    TS_FAIL(code::kInvalidArgument, e.what_without_backtrace());
  }
  PrecisionScope scope(precision, device);
  method.function().run(stack);
  return stack.back();
}

std::map<std::string, at::Tensor> TorchScriptModel::namedTensors() const {
  std::map<std::string, at::Tensor> out;
  for (const auto& parameter : module_.named_parameters(/*recurse=*/true)) out.emplace(parameter.name, parameter.value);
  for (const auto& buffer : module_.named_buffers(/*recurse=*/true)) out.emplace(buffer.name, buffer.value);
  return out;
}

void TorchScriptModel::shareTensorsOf(const ModelFormat& owner) {
  const auto theirs = owner.namedTensors();
  for (const auto& [name, ours] : namedTensors()) {
    auto found = theirs.find(name);
    if (found == theirs.end() || found->second.is_same(ours)) continue;
    const at::Tensor& tensor = found->second;
    const bool same = tensor.scalar_type() == ours.scalar_type() && tensor.sizes().equals(ours.sizes()) &&
                      tensor.device() == ours.device() && at::equal(tensor, ours);
    TS_CHECK(same, code::kModelLoad, "its '", name, "' differs from the model's: export the model and its decoding step together");
    const auto dot = name.rfind('.');
    torch::jit::Module holder = dot == std::string::npos ? module_ : modulesByPath_.at(name.substr(0, dot));
    holder.setattr(name.substr(dot == std::string::npos ? 0 : dot + 1), tensor);
  }
  bytes_ = moduleBytes(module_, theirs);
}

}  // namespace torchscope
