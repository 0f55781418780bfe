#include "sae/train_optimizer.h"

#include <ATen/core/grad_mode.h>

#include <cmath>

namespace torchscope {

namespace {

// Adam's epsilon, torch.optim.Adam's default (SAELens does not set it).
constexpr double kAdamEps = 1e-8;

std::vector<at::Tensor> gradients(const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> grads;
  grads.reserve(parameters.size());
  for (const at::Tensor& parameter : parameters) grads.push_back(parameter.grad());
  return grads;
}

}  // namespace

at::Tensor clipGradNorm(const std::vector<at::Tensor>& parameters, double maxNorm) {
  at::NoGradGuard noGrad;
  std::vector<at::Tensor> grads = gradients(parameters);
  const at::Tensor total = at::linalg_vector_norm(at::stack(at::_foreach_norm(grads, 2.0)), 2.0);
  // max_norm / (total + 1e-6) is Tensor.__rtruediv__: reciprocal() * max_norm.
  const at::Tensor coefficient = at::clamp((total + 1e-6).reciprocal() * maxNorm, std::nullopt, 1.0);
  at::_foreach_mul_(grads, coefficient);
  return total;
}

Adam::Adam(std::vector<at::Tensor> parameters, double beta1, double beta2)
    : parameters_(std::move(parameters)), beta1_(beta1), beta2_(beta2) {
  for (const at::Tensor& parameter : parameters_) {
    expAvg_.push_back(at::zeros_like(parameter, at::MemoryFormat::Preserve));
    expAvgSq_.push_back(at::zeros_like(parameter, at::MemoryFormat::Preserve));
  }
}

void Adam::step(double lr) {
  at::NoGradGuard noGrad;
  step_ += 1;
  const double t = static_cast<double>(step_);
  const double biasCorrection1 = 1 - std::pow(beta1_, t);
  const double biasCorrection2 = 1 - std::pow(beta2_, t);
  const double stepSize = lr / biasCorrection1;
  const double biasCorrection2Sqrt = std::pow(biasCorrection2, 0.5);
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const at::Tensor& grad = parameters_[i].grad();
    expAvg_[i].lerp_(grad, 1 - beta1_);
    expAvgSq_[i].mul_(beta2_).addcmul_(grad, grad, 1 - beta2_);
    const at::Tensor denom = (expAvgSq_[i].sqrt() / biasCorrection2Sqrt).add_(kAdamEps);
    parameters_[i].addcdiv_(expAvg_[i], denom, -stepSize);
  }
}

void Adam::zeroGrad() {
  for (at::Tensor& parameter : parameters_) parameter.mutable_grad() = at::Tensor();
}

int64_t Adam::bytes() const {
  int64_t total = 0;
  for (size_t i = 0; i < parameters_.size(); ++i) total += static_cast<int64_t>(expAvg_[i].nbytes() + expAvgSq_[i].nbytes());
  return total;
}

}  // namespace torchscope
