#include "sae/sae.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <string>

#include "core/errors.h"

namespace torchscope {

namespace {

// SAELens's layer_norm epsilon (on the std, not the variance).
constexpr double kLayerNormEpsilon = 1e-5;

void requireShape(const at::Tensor& tensor, const char* key, at::IntArrayRef shape) {
  TS_CHECK(tensor.defined(), code::kInvalidArgument, "the SAE has no '", key, "'");
  TS_CHECK(tensor.sizes() == shape, code::kInvalidArgument, "the SAE's '", key, "' is ", tensor.sizes(), ", expected ", shape);
}

void requireAbsent(const at::Tensor& tensor, const char* key, const char* architecture) {
  TS_CHECK(!tensor.defined(), code::kInvalidArgument, "a ", architecture, " SAE has no '", key, "'");
}

}  // namespace

Sae::Sae(SaeSpec spec) : spec_(std::move(spec)) {
  const char* architecture = nameOf(kSaeArchitectures, spec_.architecture);
  TS_CHECK(spec_.W_enc.defined() && spec_.W_enc.dim() == 2, code::kInvalidArgument, "the SAE's 'W_enc' must be [d_in, d_sae]");
  TS_CHECK(spec_.W_dec.defined() && spec_.W_dec.dim() == 2, code::kInvalidArgument, "the SAE's 'W_dec' must be [d_sae, d_out]");
  TS_CHECK(spec_.W_enc.is_floating_point(), code::kInvalidArgument, "the SAE's weights must be floating point, got ",
           spec_.W_enc.scalar_type());
  const int64_t in = dIn(), width = dSae(), out = dOut();
  requireShape(spec_.W_dec, "W_dec", {width, out});
  requireShape(spec_.b_dec, "b_dec", {out});
  const bool jump = spec_.architecture == SaeArchitecture::kJumpRelu || spec_.architecture == SaeArchitecture::kJumpReluTranscoder;
  if (jump) {
    requireShape(spec_.threshold, "threshold", {width});
  } else {
    requireAbsent(spec_.threshold, "threshold", architecture);
  }
  if (spec_.architecture == SaeArchitecture::kGated) {
    requireAbsent(spec_.b_enc, "b_enc", architecture);
    requireShape(spec_.b_gate, "b_gate", {width});
    requireShape(spec_.b_mag, "b_mag", {width});
    requireShape(spec_.r_mag, "r_mag", {width});
  } else {
    requireShape(spec_.b_enc, "b_enc", {width});
    for (auto [tensor, key] : {std::pair{&spec_.b_gate, "b_gate"}, {&spec_.b_mag, "b_mag"}, {&spec_.r_mag, "r_mag"}}) {
      requireAbsent(*tensor, key, architecture);
    }
  }
  if (spec_.architecture == SaeArchitecture::kSkipTranscoder) {
    requireShape(spec_.W_skip, "W_skip", {out, in});
  } else {
    requireAbsent(spec_.W_skip, "W_skip", architecture);
  }
  if (transcoder()) {
    TS_CHECK(!spec_.applyBDecToInput, code::kInvalidArgument, "a transcoder never subtracts b_dec from its input");
  } else {
    TS_CHECK(out == in, code::kInvalidArgument, "an SAE's output is its input's size: W_dec is [", width, ", ", out, "], W_enc [", in, ", ",
             width, "]");
  }
  if (spec_.architecture == SaeArchitecture::kTopK) {
    TS_CHECK(spec_.k > 0 && spec_.k <= width, code::kInvalidArgument, "a topk SAE's k must be in [1, ", width, "], got ", spec_.k);
  } else {
    TS_CHECK(!spec_.rescaleByDecoderNorm, code::kInvalidArgument, "only a topk SAE rescales by its decoder's norms");
  }
  for (const at::Tensor* tensor :
       {&spec_.b_enc, &spec_.W_dec, &spec_.b_dec, &spec_.threshold, &spec_.b_gate, &spec_.b_mag, &spec_.r_mag, &spec_.W_skip}) {
    if (!tensor->defined()) continue;
    TS_CHECK(tensor->scalar_type() == spec_.W_enc.scalar_type() && tensor->device() == spec_.W_enc.device(), code::kInvalidArgument,
             "the SAE's tensors must share one dtype and device");
  }
}

bool Sae::transcoder() const {
  return spec_.architecture == SaeArchitecture::kTranscoder || spec_.architecture == SaeArchitecture::kSkipTranscoder ||
         spec_.architecture == SaeArchitecture::kJumpReluTranscoder;
}

int64_t Sae::bytes() const {
  int64_t total = 0;
  for (const at::Tensor* tensor : {&spec_.W_enc, &spec_.b_enc, &spec_.W_dec, &spec_.b_dec, &spec_.threshold, &spec_.b_gate, &spec_.b_mag,
                                   &spec_.r_mag, &spec_.W_skip}) {
    if (tensor->defined()) total += static_cast<int64_t>(tensor->nbytes());
  }
  return total;
}

bool Sae::headsSplit(const at::Tensor& x) const { return spec_.reshapeHeads && x.dim() >= 2 && x.size(-1) != dIn(); }

at::Tensor Sae::flattened(const at::Tensor& x) const {
  at::Tensor cast = x.to(spec_.W_enc.options());
  if (headsSplit(cast)) cast = cast.flatten(-2);
  TS_CHECK(cast.dim() >= 1 && cast.size(-1) == dIn(), code::kShape, "the SAE takes [..., ", dIn(), "]",
           spec_.reshapeHeads ? " (heads x d_head)" : "", ", got ", x.sizes());
  return cast;
}

at::Tensor Sae::normalizedInput(const at::Tensor& x) const {
  const at::Tensor flat = flattened(x);
  switch (spec_.normalization) {
    case SaeNormalization::kConstantNormRescale: return flat * (std::sqrt(static_cast<double>(dIn())) / flat.norm(2, -1, true));
    case SaeNormalization::kLayerNorm: {
      const at::Tensor centred = flat - flat.mean(-1, true);
      return centred / (centred.std(-1, /*unbiased=*/true, /*keepdim=*/true) + kLayerNormEpsilon);
    }
    case SaeNormalization::kNone: return flat;
  }
  return flat;
}

at::Tensor Sae::decoderNorms() const { return spec_.W_dec.norm(2, -1); }

namespace {

// bias + x W over x's last dim, any leading dims: one fused GEMM (addmm), as a Linear computes it.
at::Tensor affine(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias) {
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = weight.size(1);
  return at::addmm(bias, x.reshape({-1, x.size(-1)}), weight).view(shape);
}

}  // namespace

at::Tensor Sae::featuresPre(const at::Tensor& x) const {
  at::Tensor in = normalizedInput(x);
  if (spec_.applyBDecToInput) in = in - spec_.b_dec;
  if (spec_.architecture == SaeArchitecture::kGated) return affine(in, spec_.W_enc * spec_.r_mag.exp(), spec_.b_mag);
  return affine(in, spec_.W_enc, spec_.b_enc);
}

at::Tensor Sae::features(const at::Tensor& pre, const at::Tensor& x) const {
  TS_CHECK(pre.dim() >= 1 && pre.size(-1) == dSae(), code::kShape, "the SAE's features are [..., ", dSae(), "], got ", pre.sizes());
  switch (spec_.architecture) {
    case SaeArchitecture::kStandard:
    case SaeArchitecture::kTranscoder:
    case SaeArchitecture::kSkipTranscoder: return at::relu(pre);
    case SaeArchitecture::kJumpRelu:
    case SaeArchitecture::kJumpReluTranscoder: return at::relu(pre) * (pre > spec_.threshold);
    case SaeArchitecture::kTopK: {
      const at::Tensor scored = spec_.rescaleByDecoderNorm ? pre * decoderNorms() : pre;
      auto [values, indices] = at::topk(scored, spec_.k, -1);
      return at::zeros_like(scored).scatter(-1, indices, at::relu(values));
    }
    case SaeArchitecture::kGated: {
      at::Tensor in = normalizedInput(x);
      if (spec_.applyBDecToInput) in = in - spec_.b_dec;
      return (affine(in, spec_.W_enc, spec_.b_gate) > 0).to(pre.scalar_type()) * at::relu(pre);
    }
  }
  return pre;
}

at::Tensor Sae::decode(const at::Tensor& features, const at::Tensor& x) const {
  TS_CHECK(features.dim() >= 1 && features.size(-1) == dSae(), code::kShape, "the SAE decodes [..., ", dSae(), "] features, got ",
           features.sizes());
  const at::Tensor scaled =
      spec_.rescaleByDecoderNorm ? features.to(spec_.W_dec.scalar_type()) / decoderNorms() : features.to(spec_.W_dec.scalar_type());
  at::Tensor out = affine(scaled, spec_.W_dec, spec_.b_dec);
  const bool undoes = !transcoder() && spec_.normalization != SaeNormalization::kNone;
  const bool skips = spec_.architecture == SaeArchitecture::kSkipTranscoder;
  if (!x.defined()) {
    TS_CHECK(!undoes && !skips && !spec_.reshapeHeads, code::kInvalidArgument,
             "decoding this SAE needs the input it encoded (to undo its normalization, add its skip term or give its heads' shape)");
    return out;
  }
  if (skips) out = out + at::matmul(flattened(x), spec_.W_skip.t());  // the raw input, as SAELens and sparsify
  if (undoes) {
    const at::Tensor flat = flattened(x);
    if (spec_.normalization == SaeNormalization::kConstantNormRescale) {
      out = out / (std::sqrt(static_cast<double>(dIn())) / flat.norm(2, -1, true));
    } else {
      const at::Tensor mean = flat.mean(-1, true);
      out = out * (flat - mean).std(-1, /*unbiased=*/true, /*keepdim=*/true) + mean;
    }
  }
  if (headsSplit(x) && !transcoder()) out = out.unflatten(-1, x.sizes().slice(x.dim() - 2));
  return out;
}

at::Tensor Sae::errorTerm(const at::Tensor& x, const at::Tensor& target) const {
  at::NoGradGuard noGrad;
  const at::Tensor output = forward(x);
  TS_CHECK(output.sizes() == target.sizes(), code::kShape, "the SAE's output is ", output.sizes(), ", its target ", target.sizes());
  return target - output;
}

}  // namespace torchscope
