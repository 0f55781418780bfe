// Perturbation attribution methods, as Captum defines them (captum/attr/_core/occlusion.py,
// feature_ablation.py): forward passes only, `perturbationsPerEval` perturbed copies of the
// batch per pass (copy-major). An element's attribution is F(input) - F(input with its feature
// set to the baseline); occlusion averages that over the windows covering the element.
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "core/errors.h"
#include "methods/attribution_plan.h"

namespace torchscope::attribution {

namespace {

struct Sums {
  at::Tensor initial;   // [rows]: the objective on the unperturbed batch
  at::Tensor total;     // [rows, ...]: Σ over perturbations of (initial - perturbed) x mask
  at::Tensor coverage;  // occlusion: how many windows cover each element
};

// Σ over `copies` perturbed copies of the batch ([copies * rows, ...], copy-major) of
// (initial - perturbed objective) x that copy's mask ([copies, 1 or rows, ...]).
at::Tensor weightedDifferences(ModelState& model, const Batch& batch, const Sums& sums, const at::Tensor& perturbed,
                               const at::Tensor& masks, const NumericsOverride& numerics) {
  const int64_t copies = masks.size(0);
  std::vector<c10::IValue> args = repeatArgs(batch.args, batch.rows, copies, false);
  args.at(static_cast<size_t>(batch.input)) = perturbed;
  const at::Tensor changed =
      forwardObjective(model, std::move(args), repeatObjectives(batch.objective, copies, false), Optimize::kAsLoaded, numerics);
  std::vector<int64_t> shape = {copies, batch.rows};
  shape.resize(static_cast<size_t>(batch.x().dim()) + 1, 1);
  const at::Tensor diff = (sums.initial.view({1, batch.rows}) - changed.view({copies, batch.rows})).view(shape);
  return (diff * masks.to(sums.total.scalar_type())).sum(0);
}

std::vector<int64_t> withRows(std::vector<int64_t> shape, int64_t rows) {
  shape.insert(shape.begin(), rows);
  return shape;
}

// Occlusion windows over every dim but the batch, shifted by `strides`; Captum numbers them
// with the first dim varying fastest, and cuts off the last window of a dim that overhangs.
struct Windows {
  std::vector<int64_t> shape, window, strides, counts;
  int64_t total = 1;

