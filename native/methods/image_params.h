// The image side of activation maximization (feature visualization, as in Lucid): how the
// optimised parameters become an image, the random transforms applied each step, and the
// regularizers that keep the image natural.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "core/names.h"

namespace torchscope {

// Every field comes from the request: lib/methods/maximize.ts holds the defaults (Lucid's).
struct ImageParamSpec {
  Parameterization parameterization = Parameterization::kFft;
  ImageRange range = ImageRange::kSigmoid;  // how values reach [0, 1]
  bool decorrelate = false;                 // colours through ImageNet's colour correlation (3 channels)
  int64_t batch = 0, channels = 0, height = 0, width = 0;
  double decayPower = 0;           // fft: 1/f^decay spectrum scaling
  std::optional<at::Tensor> init;  // an image [B, C, H, W] in [0, 1] to start from
};

// The optimised tensor and the map from it to an image in [0, 1].
class ImageParam {
 public:
  ImageParam(const ImageParamSpec& spec, const at::Device& device, at::Generator& generator);
  at::Tensor& parameter() { return parameter_; }
  // [B, C, H, W] in [0, 1], differentiable with respect to parameter().
  at::Tensor image() const;
  // After an optimiser step: keeps a clamped pixel parameterization in range (projection).
  void project();

 private:
  at::Tensor toValid(const at::Tensor& raw) const;
  at::Tensor fromValid(const at::Tensor& image) const;

  ImageParamSpec spec_;
  at::Tensor parameter_;
  at::Tensor spectrumScale_;  // fft only
  at::Tensor colour_;         // [3, 3] decorrelation matrix (normalised)
};

struct Transform {
  TransformKind kind;
  std::vector<double> values;  // pad / jitter: one size in pixels; scale / rotate: choices
};

// Lucid's standard set: pad 12, jitter 8, scale 0.9..1.1, rotate -10..10 degrees, jitter 4.
std::vector<Transform> standardTransforms();
at::Tensor applyTransforms(const at::Tensor& image, const std::vector<Transform>& transforms, at::Generator& generator);

struct Regularizers {
  double l1 = 0, l2 = 0, tv = 0, blur = 0;
};
// Weighted penalty on the image (0 when every weight is 0).
at::Tensor regularization(const at::Tensor& image, const Regularizers& weights);

// (x - mean) / std with ImageNet's statistics.
at::Tensor imagenetNormalize(const at::Tensor& image);

}  // namespace torchscope
