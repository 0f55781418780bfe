// Conversions between JS values and TorchScript IValues. Run on the JS thread; tensors
// cross by reference (no copies).
#pragma once

#include <ATen/core/ivalue.h>
#include <napi.h>

namespace torchscope {

// Tensor handles -> Tensor, integral numbers -> int, other numbers -> float, booleans,
// strings, null/undefined -> None, arrays of tensors -> List[Tensor], other arrays -> tuple,
// bigint -> int, plain objects -> Dict[str, T].
c10::IValue toIValue(Napi::Value value);

// Tensors become TensorHandles; tuples and lists become arrays, dicts objects, None null.
Napi::Value toJs(Napi::Env env, const c10::IValue& value);

// The same structure with every tensor on `device` (used to move inputs in, outputs out).
c10::IValue toDevice(const c10::IValue& value, const c10::Device& device);

}  // namespace torchscope
