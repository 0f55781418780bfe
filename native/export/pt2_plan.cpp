#include "export/pt2_plan.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>

#include <set>

#include "core/errors.h"
#include "core/untrusted_file.h"
#include "export/pt2_compiler.h"

namespace torchscope::pt2 {

namespace {

constexpr const char* kOpsPrefix = "torch.ops.";

// Python's operator module on SymInts (dynamic shapes: `batch * 2`).
const std::set<std::string>& pythonOperators() {
  static const std::set<std::string> ops = {"add", "sub", "mul", "floordiv", "mod", "neg", "eq", "ne", "lt", "le", "gt", "ge"};
  return ops;
}

}  // namespace

Compiler::Compiler(const Graph& graph, const CompileOptions& options) : graph_(graph), options_(options), plan_(std::make_shared<Plan>()) {}

std::shared_ptr<const Plan> Compiler::compile() {
  for (const Value& input : graph_.inputs) {
    if (input.kind == Value::kTensor) {
      plan_->inputs.push_back(define(input.names[0], "a graph input", SlotKind::kTensor));
      plan_->inputLiterals.emplace_back();
    } else if (input.kind == Value::kSymInt && input.syms[0].named()) {
      plan_->inputs.push_back(define(input.syms[0].name, "a graph input", SlotKind::kNumber));
      plan_->inputLiterals.emplace_back();
    } else {
      // A constant input (use_cache=False): its literal.
      plan_->inputs.push_back(-1);
      plan_->inputLiterals.push_back(literal(input, "a graph input"));
    }
  }
  for (size_t i = 0; i < graph_.nodes.size(); ++i) plan_->steps.push_back(step(i));
  for (const Value& output : graph_.outputs) {
    plan_->outputs.push_back(outputSource(output));
    const int slot = plan_->outputs.back().slot;
    plan_->outputKinds.push_back(static_cast<uint8_t>(slot >= 0 ? kinds_[slot] : SlotKind::kNumber));
  }
  for (SlotKind kind : kinds_) plan_->tensors.push_back(kind == SlotKind::kTensor);
  return plan_;
}

void Compiler::fail(const Node& node, const std::string& why) const {
  refuseModelFile(options_.path, "node '" + node.name + "' (" + node.target + "): " + why);
}

int Compiler::define(const std::string& name, const std::string& what, SlotKind kind) {
  if (name.empty()) refuseModelFile(options_.path, what + " has an empty name");
  if (!plan_->slotOf.emplace(name, plan_->slots).second) refuseModelFile(options_.path, "value '" + name + "' is defined twice");
  kinds_.push_back(kind);
  return plan_->slots++;
}

int Compiler::use(const std::string& name, const Node* node, SlotKind expected) const {
  auto found = plan_->slotOf.find(name);
  const std::string reader = node ? "node '" + node->name + "'" : std::string("an output");
  if (found == plan_->slotOf.end()) refuseModelFile(options_.path, reader + " reads '" + name + "', which no earlier node defines");
  const SlotKind kind = kinds_[found->second];
  if (expected != SlotKind::kAny && kind != SlotKind::kAny && kind != expected) {
    refuseModelFile(options_.path, reader + " reads '" + name + "' as " + describe(expected) + ", but it is " + describe(kind));
  }
  return found->second;
}

ArgSource Compiler::outputSource(const Value& value) {
  ArgSource source;
  if (value.kind == Value::kTensor) {
    source.kind = ArgSource::kSlot;
    source.slot = use(value.names[0], nullptr);
  } else if (value.kind == Value::kSymInt && value.syms[0].named()) {
    source.kind = ArgSource::kSlot;
    source.slot = use(value.syms[0].name, nullptr);
  } else {
    source.literal = literal(value, "an output");
  }
  return source;
}

c10::IValue Compiler::literal(const Value& value, const std::string& what) const {
  switch (value.kind) {
    case Value::kNone: return {};
    case Value::kInt: return value.ints[0];
    case Value::kBool: return static_cast<bool>(value.ints[0]);
    case Value::kFloat: return value.floats[0];
    case Value::kString: return value.strings[0];
    case Value::kSymInt:
      if (!value.syms[0].named()) return static_cast<int64_t>(value.syms[0].value);
      break;
    default: break;
  }
  refuseModelFile(options_.path, what + " is of a kind torchscope does not take there");
}

Step Compiler::step(size_t index) {
  const Node& node = graph_.nodes[index];
  Step step;
  step.node = index;
  if (node.synthetic != Synthetic::kNone) return synthetic(node, std::move(step));
  if (node.target.rfind("torch.ops.higher_order.", 0) == 0) return higherOrder(node, std::move(step));
  if (node.target.rfind("_operator.", 0) == 0) {
    const std::string name = node.target.substr(std::string("_operator.").size());
    if (!pythonOperators().count(name)) fail(node, "not an operator torchscope runs");
    step.kind = Step::kPythonOperator;
    step.pythonOperator = name;
    for (const NamedValue& input : node.inputs) step.args.push_back(symSource(node, input.value));
    if (step.args.empty() || step.args.size() > 2 || (name == "neg") != (step.args.size() == 1)) fail(node, "wrong number of operands");
    bindSymOutput(node, step);
    return step;
  }
  if (node.target.rfind(kOpsPrefix, 0) != 0) fail(node, "not a torch.ops operator: torchscope runs only those");
  const std::string op = operatorName(node.target);
  const std::string qualified = node.target.substr(std::string(kOpsPrefix).size());
  const size_t dot = qualified.rfind('.');
  std::string overload = qualified.substr(dot + 1);
  if (overload == "default") overload = "";
  if (auto effect = refusedOperatorEffect(op); effect && !options_.trusted) {
    refuseModelFile(options_.path, "its program calls " + op + " (" + *effect + ") in node '" + node.name +
                                       "'. torchscope does not run a program with effects outside tensor computation. If you "
                                       "trust this file: load(path, { trusted: true })");
  }
  if (op == "aten::sym_size" || op == "aten::sym_numel") {
    step.kind = op == "aten::sym_size" ? Step::kSymSize : Step::kSymNumel;
    for (const NamedValue& input : node.inputs) {
      step.args.push_back(input.value.kind == Value::kTensor ? slotSource(node, input.value.names[0], SlotKind::kTensor)
                                                             : symSource(node, input.value));
    }
    if (step.args.size() != (step.kind == Step::kSymSize ? 2u : 1u)) fail(node, "wrong number of arguments");
    if (step.args[0].kind != ArgSource::kSlot) fail(node, "it reads the size of something other than a tensor");
    bindSymOutput(node, step);
    return step;
  }
  step.op = c10::Dispatcher::singleton().findSchema({op, overload});
  if (!step.op) {
    fail(node, "no such operator in this libtorch (" + op + (overload.empty() ? "" : "." + overload) +
                   "): an operator of a library this process has not loaded, or of a newer PyTorch; none of the program was run");
  }
  const c10::FunctionSchema& schema = step.op->schema();
  std::map<std::string, const Value*> given;
  for (const NamedValue& input : node.inputs) {
    if (!given.emplace(input.name, &input.value).second) fail(node, "argument '" + input.name + "' is given twice");
  }
  for (const c10::Argument& argument : schema.arguments()) {
    auto found = given.find(argument.name());
    if (found == given.end()) {
      if (!argument.default_value()) fail(node, "argument '" + argument.name() + "' is missing and has no default");
      step.args.push_back(ArgSource{ArgSource::kLiteral, *argument.default_value()});
      continue;
    }
    step.args.push_back(source(node, argument, *found->second));
    given.erase(found);
  }
  if (!given.empty()) fail(node, "argument '" + given.begin()->first + "' is not one of " + schema.name() + "'s");
  bindOutputs(node, schema.returns(), step);
  return step;
}

void Compiler::bindSymOutput(const Node& node, Step& step) {
  if (node.outputs.size() != 1) fail(node, "expected one output");
  const Value& out = node.outputs[0];
  const bool named = (out.kind == Value::kSymInt || out.kind == Value::kSymBool || out.kind == Value::kSymFloat) && out.syms[0].named();
  if (!named && out.kind != Value::kInt && out.kind != Value::kSymInt && out.kind != Value::kNone) fail(node, "its output is not a number");
  step.outputs.push_back({named ? define(out.syms[0].name, "node '" + node.name + "''s output", SlotKind::kNumber) : -1});
  step.listOutputs.push_back(false);
}

int Compiler::defineOutput(const Node& node, const Value& out, SlotKind declared) {
  const std::string what = "node '" + node.name + "''s output";
  auto expect = [&](SlotKind kind) {
    if (declared != SlotKind::kAny && declared != kind)
      fail(node, std::string("it binds ") + describe(kind) + " where its operator returns " + describe(declared));
    return kind;
  };
  if (out.kind == Value::kNone) return -1;
  if (out.kind == Value::kTensor) return define(out.names[0], what, expect(SlotKind::kTensor));
  if ((out.kind == Value::kSymInt || out.kind == Value::kSymBool || out.kind == Value::kSymFloat) && out.syms[0].named()) {
    return define(out.syms[0].name, what, expect(SlotKind::kNumber));
  }
  if (out.kind == Value::kInt || out.kind == Value::kFloat || out.kind == Value::kBool || out.kind == Value::kSymInt) {
    expect(SlotKind::kNumber);
    return -1;
  }
  fail(node, "an output of a kind torchscope does not bind");
}

void Compiler::bindOutputs(const Node& node, const std::vector<c10::Argument>& returns, Step& step) {
  auto bindList = [&](const Value& out) {
    std::vector<int> slots;
    for (const std::string& name : out.names) {
      slots.push_back(name.empty() ? -1 : define(name, "node '" + node.name + "''s output", SlotKind::kTensor));
    }
    return slots;
  };
  if (node.outputs.size() == returns.size()) {
    for (size_t i = 0; i < returns.size(); ++i) {
      const Value& out = node.outputs[i];
      const bool list = out.kind == Value::kTensors || out.kind == Value::kOptionalTensors;
      if (list && !isTensorList(returns[i].type()))
        fail(node, "it binds a list of tensors where its operator returns " + returns[i].type()->str());
      if (!list && isTensorList(returns[i].type()) && out.kind != Value::kNone) {
        fail(node, "it binds one value where its operator returns a list of tensors");
      }
      step.outputs.push_back(list ? bindList(out) : std::vector<int>{defineOutput(node, out, kindOf(returns[i].type()))});
      step.listOutputs.push_back(list);
    }
    return;
  }
  // Several tensor returns written as one list.
  if (node.outputs.size() == 1 && node.outputs[0].kind == Value::kTensors && node.outputs[0].names.size() == returns.size()) {
    for (size_t i = 0; i < returns.size(); ++i) {
      if (kindOf(returns[i].type()) != SlotKind::kTensor)
        fail(node, "it binds a tensor where its operator returns " + returns[i].type()->str());
      const std::string& name = node.outputs[0].names[i];
      step.outputs.push_back({name.empty() ? -1 : define(name, "node '" + node.name + "''s output", SlotKind::kTensor)});
      step.listOutputs.push_back(false);
    }
    return;
  }
  if (node.outputs.empty()) {
    step.outputs.assign(returns.size(), {-1});
    step.listOutputs.assign(returns.size(), false);
    return;
  }
  fail(node, std::to_string(node.outputs.size()) + " outputs for an operator that returns " + std::to_string(returns.size()));
}

void Compiler::operands(const Node& node, size_t from, Step& step, size_t until) const {
  for (size_t i = from; i < until; ++i) {
    const Value& value = node.inputs[i].value;
    if (value.kind == Value::kTensor) {
      step.args.push_back(slotSource(node, value.names[0], SlotKind::kTensor));
    } else if (value.kind == Value::kTensors) {
      for (const std::string& name : value.names) step.args.push_back(slotSource(node, name, SlotKind::kTensor));
    } else {
      step.args.push_back(symSource(node, value));
    }
  }
}

std::shared_ptr<const Plan> Compiler::subplan(const Node& node, const Value& value) const {
  if (value.kind != Value::kGraph) fail(node, "expected a subgraph");
  return Compiler(*value.graph, options_).compile();
}

void Compiler::autocastConfig(const Node& node, Step& step) const {
  const auto& in = node.inputs;
  if (in.size() < 3 || in[0].value.kind != Value::kString || in[2].value.kind != Value::kBool) {
    fail(node, "expected device type and enabled flag");
  }
  step.autocastDevice = in[0].value.strings[0] == "cuda" ? c10::kCUDA : c10::kCPU;
  if (in[1].value.kind == Value::kScalarType) {
    step.autocastType = static_cast<c10::ScalarType>(scalarTypeOf(in[1].value.ints[0], options_.path, "node '" + node.name + "'"));
  } else {
    step.autocastType = at::autocast::get_lower_precision_fp_from_device_type(step.autocastDevice);
  }
  step.flag = in[2].value.ints[0] != 0;
}

Step Compiler::synthetic(const Node& node, Step step) {
  const std::string saved = "#saved";
  switch (node.synthetic) {
    case Synthetic::kEnterGradMode:
      if (node.inputs.empty() || node.inputs[0].value.kind != Value::kBool) fail(node, "expected a bool");
      step.kind = Step::kEnterGradMode;
      step.flag = node.inputs[0].value.ints[0] != 0;
      break;
    case Synthetic::kEnterAutocast:
      step.kind = Step::kEnterAutocast;
      autocastConfig(node, step);
      break;
    case Synthetic::kExitRegion:
      step.kind = Step::kExitRegion;
      step.args.push_back(slotSource(node, node.inputs.at(0).value.strings.at(0) + saved, SlotKind::kAny));
      return step;
    case Synthetic::kAlias: {
      step.kind = Step::kAlias;
      const Value& in = node.inputs.at(0).value;
      const SlotKind kind = in.kind == Value::kTensor ? SlotKind::kTensor : SlotKind::kNumber;
      step.args.push_back(slotSource(node, in.kind == Value::kTensor ? in.names[0] : in.syms.at(0).name, kind));
      step.outputs.push_back({defineOutput(node, node.outputs.at(0), kind)});
      step.listOutputs.push_back(false);
      return step;
    }
    case Synthetic::kNone: break;
  }
  step.outputs.push_back({define(node.name + saved, "node '" + node.name + "'", SlotKind::kAny)});
  step.listOutputs.push_back(false);
  return step;
}

Step Compiler::higherOrder(const Node& node, Step step) {
  const std::string op = node.target.substr(std::string("torch.ops.higher_order.").size());
  const auto& in = node.inputs;
  auto argumentCount = [&](size_t count) {
    if (in.size() < count) fail(node, "too few arguments");
  };
  size_t subgraphInputs = 0;
  if (op == "cond") {
    argumentCount(4);
    step.kind = Step::kCond;
    step.args.push_back(in[0].value.kind == Value::kTensor ? slotSource(node, in[0].value.names[0], SlotKind::kTensor)
                                                           : symSource(node, in[0].value));
    step.subplans = {subplan(node, in[1].value), subplan(node, in[2].value)};
    operands(node, 3, step, in.size());
    subgraphInputs = step.args.size() - 1;
  } else if (op == "while_loop") {
    argumentCount(4);
    step.kind = Step::kWhileLoop;
    step.subplans = {subplan(node, in[0].value), subplan(node, in[1].value)};
    operands(node, 2, step, 3);
    step.carried = step.args.size();  // carried values first, then the additional ones
    operands(node, 3, step, in.size());
    subgraphInputs = step.args.size();
  } else if (op == "wrap_with_set_grad_enabled") {
    argumentCount(2);
    step.kind = Step::kSetGradEnabled;
    if (in[0].value.kind != Value::kBool) fail(node, "expected a bool");
    step.flag = in[0].value.ints[0] != 0;
    step.subplans = {subplan(node, in[1].value)};
    operands(node, 2, step, in.size());
    subgraphInputs = step.args.size();
  } else if (op == "wrap_with_autocast") {
    argumentCount(5);
    step.kind = Step::kAutocast;
    autocastConfig(node, step);
    step.subplans = {subplan(node, in[4].value)};
    operands(node, 5, step, in.size());
    subgraphInputs = step.args.size();
  } else {
    fail(node, "a higher-order op torchscope does not run (it runs cond, while_loop, no_grad and autocast regions)");
  }
  for (const auto& plan : step.subplans) {
    if (plan->inputs.size() != subgraphInputs) {
      fail(node, "its subgraph takes " + std::to_string(plan->inputs.size()) + " inputs, given " + std::to_string(subgraphInputs));
    }
  }
  const size_t results = step.subplans.back()->outputs.size();
  for (const auto& plan : step.subplans) {
    const size_t expected = step.kind == Step::kWhileLoop && plan == step.subplans.front() ? 1 : results;
    if (plan->outputs.size() != expected) fail(node, "its subgraphs return different numbers of values");
  }
  if (step.kind == Step::kWhileLoop && results != step.carried) fail(node, "its body returns other than the values it carries");
  // Each output is what every subgraph returns there (a loop's carried values are its body's).
  auto returned = [&](size_t i) {
    SlotKind kind = static_cast<SlotKind>(step.subplans.back()->outputKinds.at(i));
    for (const auto& plan : step.subplans) {
      if (step.kind == Step::kWhileLoop && plan == step.subplans.front()) continue;
      if (static_cast<SlotKind>(plan->outputKinds.at(i)) != kind) fail(node, "its subgraphs return different kinds of values");
    }
    return kind;
  };
  if (node.outputs.size() != results) {
    // A single list output ([{"as_tensors": [...]}]) holds them all.
    if (node.outputs.size() == 1 && node.outputs[0].kind == Value::kTensors && node.outputs[0].names.size() == results) {
      for (size_t i = 0; i < results; ++i) {
        const std::string& name = node.outputs[0].names[i];
        if (returned(i) != SlotKind::kTensor) fail(node, "it binds a tensor where its subgraph returns a number");
        step.outputs.push_back({name.empty() ? -1 : define(name, "node '" + node.name + "''s output", SlotKind::kTensor)});
      }
      step.listOutputs.assign(results, false);
      return step;
    }
    fail(node, std::to_string(node.outputs.size()) + " outputs for a subgraph that returns " + std::to_string(results));
  }
  for (size_t i = 0; i < node.outputs.size(); ++i) {
    const Value& out = node.outputs[i];
    step.outputs.push_back({defineOutput(node, out, returned(i))});
    step.listOutputs.push_back(false);
  }
  return step;
}

std::string operatorName(const std::string& target) {
  std::string name = target.rfind(kOpsPrefix, 0) == 0 ? target.substr(std::string(kOpsPrefix).size()) : target;
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return name;
  const size_t overload = name.rfind('.');
  return name.substr(0, dot) + "::" + name.substr(dot + 1, overload - dot - 1);
}

bool isSoftmax(const std::string& op) { return op == "aten::softmax" || op == "aten::_softmax" || op == "aten::_safe_softmax"; }

std::shared_ptr<const Plan> compilePlan(const Graph& graph, const CompileOptions& options) { return Compiler(graph, options).compile(); }

}  // namespace torchscope::pt2
