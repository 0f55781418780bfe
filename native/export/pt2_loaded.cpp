#include "export/pt2_loaded.h"

#include <ATen/ATen.h>

#include "core/errors.h"
#include "core/untrusted_file.h"
#include "export/pt2_archive.h"
#include "export/pt2_regions.h"
#include "export/pt2_run.h"

namespace torchscope::pt2 {

namespace {

// Forward's argument names, one per flattened input leaf: positional arguments by
// forward_arg_names, keyword arguments by their keys, nested leaves numbered.
std::vector<std::string> leafNames(const CallSignature* root) {
  std::vector<std::string> names;
  if (root == nullptr) return names;
  TreeSpec spec;
  try {
    spec = parseTreeSpec(root->inSpec, "");
  } catch (...) {
    return names;
  }
  std::function<void(const TreeSpec&, const std::string&)> walk = [&](const TreeSpec& node, const std::string& name) {
    if (node.leaf()) {
      names.push_back(name);
      return;
    }
    for (size_t i = 0; i < node.children.size(); ++i) {
      walk(node.children[i], name + (i < node.keys.size() ? "." + node.keys[i] : "." + std::to_string(i)));
    }
  };
  // ((args...), {kwargs...})
  if (spec.children.size() != 2) return names;
  const TreeSpec& args = spec.children[0];
  for (size_t i = 0; i < args.children.size(); ++i) {
    const std::string name = i < root->forwardArgNames.size() ? root->forwardArgNames[i] : "input_" + std::to_string(i);
    if (args.children[i].leaf()) {
      names.push_back(name);
    } else {
      walk(args.children[i], name);
    }
  }
  const TreeSpec& kwargs = spec.children[1];
  for (size_t i = 0; i < kwargs.children.size() && i < kwargs.keys.size(); ++i) {
    if (kwargs.children[i].leaf()) {
      names.push_back(kwargs.keys[i]);
    } else {
      walk(kwargs.children[i], kwargs.keys[i]);
    }
  }
  return names;
}

std::string describeShape(const TensorMeta& meta, const std::map<std::string, Range>& ranges) {
  std::string text = "[";
  std::string constraints;
  for (size_t i = 0; i < meta.sizes.size(); ++i) {
    const SymValue& size = meta.sizes[i];
    text += (i ? ", " : "") + (size.named() ? size.name : std::to_string(static_cast<int64_t>(size.value)));
    if (size.named() && ranges.count(size.name)) {
      const Range& range = ranges.at(size.name);
      constraints += ", " + size.name + " in [" + std::to_string(range.min) + ", " +
                     (range.max >= INT64_MAX / 2 ? std::string("inf") : std::to_string(range.max)) + "]";
    }
  }
  return text + "]" + constraints;
}

}  // namespace

Env LoadedProgram::bind(std::vector<c10::IValue> given) const {
  TS_CHECK(given.size() == inputs.size(), code::kInvalidArgument, "forward takes ", inputs.size(), " input(s) (",
           forwardSchema.arguments().size() > 1 ? forwardSchema.arguments()[1].name() : "", inputs.size() > 1 ? ", ..." : "", "), given ",
           given.size());
  Env env = weights;
  std::map<std::string, int64_t> symbols;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const UserInput& input = inputs[i];
    c10::IValue& value = given[i];
    if (!input.tensor) {
      TS_CHECK(value.isInt(), code::kInvalidArgument, "input '", input.name, "' is an integer");
      env[input.slot] = value;
      continue;
    }
    TS_CHECK(value.isTensor(), code::kInvalidArgument, "input '", input.name, "' is a tensor, given ", value.tagKind());
    at::Tensor tensor = value.toTensor();
    if (input.meta) {
      const auto type = static_cast<c10::ScalarType>(scalarTypeOf(input.meta->dtype, path, "input '" + input.name + "'"));
      if (tensor.scalar_type() != type) {
        // Token ids in another integer type mean the same: given as exported.
        TS_CHECK(at::isIntegralType(type, true) && at::isIntegralType(tensor.scalar_type(), true), code::kDtype, "input '", input.name,
                 "' is ", tensor.scalar_type(), "; the program was exported for ", type);
        tensor = tensor.to(type);
      }
      const auto& sizes = input.meta->sizes;
      bool fits = tensor.dim() == static_cast<int64_t>(sizes.size());
      for (size_t d = 0; fits && d < sizes.size(); ++d) {
        const int64_t size = tensor.size(static_cast<int64_t>(d));
        if (!sizes[d].named()) {
          fits = size == static_cast<int64_t>(sizes[d].value);
        } else if (sizes[d].name != "?") {
          auto range = program.ranges.find(sizes[d].name);
          fits = range == program.ranges.end() || (size >= range->second.min && size <= range->second.max);
          auto [seen, added] = symbols.emplace(sizes[d].name, size);
          fits = fits && (added || seen->second == size);
        }
      }
      TS_CHECK(fits, code::kShape, "input '", input.name, "' has shape ", tensor.sizes(), "; the program was exported for ",
               describeShape(*input.meta, program.ranges),
               ". An exported program computes only the shapes it was exported for: export it with dynamic_shapes "
               "(torch.export.Dim) for the sizes that vary");
    }
    env[input.slot] = tensor;
  }
  return env;
}

