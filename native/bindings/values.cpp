#include "bindings/values.h"

#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <ATen/core/jit_type.h>

#include <algorithm>
#include <cmath>

#include "bindings/js_errors.h"
#include "bindings/tensor_handle.h"
#include "core/errors.h"

namespace torchscope {

namespace {

// Deeper than any real input; a cyclic array reaches it instead of overflowing the stack.
constexpr int kMaxDepth = 64;

[[noreturn]] void badInput(Napi::Env env, const std::string& where, const std::string& message) {
  throwJs(env, code::kInvalidArgument, where + ": " + message);
}

std::string describe(Napi::Env env, Napi::Value value) {
  if (value.IsNull()) return "null";
  if (value.IsUndefined()) return "undefined";
  if (value.IsBoolean()) return "a boolean";
  if (value.IsNumber()) return "the number " + value.ToString().Utf8Value();
  if (value.IsBigInt()) return "a bigint";
  if (value.IsString()) return "a string";
  if (TensorHandle::isHandle(env, value)) return "a Tensor";
  if (value.IsArray()) return "an array of " + std::to_string(value.As<Napi::Array>().Length());
  if (value.IsTypedArray()) return "a typed array";
  return "an object";
}

bool isSafeInteger(double number) {
  return std::isfinite(number) && std::trunc(number) == number && std::fabs(number) < 9007199254740992.0;
}

class Converter {
 public:
  explicit Converter(Napi::Env env) : env_(env) {}

  c10::IValue convert(Napi::Value value, const c10::TypePtr& type, const std::string& where, int depth) {
    if (depth > kMaxDepth) badInput(env_, where, "nested deeper than " + std::to_string(kMaxDepth) + " levels (a cyclic array?)");
    if (value.IsTypedArray() || value.IsArrayBuffer()) {
      badInput(env_, where, "a typed array is not a model input: make it a Tensor with torch.tensor(data, shape)");
    }
    auto mismatch = [&]() -> c10::IValue {
      badInput(env_, where, "expected " + type->annotation_str() + ", got " + describe(env_, value));
    };
    switch (type->kind()) {
      case c10::TypeKind::TensorType:
        if (!TensorHandle::isHandle(env_, value)) return mismatch();
        return TensorHandle::unwrap(value);
      case c10::TypeKind::OptionalType:
        if (value.IsNull() || value.IsUndefined()) return c10::IValue();
        return convert(value, type->expectRef<c10::OptionalType>().getElementType(), where, depth);
      case c10::TypeKind::IntType:
        if (value.IsBigInt()) return bigint(value, where);
        if (!value.IsNumber() || !isSafeInteger(value.As<Napi::Number>().DoubleValue())) return mismatch();
        return static_cast<int64_t>(value.As<Napi::Number>().DoubleValue());
      case c10::TypeKind::FloatType:
        if (!value.IsNumber()) return mismatch();
        return value.As<Napi::Number>().DoubleValue();
      case c10::TypeKind::BoolType:
        if (!value.IsBoolean()) return mismatch();
        return value.As<Napi::Boolean>().Value();
      case c10::TypeKind::StringType:
        if (!value.IsString()) return mismatch();
        return value.As<Napi::String>().Utf8Value();
      case c10::TypeKind::ListType: {
        if (!value.IsArray()) return mismatch();
        const c10::TypePtr element = type->expectRef<c10::ListType>().getElementType();
        auto array = value.As<Napi::Array>();
        c10::impl::GenericList list(element);
        list.reserve(array.Length());
        for (uint32_t i = 0; i < array.Length(); ++i) {
          list.push_back(convert(array.Get(i), element, where + "[" + std::to_string(i) + "]", depth + 1));
        }
        return list;
      }
      case c10::TypeKind::TupleType: return tuple(value, type->expect<c10::TupleType>(), where, depth);
      case c10::TypeKind::DictType: return dict(value, type->expectRef<c10::DictType>(), where, depth);
      default: return infer(value, where, depth);
    }
  }

 private:
  c10::IValue bigint(Napi::Value value, const std::string& where) {
    bool lossless = false;
    const int64_t number = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) badInput(env_, where, "bigint out of int64 range");
    return number;
  }

