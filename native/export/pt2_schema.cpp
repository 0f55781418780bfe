#include "export/pt2_schema.h"

#include <c10/core/ScalarType.h>

#include <nlohmann/json.hpp>

#include "core/untrusted_file.h"

namespace torchscope::pt2 {

namespace {

using Json = nlohmann::json;

// Nesting deeper than this is refused while parsing (nothing in an export comes near it).
constexpr int kMaxJsonDepth = 256;
// Subgraphs inside subgraphs (a cond inside a no_grad region inside a cond...).
constexpr int kMaxGraphDepth = 32;

// Reads one JSON document, naming where a field is malformed.
class Reader {
 public:
  explicit Reader(const std::string& path) : path_(path) {}

  [[noreturn]] void fail(const std::string& where, const std::string& why) const {
    refuseModelFile(path_, "its models/model.json is malformed at " + where + ": " + why);
  }

  const Json& field(const Json& object, const char* key, const std::string& where) const {
    if (!object.is_object()) fail(where, "expected an object");
    auto found = object.find(key);
    if (found == object.end()) fail(where, std::string("no field '") + key + "'");
    return *found;
  }
  const Json* optionalField(const Json& object, const char* key, const std::string& where) const {
    if (!object.is_object()) fail(where, "expected an object");
    auto found = object.find(key);
    return found == object.end() || found->is_null() ? nullptr : &*found;
  }
  const Json& array(const Json& value, const std::string& where) const {
    if (!value.is_array()) fail(where, "expected a list");
    return value;
  }
  std::string string(const Json& value, const std::string& where) const {
    if (!value.is_string()) fail(where, "expected a string");
    return value.get<std::string>();
  }
  int64_t integer(const Json& value, const std::string& where) const {
    if (!value.is_number_integer()) fail(where, "expected an integer");
    return value.get<int64_t>();
  }
  double number(const Json& value, const std::string& where) const {
    if (value.is_string()) {
      // Python's json writes these for non-finite floats.
      const std::string text = value.get<std::string>();
      if (text == "Infinity") return INFINITY;
      if (text == "-Infinity") return -INFINITY;
      if (text == "NaN") return NAN;
    }
    if (!value.is_number()) fail(where, "expected a number");
    return value.get<double>();
  }
  bool boolean(const Json& value, const std::string& where) const {
    if (!value.is_boolean()) fail(where, "expected true or false");
    return value.get<bool>();
  }
  std::string tensorName(const Json& value, const std::string& where) const { return string(field(value, "name", where), where + ".name"); }

  SymValue sym(const Json& value, const std::string& where, const char* literal) const {
    SymValue sym;
    if (const Json* name = optionalField(value, "as_name", where)) {
      sym.name = string(*name, where + ".as_name");
      if (sym.name.empty()) fail(where, "an empty name");
    } else if (const Json* number = optionalField(value, literal, where)) {
      sym.value = std::string(literal) == "as_bool" ? static_cast<double>(boolean(*number, where)) : this->number(*number, where);
    } else {
      fail(where, std::string("expected as_name or ") + literal);
    }
    return sym;
  }

