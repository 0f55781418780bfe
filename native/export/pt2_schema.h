// A torch.export program as its archive's models/model.json describes it (torch/_export/serde/
// schema.py, schema version 8), read into plain structs: every field checked for its type and
// bounds while parsing, so nothing later meets malformed JSON. Values are named as the graph
// names them ("linear_3"); subgraphs (torch.cond branches, no_grad regions) have their own names.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace torchscope::pt2 {

// The schema versions this reader was tested with (major; minors up to kTestedMinor).
inline constexpr int kSchemaMajor = 8;
inline constexpr int kTestedMinor = 20;

// A SymInt / SymFloat / SymBool argument: a value the graph names (a sym_size output) or a literal.
struct SymValue {
  std::string name;  // empty for a literal
  double value = 0;  // the literal (ints and bools exactly)
  bool named() const { return !name.empty(); }
};

struct Graph;

// One argument or output, as the schema's Argument union writes it.
struct Value {
  enum Kind {
    kNone,
    kTensor,
    kTensors,
    kOptionalTensors,  // names: "" for a None
    kInt,
    kInts,
    kFloat,
    kFloats,
    kBool,
    kBools,
    kString,
    kStrings,
    kSymInt,
    kSymInts,
    kSymFloat,
    kSymBool,
    kScalarType,
    kMemoryFormat,
    kLayout,
    kDevice,
    kGraph,
  };
  Kind kind = kNone;
  std::vector<std::string> names;    // tensors
  std::vector<SymValue> syms;        // sym ints, floats, bools
  std::vector<int64_t> ints;         // ints, bools (0/1), the schema's enums; a device's index (-1: none)
  std::vector<double> floats;        // floats
  std::vector<std::string> strings;  // strings; a device's type
  std::shared_ptr<const Graph> graph;
  std::string graphName;
};

struct NamedValue {
  std::string name;  // the operator's argument name; "" for higher-order ops' positional operands
  Value value;
};

// One frame of a node's nn_module_stack: the call's key (unique per call: "L__self__layer1.0.relu@1"),
// the module's path ("layer1.0.relu") and its type's qualified name.
struct ModuleFrame {
  std::string key;
  std::string path;
  std::string type;
};

// Nodes torchscope adds when it inlines a no_grad or autocast region (pt2_regions.h); never read
// from a file.
enum class Synthetic : uint8_t { kNone, kEnterGradMode, kEnterAutocast, kExitRegion, kAlias };

struct Node {
  Synthetic synthetic = Synthetic::kNone;
  std::string target;  // "torch.ops.aten.linear.default", "torch.ops.higher_order.cond", "_operator.mul"
  std::string name;    // the name torch.fx gave it ("linear_3")
  std::vector<NamedValue> inputs;
  std::vector<Value> outputs;
  std::vector<ModuleFrame> modules;  // outermost first (the root's, path "", first), placeholders left out
};

// A tensor value's metadata: dtype (the schema's enum) and sizes, a symbolic size by its symbol
// ("s77") where that size is a plain symbol, "?" where it is an expression of several.
struct TensorMeta {
  int64_t dtype = 0;
  std::vector<SymValue> sizes;
};

struct Graph {
  std::vector<Value> inputs;
  std::vector<Value> outputs;
  std::vector<Node> nodes;
  std::map<std::string, TensorMeta> tensors;
};

struct InputSpec {
  enum Kind { kUserInput, kParameter, kBuffer, kTensorConstant, kConstantInput };
  Kind kind = kUserInput;
  std::string name;        // the graph input's name (kConstantInput: the argument's name)
  std::string target;      // a parameter's, buffer's or constant's name in the module ("fc.weight")
  bool persistent = true;  // a buffer: saved with the weights, else with the constants
  Value value;             // a user input's graph input; a constant input's literal
};

// A module call's signature, exported with preserve_module_call_signature (the root's always):
// its inputs and outputs by graph value, and the pytree specs of how they nest (JSON strings).
struct CallSignature {
  std::vector<Value> inputs;
  std::vector<Value> outputs;
  std::string inSpec;
  std::string outSpec;
  std::vector<std::string> forwardArgNames;
};

struct ModuleCallEntry {
  std::string fqn;  // "" for the root; "layer1.0@1" for a module's second call
  std::optional<CallSignature> signature;
};

struct Range {
  int64_t min = 0;
  int64_t max = INT64_MAX;
};

struct ExportedProgram {
  Graph graph;
  std::vector<InputSpec> inputs;  // graph.inputs' specs, in order
  std::vector<Value> outputs;     // the user outputs, in order
  std::vector<ModuleCallEntry> calls;
  std::map<std::string, Range> ranges;  // a dynamic size's symbol -> its range
  int major = 0;
  int minor = 0;
  bool coreAten = false;  // verifiers say ATEN: run_decompositions' IR
  std::string torchVersion;
};

// Parses models/model.json. Throws MODEL_LOAD ("'path': ...") for anything malformed or of an
// untested schema version.
ExportedProgram parseExportedProgram(const std::string& json, const std::string& path);

// The schema's enums as c10's (throw MODEL_LOAD for an unknown one; `what` names the field).
int8_t scalarTypeOf(int64_t exported, const std::string& path, const std::string& what);

// A pytree spec (a CallSignature's inSpec/outSpec) as a tree: type (null leaf "", "builtins.tuple",
// "builtins.dict", "transformers...CausalLMOutputWithPast"), its keys for dicts and records, children.
struct TreeSpec {
  std::string type;
  std::vector<std::string> keys;
  std::vector<TreeSpec> children;
  bool leaf() const { return type.empty(); }
  size_t leaves() const;
};
TreeSpec parseTreeSpec(const std::string& json, const std::string& path);

}  // namespace torchscope::pt2
