// L-BFGS (Nocedal & Wright, Numerical Optimization, algorithms 7.4 and 7.5) for the smooth,
// convex objectives of logistic probes: a flat float64 parameter vector, the objective's value
// and gradient from one function, libtorch ops throughout (so it runs on the data's device).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <functional>
#include <utility>

namespace torchscope {

struct LbfgsOptions {
  int64_t maxIterations = 0;
  // Converged when gradientSize(gradient) is at most this (the caller scales it).
  double gradientTolerance = 0;
  // Default: the largest |entry|. A caller optimizing in other coordinates gives that of the
  // gradient in its own.
  std::function<double(const at::Tensor&)> gradientSize;
  int64_t history = 10;  // curvature pairs kept (scipy's maxcor)
};

struct LbfgsResult {
  at::Tensor x;
  int64_t iterations = 0;
  bool converged = false;  // the gradient tolerance was met
};

// The objective's value and gradient (shaped as x) at x.
using SmoothObjective = std::function<std::pair<double, at::Tensor>(const at::Tensor&)>;

// Minimizes from x0. Stops when the gradient tolerance is met, after maxIterations, or when no
// step along the search direction decreases the objective any more (it is then as close as
// float64 gets; `converged` tells whether the tolerance was met). `cancelled` is asked before
// each iteration: true raises ABORTED.
LbfgsResult minimizeLbfgs(const SmoothObjective& objective, at::Tensor x0, const LbfgsOptions& options,
                          const std::function<bool()>& cancelled);

}  // namespace torchscope