  Value value(const Json& json, const std::string& where, int depth) const {
    if (!json.is_object() || json.size() != 1) fail(where, "expected an argument with exactly one field");
    const std::string kind = json.begin().key();
    const Json& v = json.begin().value();
    const std::string at = where + "." + kind;
    Value out;
    if (kind == "as_none") {
      out.kind = Value::kNone;
    } else if (kind == "as_tensor") {
      out.kind = Value::kTensor;
      out.names.push_back(tensorName(v, at));
    } else if (kind == "as_tensors") {
      out.kind = Value::kTensors;
      for (const Json& t : array(v, at)) out.names.push_back(tensorName(t, at));
    } else if (kind == "as_optional_tensors" || kind == "as_optional_tensor") {
      out.kind = kind == "as_optional_tensor" ? Value::kTensor : Value::kOptionalTensors;
      auto one = [&](const Json& t) {
        if (const Json* tensor = optionalField(t, "as_tensor", at)) return tensorName(*tensor, at);
        if (optionalField(t, "as_none", at) == nullptr) fail(at, "expected as_tensor or as_none");
        return std::string();
      };
      if (kind == "as_optional_tensor") {
        out.names.push_back(one(v));
        if (out.names[0].empty()) out = Value{};
      } else {
        for (const Json& t : array(v, at)) out.names.push_back(one(t));
      }
    } else if (kind == "as_int") {
      out.kind = Value::kInt;
      out.ints.push_back(integer(v, at));
    } else if (kind == "as_ints") {
      out.kind = Value::kInts;
      for (const Json& i : array(v, at)) out.ints.push_back(integer(i, at));
    } else if (kind == "as_float") {
      out.kind = Value::kFloat;
      out.floats.push_back(number(v, at));
    } else if (kind == "as_floats") {
      out.kind = Value::kFloats;
      for (const Json& f : array(v, at)) out.floats.push_back(number(f, at));
    } else if (kind == "as_bool") {
      out.kind = Value::kBool;
      out.ints.push_back(boolean(v, at));
    } else if (kind == "as_bools") {
      out.kind = Value::kBools;
      for (const Json& b : array(v, at)) out.ints.push_back(boolean(b, at));
    } else if (kind == "as_string") {
      out.kind = Value::kString;
      out.strings.push_back(string(v, at));
    } else if (kind == "as_strings") {
      out.kind = Value::kStrings;
      for (const Json& s : array(v, at)) out.strings.push_back(string(s, at));
    } else if (kind == "as_sym_int") {
      out.kind = Value::kSymInt;
      out.syms.push_back(sym(v, at, "as_int"));
    } else if (kind == "as_sym_ints") {
      out.kind = Value::kSymInts;
      for (const Json& s : array(v, at)) out.syms.push_back(sym(s, at, "as_int"));
    } else if (kind == "as_sym_float") {
      out.kind = Value::kSymFloat;
      out.syms.push_back(sym(v, at, "as_float"));
    } else if (kind == "as_sym_bool") {
      out.kind = Value::kSymBool;
      out.syms.push_back(sym(v, at, "as_bool"));
    } else if (kind == "as_scalar_type" || kind == "as_memory_format" || kind == "as_layout") {
      out.kind = kind == "as_scalar_type" ? Value::kScalarType : kind == "as_layout" ? Value::kLayout : Value::kMemoryFormat;
      out.ints.push_back(integer(v, at));
    } else if (kind == "as_device") {
      out.kind = Value::kDevice;
      out.strings.push_back(string(field(v, "type", at), at + ".type"));
      const Json* index = optionalField(v, "index", at);
      out.ints.push_back(index ? integer(*index, at + ".index") : -1);
    } else if (kind == "as_graph") {
      out.kind = Value::kGraph;
      out.graphName = string(field(v, "name", at), at + ".name");
      if (depth >= kMaxGraphDepth) fail(at, "subgraphs nested deeper than " + std::to_string(kMaxGraphDepth));
      out.graph = std::make_shared<Graph>(graph(field(v, "graph", at), at + ".graph", depth + 1));
    } else {
      // as_custom_obj, as_operator, as_complex, nested lists...: not produced by the models
      // torchscope runs; refused rather than guessed.
      fail(where, "arguments of kind '" + kind + "' are not supported");
    }
    return out;
  }

  // "key,path,type;key,path,type": a type may hold commas inside brackets.
  std::vector<ModuleFrame> moduleStack(const std::string& text, const std::string& where) const {
    std::vector<ModuleFrame> frames;
    std::vector<std::string> parts{""};
    int brackets = 0;
    for (char c : text) {
      if (c == '[' || c == '(') ++brackets;
      if (c == ']' || c == ')') --brackets;
      if (brackets == 0 && (c == ',' || c == ';')) {
        parts.push_back("");
        if (c == ';' && parts.size() % 3 != 1) fail(where, "an nn_module_stack frame without key, path and type");
        continue;
      }
      parts.back() += c;
    }
    if (text.empty()) return frames;
    if (parts.size() % 3 != 0) fail(where, "an nn_module_stack frame without key, path and type");
    for (size_t i = 0; i < parts.size(); i += 3) {
      ModuleFrame frame{parts[i], parts[i + 1], parts[i + 2]};
      // The placeholder of nodes that belong to no module is not a call.
      if (frame.key.find("_empty_nn_module_stack") != std::string::npos) continue;
      frames.push_back(std::move(frame));
    }
    return frames;
  }

