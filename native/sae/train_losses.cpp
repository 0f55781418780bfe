#include "sae/train_losses.h"

#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>

namespace torchscope {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

at::Tensor rectangle(const at::Tensor& x) { return ((x > -0.5) & (x < 0.5)).to(x.scalar_type()); }

// JumpReLU's activation: x * 1[x > threshold], with the threshold's pseudo-derivative.
struct JumpReluFunction : public torch::autograd::Function<JumpReluFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& threshold, double bandwidth) {
    ctx->save_for_backward({x, threshold});
    ctx->saved_data["bandwidth"] = bandwidth;
    return x * (x > threshold);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &threshold = saved[1];
    const double bandwidth = ctx->saved_data["bandwidth"].toDouble();
    const at::Tensor& grad = grads[0];
    const at::Tensor xGrad = (x > threshold) * grad;  // no straight-through estimate for x
    const at::Tensor thresholdGrad = at::sum(-(threshold / bandwidth) * rectangle((x - threshold) / bandwidth) * grad, 0);
    return {xGrad, thresholdGrad, at::Tensor()};
  }
};

// The Heaviside step 1[x > threshold] of the L0 loss: a gradient for the threshold only.
struct StepFunction : public torch::autograd::Function<StepFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& threshold, double bandwidth) {
    ctx->save_for_backward({x, threshold});
    ctx->saved_data["bandwidth"] = bandwidth;
    return (x > threshold).to(x.scalar_type());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor &x = saved[0], &threshold = saved[1];
    const double bandwidth = ctx->saved_data["bandwidth"].toDouble();
    const at::Tensor thresholdGrad = at::sum(rectangle((x - threshold) / bandwidth) * (-(1.0 / bandwidth)) * grads[0], 0);
    return {at::Tensor(), thresholdGrad, at::Tensor()};
  }
};

// The pre-activation (x - b_dec * apply_b_dec_to_input) W_enc + b_enc, computed as SAELens computes
// it. Autograd would give b_dec its gradient through x - b_dec by first forming that input's
// [tokens, d_in] gradient, a GEMM as large as the encoder's, only to sum it over the tokens; this
// backward takes the sum first: -(sum over tokens of the pre-activation's gradient) W_enc^T, a
// vector-matrix product. The same value, rounded differently; W_enc's and b_enc's gradients are
// autograd's (mm's `input^T grad`, the add's sum over tokens).
struct EncoderFunction : public torch::autograd::Function<EncoderFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& batch, const at::Tensor& b_dec, const at::Tensor& W_enc,
                            const at::Tensor& b_enc, bool applyBDec) {
    const at::Tensor input = batch - b_dec * c10::Scalar(applyBDec);
    ctx->saved_data["input"] = input;
    ctx->saved_data["W_enc"] = W_enc;
    ctx->saved_data["applyBDec"] = applyBDec;
    return at::matmul(input, W_enc) + b_enc;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const at::Tensor input = ctx->saved_data["input"].toTensor(), W_enc = ctx->saved_data["W_enc"].toTensor();
    const at::Tensor& grad = grads[0];
    const at::Tensor summed = grad.sum(0);
    const at::Tensor bDecGrad = ctx->saved_data["applyBDec"].toBool() ? -at::matmul(summed, W_enc.t()) : at::Tensor();
    return {at::Tensor(), bDecGrad, input.t().mm(grad), summed, at::Tensor()};
  }
};

at::Tensor rowNorms(const at::Tensor& W_dec) { return at::linalg_vector_norm(W_dec, 2, at::IntArrayRef{-1}, false, std::nullopt); }

// TopK: the k largest per token, ReLU on them, 0 elsewhere.
at::Tensor topK(const at::Tensor& hidden, int64_t k) {
  auto [values, indices] = at::topk(hidden, k, -1, /*largest=*/true, /*sorted=*/false);
  const at::Tensor kept = values.relu();
  at::Tensor out = at::zeros_like(hidden);
  out.scatter_(-1, indices, kept);
  return out;
}

// BatchTopK: ReLU, then the k * tokens largest of the whole batch.
at::Tensor batchTopK(const at::Tensor& hidden, double k) {
  const at::Tensor acts = hidden.relu();
  const at::Tensor flat = acts.flatten();
  const int64_t tokens = acts.numel() / acts.size(-1);
  auto [values, indices] = at::topk(flat, static_cast<int64_t>(k * static_cast<double>(tokens)), -1);
  return at::zeros_like(flat).scatter(-1, indices, values).reshape(acts.sizes());
}

// TopKTrainingSAE.decode: the norms divided out again (as `* (1 / norm)`: Tensor.__rtruediv__).
at::Tensor decode(const SaeLossSpec& spec, const SaeTrainParams& p, const at::Tensor& features) {
  const bool rescales = spec.rescaleByDecoderNorm &&
                        (spec.architecture == SaeTrainArchitecture::kTopK || spec.architecture == SaeTrainArchitecture::kBatchTopK);
  const at::Tensor scaled = rescales ? features * (rowNorms(p.W_dec).reciprocal() * 1) : features;
  return at::matmul(scaled, p.W_dec) + p.b_dec;
}

