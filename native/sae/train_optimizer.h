// The optimizer step of SAE training as SAELens's trainer takes it (sae_lens/training/
// sae_trainer.py _train_step): the gradients clipped to a total norm of 1 with
// torch.nn.utils.clip_grad_norm_ (its foreach path, which the CPU takes), then
// torch.optim.Adam's step. Adam is written out rather than taken from torch::optim: the C++
// Adam updates the first moment with mul/add where Python's single-tensor path uses lerp, and
// the last-bit difference moves a top-k selection within a few steps.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace torchscope {

// Scales the gradients of `parameters` (each defined) so their total 2-norm is at most `maxNorm`;
// returns that norm before clipping.
at::Tensor clipGradNorm(const std::vector<at::Tensor>& parameters, double maxNorm);

// torch.optim.Adam (no weight decay, no amsgrad), one state per parameter, stepped together.
class Adam {
 public:
  Adam(std::vector<at::Tensor> parameters, double beta1, double beta2);
  // One step at learning rate `lr` over the parameters' current gradients.
  void step(double lr);
  // Drops the gradients (Optimizer.zero_grad(set_to_none=True)).
  void zeroGrad();
  int64_t bytes() const;

 private:
  std::vector<at::Tensor> parameters_, expAvg_, expAvgSq_;
  double beta1_, beta2_;
  int64_t step_ = 0;
};

}  // namespace torchscope