  Node node(const Json& json, const std::string& where, int depth) const {
    Node node;
    node.target = string(field(json, "target", where), where + ".target");
    node.name = string(field(json, "name", where), where + ".name");
    const std::string at = where + " (" + node.name + ")";
    size_t i = 0;
    for (const Json& input : array(field(json, "inputs", at), at + ".inputs")) {
      const std::string in = at + ".inputs[" + std::to_string(i++) + "]";
      node.inputs.push_back({string(field(input, "name", in), in + ".name"), value(field(input, "arg", in), in + ".arg", depth)});
    }
    i = 0;
    for (const Json& output : array(field(json, "outputs", at), at + ".outputs")) {
      node.outputs.push_back(value(output, at + ".outputs[" + std::to_string(i++) + "]", depth));
    }
    if (const Json* metadata = optionalField(json, "metadata", at)) {
      if (const Json* stack = optionalField(*metadata, "nn_module_stack", at + ".metadata")) {
        node.modules = moduleStack(string(*stack, at + ".metadata.nn_module_stack"), at + ".metadata.nn_module_stack");
      }
    }
    return node;
  }

  TensorMeta tensorMeta(const Json& json, const std::string& where) const {
    TensorMeta meta;
    meta.dtype = integer(field(json, "dtype", where), where + ".dtype");
    for (const Json& size : array(field(json, "sizes", where), where + ".sizes")) {
      SymValue sym;
      if (const Json* literal = optionalField(size, "as_int", where)) {
        sym.value = static_cast<double>(integer(*literal, where + ".sizes"));
      } else if (const Json* expr = optionalField(size, "as_expr", where)) {
        const std::string text = string(field(*expr, "expr_str", where), where + ".sizes.expr_str");
        // "Symbol('s77', positive=True, integer=True)" is a plain symbol; anything else an expression.
        static const std::string prefix = "Symbol('";
        const size_t end = text.find('\'', prefix.size());
        const bool plain = text.rfind(prefix, 0) == 0 && end != std::string::npos && text.find("Symbol", 1) == std::string::npos;
        sym.name = plain ? text.substr(prefix.size(), end - prefix.size()) : "?";
      } else {
        fail(where + ".sizes", "expected as_int or as_expr");
      }
      meta.sizes.push_back(sym);
    }
    return meta;
  }

  Graph graph(const Json& json, const std::string& where, int depth) const {
    Graph graph;
    size_t i = 0;
    for (const Json& input : array(field(json, "inputs", where), where + ".inputs")) {
      graph.inputs.push_back(value(input, where + ".inputs[" + std::to_string(i++) + "]", depth));
    }
    i = 0;
    for (const Json& output : array(field(json, "outputs", where), where + ".outputs")) {
      graph.outputs.push_back(value(output, where + ".outputs[" + std::to_string(i++) + "]", depth));
    }
    i = 0;
    for (const Json& node : array(field(json, "nodes", where), where + ".nodes")) {
      graph.nodes.push_back(this->node(node, where + ".nodes[" + std::to_string(i++) + "]", depth));
    }
    if (const Json* tensors = optionalField(json, "tensor_values", where)) {
      if (!tensors->is_object()) fail(where + ".tensor_values", "expected an object");
      for (const auto& [name, meta] : tensors->items()) graph.tensors[name] = tensorMeta(meta, where + ".tensor_values." + name);
    }
    return graph;
  }

  InputSpec inputSpec(const Json& json, const std::string& where) const {
    if (!json.is_object() || json.size() != 1) fail(where, "expected one input kind");
    const std::string kind = json.begin().key();
    const Json& v = json.begin().value();
    InputSpec spec;
    if (kind == "user_input") {
      spec.kind = InputSpec::kUserInput;
      spec.value = value(field(v, "arg", where), where + ".arg", 0);
      if (spec.value.kind == Value::kTensor) spec.name = spec.value.names[0];
    } else if (kind == "parameter" || kind == "buffer" || kind == "tensor_constant") {
      spec.kind = kind == "parameter" ? InputSpec::kParameter : kind == "buffer" ? InputSpec::kBuffer : InputSpec::kTensorConstant;
      spec.name = tensorName(field(v, "arg", where), where + ".arg");
      const char* targetKey = kind == "parameter" ? "parameter_name" : kind == "buffer" ? "buffer_name" : "tensor_constant_name";
      spec.target = string(field(v, targetKey, where), where + "." + targetKey);
      if (kind == "buffer") spec.persistent = boolean(field(v, "persistent", where), where + ".persistent");
    } else if (kind == "constant_input") {
      spec.kind = InputSpec::kConstantInput;
      spec.name = string(field(v, "name", where), where + ".name");
      spec.value = value(field(v, "value", where), where + ".value", 0);
    } else {
      // custom objects, tokens (effectful ops): not something torchscope runs.
      fail(where, "inputs of kind '" + kind + "' are not supported");
    }
    return spec;
  }

