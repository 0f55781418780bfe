// Conversions between JS values and TorchScript IValues, the one path results take to JS. Run on
// the JS thread; tensors cross by reference (no copies).
#pragma once

#include <ATen/core/function_schema.h>
#include <ATen/core/ivalue.h>
#include <napi.h>

#include <string>
#include <vector>

namespace torchscope {

// forward's arguments from a JS array, each converted to the type forward declares for it:
// Tensor handles, numbers (int or float as the type says; bigint for int), booleans, strings,
// null/undefined for None, arrays for lists and tuples, plain objects for dicts. Containers get
// unshaped element types, as TorchScript's own values have: the schema check refuses a
// Dict[str, Tensor] whose values carry their shapes. With Any (or a type JS cannot spell), and
// for inputs past the declared ones (left to the schema check), the type is inferred: integral
// numbers int, others float, arrays of tensors List[Tensor], other arrays tuples, objects
// Dict[str, T]. Errors name the value: "input 0 ('batch')['image']". Throws INVALID_ARGUMENT.
std::vector<c10::IValue> toForwardInputs(Napi::Value inputs, const c10::FunctionSchema& forward);

// Tensors become TensorHandles; tuples and lists become arrays, dicts objects, None null.
Napi::Value toJs(Napi::Env env, const c10::IValue& value);

}  // namespace torchscope