  // [1, ...shape]: 1 inside window `index`, 0 elsewhere.
  at::Tensor mask(int64_t index, const at::TensorOptions& options) const {
    std::vector<int64_t> before(shape.size()), padding;
    for (size_t d = 0; d < shape.size(); ++d) {
      before[d] = (index % counts[d]) * strides[d];
      index /= counts[d];
    }
    for (size_t d = shape.size(); d-- > 0;) {  // constant_pad_nd takes the last dim first
      padding.push_back(before[d]);
      padding.push_back(shape[d] - before[d] - window[d]);  // negative: cut off
    }
    return at::constant_pad_nd(at::ones(window, options), padding, 0).reshape(withRows(shape, 1));
  }
};

Windows occlusionWindows(const AttributionSpec& spec, const at::Tensor& x) {
  Windows windows;
  windows.shape = x.sizes().vec();
  windows.shape.erase(windows.shape.begin());
  const size_t dims = windows.shape.size();
  if (spec.window.size() != dims) {
    TS_FAIL(code::kInvalidArgument, "occlusion's window gives " + std::to_string(spec.window.size()) + " size(s); the input has " +
                                        std::to_string(dims) + " dims past the batch (shape " + c10::str(x.sizes()) +
                                        ") and the window covers each, channels included");
  }
  windows.window = spec.window;
  windows.strides = spec.strides.empty()       ? std::vector<int64_t>(dims, 1)
                    : spec.strides.size() == 1 ? std::vector<int64_t>(dims, spec.strides[0])
                                               : spec.strides;
  if (windows.strides.size() != dims) {
    TS_FAIL(code::kInvalidArgument,
            "occlusion's strides give " + std::to_string(spec.strides.size()) + " values for " + std::to_string(dims) + " dims");
  }
  for (size_t d = 0; d < dims; ++d) {
    const int64_t size = windows.shape[d], window = windows.window[d], stride = windows.strides[d];
    if (window < 1 || window > size)
      TS_FAIL(code::kInvalidArgument, "occlusion window " + c10::str(spec.window) + " does not fit the input's " + c10::str(windows.shape));
    if (stride < 1 || (stride > window && window != size)) {
      TS_FAIL(code::kInvalidArgument, "occlusion stride " + std::to_string(stride) + " in dim " + std::to_string(d + 1) +
                                          " is not in [1, its window " + std::to_string(window) + "]");
    }
    windows.counts.push_back(static_cast<int64_t>(std::ceil(static_cast<double>(size - window) / static_cast<double>(stride))) + 1);
    windows.total *= windows.counts.back();
  }
  return windows;
}

void planOcclusion(ModelState* model, const AttributionSpec& spec, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Sums>& sums,
                   std::vector<Step>& steps) {
  auto windows = std::make_shared<Windows>(occlusionWindows(spec, batch->x()));
  for (int64_t first = 0; first < windows->total; first += spec.perturbationsPerEval) {
    const int64_t copies = std::min(spec.perturbationsPerEval, windows->total - first);
    steps.push_back([=] {
      at::NoGradGuard noGrad;
      const at::Tensor& x = batch->x();
      std::vector<at::Tensor> perCopy;
      for (int64_t w = first; w < first + copies; ++w) perCopy.push_back(windows->mask(w, x.options().dtype(at::kFloat)));
      const at::Tensor masks = at::stack(perCopy, 0);  // [copies, 1, ...]
      const at::Tensor copiesOfX = repeatRows(x, copies, false).view(withRows(x.sizes().vec(), copies));
      const at::Tensor inside = masks.to(at::kBool);
      const at::Tensor occluded = batch->baseline ? at::where(inside, fullBaseline(*batch).unsqueeze(0), copiesOfX)
                                                  : at::where(inside, c10::Scalar(batch->baselineValue), copiesOfX);
      std::vector<int64_t> flat = x.sizes().vec();
      flat[0] *= copies;
      sums->total = sums->total + weightedDifferences(*model, *batch, *sums, occluded.reshape(flat), masks, spec.numerics);
      sums->coverage = sums->coverage + masks.sum(0);
    });
  }
}

void planFeatureAblation(ModelState* model, const AttributionSpec& spec, const std::shared_ptr<Batch>& batch,
                         const std::shared_ptr<Sums>& sums, std::vector<Step>& steps) {
  const at::Tensor& x = batch->x();
  std::vector<int64_t> rowShape = x.sizes().vec();
  rowShape[0] = 1;
  at::Tensor mask;
  if (spec.featureMask) {
    mask = spec.featureMask->to(x.device(), at::kLong);
    if (mask.dim() != x.dim() || (mask.size(0) != 1 && mask.size(0) != batch->rows) || !at::is_expandable_to(mask.sizes(), x.sizes())) {
      TS_FAIL(code::kInvalidArgument, "featureMask of shape " + c10::str(mask.sizes()) + " does not match the input's " +
                                          c10::str(x.sizes()) +
                                          ": it has the input's rank, a first dim of 1 or the batch size, and broadcasts to the input");
    }
  } else {
    // Every element of a row its own feature.
    mask = at::arange(x[0].numel(), x.options().dtype(at::kLong)).view(rowShape);
  }
  const at::Tensor ids = std::get<0>(at::_unique(mask.flatten().cpu(), /*sorted=*/true)).contiguous();
  auto features = std::make_shared<std::vector<int64_t>>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
  for (size_t first = 0; first < features->size(); first += static_cast<size_t>(spec.perturbationsPerEval)) {
    const size_t last = std::min(features->size(), first + static_cast<size_t>(spec.perturbationsPerEval));
    steps.push_back([=] {
      at::NoGradGuard noGrad;
      const at::Tensor& input = batch->x();
      std::vector<at::Tensor> ablated, masks;
      for (size_t f = first; f < last; ++f) {
        const at::Tensor selected = mask.eq((*features)[f]).to(at::kLong);
        // Captum's blend: x * (1 - m) + baseline * m.
        const at::Tensor kept = input * (1 - selected).to(input.scalar_type());
        ablated.push_back(batch->baseline ? kept + fullBaseline(*batch) * selected.to(input.scalar_type())
                                          : kept + batch->baselineValue * selected.to(input.scalar_type()));
        masks.push_back(selected);
      }
      sums->total = sums->total + weightedDifferences(*model, *batch, *sums, at::cat(ablated, 0), at::stack(masks, 0), spec.numerics);
    });
  }
}

}  // namespace

void planPerturbationMethod(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                            std::vector<Step>& steps) {
  const AttributionSpec& spec = context.spec;
  if (spec.perturbationsPerEval < 1)
    TS_FAIL(code::kInvalidArgument, "perturbationsPerEval must be >= 1, got " + std::to_string(spec.perturbationsPerEval));
  ModelState* model = context.model.get();
  auto sums = std::make_shared<Sums>();
  const bool occlusion = spec.method == AttributionMethod::kOcclusion;
  steps.push_back([=] {
    const at::Tensor& x = batch->x();
    sums->initial = forwardObjective(*model, batch->args, batch->objective, Optimize::kAsLoaded, spec.numerics);
    sums->total = at::zeros(x.sizes(), x.options().dtype(sums->initial.scalar_type()));
    if (occlusion) {
      std::vector<int64_t> shape = x.sizes().vec();
      shape[0] = 1;
      sums->coverage = at::zeros(shape, x.options().dtype(at::kFloat));
    }
  });
  if (occlusion) {
    planOcclusion(model, spec, batch, sums, steps);
  } else {
    planFeatureAblation(model, spec, batch, sums, steps);
  }
  steps.push_back([=] {
    // Occlusion: the mean over the windows covering each element, in float32 as Captum's.
    out->attributions = occlusion ? sums->total.to(at::kFloat) / sums->coverage : sums->total;
    *sums = Sums{};
  });
}

}  // namespace torchscope::attribution