  CallSignature signature(const Json& json, const std::string& where) const {
    CallSignature signature;
    for (const Json& input : array(field(json, "inputs", where), where + ".inputs")) signature.inputs.push_back(value(input, where, 0));
    for (const Json& output : array(field(json, "outputs", where), where + ".outputs"))
      signature.outputs.push_back(value(output, where, 0));
    signature.inSpec = string(field(json, "in_spec", where), where + ".in_spec");
    signature.outSpec = string(field(json, "out_spec", where), where + ".out_spec");
    if (const Json* names = optionalField(json, "forward_arg_names", where)) {
      for (const Json& name : array(*names, where + ".forward_arg_names")) signature.forwardArgNames.push_back(string(name, where));
    }
    return signature;
  }

 private:
  std::string path_;
};

int parseDepthGuard(const std::string& path, int depth) {
  if (depth > kMaxJsonDepth) {
    refuseModelFile(path, "its models/model.json nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  return depth;
}

TreeSpec treeSpec(const Json& json, const Reader& reader, const std::string& where, int depth) {
  if (depth > kMaxJsonDepth) reader.fail(where, "a pytree spec nested too deep");
  TreeSpec spec;
  const Json& type = reader.field(json, "type", where);
  if (!type.is_null()) spec.type = reader.string(type, where + ".type");
  const Json& context = reader.field(json, "context", where);
  if (!spec.type.empty() && context.is_string()) {
    // The context is itself JSON: a dict's or record's keys ("[\"logits\", \"h\"]"), or null.
    Json keys = Json::parse(
        context.get<std::string>(),
        [&](int depth, Json::parse_event_t, Json&) {
          if (depth > kMaxJsonDepth) reader.fail(where + ".context", "nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
          return true;
        },
        /*allow_exceptions=*/false);
    if (keys.is_array()) {
      for (const Json& key : keys) spec.keys.push_back(key.is_string() ? key.get<std::string>() : key.dump());
    }
  }
  for (const Json& child : reader.array(reader.field(json, "children_spec", where), where + ".children_spec")) {
    spec.children.push_back(treeSpec(child, reader, where + ".children_spec", depth + 1));
  }
  return spec;
}

}  // namespace

size_t TreeSpec::leaves() const {
  if (leaf()) return 1;
  size_t count = 0;
  for (const TreeSpec& child : children) count += child.leaves();
  return count;
}

TreeSpec parseTreeSpec(const std::string& json, const std::string& path) {
  Reader reader(path);
  Json parsed = Json::parse(
      json, [&](int depth, Json::parse_event_t, Json&) { return parseDepthGuard(path, depth) >= 0; }, false);
  // [protocol, spec]
  if (parsed.is_discarded() || !parsed.is_array() || parsed.size() != 2) reader.fail("a pytree spec", "expected [protocol, spec]");
  return treeSpec(parsed[1], reader, "a pytree spec", 0);
}

int8_t scalarTypeOf(int64_t exported, const std::string& path, const std::string& what) {
  static const std::map<int64_t, c10::ScalarType> types = {
      {1, c10::kByte},
      {2, c10::kChar},
      {3, c10::kShort},
      {4, c10::kInt},
      {5, c10::kLong},
      {6, c10::kHalf},
      {7, c10::kFloat},
      {8, c10::kDouble},
      {9, c10::kComplexHalf},
      {10, c10::kComplexFloat},
      {11, c10::kComplexDouble},
      {12, c10::kBool},
      {13, c10::kBFloat16},
      {28, c10::kUInt16},
      {29, c10::kFloat8_e4m3fn},
      {30, c10::kFloat8_e5m2},
      {31, c10::kFloat8_e4m3fnuz},
      {32, c10::kFloat8_e5m2fnuz},
      {34, c10::kUInt32},
      {35, c10::kUInt64},
  };
  auto found = types.find(exported);
  if (found == types.end()) refuseModelFile(path, what + " has dtype " + std::to_string(exported) + ", not one of the export schema's");
  return static_cast<int8_t>(found->second);
}

ExportedProgram parseExportedProgram(const std::string& text, const std::string& path) {
  Reader reader(path);
  Json json = Json::parse(
      text, [&](int depth, Json::parse_event_t, Json&) { return parseDepthGuard(path, depth) >= 0; }, false);
  if (json.is_discarded()) refuseModelFile(path, "its models/model.json is not valid JSON");
  ExportedProgram program;
  const Json& version = reader.field(json, "schema_version", "the top level");
  program.major = static_cast<int>(reader.integer(reader.field(version, "major", "schema_version"), "schema_version.major"));
  program.minor = static_cast<int>(reader.integer(reader.field(version, "minor", "schema_version"), "schema_version.minor"));
  if (program.major != kSchemaMajor) {
    refuseModelFile(path, "it was written with torch.export schema version " + std::to_string(program.major) + "." +
                              std::to_string(program.minor) + "; torchscope reads version " + std::to_string(kSchemaMajor) +
                              ".x (PyTorch 2.6 to 2.13, tested with " + std::to_string(kSchemaMajor) + "." + std::to_string(kTestedMinor) +
                              "): export it again with such a PyTorch");
  }
  if (const Json* verifiers = reader.optionalField(json, "verifiers", "the top level")) {
    for (const Json& verifier : reader.array(*verifiers, "verifiers")) program.coreAten |= reader.string(verifier, "verifiers") == "ATEN";
  }
  if (const Json* torchVersion = reader.optionalField(json, "torch_version", "the top level")) {
    program.torchVersion = reader.string(*torchVersion, "torch_version");
  }
  const Json& module = reader.field(json, "graph_module", "the top level");
  program.graph = reader.graph(reader.field(module, "graph", "graph_module"), "graph_module.graph", 0);
  const Json& signature = reader.field(module, "signature", "graph_module");
  size_t i = 0;
  for (const Json& input : reader.array(reader.field(signature, "input_specs", "signature"), "signature.input_specs")) {
    program.inputs.push_back(reader.inputSpec(input, "signature.input_specs[" + std::to_string(i++) + "]"));
  }
  i = 0;
  for (const Json& output : reader.array(reader.field(signature, "output_specs", "signature"), "signature.output_specs")) {
    const std::string where = "signature.output_specs[" + std::to_string(i++) + "]";
    if (!output.is_object() || output.size() != 1) reader.fail(where, "expected one output kind");
    const std::string kind = output.begin().key();
    // Eval-mode exports return user outputs only; buffer mutations (BatchNorm in train mode)
    // and the rest would need state torchscope does not keep.
    if (kind != "user_output") reader.fail(where, "outputs of kind '" + kind + "' are not supported (export the model in eval mode)");
    program.outputs.push_back(reader.value(reader.field(output.begin().value(), "arg", where), where + ".arg", 0));
  }
  if (const Json* calls = reader.optionalField(module, "module_call_graph", "graph_module")) {
    i = 0;
    for (const Json& call : reader.array(*calls, "module_call_graph")) {
      const std::string where = "module_call_graph[" + std::to_string(i++) + "]";
      ModuleCallEntry entry;
      entry.fqn = reader.string(reader.field(call, "fqn", where), where + ".fqn");
      if (const Json* sig = reader.optionalField(call, "signature", where)) entry.signature = reader.signature(*sig, where + ".signature");
      program.calls.push_back(std::move(entry));
    }
  }
  if (const Json* ranges = reader.optionalField(json, "range_constraints", "the top level")) {
    if (!ranges->is_object()) reader.fail("range_constraints", "expected an object");
    for (const auto& [symbol, range] : ranges->items()) {
      Range r;
      const Json& min = reader.field(range, "min_val", "range_constraints." + symbol);
      const Json& max = reader.field(range, "max_val", "range_constraints." + symbol);
      // Unbounded ends are written as null or as a huge number.
      if (!min.is_null()) r.min = static_cast<int64_t>(std::max(-9.0e18, reader.number(min, "range_constraints." + symbol)));
      if (!max.is_null()) r.max = static_cast<int64_t>(std::min(9.0e18, reader.number(max, "range_constraints." + symbol)));
      program.ranges[symbol] = r;
    }
  }
  if (program.inputs.size() != program.graph.inputs.size()) {
    reader.fail("signature.input_specs", "it describes " + std::to_string(program.inputs.size()) + " inputs, the graph has " +
                                             std::to_string(program.graph.inputs.size()));
  }
  return program;
}

}  // namespace torchscope::pt2
