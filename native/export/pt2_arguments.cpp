#include <ATen/ATen.h>

#include "core/untrusted_file.h"
#include "export/pt2_compiler.h"

namespace torchscope::pt2 {

namespace {

c10::Layout layoutOf(int64_t exported, const std::string& path) {
  switch (exported) {
    case 7: return c10::kStrided;
    default: refuseModelFile(path, "an argument has layout " + std::to_string(exported) + ": only strided tensors are run");
  }
}

c10::MemoryFormat memoryFormatOf(int64_t exported, const std::string& path) {
  switch (exported) {
    case 1: return c10::MemoryFormat::Contiguous;
    case 2: return c10::MemoryFormat::ChannelsLast;
    case 3: return c10::MemoryFormat::ChannelsLast3d;
    case 4: return c10::MemoryFormat::Preserve;
    default: refuseModelFile(path, "an argument has memory format " + std::to_string(exported) + ", not one of the export schema's");
  }
}

}  // namespace

const char* describe(SlotKind kind) { return kind == SlotKind::kTensor ? "a tensor" : kind == SlotKind::kNumber ? "a number" : "a value"; }

// A declared return (or argument) type's kind, looking through Optional.
SlotKind kindOf(const c10::TypePtr& declared) {
  c10::TypePtr type = declared;
  if (auto optional = type->cast<c10::OptionalType>()) type = optional->getElementType();
  switch (type->kind()) {
    case c10::TypeKind::TensorType: return SlotKind::kTensor;
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
    case c10::TypeKind::FloatType:
    case c10::TypeKind::SymFloatType:
    case c10::TypeKind::BoolType:
    case c10::TypeKind::SymBoolType:
    case c10::TypeKind::NumberType: return SlotKind::kNumber;
    default: return SlotKind::kAny;
  }
}

bool isTensorList(const c10::TypePtr& declared) {
  auto list = declared->cast<c10::ListType>();
  return list && kindOf(list->getElementType()) == SlotKind::kTensor;
}

ArgSource Compiler::slotSource(const Node& node, const std::string& name, SlotKind kind) const {
  return ArgSource{ArgSource::kSlot, {}, use(name, &node, kind)};
}

ArgSource Compiler::symSource(const Node& node, const Value& value) const {
  if ((value.kind == Value::kSymInt || value.kind == Value::kSymFloat || value.kind == Value::kSymBool) && value.syms[0].named()) {
    return slotSource(node, value.syms[0].name, SlotKind::kNumber);
  }
  if (value.kind == Value::kSymFloat || value.kind == Value::kFloat) {
    return {ArgSource::kLiteral, value.kind == Value::kFloat ? value.floats[0] : value.syms[0].value};
  }
  return {ArgSource::kLiteral, literal(value, "an operand of node '" + node.name + "'")};
}

ArgSource Compiler::source(const Node& node, const c10::Argument& argument, const Value& value) const {
  auto bad = [&]() {
    fail(node, "argument '" + argument.name() + "' of type " + argument.type()->str() + " is given an incompatible value");
  };
  c10::TypePtr type = argument.real_type();
  if (auto optional = type->cast<c10::OptionalType>()) {
    if (value.kind == Value::kNone) return {ArgSource::kLiteral, c10::IValue()};
    type = optional->getElementType();
  }
  if (value.kind == Value::kNone) bad();
  // A SymInt / SymFloat / SymBool the graph computes: read where it was put.
  const bool named =
      (value.kind == Value::kSymInt || value.kind == Value::kSymFloat || value.kind == Value::kSymBool) && value.syms[0].named();
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      if (value.kind == Value::kTensor) return slotSource(node, value.names[0], SlotKind::kTensor);
      // A Python number where a tensor goes (add.Tensor(x, 1)): wrapped as PyTorch wraps it,
      // so that type promotion treats it as a scalar.
      if (named) return {ArgSource::kWrappedScalar, {}, use(value.syms[0].name, &node, SlotKind::kNumber)};
      if (value.kind == Value::kInt || value.kind == Value::kFloat || value.kind == Value::kBool) {
        at::Tensor wrapped = value.kind == Value::kFloat  ? at::scalar_tensor(value.floats[0], at::kDouble)
                             : value.kind == Value::kBool ? at::scalar_tensor(static_cast<bool>(value.ints[0]), at::kBool)
                                                          : at::scalar_tensor(value.ints[0], at::kLong);
        wrapped.unsafeGetTensorImpl()->set_wrapped_number(true);
        return {ArgSource::kLiteral, wrapped};
      }
      bad();
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      if (named) return slotSource(node, value.syms[0].name, SlotKind::kNumber);
      if (value.kind == Value::kInt) return {ArgSource::kLiteral, value.ints[0]};
      if (value.kind == Value::kSymInt) return {ArgSource::kLiteral, static_cast<int64_t>(value.syms[0].value)};
      bad();
    case c10::TypeKind::FloatType:
    case c10::TypeKind::SymFloatType:
      if (named) return slotSource(node, value.syms[0].name, SlotKind::kNumber);
      if (value.kind == Value::kFloat) return {ArgSource::kLiteral, value.floats[0]};
      if (value.kind == Value::kInt) return {ArgSource::kLiteral, static_cast<double>(value.ints[0])};
      if (value.kind == Value::kSymFloat) return {ArgSource::kLiteral, value.syms[0].value};
      bad();
    case c10::TypeKind::BoolType:
    case c10::TypeKind::SymBoolType:
      if (named) return slotSource(node, value.syms[0].name, SlotKind::kNumber);
      if (value.kind == Value::kBool) return {ArgSource::kLiteral, static_cast<bool>(value.ints[0])};
      if (value.kind == Value::kSymBool) return {ArgSource::kLiteral, value.syms[0].value != 0};
      bad();
    case c10::TypeKind::NumberType:  // Scalar
      if (named) return slotSource(node, value.syms[0].name, SlotKind::kNumber);
      if (value.kind == Value::kInt || value.kind == Value::kSymInt) {
        return {ArgSource::kLiteral, value.kind == Value::kInt ? value.ints[0] : static_cast<int64_t>(value.syms[0].value)};
      }
      if (value.kind == Value::kFloat) return {ArgSource::kLiteral, value.floats[0]};
      if (value.kind == Value::kBool) return {ArgSource::kLiteral, static_cast<bool>(value.ints[0])};
      bad();
    case c10::TypeKind::StringType:
      if (value.kind == Value::kString) return {ArgSource::kLiteral, value.strings[0]};
      bad();
    case c10::TypeKind::ScalarTypeType:
      if (value.kind == Value::kScalarType) {
        return {ArgSource::kLiteral, static_cast<c10::ScalarType>(scalarTypeOf(value.ints[0], options_.path, "node '" + node.name + "'"))};
      }
      bad();
    case c10::TypeKind::LayoutType:
      if (value.kind == Value::kLayout) return {ArgSource::kLiteral, layoutOf(value.ints[0], options_.path)};
      bad();
    case c10::TypeKind::MemoryFormatType:
      if (value.kind == Value::kMemoryFormat) return {ArgSource::kLiteral, memoryFormatOf(value.ints[0], options_.path)};
      bad();
    case c10::TypeKind::DeviceObjType:
      // A device argument names where a new tensor goes: the model's device, where its weights
      // are, not the one it was exported on.
      if (value.kind == Value::kDevice) return {ArgSource::kLiteral, options_.device};
      bad();
    case c10::TypeKind::ListType: return listSource(node, argument, type->expectRef<c10::ListType>().getElementType(), value);
    default: fail(node, "argument '" + argument.name() + "' has type " + type->str() + ", which torchscope does not pass");
  }
}

