// The exact orders, bins and hashes of the feature dashboards (methods/feature_stats.h), as tensor
// ops that run on any device: a Python reference recomputes each from its definition.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>

namespace torchscope {

// Keys that order each row of float32 values [F, M] by value descending, then by column
// ascending: the value's bits made order-preserving as an int32, times 2^32, plus
// 2^32 - 1 - column. M < 2^32; -0 must already read 0.
at::Tensor descendingKeys(const at::Tensor& values);

// The columns of the k largest values of each row (ties to the lower column), in that order.
at::Tensor topColumns(const at::Tensor& values, int64_t k);

// torch.histc's outer edges per row from each row's [low, high] (float32 [F], CPU): equal ones
// widened by 1 on each side (in double, then float), as histc does.
std::pair<at::Tensor, at::Tensor> histcEdges(const at::Tensor& low, const at::Tensor& high);

// Counts [F, bins] of values [F, N] in each row's bins between low and high [F] (histc's edges),
// only where `mask` [F, N] holds: ATen's histc kernel (LINEAR_INTERPOLATION), bin =
// trunc(((x - low) * bins) / (high - low)) in float32, x == high in the last bin, values outside
// [low, high] skipped.
at::Tensor histcCounts(const at::Tensor& values, const at::Tensor& mask, const at::Tensor& low, const at::Tensor& high, int64_t bins);

// The sample keys of flat token indices first .. first + count - 1 (int64, CPU): the (t + 1)-th
// output z of SplitMix64 seeded with `seed`, stored as z ^ 2^63 so that int64 order is z's
// unsigned order.
at::Tensor sampleKeys(uint64_t seed, int64_t first, int64_t count);

}  // namespace torchscope