  c10::IValue tuple(Napi::Value value, const c10::TupleTypePtr& type, const std::string& where, int depth) {
    const auto& elements = type->elements();
    const auto names = type->names();  // field names of a NamedTuple
    std::vector<c10::IValue> items;
    if (value.IsArray()) {
      auto array = value.As<Napi::Array>();
      if (array.Length() != elements.size()) {
        badInput(env_, where,
                 "expected " + type->annotation_str() + " (" + std::to_string(elements.size()) + " items), got an array of " +
                     std::to_string(array.Length()));
      }
      for (uint32_t i = 0; i < array.Length(); ++i) {
        items.push_back(convert(array.Get(i), elements[i], where + "[" + std::to_string(i) + "]", depth + 1));
      }
    } else if (value.IsObject() && names && !TensorHandle::isHandle(env_, value)) {
      // A NamedTuple from an object with its field names.
      auto object = value.As<Napi::Object>();
      for (size_t i = 0; i < elements.size(); ++i) {
        const std::string field((*names)[i]);
        items.push_back(convert(object.Get(field), elements[i], where + "." + field, depth + 1));
      }
    } else {
      badInput(env_, where, "expected " + type->annotation_str() + ", got " + describe(env_, value));
    }
    if (type->schema()) return c10::ivalue::Tuple::createNamed(std::move(items), type);
    return c10::ivalue::Tuple::create(std::move(items));
  }

  c10::IValue dict(Napi::Value value, const c10::DictType& type, const std::string& where, int depth) {
    if (!value.IsObject() || value.IsArray() || TensorHandle::isHandle(env_, value)) {
      badInput(env_, where, "expected " + type.annotation_str() + " (a plain object), got " + describe(env_, value));
    }
    const c10::TypePtr keyType = type.getKeyType();
    const bool intKeys = keyType->kind() == c10::TypeKind::IntType;
    if (!intKeys && keyType->kind() != c10::TypeKind::StringType) {
      badInput(env_, where, "dicts keyed by " + keyType->annotation_str() + " cannot be passed from JS");
    }
    c10::impl::GenericDict out(keyType, type.getValueType());
    auto object = value.As<Napi::Object>();
    auto keys = object.GetPropertyNames();
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      const std::string name = keys.Get(i).ToString().Utf8Value();
      c10::IValue item = convert(object.Get(name), type.getValueType(), where + "['" + name + "']", depth + 1);
      if (intKeys) {
        char* end = nullptr;
        const long long key = std::strtoll(name.c_str(), &end, 10);
        if (name.empty() || *end != '\0') badInput(env_, where, "key '" + name + "' is not an integer");
        out.insert(static_cast<int64_t>(key), std::move(item));
      } else {
        out.insert(name, std::move(item));
      }
    }
    return out;
  }

  c10::IValue infer(Napi::Value value, const std::string& where, int depth) {
    if (value.IsNull() || value.IsUndefined()) return c10::IValue();
    if (value.IsBoolean()) return value.As<Napi::Boolean>().Value();
    if (value.IsNumber()) {
      const double number = value.As<Napi::Number>().DoubleValue();
      if (isSafeInteger(number)) return static_cast<int64_t>(number);
      return number;
    }
    if (value.IsBigInt()) return bigint(value, where);
    if (value.IsString()) return value.As<Napi::String>().Utf8Value();
    if (TensorHandle::isHandle(env_, value)) return TensorHandle::unwrap(value);
    if (value.IsArray()) {
      auto array = value.As<Napi::Array>();
      std::vector<c10::IValue> items;
      bool allTensors = array.Length() > 0;
      for (uint32_t i = 0; i < array.Length(); ++i) {
        items.push_back(convert(array.Get(i), c10::AnyType::get(), where + "[" + std::to_string(i) + "]", depth + 1));
        allTensors = allTensors && items.back().isTensor();
      }
      if (allTensors) {
        c10::List<at::Tensor> list;
        for (auto& item : items) list.push_back(item.toTensor());
        return list;
      }
      return c10::ivalue::Tuple::create(std::move(items));
    }
    if (value.IsObject()) {
      auto object = value.As<Napi::Object>();
      auto keys = object.GetPropertyNames();
      if (keys.Length() == 0) badInput(env_, where, "cannot pass an empty object to a model");
      std::vector<std::pair<std::string, c10::IValue>> items;
      c10::TypePtr valueType;
      for (uint32_t i = 0; i < keys.Length(); ++i) {
        const std::string name = keys.Get(i).ToString().Utf8Value();
        c10::IValue item = convert(object.Get(name), c10::AnyType::get(), where + "['" + name + "']", depth + 1);
        const c10::TypePtr itemType = c10::unshapedType(item.type());
        valueType = valueType ? c10::unifyTypes(valueType, itemType).value_or(c10::AnyType::get()) : itemType;
        items.emplace_back(name, std::move(item));
      }
      c10::impl::GenericDict dict(c10::StringType::get(), valueType);
      for (auto& [name, item] : items) dict.insert(name, std::move(item));
      return dict;
    }
    badInput(env_, where, "cannot pass " + describe(env_, value) + " to a model");
  }

