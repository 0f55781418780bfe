// libtorch values as the methods hand them on: mapped and moved tensor by tensor, a value's
// first tensor, results as string-keyed records (bindings/values.h turns any of them into JS),
// and dtypes by the names JS uses.
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/Dict.h>
#include <ATen/core/ivalue.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace torchscope {

// The same structure, rebuilt (tuples, lists, dicts: new containers) with `fn` of every tensor.
c10::IValue mapTensors(const c10::IValue& value, const std::function<at::Tensor(const at::Tensor&)>& fn);

// The same structure with every tensor on `device` (used to move inputs in, outputs out).
c10::IValue toDevice(const c10::IValue& value, const c10::Device& device);

// The first tensor of a value, depth first through tuples, lists and dicts (in insertion
// order: a Hugging Face output's logits), as the output an objective or a hook reads; nullopt
// when it holds none.
std::optional<at::Tensor> findFirstTensor(const c10::IValue& value);
// The same, or INVALID_ARGUMENT naming `what`.
at::Tensor firstTensor(const c10::IValue& value, const std::string& what);

// A method's result: a string-keyed dict of any values, which reaches JS as an object.
class Record {
 public:
  Record();
  Record& set(const std::string& key, c10::IValue value);
  operator c10::IValue() const { return dict_; }

 private:
  c10::impl::GenericDict dict_;
};

// A list of tensors, and of numbers, as values.
c10::IValue tensorList(const std::vector<at::Tensor>& tensors);
c10::IValue numberList(const at::Tensor& values);  // a 1-D tensor's values as floats
c10::IValue numberList(const std::vector<double>& values);

// dtypes as JS sees them ('float32', 'int64', ...; core/names.h).
std::string dtypeName(at::ScalarType type);
at::ScalarType parseDtype(const std::string& name);  // DTYPE for an unknown name

}  // namespace torchscope