c10::IValue LoadedProgram::output(const Env& env) const {
  std::vector<c10::IValue> leaves;
  for (const ArgSource& source : plan->outputs) leaves.push_back(argumentValue(source, env));
  if (outSpec && outSpec->leaves() == leaves.size()) return nestLeaves(*outSpec, leaves);
  if (leaves.size() == 1) return leaves[0];
  return c10::ivalue::Tuple::create(std::move(leaves));
}

namespace {

c10::IValue nestFrom(const TreeSpec& spec, const std::vector<c10::IValue>& leaves, size_t& next) {
  if (spec.leaf()) return next < leaves.size() ? leaves[next++] : c10::IValue();
  std::vector<c10::IValue> children;
  for (const TreeSpec& child : spec.children) children.push_back(nestFrom(child, leaves, next));
  const bool keyed = spec.keys.size() == spec.children.size() && spec.type != "builtins.tuple" && spec.type != "builtins.list";
  if (!keyed) return c10::ivalue::Tuple::create(std::move(children));
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  for (size_t i = 0; i < children.size(); ++i) dict.insert(spec.keys[i], children[i]);
  return dict;
}

}  // namespace

c10::IValue nestLeaves(const TreeSpec& spec, const std::vector<c10::IValue>& leaves) {
  size_t next = 0;
  return nestFrom(spec, leaves, next);
}

void flattenLeaves(const c10::IValue& value, std::vector<c10::IValue>& leaves) {
  if (value.isTuple()) {
    for (const c10::IValue& element : value.toTupleRef().elements()) flattenLeaves(element, leaves);
  } else if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict()) flattenLeaves(entry.value(), leaves);
  } else if (value.isList()) {
    for (const c10::IValue& element : value.toListRef()) flattenLeaves(element, leaves);
  } else {
    leaves.push_back(value);
  }
}

std::shared_ptr<const LoadedProgram> loadProgram(const std::string& path, const c10::Device& device, const LoadPolicy& policy) {
  Pt2Archive archive = readPt2Archive(path, device, policy);
  auto loaded = std::make_shared<LoadedProgram>();
  loaded->path = path;
  loaded->bytes = archive.bytes;
  loaded->program = std::move(archive.program);
  loaded->program.graph = inlineRegions(loaded->program.graph);
  const ExportedProgram& program = loaded->program;
  loaded->plan = compilePlan(program.graph, CompileOptions{path, policy.trusted, device});
  const Plan& plan = *loaded->plan;
  // The user outputs are the graph's outputs; anything else was refused while parsing.
  if (program.outputs.size() != plan.outputs.size()) {
    refuseModelFile(
        path, "its signature has " + std::to_string(program.outputs.size()) + " outputs, its graph " + std::to_string(plan.outputs.size()));
  }
  loaded->weights.resize(static_cast<size_t>(plan.slots));
  const CallSignature* root = nullptr;
  for (const ModuleCallEntry& entry : program.calls) {
    if (entry.fqn.empty() && entry.signature) root = &*entry.signature;
  }
  const std::vector<std::string> names = leafNames(root);
  size_t leaf = 0;
  std::vector<c10::Argument> arguments{c10::Argument("self", c10::AnyType::get())};
  for (size_t i = 0; i < program.inputs.size(); ++i) {
    const InputSpec& spec = program.inputs[i];
    const int slot = plan.inputs[i];
    if (spec.kind == InputSpec::kConstantInput) {
      ++leaf;
      continue;
    }
    if (spec.kind != InputSpec::kUserInput) {
      auto found = archive.tensors.find(spec.name);
      if (found == archive.tensors.end() || slot < 0) refuseModelFile(path, "input '" + spec.name + "' has no tensor in the archive");
      loaded->weights[slot] = found->second;
      loaded->weightSlots.insert(slot);
      continue;
    }
    UserInput input;
    input.slot = slot;
    input.name = leaf < names.size() ? names[leaf] : spec.name.empty() ? "input_" + std::to_string(leaf) : spec.name;
    ++leaf;
    if (slot < 0) refuseModelFile(path, "user input " + std::to_string(i) + " is of a kind torchscope does not take");
    input.tensor = spec.value.kind == Value::kTensor;
    if (input.tensor) {
      auto meta = program.graph.tensors.find(spec.name);
      if (meta != program.graph.tensors.end()) input.meta = meta->second;
    }
    arguments.emplace_back(input.name, input.tensor ? c10::TypePtr(c10::TensorType::get()) : c10::TypePtr(c10::IntType::get()));
    loaded->inputs.push_back(std::move(input));
  }
  loaded->forwardSchema = c10::FunctionSchema("forward", "", std::move(arguments), {c10::Argument("", c10::AnyType::get())});
  if (root != nullptr) {
    try {
      loaded->outSpec = parseTreeSpec(root->outSpec, path);
    } catch (const Error&) {
      loaded->outSpec.reset();  // the outputs then come as a tuple
    }
  }
  loaded->modules = mapModules(program, plan, loaded->weightSlots);
  return loaded;
}

}  // namespace torchscope::pt2