  Napi::Env env_;
};

}  // namespace

namespace {

// Keyword arguments, as Python's model(**kwargs): one plain object whose keys are forward's
// argument names, where forward's first argument is not itself a dict. Returns the arguments
// in forward's order (defaults where left out), or an empty array when `inputs` is not that.
Napi::Array keywordArguments(Napi::Env env, Napi::Array inputs, const std::vector<c10::Argument>& arguments) {
  if (inputs.Length() != 1 || arguments.size() < 2 || arguments[1].type()->cast<c10::DictType>()) return Napi::Array::New(env);
  Napi::Value given = inputs.Get(0u);
  if (!given.IsObject() || given.IsArray() || given.IsTypedArray() || TensorHandle::isHandle(env, given)) return Napi::Array::New(env);
  Napi::Object keywords = given.As<Napi::Object>();
  Napi::Array names = keywords.GetPropertyNames();
  std::string valid;
  for (size_t i = 1; i < arguments.size(); ++i) valid += (i > 1 ? ", " : "") + arguments[i].name();
  for (uint32_t i = 0; i < names.Length(); ++i) {
    const std::string name = names.Get(i).ToString().Utf8Value();
    const bool known = std::any_of(arguments.begin() + 1, arguments.end(), [&](const c10::Argument& a) { return a.name() == name; });
    if (!known) throwJs(env, code::kInvalidArgument, "forward has no argument '" + name + "' (it takes " + valid + ")");
  }
  Napi::Array ordered = Napi::Array::New(env);
  for (size_t i = 1; i < arguments.size(); ++i) {
    const std::string& name = arguments[i].name();
    if (keywords.Has(name)) {
      ordered.Set(ordered.Length(), keywords.Get(name));
      continue;
    }
    // Left out: so must be every later one (their defaults, where forward has them, fill in).
    for (size_t j = i + 1; j < arguments.size(); ++j) {
      if (keywords.Has(arguments[j].name())) {
        throwJs(env, code::kInvalidArgument, "keyword inputs give '" + arguments[j].name() + "' but not '" + name + "' before it");
      }
    }
    break;
  }
  return ordered;
}

}  // namespace

std::vector<c10::IValue> toForwardInputs(Napi::Value inputs, const c10::FunctionSchema& forward) {
  Napi::Env env = inputs.Env();
  if (!inputs.IsArray()) throwJs(env, code::kInvalidArgument, "inputs must be an array");
  auto array = inputs.As<Napi::Array>();
  const auto& arguments = forward.arguments();  // arguments[0] is self
  if (Napi::Array ordered = keywordArguments(env, array, arguments); ordered.Length() > 0) array = ordered;
  Converter converter(env);
  std::vector<c10::IValue> out;
  for (uint32_t i = 0; i < array.Length(); ++i) {
    const bool declared = i + 1 < arguments.size();
    const std::string where = "input " + std::to_string(i) + (declared ? " ('" + arguments[i + 1].name() + "')" : "");
    out.push_back(converter.convert(array.Get(i), declared ? arguments[i + 1].type() : c10::AnyType::get(), where, 0));
  }
  return out;
}

Napi::Value toJs(Napi::Env env, const c10::IValue& value) {
  if (value.isTensor()) return TensorHandle::wrap(env, value.toTensor());
  if (value.isNone()) return env.Null();
  if (value.isBool()) return Napi::Boolean::New(env, value.toBool());
  if (value.isInt()) return Napi::Number::New(env, static_cast<double>(value.toInt()));
  if (value.isDouble()) return Napi::Number::New(env, value.toDouble());
  if (value.isString()) return Napi::String::New(env, value.toStringRef());
  if (value.isTuple() || value.isList()) {
    const auto items = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
    Napi::Array array = Napi::Array::New(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) array.Set(static_cast<uint32_t>(i), toJs(env, items[i]));
    return array;
  }
  if (value.isGenericDict()) {
    Napi::Object object = Napi::Object::New(env);
    for (const auto& entry : value.toGenericDict()) {
      const auto& key = entry.key();
      const std::string name = key.isString() ? key.toStringRef() : key.isInt() ? std::to_string(key.toInt()) : key.tagKind();
      object.Set(name, toJs(env, entry.value()));
    }
    return object;
  }
  throwJs(env, code::kInternal, "the model returned a value of type " + value.type()->str() + " that torchscope cannot convert");
}

}  // namespace torchscope
