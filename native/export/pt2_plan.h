// An exported graph compiled once into steps the dispatcher runs (pt2_run.h): each node's operator resolved
// (unknown operators and operators with effects refused before anything runs), its arguments
// prebuilt by the operator's declared schema (literals converted, defaults filled, values read
// from numbered slots), and higher-order ops (torch.cond, while_loop, no_grad and autocast
// regions) holding plans of their subgraphs. Autograd records through the dispatcher, so the
// same steps give gradients.
#pragma once

#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "export/pt2_schema.h"

namespace torchscope::pt2 {

using Env = std::vector<c10::IValue>;

// Where one argument of a step comes from.
struct ArgSource {
  enum Kind : uint8_t {
    kLiteral,          // literal
    kSlot,             // env[slot] as it is
    kWrappedScalar,    // env[slot], a Python number in a Tensor argument: a wrapped-number tensor
    kTensors,          // c10::List<Tensor> of slots
    kOptionalTensors,  // c10::List<optional<Tensor>> of slots (-1: None)
    kInts,             // c10::List<int64_t>: slots[i] >= 0 read there, else ints[i]
  };
  Kind kind = kLiteral;
  c10::IValue literal;
  int slot = -1;
  std::vector<int> slots;
  std::vector<int64_t> ints;
};

struct Plan;

struct Step {
  enum Kind : uint8_t {
    kOperator,
    kSymSize,
    kSymNumel,
    kPythonOperator,
    kCond,
    kWhileLoop,
    kSetGradEnabled,
    kAutocast,
    // An inlined region (pt2_regions.h): its start saves the mode it changes in its output slot,
    // its end restores it from there; an alias gives an inner value the region node's name.
    kEnterGradMode,
    kEnterAutocast,
    kExitRegion,
    kAlias,
  };
  Kind kind = kOperator;
  size_t node = 0;  // its node in the graph
  std::optional<c10::OperatorHandle> op;
  std::string pythonOperator;  // kPythonOperator: "mul", "floordiv"...
  std::vector<ArgSource> args;
  // Per return: the slot it binds (-1: unused), or, for a list return bound element by element
  // (as_tensors), one slot per element.
  std::vector<std::vector<int>> outputs;
  std::vector<bool> listOutputs;
  std::vector<std::shared_ptr<const Plan>> subplans;
  bool flag = false;                              // kSetGradEnabled: grad enabled; kAutocast: enabled
  c10::ScalarType autocastType = c10::kBFloat16;  // kAutocast
  c10::DeviceType autocastDevice = c10::kCPU;     // kAutocast
  size_t carried = 0;                             // kWhileLoop: args before it are carried, after it additional
};

struct Plan {
  std::vector<Step> steps;
  int slots = 0;
  std::map<std::string, int> slotOf;  // by value name
  std::vector<int> inputs;            // slot of each graph input (-1: a literal)
  std::vector<c10::IValue> inputLiterals;
  std::vector<ArgSource> outputs;    // the graph's outputs
  std::vector<uint8_t> outputKinds;  // what each holds (the compiler's slot kinds)
  std::vector<bool> tensors;         // per slot: it holds a tensor (else a number or a saved mode)
};

struct CompileOptions {
  std::string path;      // for messages
  bool trusted = false;  // operators with effects allowed
  // The model's device: where the program's new tensors go, whatever device it was exported on
  // (its weights are loaded there).
  c10::Device device{c10::kCPU};
};

// Compiles `graph`. Throws MODEL_LOAD for an operator that is unknown, refused or fed
// arguments its schema does not take.
std::shared_ptr<const Plan> compilePlan(const Graph& graph, const CompileOptions& options);

// Whether an operator ("aten::_softmax") is a softmax: what '<module>:pattern' names.
bool isSoftmax(const std::string& op);

// The display name of a target: "aten::linear" for "torch.ops.aten.linear.default".
std::string operatorName(const std::string& target);

}  // namespace torchscope::pt2
