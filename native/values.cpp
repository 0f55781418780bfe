#include "values.h"

#include <ATen/core/Dict.h>
#include <ATen/core/List.h>

#include <cmath>

#include "errors.h"
#include "tensor.h"

namespace torchscope {

c10::IValue toIValue(Napi::Value value) {
  Napi::Env env = value.Env();
  if (value.IsNull() || value.IsUndefined()) return c10::IValue();
  if (value.IsBoolean()) return c10::IValue(value.As<Napi::Boolean>().Value());
  if (value.IsNumber()) {
    const double number = value.As<Napi::Number>().DoubleValue();
    if (std::isfinite(number) && std::trunc(number) == number && std::fabs(number) < 9007199254740992.0) {
      return c10::IValue(static_cast<int64_t>(number));
    }
    return c10::IValue(number);
  }
  if (value.IsBigInt()) {
    bool lossless = false;
    const int64_t number = value.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throwJs(env, code::kInvalidArgument, "bigint out of int64 range");
    return c10::IValue(number);
  }
  if (value.IsString()) return c10::IValue(value.As<Napi::String>().Utf8Value());
  if (TensorHandle::isHandle(env, value)) return c10::IValue(TensorHandle::unwrap(value));
  if (value.IsArray()) {
    auto array = value.As<Napi::Array>();
    std::vector<c10::IValue> items;
    bool allTensors = array.Length() > 0;
    for (uint32_t i = 0; i < array.Length(); ++i) {
      items.push_back(toIValue(array.Get(i)));
      allTensors = allTensors && items.back().isTensor();
    }
    if (allTensors) {
      c10::List<at::Tensor> list;
      for (auto& item : items) list.push_back(item.toTensor());
      return c10::IValue(list);
    }
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.IsObject()) {
    auto object = value.As<Napi::Object>();
    auto keys = object.GetPropertyNames();
    if (keys.Length() == 0) throwJs(env, code::kInvalidArgument, "cannot pass an empty object to a model");
    c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
    c10::TypePtr valueType;
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      auto key = keys.Get(i).As<Napi::String>();
      c10::IValue item = toIValue(object.Get(key));
      valueType = valueType ? c10::unifyTypes(valueType, item.type()).value_or(c10::AnyType::get()) : item.type();
      dict.insert(key.Utf8Value(), std::move(item));
    }
    dict.unsafeSetValueType(valueType);
    return c10::IValue(dict);
  }
  throwJs(env, code::kInvalidArgument, "cannot pass this JS value to a model");
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
  throwJs(env, code::kInternal, "the model returned a value of type " + value.type()->str() +
                                    " that torchscope cannot convert");
}

c10::IValue toDevice(const c10::IValue& value, const c10::Device& device) {
  if (value.isTensor()) return value.toTensor().to(device);
  if (value.isTuple()) {
    std::vector<c10::IValue> items;
    for (const auto& item : value.toTupleRef().elements()) items.push_back(toDevice(item, device));
    return c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isTensorList()) {
    c10::List<at::Tensor> list;
    for (const at::Tensor& item : value.toTensorVector()) list.push_back(item.to(device));
    return list;
  }
  if (value.isList()) {
    auto source = value.toList();
    c10::impl::GenericList list(source.elementType());
    for (const auto& item : source) list.push_back(toDevice(item, device));
    return list;
  }
  if (value.isGenericDict()) {
    auto source = value.toGenericDict();
    c10::impl::GenericDict dict(source.keyType(), source.valueType());
    for (const auto& entry : source) dict.insert(entry.key(), toDevice(entry.value(), device));
    return dict;
  }
  return value;
}

}  // namespace torchscope
