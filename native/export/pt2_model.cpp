#include "export/pt2_model.h"

#include <set>

#include "core/errors.h"
#include "export/pt2_program.h"
#include "export/pt2_run.h"
#include "program/precision.h"

namespace torchscope {

std::shared_ptr<ExportModel> ExportModel::load(const std::string& path, const c10::Device& device, const LoadPolicy& policy) {
  auto model = std::make_shared<ExportModel>();
  try {
    model->loaded_ = pt2::loadProgram(path, device, policy);
  } catch (const Error& e) {
    if (std::string(e.code()) == code::kModelLoad) throw;
    TS_FAIL(code::kModelLoad, "'" + path + "': " + e.what());
  } catch (...) {
    const ErrorInfo info = describeException(std::current_exception(), code::kModelLoad);
    TS_FAIL(code::kModelLoad, "could not load '" + path + "': " + info.message);
  }
  return model;
}

ProgramSpec ExportModel::canonical(ProgramSpec spec) const {
  spec.optimize = false;
  return spec;
}

std::shared_ptr<const Program> ExportModel::build(const ProgramSpec& spec) const { return std::make_shared<ExportProgram>(spec, loaded_); }

const pt2::ModuleCall& ExportModel::firstCall(const std::string& path, const std::string& role) const {
  const auto& survey = loaded_->modules.survey;
  TS_CHECK(!path.empty() && survey.count(path), code::kUnknownLayer, "no layer '", path, "' in this model");
  auto found = loaded_->modules.calls.find(path);
  TS_CHECK(found != loaded_->modules.calls.end(), code::kInvalidArgument, role, " '", path,
           "' cannot be called alone: ", survey.at(path).reason);
  return found->second.front();
}

std::vector<int> ExportModel::outsideReads(const pt2::ModuleCall& call) const {
  const std::set<size_t> region(call.steps.begin(), call.steps.end());
  std::set<int> defined;
  for (size_t s : call.steps) {
    for (const auto& slots : loaded_->plan->steps[s].outputs) defined.insert(slots.begin(), slots.end());
  }
  std::vector<int> reads;
  std::set<int> seen;
  for (size_t s : call.steps) {
    for (const pt2::ArgSource& arg : loaded_->plan->steps[s].args) {
      std::vector<int> slots(arg.slots);
      slots.insert(slots.begin(), arg.slot);
      for (int slot : slots) {
        if (slot < 0 || defined.count(slot) || loaded_->weightSlots.count(slot) || !seen.insert(slot).second) continue;
        reads.push_back(slot);
      }
    }
  }
  return reads;
}

std::vector<SubmoduleArgument> ExportModel::submoduleArguments(const std::string& path, const std::string& role) const {
  const pt2::ModuleCall& call = firstCall(path, role);
  std::map<int, std::string> names;
  for (const auto& [name, slot] : loaded_->plan->slotOf) names[slot] = name;
  std::vector<SubmoduleArgument> arguments;
  for (int slot : outsideReads(call)) {
    SubmoduleArgument argument;
    argument.name = names[slot];
    const auto& tensors = loaded_->program.graph.tensors;
    argument.type = tensors.count(argument.name) ? "Tensor" : "int";
    argument.source = "the value '" + argument.name + "' of the exported program at the module's first call";
    arguments.push_back(std::move(argument));
  }
  return arguments;
}

c10::FunctionSchema ExportModel::submoduleSchema(const std::string& path, const std::string& role) const {
  std::vector<c10::Argument> arguments{c10::Argument("self", c10::AnyType::get())};
  for (const SubmoduleArgument& argument : submoduleArguments(path, role)) {
    arguments.emplace_back(argument.name,
                           argument.type == "Tensor" ? c10::TypePtr(c10::TensorType::get()) : c10::TypePtr(c10::IntType::get()));
  }
  return c10::FunctionSchema("forward", "", std::move(arguments), {c10::Argument("", c10::AnyType::get())});
}

c10::IValue ExportModel::callSubmodule(const std::string& path, const std::string& role, std::vector<c10::IValue> inputs,
                                       Precision precision, c10::DeviceType device) const {
  const pt2::ModuleCall& call = firstCall(path, role);
  const std::vector<int> reads = outsideReads(call);
  TS_CHECK(inputs.size() == reads.size(), code::kInvalidArgument, role, " '", path, "' takes ", reads.size(),
           " input(s) (model.signature(path) "
           "lists them), given ",
           inputs.size());
  pt2::Env env = loaded_->weights;
  for (size_t i = 0; i < reads.size(); ++i) env[reads[i]] = std::move(inputs[i]);
  PrecisionScope scope(precision, device);
  pt2::ModeGuard modes;
  for (size_t s : call.steps) pt2::runStep(*loaded_->plan, loaded_->plan->steps[s], env);
  if (call.outputs.size() == 1) return env[call.outputs[0]];
  std::vector<c10::IValue> outputs;
  for (int slot : call.outputs) outputs.push_back(env[slot]);
  return c10::ivalue::Tuple::create(std::move(outputs));
}

std::vector<ModuleNode> ExportModel::nodes(const std::string& path) const {
  const auto& survey = loaded_->modules.survey;
  TS_CHECK(survey.count(path), code::kUnknownLayer, "no layer '", path, "' in this model");
  std::vector<ModuleNode> out;
  auto found = loaded_->modules.ownSteps.find(path);
  if (found == loaded_->modules.ownSteps.end()) return out;
  const auto& graph = loaded_->program.graph;
  size_t softmaxes = 0;
  for (size_t s : found->second) {
    const pt2::Node& node = graph.nodes[s];
    const auto& outputs = loaded_->plan->steps[s].outputs;
    // Nothing to hook, or a node of torchscope's own (an inlined region's markers).
    if (node.synthetic != pt2::Synthetic::kNone || outputs.empty() || outputs[0].size() != 1 || outputs[0][0] < 0) continue;
    ModuleNode entry{node.name, pt2::operatorName(node.target), false};
    if (pt2::isSoftmax(entry.op)) ++softmaxes;
    // Its exported shape: -1 for a dynamic size.
    const std::string& value = node.outputs[0].kind == pt2::Value::kTensor ? node.outputs[0].names[0] : "";
    if (auto meta = graph.tensors.find(value); meta != graph.tensors.end()) {
      for (const pt2::SymValue& size : meta->second.sizes) entry.shape.push_back(size.named() ? -1 : static_cast<int64_t>(size.value));
      entry.shaped = true;
    }
    out.push_back(std::move(entry));
  }
  if (softmaxes == 1) {
    for (ModuleNode& entry : out) entry.pattern = pt2::isSoftmax(entry.op);
  }
  return out;
}

std::map<std::string, at::Tensor> ExportModel::namedTensors() const {
  std::map<std::string, at::Tensor> out;
  const auto& inputs = loaded_->program.inputs;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const bool weight = inputs[i].kind == pt2::InputSpec::kParameter || inputs[i].kind == pt2::InputSpec::kBuffer;
    const int slot = loaded_->plan->inputs[i];
    if (weight && slot >= 0 && loaded_->weights[slot].isTensor()) out.emplace(inputs[i].target, loaded_->weights[slot].toTensor());
  }
  return out;
}

}  // namespace torchscope