ArgSource Compiler::listSource(const Node& node, const c10::Argument& argument, const c10::TypePtr& element, const Value& value) const {
  auto bad = [&]() {
    fail(node, "argument '" + argument.name() + "' of type " + argument.type()->str() + " is given an incompatible value");
  };
  ArgSource source;
  c10::TypePtr inner = element;
  const bool optionalElements = inner->cast<c10::OptionalType>() != nullptr;
  if (optionalElements) inner = inner->expectRef<c10::OptionalType>().getElementType();
  switch (inner->kind()) {
    case c10::TypeKind::TensorType:
      if (value.kind != Value::kTensors && value.kind != Value::kOptionalTensors) bad();
      source.kind = optionalElements ? ArgSource::kOptionalTensors : ArgSource::kTensors;
      for (const std::string& name : value.names) {
        if (name.empty() && !optionalElements) bad();
        source.slots.push_back(name.empty() ? -1 : use(name, &node, SlotKind::kTensor));
      }
      return source;
    case c10::TypeKind::IntType:
    case c10::TypeKind::SymIntType:
      source.kind = ArgSource::kInts;
      if (value.kind == Value::kInts) {
        source.ints = value.ints;
        source.slots.assign(value.ints.size(), -1);
      } else if (value.kind == Value::kSymInts) {
        for (const SymValue& sym : value.syms) {
          source.slots.push_back(sym.named() ? use(sym.name, &node, SlotKind::kNumber) : -1);
          source.ints.push_back(static_cast<int64_t>(sym.value));
        }
      } else {
        bad();
      }
      return source;
    case c10::TypeKind::FloatType:
      if (value.kind != Value::kFloats) bad();
      return {ArgSource::kLiteral, c10::List<double>(value.floats)};
    case c10::TypeKind::BoolType: {
      if (value.kind != Value::kBools) bad();
      c10::List<bool> bools;
      for (int64_t b : value.ints) bools.push_back(b != 0);
      return {ArgSource::kLiteral, bools};
    }
    case c10::TypeKind::StringType:
      if (value.kind != Value::kStrings) bad();
      return {ArgSource::kLiteral, c10::List<std::string>(value.strings)};
    default: fail(node, "argument '" + argument.name() + "' has type " + argument.type()->str() + ", which torchscope does not pass");
  }
}

}  // namespace torchscope::pt2
