// The compiler behind compilePlan (pt2_plan.h), internal to native/export/: it resolves each
// node's operator and builds its step; how each argument is converted by the operator's
// declared schema type is in pt2_arguments.cpp, the rest in pt2_plan.cpp.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "export/pt2_plan.h"

namespace torchscope::pt2 {

// What a slot holds, checked where it is read: a value read as another kind than it was
// defined as is refused when the file loads, not met while it runs.
enum class SlotKind : uint8_t { kTensor, kNumber, kAny };

const char* describe(SlotKind kind);

// A declared return (or argument) type's kind, looking through Optional.
SlotKind kindOf(const c10::TypePtr& declared);

bool isTensorList(const c10::TypePtr& declared);

class Compiler {
 public:
  Compiler(const Graph& graph, const CompileOptions& options);

  std::shared_ptr<const Plan> compile();

 private:
  [[noreturn]] void fail(const Node& node, const std::string& why) const;

  int define(const std::string& name, const std::string& what, SlotKind kind);

  int use(const std::string& name, const Node* node, SlotKind expected = SlotKind::kAny) const;

  ArgSource outputSource(const Value& value);

  // A literal argument whatever the schema (outputs, constant inputs).
  c10::IValue literal(const Value& value, const std::string& what) const;

  Step step(size_t index);

  ArgSource slotSource(const Node& node, const std::string& name, SlotKind kind) const;

  ArgSource symSource(const Node& node, const Value& value) const;

  // The argument `value` given for schema argument `argument`, converted by its declared type.
  ArgSource source(const Node& node, const c10::Argument& argument, const Value& value) const;

  ArgSource listSource(const Node& node, const c10::Argument& argument, const c10::TypePtr& element, const Value& value) const;

  void bindSymOutput(const Node& node, Step& step);

  // A node's output bound to a slot; `declared`: the kind its operator returns there (kAny for
  // a subgraph's outputs, whose kind the file gives).
  int defineOutput(const Node& node, const Value& out, SlotKind declared);

  void bindOutputs(const Node& node, const std::vector<c10::Argument>& returns, Step& step);

  // Subgraph operands: one tensor each (as_tensor) or a list of them (as_tensors).
  void operands(const Node& node, size_t from, Step& step, size_t until) const;

  std::shared_ptr<const Plan> subplan(const Node& node, const Value& value) const;

  // wrap_with_autocast's (device type, dtype, enabled, ...) arguments.
  void autocastConfig(const Node& node, Step& step) const;

  // The nodes of an inlined region (pt2_regions.h).
  Step synthetic(const Node& node, Step step);

  Step higherOrder(const Node& node, Step step);

  const Graph& graph_;
  const CompileOptions& options_;
  std::shared_ptr<Plan> plan_;
  std::vector<SlotKind> kinds_;  // by slot
};

}  // namespace torchscope::pt2
