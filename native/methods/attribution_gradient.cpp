// Gradient attribution methods, as Captum defines them (captum/attr/_core: saliency.py,
// input_x_gradient.py, integrated_gradients.py, layer/layer_integrated_gradients.py,
// layer/grad_cam.py, noise_tunnel.py), including the order of their arithmetic: integration
// points concatenated step-major, step weights as float32, the sum over steps, then the
// product with (input - baseline) per chunk of steps.
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>

#include "core/errors.h"
#include "core/ivalues.h"
#include "methods/attribution_plan.h"
#include "program/patch.h"

namespace torchscope::attribution {

namespace {

// Gauss-Legendre nodes and weights on [-1, 1], nodes ascending (numpy's leggauss, to ~1e-16):
// Newton's method on P_n from the usual cosine guesses.
void gaussLegendre(int64_t n, std::vector<double>& nodes, std::vector<double>& weights) {
  nodes.assign(static_cast<size_t>(n), 0);
  weights.assign(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) {
    double z = std::cos(M_PI * (static_cast<double>(i) + 0.75) / (static_cast<double>(n) + 0.5));
    double derivative = 0;
    for (int iteration = 0; iteration < 100; ++iteration) {
      double p0 = 1, p1 = z;
      for (int64_t k = 2; k <= n; ++k) {
        const double pk = ((2.0 * static_cast<double>(k) - 1) * z * p1 - (static_cast<double>(k) - 1) * p0) / static_cast<double>(k);
        p0 = p1;
        p1 = pk;
      }
      derivative = static_cast<double>(n) * (z * p1 - p0) / (z * z - 1);
      const double step = p1 / derivative;
      z -= step;
      if (std::fabs(step) < 1e-16) break;
    }
    // Descending from the guesses; stored ascending.
    nodes[static_cast<size_t>(n - 1 - i)] = z;
    weights[static_cast<size_t>(n - 1 - i)] = 2 / ((1 - z * z) * derivative * derivative);
  }
}

// The value of `layer` for `args`, without gradients: the first tensor of a module called once.
at::Tensor layerValue(ModelState& model, std::vector<c10::IValue> args, const std::string& layer, const NumericsOverride& numerics) {
  at::NoGradGuard noGrad;
  ProgramNeeds needs;
  needs.capture = {layer};
  needs.returnOutput = false;
  const auto program = model.program(needs, numerics, Optimize::kNever);
  RunResult run = program->run(std::move(args), {});
  requireAllRan(*program, run);
  const auto& calls = run.captures.at(layer);
  TS_CHECK(calls.size() == 1, code::kInvalidArgument, "layer '", layer, "' ran ", calls.size(),
           " times: layer methods attribute a layer called once");
  return firstTensor(calls.front(), "layer '" + layer + "'");
}

// Integrated gradients over `from` -> `to` (the input and its baseline, or a layer's values at
// both), planned in chunks of steps; `gradientsAt(scaled, chunk)` returns d objective / d scaled.
struct IntegrationPath {
  std::vector<double> alphas, weights;
  at::Tensor from, to;  // set by the steps before the chunks
  at::Tensor total;
};

at::Tensor scaledPoints(const IntegrationPath& integration, int64_t first, int64_t last) {
  std::vector<at::Tensor> points;
  const at::Tensor difference = integration.to - integration.from;
  for (int64_t k = first; k < last; ++k) points.push_back(integration.from + integration.alphas[static_cast<size_t>(k)] * difference);
  return at::cat(points, 0);
}

// Captum's per-chunk attribution: step-weighted gradients summed over the chunk's steps,
// times (to - from).
at::Tensor chunkAttribution(const IntegrationPath& integration, const at::Tensor& grads, int64_t first, int64_t last, bool multiply) {
  const int64_t n = last - first;
  const std::vector<double> chunkWeights(integration.weights.begin() + first, integration.weights.begin() + last);
  const at::Tensor weights = at::tensor(chunkWeights, at::kDouble).to(grads.device(), at::kFloat).view({n, 1});
  std::vector<int64_t> shape = {n};
  for (const int64_t size : integration.to.sizes()) shape.push_back(size);
  const at::Tensor total = (grads.contiguous().view({n, -1}) * weights).reshape(shape).sum(0);
  return multiply ? total * (integration.to - integration.from) : total;
}

// Σ attributions - (F(input) - F(baseline)) per row, on the batch's real inputs.
at::Tensor convergenceDelta(ModelState& model, const Batch& batch, const at::Tensor& attributions, const NumericsOverride& numerics) {
  const at::Tensor end = forwardObjective(model, batch.args, batch.objective, Optimize::kNever, numerics);
  const at::Tensor start = forwardObjective(model, withInput(batch, fullBaseline(batch)), batch.objective, Optimize::kNever, numerics);
  return attributions.reshape({batch.rows, -1}).sum(1) - (end - start);
}

void planIntegratedGradients(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                             std::vector<Step>& steps) {
  const AttributionSpec& spec = context.spec;
  const bool layer = spec.method == AttributionMethod::kLayerIntegratedGradients;
  auto integration = std::make_shared<IntegrationPath>();
  integrationPoints(spec.integration, spec.steps, integration->alphas, integration->weights);
  ModelState* model = context.model.get();
  if (layer) {
    steps.push_back([=] { integration->to = layerValue(*model, batch->args, spec.layer, spec.numerics); });
    steps.push_back([=] { integration->from = layerValue(*model, withInput(*batch, fullBaseline(*batch)), spec.layer, spec.numerics); });
  } else {
    steps.push_back([=] {
      integration->to = batch->x();
      integration->from = batch->baseline ? batch->baseline->to(batch->x().scalar_type()).expand_as(batch->x())
                                          : at::full_like(batch->x(), batch->baselineValue);
    });
  }
  const int64_t stepsPerChunk = std::max<int64_t>(1, context.internalBatchSize / std::max<int64_t>(batch->rows, 1));
  for (int64_t first = 0; first < spec.steps; first += stepsPerChunk) {
    const int64_t last = std::min(spec.steps, first + stepsPerChunk);
    steps.push_back([=] {
      const int64_t n = last - first;
      std::vector<c10::IValue> args = repeatArgs(batch->args, batch->rows, n, false);
      GradientSpec gradients;
      gradients.numerics = spec.numerics;
      gradients.objective = repeatObjectives(batch->objective, n, false);
      at::Tensor grads;
      at::Tensor scaled = scaledPoints(*integration, first, last);
      if (layer) {
        scaled.requires_grad_(true);
        gradients.patchLayers = {spec.layer};
        PatchArgs set;
        set.mode = kPatchSet;
        set.value = scaled;
        gradients.patches = {set};
        grads = computeGradients(*model, std::move(args), gradients, {scaled}).extra.at(0);
      } else {
        args.at(static_cast<size_t>(batch->input)) = scaled;
        gradients.inputs = {batch->input};
        grads = computeGradients(*model, std::move(args), gradients).inputs.at(0);
      }
      const at::Tensor chunk = chunkAttribution(*integration, grads, first, last, spec.multiplyByInputs);
      integration->total = integration->total.defined() ? chunk + integration->total : chunk;
    });
  }
  steps.push_back([=] {
    out->attributions = integration->total;
    if (spec.convergenceDelta) out->delta = convergenceDelta(*model, *batch, out->attributions, spec.numerics);
    integration->from = integration->to = integration->total = at::Tensor();
  });
}

// Grad-CAM: ReLU-free by default, as Captum's LayerGradCam: the layer's gradients averaged
// over every dim past the channels, times its values, summed over channels.
at::Tensor gradCam(const at::Tensor& values, const at::Tensor& grads, const AttributionSpec& spec) {
  std::vector<int64_t> spatial;
  for (int64_t d = 2; d < grads.dim(); ++d) spatial.push_back(d);
  const at::Tensor weights = grads.dim() > 2 ? grads.mean(spatial, /*keepdim=*/true) : grads;
  at::Tensor cam = (weights * values).sum(1, /*keepdim=*/true);
  if (spec.relu) cam = at::relu(cam);
  if (spec.upsample.empty()) return cam;
  const int64_t dims = static_cast<int64_t>(spec.upsample.size());
  TS_CHECK(cam.dim() == dims + 2, code::kInvalidArgument, "upsample gives ", dims, " size(s), but the Grad-CAM map of layer '", spec.layer,
           "' has shape ", cam.sizes());
  if (spec.upsampleMode == Upsample::kNearest) {
    if (dims == 1) return at::upsample_nearest1d(cam, spec.upsample);
    if (dims == 2) return at::upsample_nearest2d(cam, spec.upsample);
  } else if (spec.upsampleMode == Upsample::kBilinear && dims == 2) {
    return at::upsample_bilinear2d(cam, spec.upsample, /*align_corners=*/false);
  } else if (spec.upsampleMode == Upsample::kLinear && dims == 1) {
    return at::upsample_linear1d(cam, spec.upsample, /*align_corners=*/false);
  }
  TS_FAIL(code::kInvalidArgument, "upsample mode '", nameOf(kUpsampleModes, spec.upsampleMode), "' does not apply to a map of shape ",
          cam.sizes(), " (nearest: 1 or 2 sizes; bilinear: 2; linear: 1)");
}

}  // namespace

void integrationPoints(Integration method, int64_t steps, std::vector<double>& alphas, std::vector<double>& weights) {
  if (method == Integration::kGaussLegendre) {
    TS_CHECK(steps >= 1, code::kInvalidArgument, "integratedGradients with gausslegendre needs steps >= 1, got ", steps);
    gaussLegendre(steps, alphas, weights);
    for (size_t i = 0; i < alphas.size(); ++i) {
      alphas[i] = 0.5 * (1 + alphas[i]);
      weights[i] = 0.5 * weights[i];
    }
    return;
  }
  TS_CHECK(steps >= 2, code::kInvalidArgument, "integratedGradients with a Riemann sum needs steps >= 2, got ", steps);
  const double n = static_cast<double>(steps);
  double start = 0, end = 1;
  if (method == Integration::kRiemannLeft) {
    end = 1 - 1 / n;
  } else if (method == Integration::kRiemannRight) {
    start = 1 / n;
  } else if (method == Integration::kRiemannMiddle) {
    start = 1 / (2 * n);
    end = 1 - 1 / (2 * n);
  }
  // Captum takes its points from torch.linspace in float32.
  const at::Tensor points = at::linspace(start, end, steps, at::kFloat).to(at::kDouble).contiguous();
  alphas.assign(points.data_ptr<double>(), points.data_ptr<double>() + steps);
  weights.assign(static_cast<size_t>(steps), 1 / n);
  if (method == Integration::kRiemannTrapezoid) {
    weights.front() /= 2;
    weights.back() /= 2;
  }
}

void planGradientMethod(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                        std::vector<Step>& steps) {
  const AttributionSpec& spec = context.spec;
  ModelState* model = context.model.get();
  if (spec.method == AttributionMethod::kIntegratedGradients || spec.method == AttributionMethod::kLayerIntegratedGradients) {
    planIntegratedGradients(context, batch, out, steps);
  } else if (spec.method == AttributionMethod::kLayerGradCam) {
    steps.push_back([=] {
      GradientSpec gradients;
      gradients.numerics = spec.numerics;
      gradients.objective = batch->objective;
      gradients.layers = {spec.layer};
      GradientResult result = computeGradients(*model, batch->args, gradients);
      out->attributions = gradCam(result.values.at(spec.layer).back(), result.layers.at(spec.layer).back(), spec);
    });
  } else {
    steps.push_back([=] {
      GradientSpec gradients;
      gradients.numerics = spec.numerics;
      gradients.objective = batch->objective;
      gradients.inputs = {batch->input};
      const at::Tensor grads = computeGradients(*model, batch->args, gradients).inputs.at(0);
      if (spec.method == AttributionMethod::kSaliency) {
        out->attributions = spec.abs ? grads.abs() : grads;
      } else {
        out->attributions = batch->x() * grads;
      }
    });
  }
}

void planNoiseTunnel(const Context& context, const std::shared_ptr<Batch>& batch, const std::shared_ptr<Attributed>& out,
                     std::vector<Step>& steps) {
  const AttributionSpec& spec = context.spec;
  TS_CHECK(spec.samples >= 1, code::kInvalidArgument, "noise needs samples >= 1, got ", spec.samples);
  const int64_t rows = batch->rows;
  const int64_t perPass = spec.samplesBatchSize > 0 ? std::min(spec.samples, spec.samplesBatchSize) : spec.samples;
  std::vector<int64_t> partitions(static_cast<size_t>(spec.samples / perPass), perPass);
  if (spec.samples % perPass != 0) partitions.push_back(spec.samples % perPass);

  struct Sums {
    at::Generator generator;
    at::Tensor sum, squares;
    std::vector<at::Tensor> deltas;
  };
  auto sums = std::make_shared<Sums>();
  sums->generator = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
  for (const int64_t samples : partitions) {
    auto noisy = std::make_shared<Batch>();
    noisy->input = batch->input;
    noisy->rows = rows * samples;
    noisy->objective = repeatObjectives(batch->objective, samples, true);
    auto attributed = std::make_shared<Attributed>();
    steps.push_back([=] {
      // Captum: x.repeat_interleave(samples) + torch.normal(0, stdev tiled over the noisy batch).
      const at::Tensor& x = batch->x();
      std::vector<int64_t> shape = x.sizes().vec();
      shape[0] = rows * samples;
      const at::Tensor stdev = at::full(shape, spec.stdev, at::kFloat);
      const at::Tensor noise = at::normal(0.0, stdev, sums->generator).to(x.device());
      noisy->args = repeatArgs(batch->args, rows, samples, true);
      noisy->args.at(static_cast<size_t>(batch->input)) = x.repeat_interleave(samples, 0) + noise;
      noisy->baselineValue = batch->baselineValue;
      if (batch->baseline) {
        const at::Tensor& baseline = *batch->baseline;
        noisy->baseline =
            baseline.dim() == x.dim() && baseline.size(0) == rows && rows > 1 ? baseline.repeat_interleave(samples, 0) : baseline;
      }
    });
    planGradientMethod(context, noisy, attributed, steps);
    steps.push_back([=] {
      std::vector<int64_t> shape = {rows, samples};
      for (int64_t d = 1; d < attributed->attributions.dim(); ++d) shape.push_back(attributed->attributions.size(d));
      const at::Tensor perSample = attributed->attributions.view(shape);
      const at::Tensor sum = perSample.sum(1), squares = perSample.pow(2).sum(1);
      sums->sum = sums->sum.defined() ? sums->sum + sum : sum;
      sums->squares = sums->squares.defined() ? sums->squares + squares : squares;
      if (attributed->delta.defined()) sums->deltas.push_back(attributed->delta.reshape({rows, -1}));
      noisy->args.clear();
      attributed->attributions = attributed->delta = at::Tensor();
    });
  }
  steps.push_back([=] {
    const double n = static_cast<double>(spec.samples);
    const at::Tensor mean = sums->sum / n, meanSquare = sums->squares / n;
    out->attributions = spec.noise == Noise::kSmoothGrad          ? mean
                        : spec.noise == Noise::kSmoothGradSquared ? meanSquare
                                                                  : meanSquare - mean * mean;
    // Per batch element, its samples in order (Captum regroups the passes' deltas so).
    if (!sums->deltas.empty()) out->delta = at::cat(sums->deltas, 1).reshape({-1});
  });
}

}  // namespace torchscope::attribution
