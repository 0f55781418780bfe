// libtorch's operators by name, for the inference rewrites that call oneDNN's (conv_prepack.h,
// linear_prepack.h).
#pragma once

#include <torch/csrc/jit/runtime/operator.h>

#include <optional>

namespace torchscope {

// The operator `name` (its overload without a name), through the JIT's registry: its call is out of
// line, where the dispatcher's inline one would link the addon to libtorch's thread-locals.
// nullopt where this libtorch has none (built without oneDNN).
std::optional<torch::jit::Operation> libtorchOperation(const char* name);

}  // namespace torchscope
