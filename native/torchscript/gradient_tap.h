// The gradient tap operator: what a layer's output is replaced by in a program that takes
// that layer's gradient. The value itself when autograd already tracks it; otherwise (nothing
// upstream requires grad: token-id inputs, frozen parameters) a fresh leaf that requires grad,
// sharing its memory. Never a flag set on the module's own tensors: a layer that returns a
// parameter or buffer must not leave it requiring grad for the next call.
#pragma once

namespace torchscope {

// `torchscope::gradient_tap(Tensor(a) x) -> Tensor(a)`
inline constexpr const char* kGradientTapOperator = "torchscope::gradient_tap";

}  // namespace torchscope