// calculate_topk_aux_loss: the top dead latents reconstruct what the live ones missed.
at::Tensor topKAuxLoss(const SaeLossSpec& spec, const SaeTrainParams& p, const at::Tensor& batch, const at::Tensor& output,
                       const at::Tensor& hidden, const at::Tensor& deadMask) {
  const int64_t dead = deadMask.sum().item<int64_t>();
  if (dead == 0) return at::zeros({}, output.options());
  const at::Tensor residual = (batch - output).detach();
  const int64_t half = batch.size(-1) / 2;
  const double scale = std::min(static_cast<double>(dead) / static_cast<double>(half), 1.0);
  const at::Tensor candidates = at::where(deadMask.unsqueeze(0), hidden, -std::numeric_limits<double>::infinity());
  auto [values, indices] = candidates.topk(std::min(half, dead), -1, /*largest=*/true, /*sorted=*/false);
  at::Tensor acts = at::zeros_like(hidden);
  acts.scatter_(-1, indices, values);
  const at::Tensor reconstruction = decode(spec, p, acts);
  return (reconstruction - residual).pow(2).sum(-1).mean() * (spec.auxLossCoefficient * scale);
}

}  // namespace

std::vector<at::Tensor> SaeTrainParams::list() const {
  std::vector<at::Tensor> out = {b_dec, W_dec, W_enc, b_enc};
  if (logThreshold.defined()) out.push_back(logThreshold);
  return out;
}

SaeForward trainingForward(const SaeLossSpec& spec, const SaeTrainParams& p, const at::Tensor& batch, const at::Tensor& deadMask,
                           double coefficient) {
  SaeForward out;
  out.hiddenPre = EncoderFunction::apply(batch, p.b_dec, p.W_enc, p.b_enc, spec.applyBDecToInput);
  at::Tensor threshold;
  switch (spec.architecture) {
    case SaeTrainArchitecture::kStandard: out.featureActs = at::relu(out.hiddenPre); break;
    case SaeTrainArchitecture::kTopK:
    case SaeTrainArchitecture::kBatchTopK:
      if (spec.rescaleByDecoderNorm) out.hiddenPre = out.hiddenPre * rowNorms(p.W_dec);
      out.featureActs = spec.architecture == SaeTrainArchitecture::kTopK ? topK(out.hiddenPre, static_cast<int64_t>(spec.k))
                                                                         : batchTopK(out.hiddenPre, spec.k);
      break;
    case SaeTrainArchitecture::kJumpRelu:
      out.featureActs = JumpReluFunction::apply(out.hiddenPre, p.logThreshold.exp(), spec.bandwidth);
      break;
  }
  out.output = decode(spec, p, out.featureActs);
  const std::vector<at::Tensor> compared = at::broadcast_tensors({out.output, batch});  // F.mse_loss's
  out.losses.emplace_back("mse_loss", at::mse_loss(compared[0], compared[1], at::Reduction::None).sum(-1).mean());

  switch (spec.architecture) {
    case SaeTrainArchitecture::kStandard: {
      const at::Tensor weighted = out.featureActs * rowNorms(p.W_dec);
      const at::Tensor sparsity = at::linalg_vector_norm(weighted, spec.lpNorm, at::IntArrayRef{-1}, false, std::nullopt);
      out.losses.emplace_back("l1_loss", (sparsity * coefficient).mean());
      break;
    }
    case SaeTrainArchitecture::kTopK:
    case SaeTrainArchitecture::kBatchTopK:
      out.losses.emplace_back("auxiliary_reconstruction_loss", topKAuxLoss(spec, p, batch, out.output, out.hiddenPre, deadMask));
      break;
    case SaeTrainArchitecture::kJumpRelu: {
      threshold = p.logThreshold.exp();  // a second exp, as SAELens's `self.threshold` property
      const bool needsNorms = spec.sparsityLoss == JumpReluSparsityLoss::kTanh || spec.preActLossCoefficient.has_value();
      const at::Tensor decoderNorms = needsNorms ? rowNorms(p.W_dec) : at::Tensor();
      const at::Tensor perToken = spec.sparsityLoss == JumpReluSparsityLoss::kStep
                                      ? at::sum(StepFunction::apply(out.hiddenPre, threshold, spec.bandwidth), -1)
                                      : at::tanh(out.featureActs * spec.tanhScale * decoderNorms).sum(-1);
      out.losses.emplace_back("l0_loss", (perToken * coefficient).mean());
      if (spec.preActLossCoefficient) {
        at::Tensor preAct;
        if (!deadMask.any().item<bool>()) {
          preAct = at::zeros({}, out.hiddenPre.options());
        } else {
          preAct = ((threshold - out.hiddenPre).relu() * deadMask * decoderNorms).sum(-1).mean() * *spec.preActLossCoefficient;
        }
        out.losses.emplace_back("pre_act_loss", preAct);
      }
      break;
    }
  }
  out.loss = out.losses[0].second;
  for (size_t i = 1; i < out.losses.size(); ++i) out.loss = out.loss + out.losses[i].second;
  return out;
}

}  // namespace torchscope
