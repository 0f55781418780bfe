#include "methods/probe_lbfgs.h"

#include <cmath>
#include <deque>
#include <limits>

#include "core/errors.h"

namespace torchscope {

namespace {

double dotValue(const at::Tensor& a, const at::Tensor& b) { return at::dot(a, b).item<double>(); }
double maxAbs(const at::Tensor& a) { return a.numel() == 0 ? 0.0 : a.abs().max().item<double>(); }

struct CurvaturePair {
  at::Tensor s, y;
  double rho;
};

// -H g, H the inverse Hessian estimate of the pairs (Nocedal & Wright, algorithm 7.4).
at::Tensor searchDirection(const std::deque<CurvaturePair>& pairs, const at::Tensor& gradient) {
  at::Tensor q = gradient.clone();
  if (pairs.empty()) return -q;
  std::vector<double> alphas(pairs.size());
  for (size_t i = pairs.size(); i-- > 0;) {
    alphas[i] = pairs[i].rho * dotValue(pairs[i].s, q);
    q.sub_(pairs[i].y, alphas[i]);
  }
  const CurvaturePair& last = pairs.back();
  q.mul_(dotValue(last.s, last.y) / dotValue(last.y, last.y));
  for (size_t i = 0; i < pairs.size(); ++i) {
    const double beta = pairs[i].rho * dotValue(pairs[i].y, q);
    q.add_(pairs[i].s, alphas[i] - beta);
  }
  return -q;
}

struct Trial {
  at::Tensor x, gradient;
  double value = 0;
};

// A step along `direction` (slope `slope` < 0 at t = 0) that decreases the objective enough
// (Armijo), or, where the decrease is lost in rounding, whose slope shows the minimum along the
// line was reached (Hager & Zhang's approximate Wolfe conditions: the gradient is exact to
// far below the value's rounding). Backtracks by safeguarded quadratic interpolation.
bool lineSearch(const SmoothObjective& objective, const at::Tensor& x, double value, const at::Tensor& direction, double slope, double step,
                Trial& out) {
  constexpr double kArmijo = 1e-4, kCurvature = 0.9, kOvershoot = 0.1;
  constexpr int kTrials = 60;
  const double roundingSlack = 1e-12 * std::fabs(value);
  for (int trial = 0; trial < kTrials; ++trial) {
    out.x = x + step * direction;
    auto [next, gradient] = objective(out.x);
    out.value = next;
    out.gradient = std::move(gradient);
    if (std::isfinite(next)) {
      if (next <= value + kArmijo * step * slope) return true;
      const double slopeThere = dotValue(out.gradient, direction);
      if (next <= value + roundingSlack && slopeThere >= kCurvature * slope && slopeThere <= (2 * kOvershoot - 1) * slope) return true;
    }
    // The minimizer of the quadratic through value, slope and next, kept within [0.1, 0.5] of the step.
    const double curvature = std::isfinite(next) ? next - value - slope * step : std::numeric_limits<double>::infinity();
    const double interpolated = curvature > 0 ? -slope * step * step / (2 * curvature) : 0.5 * step;
    step = std::min(0.5 * step, std::max(0.1 * step, interpolated));
  }
  return false;
}

}  // namespace

LbfgsResult minimizeLbfgs(const SmoothObjective& objective, at::Tensor x0, const LbfgsOptions& options,
                          const std::function<bool()>& cancelled) {
  LbfgsResult result;
  result.x = std::move(x0);
  auto [value, gradient] = objective(result.x);
  TS_CHECK(std::isfinite(value), code::kInvalidArgument, "the probe's loss is not finite at the start");
  const auto small = [&options](const at::Tensor& g) {
    return (options.gradientSize ? options.gradientSize(g) : maxAbs(g)) <= options.gradientTolerance;
  };
  std::deque<CurvaturePair> pairs;
  while (true) {
    result.converged = small(gradient);
    if (result.converged || result.iterations >= options.maxIterations) break;
    TS_CHECK(!cancelled(), code::kAborted, "the probe's fit was aborted after ", result.iterations, " iterations");
    at::Tensor direction = searchDirection(pairs, gradient);
    double slope = dotValue(gradient, direction);
    if (!(slope < 0)) {
      // Not a descent direction (rounding in the pairs): start the estimate again.
      pairs.clear();
      direction = -gradient;
      slope = dotValue(gradient, direction);
    }
    // Without curvature pairs the direction is the gradient's scale: the first step is kept
    // short, as PyTorch's LBFGS does.
    const double step = pairs.empty() ? std::min(1.0, 1.0 / gradient.abs().sum().item<double>()) : 1.0;
    Trial trial;
    if (!lineSearch(objective, result.x, value, direction, slope, step, trial)) break;
    at::Tensor s = trial.x - result.x;
    at::Tensor y = trial.gradient - gradient;
    const double sy = dotValue(s, y);
    const bool moved = maxAbs(s) > std::numeric_limits<double>::epsilon() * std::max(1.0, maxAbs(result.x));
    if (sy > std::numeric_limits<double>::epsilon() * dotValue(y, y)) {
      if (static_cast<int64_t>(pairs.size()) == options.history) pairs.pop_front();
      pairs.push_back({std::move(s), std::move(y), 1.0 / sy});
    }
    result.x = std::move(trial.x);
    gradient = std::move(trial.gradient);
    value = trial.value;
    ++result.iterations;
    if (!moved) {
      result.converged = small(gradient);
      break;
    }
  }
  return result;
}

}  // namespace torchscope
