#include "core/ivalues.h"

#include "core/errors.h"
#include "core/names.h"

namespace torchscope {

c10::IValue mapTensors(const c10::IValue& value, const std::function<at::Tensor(const at::Tensor&)>& fn) {
  if (value.isTensor()) return fn(value.toTensor());
  if (value.isTuple()) {
    const auto& tuple = value.toTupleRef();
    std::vector<c10::IValue> items;
    items.reserve(tuple.elements().size());
    for (const auto& item : tuple.elements()) items.push_back(mapTensors(item, fn));
    // Named tuples keep their type (field names).
    return tuple.type()->schema() ? c10::ivalue::Tuple::createNamed(std::move(items), tuple.type())
                                  : c10::ivalue::Tuple::create(std::move(items));
  }
  if (value.isList()) {
    const auto source = value.toList();
    c10::impl::GenericList list(source.elementType());
    list.reserve(source.size());
    for (const auto& item : source) list.push_back(mapTensors(item, fn));
    return list;
  }
  if (value.isGenericDict()) {
    const auto source = value.toGenericDict();
    c10::impl::GenericDict dict(source.keyType(), source.valueType());
    for (const auto& entry : source) dict.insert(entry.key(), mapTensors(entry.value(), fn));
    return dict;
  }
  return value;
}

c10::IValue toDevice(const c10::IValue& value, const c10::Device& device) {
  return mapTensors(value, [&](const at::Tensor& tensor) { return tensor.to(device); });
}

std::optional<at::Tensor> findFirstTensor(const c10::IValue& value) {
  if (value.isTensor()) return value.toTensor();
  if (value.isTuple() || value.isList()) {
    const auto items = value.isTuple() ? value.toTupleRef().elements().vec() : value.toListRef().vec();
    for (const auto& item : items) {
      if (auto found = findFirstTensor(item)) return found;
    }
  }
  if (value.isGenericDict()) {
    // In insertion order: a Hugging Face output's first field (logits).
    for (const auto& entry : value.toGenericDict()) {
      if (auto found = findFirstTensor(entry.value())) return found;
    }
  }
  return std::nullopt;
}

at::Tensor firstTensor(const c10::IValue& value, const std::string& what) {
  auto found = findFirstTensor(value);
  TS_CHECK(found.has_value(), code::kInvalidArgument, what, " is a ", value.tagKind(), " holding no tensor: an objective reads a tensor");
  return *found;
}

Record::Record() : dict_(c10::StringType::get(), c10::AnyType::get()) {}

Record& Record::set(const std::string& key, c10::IValue value) {
  dict_.insert_or_assign(key, std::move(value));
  return *this;
}

c10::IValue tensorList(const std::vector<at::Tensor>& tensors) {
  c10::List<at::Tensor> list;
  for (const at::Tensor& tensor : tensors) list.push_back(tensor);
  return list;
}

c10::IValue numberList(const at::Tensor& values) {
  const at::Tensor doubles = values.detach().to(c10::kCPU, at::kDouble).contiguous();
  return numberList(std::vector<double>(doubles.data_ptr<double>(), doubles.data_ptr<double>() + doubles.numel()));
}

c10::IValue numberList(const std::vector<double>& values) { return c10::List<double>(values); }

std::string dtypeName(at::ScalarType type) {
  for (const auto& entry : kDtypes) {
    if (entry.value == type) return entry.name;
  }
  return c10::toString(type);
}

at::ScalarType parseDtype(const std::string& name) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return entry.value;
  }
  TS_FAIL(code::kDtype, "unknown dtype '", name, "'");
}

}  // namespace torchscope
