// Activation maximization: find the input that makes a channel, neuron, direction or logit
// fire most, by gradient ascent through libtorch's autograd. A session is a stepped job
// (stepped_job.h): driven from JS a chunk of steps at a time.
#pragma once

#include <ATen/ATen.h>

#include <memory>

#include "methods/image_params.h"
#include "methods/objective.h"
#include "methods/stepped_job.h"
#include "model/model_state.h"

namespace torchscope {

// Larger sides are refused before any work (a typo of 100000 would allocate until killed).
inline constexpr int64_t kMaxImageSide = 16384;

// Adam's epsilon, torch.optim.Adam's default (not an option).
inline constexpr double kAdamEps = 1e-8;

// Every field comes from the request: lib/methods/maximize.ts holds the defaults.
struct MaximizeSpec {
  ObjectiveSpec objective;  // one objective per batch element; its layer may be empty when every one is a logit
  ImageParamSpec image;
  std::vector<Transform> transforms;
  Regularizers regularizers;
  bool normalize = false;  // ImageNet normalization inside the loop
  double lr = 0, beta1 = 0, beta2 = 0;
  uint64_t seed = 0;
  NumericsOverride numerics;  // the call's precision / upcast over the model's
};

// Checks, before anything is allocated, that the image and Adam's state fit in memory (the
// activations come on top, checked by startMaximize for large images). JS thread.
void checkMaximizeFits(const MaximizeSpec& spec);

// A maximization session (compute thread): builds the program and the parameters. Its steps'
// progress is { objectives: number[] } (one per step run); result(best) -> { image, input,
// bestStep }: the current image, or with `best` the one that scored highest so far, on the CPU.
std::shared_ptr<SteppedJob> startMaximize(std::shared_ptr<ModelState> model, MaximizeSpec spec);

}  // namespace torchscope
