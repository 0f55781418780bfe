// The snapshot operator: a deep copy of a captured value inside an instrumented program, so
// that what was captured is what the module returned at that moment, whatever the caller
// does to it afterwards (in-place ops on a tensor, or on a tensor inside a returned dict).
// What a Python forward hook storing a deep clone sees.
#pragma once

namespace torchscope {

// `torchscope::snapshot(t x) -> t`: every tensor in `x` cloned (autograd flows through the
// clones), every tuple, list and dict rebuilt; other values (ints, strings, None) as they are.
inline constexpr const char* kSnapshotOperator = "torchscope::snapshot";

}  // namespace torchscope
