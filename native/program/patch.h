// The patch operator: rewrites a layer's output inside an instrumented program
// (activation patching, ablation, steering). Registered as `torchscope::patch` so the
// TorchScript interpreter runs it like any aten op and autograd flows through it.
#pragma once

#include <cstdint>

namespace torchscope {

// Values of the operator's `mode` argument; lib/methods/activations.ts uses the same numbers.
enum PatchMode : int64_t { kPatchSet = 0, kPatchZero = 1, kPatchAdd = 2, kPatchScale = 3, kPatchProject = 4 };

inline constexpr const char* kPatchOperator = "torchscope::patch";

// Where a region selection applies, by output rank:
//   [N, C] and [N, C, H, W]: channels index dim 1; positions of [N, C, H, W] are (y, x) pairs.
//   [N, S, H] (transformer hidden states): positions index dim 1, channels dim 2.
// `value` must broadcast to the output's shape; only the selected region takes it.
// kPatchProject removes the component of each channel vector (the channels dim above: dim 1 of
// [N, C] and [N, C, H, W], dim 2 of [N, S, H]) along `value`'s rows ([C] or [k, C], any floating
// dtype): x - (x Q^T) Q, Q an orthonormal basis of the rows' span (SVD; singular values at most
// max(k, C) * eps(value's dtype) * the largest count as zero: numpy's matrix_rank rule). It takes
// positions, never channels (it mixes them).

}  // namespace torchscope
