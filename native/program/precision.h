// Reduced precision (load({ precision: 'bf16' | 'fp16' })): a model's programs run under
// autocast, what PyTorch's torch.autocast(device, dtype) does around a forward. The graph is
// unchanged; libtorch's autocast dispatch key casts the inputs of matmul-like ops (conv,
// linear, matmul, bmm, baddbmm...) to the reduced type and keeps numerically sensitive ones
// (softmax, layer_norm, losses...) in float32, so it works on any TorchScript model. Weights
// are cast on use, as in Python; the cast cache lives for one run, so nothing cast in one call
// (an input optimised in place by maximize) is reused by the next.
#pragma once

#include <ATen/core/ivalue.h>
#include <c10/core/DeviceType.h>

#include <optional>
#include <string>

#include "core/names.h"

namespace torchscope {

// A call's own precision and upcast (the `precision` / `upcast` options of run, activations,
// gradients, attribute, maximize, the logit lens and sweeps); what it leaves unset is the
// model's, from load. Each precision is its own program, built once and cached.
struct NumericsOverride {
  std::optional<Precision> precision;
  std::optional<bool> upcast;
};

// The tensor type autocast computes in at a reduced precision (kBFloat16 or kHalf).
at::ScalarType reducedType(Precision precision);

// Autocast to `precision` on `device` for the scope's lifetime, restoring the thread's previous
// state after (and dropping the cast cache when the outermost scope ends). kFloat32: nothing.
class PrecisionScope {
 public:
  PrecisionScope(Precision precision, c10::DeviceType device);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType device_ = c10::kCPU;
  bool wasEnabled_ = false;
  at::ScalarType previousType_ = at::kFloat;
};

// `value` with every bfloat16/float16 tensor in it (nested in tuples, lists, dicts) as float32.
c10::IValue upcastReduced(const c10::IValue& value);
at::Tensor upcastReduced(const at::Tensor& tensor);

}  // namespace torchscope
