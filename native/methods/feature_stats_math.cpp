#include "methods/feature_stats_math.h"

#include <cstring>

#include "core/errors.h"

namespace torchscope {

at::Tensor descendingKeys(const at::Tensor& values) {
  const int64_t columns = values.size(1);
  TS_CHECK(columns < (int64_t{1} << 32), code::kInvalidArgument, "a batch holds ", columns,
           " positions; at most 2^32 - 1 are ranked at once");
  // IEEE floats order as sign-magnitude integers: flipping a negative's magnitude bits makes
  // them order as two's complement int32.
  const at::Tensor bits = values.contiguous().view(at::kInt);
  const at::Tensor ordered = at::where(bits.lt(0), bits.bitwise_xor(0x7fffffff), bits).to(at::kLong);
  const at::Tensor rank = at::arange(columns, values.options().dtype(at::kLong)).neg_().add_(int64_t{0xffffffff});
  return ordered.mul(int64_t{1} << 32).add_(rank);
}

at::Tensor topColumns(const at::Tensor& values, int64_t k) {
  return std::get<1>(descendingKeys(values).topk(std::min(k, values.size(1)), 1));
}

std::pair<at::Tensor, at::Tensor> histcEdges(const at::Tensor& low, const at::Tensor& high) {
  at::Tensor lo = low.to(at::kFloat).contiguous().clone(), hi = high.to(at::kFloat).contiguous().clone();
  float* l = lo.data_ptr<float>();
  float* h = hi.data_ptr<float>();
  for (int64_t i = 0; i < lo.numel(); i++) {
    if (l[i] != h[i]) continue;
    // aten/src/ATen/native/Histogram.cpp (histc_select_outer_bin_edges): in double, then linspace's float.
    const double value = l[i];
    l[i] = static_cast<float>(value - 1);
    h[i] = static_cast<float>(value + 1);
  }
  return {lo, hi};
}

at::Tensor histcCounts(const at::Tensor& values, const at::Tensor& mask, const at::Tensor& low, const at::Tensor& high, int64_t bins) {
  const int64_t rows = values.size(0);
  const at::Tensor lo = low.unsqueeze(1), hi = high.unsqueeze(1);
  const at::Tensor inside = mask.logical_and(values.ge(lo)).logical_and_(values.le(hi));
  // The kernel's (elt - leftmost) * (edges - 1) / (rightmost - leftmost), each step in float32.
  const at::Tensor bin = values.sub(lo).mul_(static_cast<double>(bins)).div_(hi.sub(lo)).masked_fill_(inside.logical_not(), 0);
  const at::Tensor group =
      bin.to(at::kLong).clamp_max_(bins - 1).add_(at::arange(rows, bin.options().dtype(at::kLong)).mul_(bins).unsqueeze(1));
  return at::bincount(group.masked_select(inside), {}, rows * bins).view({rows, bins});
}

at::Tensor sampleKeys(uint64_t seed, int64_t first, int64_t count) {
  at::Tensor keys = at::empty({count}, at::kLong);
  int64_t* out = keys.data_ptr<int64_t>();
  for (int64_t i = 0; i < count; i++) {
    uint64_t z = seed + (static_cast<uint64_t>(first + i) + 1) * 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    z ^= 0x8000000000000000ULL;
    std::memcpy(out + i, &z, sizeof z);
  }
  return keys;
}

}  // namespace torchscope
