#include "program/precision.h"

#include <ATen/autocast_mode.h>

#include "core/errors.h"
#include "core/ivalues.h"

namespace torchscope {

at::ScalarType reducedType(Precision precision) { return precision == Precision::kBFloat16 ? at::kBFloat16 : at::kHalf; }

PrecisionScope::PrecisionScope(Precision precision, c10::DeviceType device) : device_(device) {
  if (precision == Precision::kFloat32) return;
  active_ = true;
  wasEnabled_ = at::autocast::is_autocast_enabled(device_);
  previousType_ = at::autocast::get_autocast_dtype(device_);
  at::autocast::set_autocast_enabled(device_, true);
  at::autocast::set_autocast_dtype(device_, reducedType(precision));
  at::autocast::increment_nesting();
}

PrecisionScope::~PrecisionScope() {
  if (!active_) return;
  // As torch.autocast's __exit__: the cast cache ends with the outermost region.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  at::autocast::set_autocast_enabled(device_, wasEnabled_);
  at::autocast::set_autocast_dtype(device_, previousType_);
}

at::Tensor upcastReduced(const at::Tensor& tensor) {
  const auto type = tensor.scalar_type();
  return type == at::kBFloat16 || type == at::kHalf ? tensor.to(at::kFloat) : tensor;
}

c10::IValue upcastReduced(const c10::IValue& value) {
  return mapTensors(value, [](const at::Tensor& t) { return upcastReduced(t); });
}

}  // namespace torchscope
