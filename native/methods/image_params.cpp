#include "methods/image_params.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

#include "core/errors.h"

namespace torchscope {
namespace {

// Square root of ImageNet's colour correlation (from Lucid), scaled so its largest column
// has unit norm: uncorrelated parameters become natural-looking colours.
at::Tensor colourCorrelation(const at::Device& device) {
  at::Tensor matrix = at::tensor({0.26, 0.09, 0.02, 0.27, 0.00, -0.05, 0.27, -0.09, 0.03}, at::kFloat).view({3, 3});
  const at::Tensor maxNorm = matrix.norm(2, {0}).max();
  return (matrix / maxNorm).to(device);
}

// Applies a [3, 3] colour matrix to the channel dim of [B, 3, H, W].
at::Tensor mixColours(const at::Tensor& image, const at::Tensor& matrix) {
  return at::matmul(image.permute({0, 2, 3, 1}), matrix.t()).permute({0, 3, 1, 2});
}

int64_t pick(at::Generator& generator, int64_t count) { return at::randint(count, {1}, generator, at::kLong).item<int64_t>(); }

}  // namespace

ImageParam::ImageParam(const ImageParamSpec& spec, const at::Device& device, at::Generator& generator)
    : spec_(spec), colour_(colourCorrelation(device)) {
  const auto cpu = at::TensorOptions().dtype(at::kFloat);
  if (spec_.parameterization == Parameterization::kFft) {
    const at::Tensor fy = at::fft_fftfreq(spec_.height, 1.0, cpu).unsqueeze(1);
    const at::Tensor fx = at::fft_rfftfreq(spec_.width, 1.0, cpu).unsqueeze(0);
    const at::Tensor freqs = (fy * fy + fx * fx).sqrt();
    const double floor = 1.0 / static_cast<double>(std::max(spec_.height, spec_.width));
    // Low frequencies dominate natural images: scale the spectrum by 1/f^decay.
    spectrumScale_ = freqs.clamp_min(floor).pow(-spec_.decayPower).unsqueeze(-1).to(device);
  }
  at::Tensor initial;
  if (spec_.init) {
    initial = fromValid(spec_.init->to(device, at::kFloat));
  } else if (spec_.parameterization == Parameterization::kFft) {
    initial = at::randn({spec_.batch, spec_.channels, spec_.height, spec_.width / 2 + 1, 2}, generator, cpu).mul_(0.01).to(device);
  } else {
    // Grey with a little noise; in raw units for sigmoid, in image units otherwise.
    const at::Tensor noise = at::randn({spec_.batch, spec_.channels, spec_.height, spec_.width}, generator, cpu).mul_(0.01);
    initial = (spec_.range == ImageRange::kSigmoid ? noise : noise.add(0.5)).to(device);
  }
  parameter_ = initial.detach().clone().requires_grad_(true);
}

at::Tensor ImageParam::toValid(const at::Tensor& raw) const {
  at::Tensor image = raw;
  if (spec_.decorrelate) image = mixColours(image, colour_);
  if (spec_.range == ImageRange::kSigmoid) return at::sigmoid(image);
  if (spec_.range == ImageRange::kClamp && spec_.parameterization == Parameterization::kFft) return (image + 0.5).clamp(0, 1);
  return image;
}

// The inverse of image(): parameters that reproduce a given image exactly.
at::Tensor ImageParam::fromValid(const at::Tensor& image) const {
  at::Tensor raw = image;
  if (spec_.range == ImageRange::kSigmoid) raw = at::logit(image.clamp(1e-6, 1 - 1e-6));
  if (spec_.range == ImageRange::kClamp && spec_.parameterization == Parameterization::kFft) raw = raw - 0.5;
  if (spec_.decorrelate) raw = mixColours(raw, at::linalg_inv(colour_));
  if (spec_.parameterization != Parameterization::kFft) return raw;
  const at::Tensor spectrum = at::fft_rfftn(raw * 4.0, c10::nullopt, c10::IntArrayRef{-2, -1}, "ortho");
  return at::view_as_real(spectrum) / spectrumScale_;
}

at::Tensor ImageParam::image() const {
  if (spec_.parameterization != Parameterization::kFft) return toValid(parameter_);
  const at::Tensor spectrum = at::view_as_complex((parameter_ * spectrumScale_).contiguous());
  // Divided by 4 as in Lucid: a smaller start keeps the sigmoid out of saturation.
  const at::Tensor raw = at::fft_irfftn(spectrum, c10::IntArrayRef{spec_.height, spec_.width}, c10::IntArrayRef{-2, -1}, "ortho") / 4.0;
  return toValid(raw);
}

void ImageParam::project() {
  if (spec_.parameterization == Parameterization::kPixel && spec_.range == ImageRange::kClamp) {
    at::NoGradGuard noGrad;
    parameter_.clamp_(0, 1);
  }
}

std::vector<Transform> standardTransforms() {
  std::vector<double> scales, angles;
  for (int i = 0; i < 11; ++i) scales.push_back(1.0 + (i - 5) / 50.0);
  for (int a = -10; a <= 10; ++a) angles.push_back(a);
  return {{TransformKind::kPad, {12}},
          {TransformKind::kJitter, {8}},
          {TransformKind::kScale, scales},
          {TransformKind::kRotate, angles},
          {TransformKind::kJitter, {4}}};
}

at::Tensor applyTransforms(const at::Tensor& image, const std::vector<Transform>& transforms, at::Generator& generator) {
  at::Tensor out = image;
  for (const Transform& t : transforms) {
    switch (t.kind) {
      case TransformKind::kPad: {
        const auto n = static_cast<int64_t>(t.values.at(0));
        out = at::constant_pad_nd(out, {n, n, n, n}, 0.5);
        break;
      }
      case TransformKind::kJitter: {
        const auto d = static_cast<int64_t>(t.values.at(0));
        if (d <= 0) break;
        const int64_t dy = pick(generator, d), dx = pick(generator, d);
        out = out.slice(2, dy, out.size(2) - d + dy).slice(3, dx, out.size(3) - d + dx);
        break;
      }
      case TransformKind::kScale: {
        const double s = t.values.at(static_cast<size_t>(pick(generator, static_cast<int64_t>(t.values.size()))));
        const auto h = static_cast<int64_t>(std::round(out.size(2) * s));
        const auto w = static_cast<int64_t>(std::round(out.size(3) * s));
        out = at::upsample_bilinear2d(out, {h, w}, /*align_corners=*/false);
        break;
      }
      case TransformKind::kRotate: {
        const double degrees = t.values.at(static_cast<size_t>(pick(generator, static_cast<int64_t>(t.values.size()))));
        const double r = degrees * M_PI / 180.0;
        const at::Tensor theta = at::tensor({std::cos(r), -std::sin(r), 0.0, std::sin(r), std::cos(r), 0.0}, at::kFloat)
                                     .view({1, 2, 3})
                                     .expand({out.size(0), 2, 3})
                                     .to(out.device());
        const at::Tensor grid = at::affine_grid_generator(theta, out.sizes(), /*align_corners=*/false);
        out = at::grid_sampler(out, grid, /*bilinear*/ 0, /*border*/ 1, /*align_corners=*/false);
        break;
      }
    }
  }
  return out;
}

at::Tensor regularization(const at::Tensor& image, const Regularizers& weights) {
  at::Tensor total = at::zeros({}, image.options());
  if (weights.l1 != 0) total = total + weights.l1 * (image - 0.5).abs().mean();
  if (weights.l2 != 0) total = total + weights.l2 * (image - 0.5).pow(2).mean();
  if (weights.tv != 0) {
    const at::Tensor dy = (image.slice(2, 1) - image.slice(2, 0, -1)).abs().mean();
    const at::Tensor dx = (image.slice(3, 1) - image.slice(3, 0, -1)).abs().mean();
    total = total + weights.tv * (dy + dx);
  }
  if (weights.blur != 0) {
    // Pull each pixel towards its 3x3 neighbourhood: suppresses high-frequency noise.
    const at::Tensor blurred = at::avg_pool2d(image, {3, 3}, {1, 1}, {1, 1}, false, /*count_include_pad=*/false).detach();
    total = total + weights.blur * (image - blurred).pow(2).mean();
  }
  return total;
}

at::Tensor imagenetNormalize(const at::Tensor& image) {
  const auto options = image.options();
  const at::Tensor mean = at::tensor({0.485, 0.456, 0.406}, at::kFloat).view({1, 3, 1, 1}).to(options);
  const at::Tensor std = at::tensor({0.229, 0.224, 0.225}, at::kFloat).view({1, 3, 1, 1}).to(options);
  return (image - mean) / std;
}

}  // namespace torchscope
