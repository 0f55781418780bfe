// Training a sparse autoencoder as SAELens 6.18's SAETrainer does (sae_lens/training/
// sae_trainer.py), a stepped job (methods/stepped_job.h) fed one batch of activations per step
// from JS (SteppedJob::supply):
//   - initialised as SAELens initialises (kaiming-uniform W_dec from `seed` on the CPU's
//     generator, rows scaled to decoder_init_norm, W_enc = W_dec^T, zero biases, JumpReLU's
//     log_threshold = log(init_threshold)), or from given weights;
//   - with normalize_activations 'expected_average_only_in', the first batches estimate the
//     scale sqrt(d_in) / mean |x| (ActivationScaler) and every training batch is multiplied by it;
//   - each step (_train_step): the feature-sparsity window reset, the forward pass and losses
//     (sae/train_losses.h) with the dead latents (unfired for more than dead_feature_window
//     steps), the firing statistics, backward, gradients clipped to norm 1, Adam, then the
//     learning-rate and coefficient schedules (sae/train_schedule.h); 6.18 neither renormalises
//     W_dec's rows nor removes their gradients' parallel part between steps, so neither is done;
//   - saved as SAELens's save_inference_model saves: the scale folded in (W_enc * s, W_dec / s,
//     b_dec / s), topk's decoder norms folded when it rescales by them, JumpReLU's threshold
//     exp(log_threshold), BatchTopK as JumpReLU with its running threshold on every latent.
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <optional>

#include "methods/stepped_job.h"
#include "sae/train_losses.h"
#include "sae/train_schedule.h"

namespace torchscope {

// Every field comes from the request: lib/sae/train-options.ts holds the defaults.
struct SaeTrainSpec {
  SaeLossSpec loss;
  int64_t dIn = 0, dSae = 0;
  double coefficient = 0;  // standard's l1, jumprelu's l0
  int64_t coefficientWarmupSteps = 0;
  double topkThresholdLr = 0;  // batchtopk
  double initThreshold = 0;    // jumprelu
  std::optional<double> decoderInitNorm;
  uint64_t seed = 0;
  // Initial weights (all four, or none: then initialised from `seed`); threshold: jumprelu's.
  at::Tensor W_enc, W_dec, b_enc, b_dec, threshold;
  double beta1 = 0, beta2 = 0;
  LrScheduleSpec schedule;
  int64_t deadFeatureWindow = 0, featureSamplingWindow = 0;
  int64_t normEstimateBatches = 0;  // 0: no activation scaling
  int64_t checkpointEvery = 0;      // 0: none
  c10::Device device = c10::kCPU;
};

// Checks what can be checked before anything is allocated (INVALID_ARGUMENT / SHAPE). JS thread.
void checkSaeTrainSpec(const SaeTrainSpec& spec);

// The training job (compute thread: initialises the weights). Each step takes one supplied
// batch [tokens, d_in]: the first normEstimateBatches estimate the scale, the rest train. Its
// progress is { estimated, trained, trainedTokens, stats?, checkpoint? }: stats of the last
// batch supplied when it trained ({ loss, losses, mse, l0, explainedVariance, deadFeatures, lr,
// coefficient?, topkThreshold? }); checkpoint, when `trained` is a multiple of checkpointEvery,
// the saved form below. result() -> { saved: { tensors, sparsity, device }, params, scalingFactor,
// trained, trainedTokens, topkThreshold? }: the saved form's tensors (as SAELens saves them)
// and log10 feature sparsity, the parameters as trained, on the CPU.
std::shared_ptr<SteppedJob> startSaeTraining(SaeTrainSpec spec);

}  // namespace torchscope
