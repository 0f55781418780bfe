// The training forward pass of an SAE and its losses, per architecture, as SAELens 6.18's
// training classes compute them (sae_lens/saes/{sae,standard_sae,topk_sae,batchtopk_sae,
// jumprelu_sae}.py: TrainingSAE.training_forward_pass and each calculate_aux_loss):
//   input:    x - b_dec * apply_b_dec_to_input
//   standard: f = ReLU(x W_enc + b_enc); l1_loss = mean(coefficient * |f * |W_dec rows|_2|_p)
//   topk:     h = x W_enc + b_enc (times |W_dec rows| when rescaling); f = the k largest of h per
//             token with ReLU; decode divides by the norms again
//   batchtopk: as topk but ReLU first, then the k * tokens largest over the whole batch
//   topk, batchtopk: auxiliary_reconstruction_loss, the top d_in / 2 dead latents of h decoding
//             the residual (sae_in - sae_out, detached), times aux_loss_coefficient and
//             min(dead / (d_in / 2), 1); 0 without dead latents
//   jumprelu: f = h * 1[h > exp(log_threshold)] with the straight-through gradients of the
//             threshold (rectangle kernel of width `bandwidth`); l0_loss from the step
//             function's sum (or tanh(scale * f * |W_dec rows|)); pre_act_loss for dead latents
//   decode:   f W_dec + b_dec; mse_loss = mean over tokens of the squared error summed over d_in
// The operations are SAELens's, in its order (autograd sums the gradients a tensor receives in
// the order its uses were recorded, so the same graph rounds the same), but one: b_dec's gradient
// through x - b_dec is summed over the tokens before it meets W_enc^T, a vector-matrix product
// where autograd would run a GEMM as large as the encoder's (one of six per step), which rounds
// that gradient differently (parameters within 3e-7 relative of SAELens's after 50 steps).
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/names.h"

namespace torchscope {

// The trained parameters, in the order SAELens's classes register them (clip_grad_norm_ stacks
// the gradients' norms in that order).
struct SaeTrainParams {
  at::Tensor b_dec, W_dec, W_enc, b_enc;
  at::Tensor logThreshold;  // jumprelu
  std::vector<at::Tensor> list() const;
};

struct SaeLossSpec {
  SaeTrainArchitecture architecture = SaeTrainArchitecture::kStandard;
  bool applyBDecToInput = true;
  double lpNorm = 1;                 // standard
  double k = 0;                      // topk (an integer), batchtopk (mean latents per token)
  bool rescaleByDecoderNorm = true;  // topk, batchtopk
  double auxLossCoefficient = 1;     // topk, batchtopk
  double bandwidth = 0;              // jumprelu
  JumpReluSparsityLoss sparsityLoss = JumpReluSparsityLoss::kStep;
  double tanhScale = 4;                         // jumprelu 'tanh'
  std::optional<double> preActLossCoefficient;  // jumprelu
};

struct SaeForward {
  at::Tensor featureActs, hiddenPre, output;
  at::Tensor loss;
  // mse_loss, then the architecture's terms, named as SAELens names them.
  std::vector<std::pair<std::string, at::Tensor>> losses;
};

// One batch [tokens, d_in] (already scaled) through the SAE. `deadMask` [d_sae] (bool) marks
// the dead latents; `coefficient` is the warmed-up l1 (standard) or l0 (jumprelu) coefficient.
SaeForward trainingForward(const SaeLossSpec& spec, const SaeTrainParams& params, const at::Tensor& batch, const at::Tensor& deadMask,
                           double coefficient);

}  // namespace torchscope
