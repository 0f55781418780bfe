// A sparse autoencoder (or transcoder) as SAELens computes it (sae_lens/saes/*.py), whatever the
// file it came from (lib/sae/ reads and checks the files) and whatever model format it is spliced
// into. Every step is a function of tensors, so a spliced program runs the same math
// (torchscript/sae_ops.h) and autograd flows through it.
//   input:  cast to the SAE's dtype; hook_z's [..., heads, d_head] flattened (where not
//           already); normalized (constant_norm_rescale: x * sqrt(d_in) / |x| per token;
//           layer_norm: (x - mean) / (unbiased std + 1e-5)); minus b_dec when
//           apply_b_dec_to_input (never for transcoders)
//   pre:    x' W_enc + b_enc (gated: the magnitude's, x' (W_enc * exp(r_mag)) + b_mag)
//   post:   standard ReLU; jumprelu ReLU(h) * (h > threshold); topk: the k largest of h (times
//           the decoder rows' norms when rescaling), ReLU on those, 0 elsewhere; gated
//           1[x' W_enc + b_gate > 0] * ReLU(pre); transcoders ReLU or JumpReLU
//   decode: f (divided by the decoder norms when rescaling) W_dec + b_dec (+ the raw input
//           times W_skip^T for skip transcoders, which SAELens adds in forward); the
//           normalization undone with the input's statistics (layer_norm: y * std + mean,
//           SAELens's inverse); hook_z's heads unflattened; transcoders undo none
//   error:  target - decode(encode(x)) of the clean input, without gradient: an edit of the
//           features still changes the output.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

#include "core/names.h"

namespace torchscope {

struct SaeSpec {
  SaeArchitecture architecture = SaeArchitecture::kStandard;
  SaeNormalization normalization = SaeNormalization::kNone;
  bool applyBDecToInput = true;
  bool reshapeHeads = false;  // reshape_activations 'hook_z'
  int64_t k = 0;              // topk
  bool rescaleByDecoderNorm = false;
  // W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_out], b_dec [d_out], threshold [d_sae],
  // b_gate / b_mag / r_mag [d_sae], W_skip [d_out, d_in]; undefined where the architecture has none.
  at::Tensor W_enc, b_enc, W_dec, b_dec, threshold, b_gate, b_mag, r_mag, W_skip;
};

class Sae {
 public:
  // Checks that the tensors fit the architecture and each other (INVALID_ARGUMENT naming the key).
  explicit Sae(SaeSpec spec);

  int64_t dIn() const { return spec_.W_enc.size(0); }
  int64_t dSae() const { return spec_.W_enc.size(1); }
  int64_t dOut() const { return spec_.W_dec.size(1); }
  bool transcoder() const;
  const SaeSpec& spec() const { return spec_; }
  int64_t bytes() const;

  // The pre-activation of `x` (the value at the SAE's hook point, any leading dims).
  at::Tensor featuresPre(const at::Tensor& x) const;
  // The features from the pre-activation (gated also needs `x`, for its gate).
  at::Tensor features(const at::Tensor& pre, const at::Tensor& x) const;
  // The output from features; `x`, the input encoded, undoes the normalization and gives the
  // output's shape (and a skip transcoder's skip term). Undefined `x`: no normalization to undo
  // (INVALID_ARGUMENT for an SAE that has one, or a skip transcoder).
  at::Tensor decode(const at::Tensor& features, const at::Tensor& x) const;
  at::Tensor forward(const at::Tensor& x) const { return decode(features(featuresPre(x), x), x); }
  // target - forward(x), without gradient; `target` is x itself for an SAE, the output point's
  // value for a transcoder. In the promoted dtype, as SAELens's x - recon.
  at::Tensor errorTerm(const at::Tensor& x, const at::Tensor& target) const;

 private:
  // x as the encoder takes it, before b_dec: cast, flattened, normalized.
  at::Tensor normalizedInput(const at::Tensor& x) const;
  at::Tensor flattened(const at::Tensor& x) const;
  // hook_z's input as TransformerLens gives it, [..., heads, d_head]; a hook point holding the
  // heads side by side already ([..., heads * d_head]: an output projection's input) is not.
  bool headsSplit(const at::Tensor& x) const;
  at::Tensor decoderNorms() const;

  SaeSpec spec_;
};

}  // namespace torchscope
