#include "program/patch.h"

#include <ATen/ATen.h>
#include <ATen/ExpandUtils.h>
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace torchscope {
namespace {

// Errors raised here cross the TorchScript interpreter, which rewraps every exception;
// the "torchscope:CODE: " prefix carries the code through (errors.cpp takes it off).
#define PATCH_CHECK_CODE(code, cond, ...) TORCH_CHECK(cond, "torchscope:" code ": ", __VA_ARGS__)
#define PATCH_CHECK(cond, ...) PATCH_CHECK_CODE("INVALID_ARGUMENT", cond, __VA_ARGS__)

at::Tensor flagsAlong(const at::Tensor& x, int64_t dim, const std::vector<int64_t>& indices, const char* what, const std::string& layer) {
  const int64_t size = x.size(dim);
  std::vector<int64_t> normalized;
  for (int64_t index : indices) {
    PATCH_CHECK(index >= -size && index < size, what, " ", index, " is out of range for layer '", layer, "' whose output has ", size, " ",
                what, "s (shape ", x.sizes(), ")");
    normalized.push_back(index < 0 ? index + size : index);
  }
  at::Tensor flags = at::zeros({size}, x.options().dtype(at::kBool));
  flags.index_fill_(0, at::tensor(normalized, at::kLong).to(x.device()), true);
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[static_cast<size_t>(dim)] = size;
  return flags.view(shape);
}

at::Tensor spatialFlags(const at::Tensor& x, const std::vector<int64_t>& pairs, const std::string& layer) {
  PATCH_CHECK(pairs.size() % 2 == 0, "positions of a 4-D output are [y, x] pairs (layer '", layer, "')");
  const int64_t height = x.size(2), width = x.size(3);
  std::vector<int64_t> flat;
  for (size_t i = 0; i < pairs.size(); i += 2) {
    const int64_t y = pairs[i], col = pairs[i + 1];
    PATCH_CHECK(y >= 0 && y < height && col >= 0 && col < width, "position [", y, ", ", col, "] is outside the ", height, "x", width,
                " output of layer '", layer, "'");
    flat.push_back(y * width + col);
  }
  at::Tensor flags = at::zeros({height * width}, x.options().dtype(at::kBool));
  flags.index_fill_(0, at::tensor(flat, at::kLong).to(x.device()), true);
  return flags.view({1, 1, height, width});
}

// The selected region as a bool tensor broadcastable to `x`, or nullopt for all of `x`.
std::optional<at::Tensor> regionOf(const at::Tensor& x, const std::vector<int64_t>& channels, const std::vector<int64_t>& positions,
                                   const std::string& layer) {
  const int64_t rank = x.dim();
  std::optional<at::Tensor> region;
  if (!channels.empty()) {
    PATCH_CHECK(rank >= 2 && rank <= 4, "channels need a 2-D, 3-D or 4-D output; layer '", layer, "' gives shape ", x.sizes());
    region = flagsAlong(x, rank == 3 ? 2 : 1, channels, "channel", layer);
  }
  if (!positions.empty()) {
    PATCH_CHECK(rank == 3 || rank == 4, "positions need a 3-D [batch, seq, hidden] or 4-D [N, C, H, W] output; layer '", layer,
                "' gives shape ", x.sizes());
    at::Tensor flags = rank == 3 ? flagsAlong(x, 1, positions, "position", layer) : spatialFlags(x, positions, layer);
    region = region ? at::logical_and(*region, flags) : flags;
  }
  return region;
}

at::Tensor valueFor(const at::Tensor& x, const std::optional<at::Tensor>& value, const std::string& layer) {
  PATCH_CHECK(value.has_value() && value->defined(), "this patch of layer '", layer, "' needs a tensor value");
  // Under autocast (load({ precision })) floating types are the run's business, as in PyTorch:
  // a float32 value (an upcast capture) patches a bfloat16 output, cast to it.
  const bool castable = at::autocast::is_autocast_enabled(x.device().type()) && at::isFloatingType(value->scalar_type()) &&
                        at::isFloatingType(x.scalar_type());
  PATCH_CHECK_CODE("DTYPE", value->scalar_type() == x.scalar_type() || castable, "patch value for layer '", layer, "' is ",
                   value->scalar_type(), " but the layer outputs ", x.scalar_type());
  if (value->scalar_type() != x.scalar_type()) return value->to(x.device(), x.scalar_type());
  PATCH_CHECK_CODE("SHAPE", at::is_expandable_to(value->sizes(), x.sizes()), "patch value of shape ", value->sizes(),
                   " does not broadcast to the output of layer '", layer, "', shape ", x.sizes());
  return value->to(x.device());
}

double epsilonOf(at::ScalarType type) {
  switch (type) {
    case at::kDouble: return std::numeric_limits<double>::epsilon();
    case at::kHalf: return 0x1p-10;
    case at::kBFloat16: return 0x1p-7;
    default: return std::numeric_limits<float>::epsilon();
  }
}

// x without its component along the span of `value`'s rows, over the channels dim.
at::Tensor projectOut(const at::Tensor& x, const std::optional<at::Tensor>& value, const std::string& layer) {
  PATCH_CHECK(value.has_value() && value->defined(), "a project patch of layer '", layer, "' needs the directions to remove");
  PATCH_CHECK(x.dim() >= 2 && x.dim() <= 4, "a project patch needs a 2-D, 3-D or 4-D output; layer '", layer, "' gives shape ", x.sizes());
  PATCH_CHECK_CODE("DTYPE", at::isFloatingType(value->scalar_type()), "the directions projected out of layer '", layer, "' are ",
                   value->scalar_type(), ", not floating");
  const int64_t dim = x.dim() == 3 ? 2 : 1;
  const int64_t channels = x.size(dim);
  PATCH_CHECK_CODE("SHAPE", (value->dim() == 1 || value->dim() == 2) && value->numel() > 0 && value->size(-1) == channels,
                   "the directions projected out of layer '", layer, "' must be [", channels, "] or [k, ", channels,
                   "] (its channels), got shape ", value->sizes());
  const at::Tensor rows = value->to(at::kDouble).reshape({-1, channels});
  const auto [u, singular, vh] = at::linalg_svd(rows, /*full_matrices=*/false);
  const double cut =
      singular.max().item<double>() * static_cast<double>(std::max(rows.size(0), channels)) * epsilonOf(value->scalar_type());
  const int64_t rank = singular.gt(cut).sum().item<int64_t>();
  const at::Tensor basis = vh.narrow(0, 0, rank).to(x.device(), x.scalar_type());
  const at::Tensor moved = x.movedim(dim, -1);
  return (moved - at::matmul(at::matmul(moved, basis.t()), basis)).movedim(-1, dim);
}

at::Tensor patch(const at::Tensor& x, int64_t mode, const std::optional<at::Tensor>& value, double scale, std::vector<int64_t> channels,
                 std::vector<int64_t> positions, std::string layer) {
  const auto region = regionOf(x, channels, positions, layer);
  switch (mode) {
    case kPatchSet: {
      const at::Tensor v = valueFor(x, value, layer);
      return region ? at::where(*region, v, x) : v.expand_as(x).clone();
    }
    case kPatchZero: return region ? x.masked_fill(*region, 0) : at::zeros_like(x);
    case kPatchAdd: {
      const at::Tensor v = valueFor(x, value, layer);
      return region ? at::where(*region, x + v, x) : x + v;
    }
    case kPatchScale: return region ? at::where(*region, x * scale, x) : x * scale;
    case kPatchProject: {
      PATCH_CHECK(channels.empty(), "a project patch of layer '", layer,
                  "' removes directions across all channels: select positions, not channels");
      const at::Tensor projected = projectOut(x, value, layer);
      return region ? at::where(*region, projected, x) : projected;
    }
    default: PATCH_CHECK(false, "unknown patch mode ", mode);
  }
}

}  // namespace

TORCH_LIBRARY(torchscope, m) {
  m.def("patch(Tensor x, int mode, Tensor? value, float scale, int[] channels, int[] positions, str layer) -> Tensor", &patch);
}

}  // namespace torchscope
