// Every enumeration whose names cross the JS boundary, one table each: requests are parsed with
// them, bindings/info.cpp exports them, and test/constants.test.ts compares them with lib's own
// lists, so a name is spelled once on each side and checked.
#pragma once

#include <c10/core/ScalarType.h>

#include <array>
#include <string>
#include <utility>

#include "core/errors.h"

namespace torchscope {

template <typename T>
struct Named {
  const char* name;
  T value;
};

// The precision a model's programs compute in (program/precision.h).
enum class Precision { kFloat32, kBFloat16, kFloat16 };
inline constexpr std::array<Named<Precision>, 3> kPrecisions = {
    {{"fp32", Precision::kFloat32}, {"bf16", Precision::kBFloat16}, {"fp16", Precision::kFloat16}}};

// dtypes as JS sees them ('float32', 'int64', ...).
inline constexpr std::array<Named<at::ScalarType>, 10> kDtypes = {{
    {"float32", at::kFloat},
    {"float64", at::kDouble},
    {"float16", at::kHalf},
    {"bfloat16", at::kBFloat16},
    {"int8", at::kChar},
    {"uint8", at::kByte},
    {"int16", at::kShort},
    {"int32", at::kInt},
    {"int64", at::kLong},
    {"bool", at::kBool},
}};

enum class AttributionMethod {
  kSaliency,
  kInputXGradient,
  kIntegratedGradients,
  kLayerIntegratedGradients,
  kLayerGradCam,
  kOcclusion,
  kFeatureAblation
};
inline constexpr std::array<Named<AttributionMethod>, 7> kAttributionMethods = {{
    {"saliency", AttributionMethod::kSaliency},
    {"inputXGradient", AttributionMethod::kInputXGradient},
    {"integratedGradients", AttributionMethod::kIntegratedGradients},
    {"layerIntegratedGradients", AttributionMethod::kLayerIntegratedGradients},
    {"layerGradCam", AttributionMethod::kLayerGradCam},
    {"occlusion", AttributionMethod::kOcclusion},
    {"featureAblation", AttributionMethod::kFeatureAblation},
}};

// Integrated gradients' approximation of the path integral (Captum's approximation_methods).
enum class Integration { kGaussLegendre, kRiemannLeft, kRiemannRight, kRiemannMiddle, kRiemannTrapezoid };
inline constexpr std::array<Named<Integration>, 5> kIntegrations = {{
    {"gausslegendre", Integration::kGaussLegendre},
    {"riemann_left", Integration::kRiemannLeft},
    {"riemann_right", Integration::kRiemannRight},
    {"riemann_middle", Integration::kRiemannMiddle},
    {"riemann_trapezoid", Integration::kRiemannTrapezoid},
}};

// The noise tunnel around a gradient method (Captum's NoiseTunnel types).
enum class Noise { kNone, kSmoothGrad, kSmoothGradSquared, kVarGrad };
inline constexpr std::array<Named<Noise>, 3> kNoiseTypes = {
    {{"smoothgrad", Noise::kSmoothGrad}, {"smoothgrad_sq", Noise::kSmoothGradSquared}, {"vargrad", Noise::kVarGrad}}};

// Grad-CAM's upsampling (F.interpolate's modes it allows).
enum class Upsample { kNearest, kBilinear, kLinear };
inline constexpr std::array<Named<Upsample>, 3> kUpsampleModes = {
    {{"nearest", Upsample::kNearest}, {"bilinear", Upsample::kBilinear}, {"linear", Upsample::kLinear}}};

// Activation maximization: how the optimised parameters map to an image, and into [0, 1].
enum class Parameterization { kFft, kPixel };
inline constexpr std::array<Named<Parameterization>, 2> kParameterizations = {
    {{"fft", Parameterization::kFft}, {"pixel", Parameterization::kPixel}}};
enum class ImageRange { kSigmoid, kClamp, kNone };
inline constexpr std::array<Named<ImageRange>, 3> kImageRanges = {
    {{"sigmoid", ImageRange::kSigmoid}, {"clamp", ImageRange::kClamp}, {"none", ImageRange::kNone}}};
enum class TransformKind { kPad, kJitter, kScale, kRotate };
inline constexpr std::array<Named<TransformKind>, 4> kTransformKinds = {{{"pad", TransformKind::kPad},
                                                                         {"jitter", TransformKind::kJitter},
                                                                         {"scale", TransformKind::kScale},
                                                                         {"rotate", TransformKind::kRotate}}};

// A patching sweep: the patched runs themselves, or their one-backward-pass estimate.
enum class SweepMethod { kActivation, kAttribution };
inline constexpr std::array<Named<SweepMethod>, 2> kSweepMethods = {
    {{"activation", SweepMethod::kActivation}, {"attribution", SweepMethod::kAttribution}}};

// An objective's kind, by the key that names it in a request ({ channel: 3 }, { logit: 7 }...).
enum class ObjectiveKind { kChannel, kNeuron, kDirection, kLogit, kTarget, kLogitDiff, kLogProb, kSum };
inline constexpr std::array<Named<ObjectiveKind>, 8> kObjectiveKinds = {{
    {"channel", ObjectiveKind::kChannel},
    {"neuron", ObjectiveKind::kNeuron},
    {"direction", ObjectiveKind::kDirection},
    {"logit", ObjectiveKind::kLogit},
    {"target", ObjectiveKind::kTarget},
    {"logitDiff", ObjectiveKind::kLogitDiff},
    {"logProb", ObjectiveKind::kLogProb},
    {"sum", ObjectiveKind::kSum},
}};

// A sparse autoencoder's architecture and input normalization, as SAELens names them
// (cfg.json's `architecture`, `normalize_activations`; sae/sae.h). 'expected_average_only_in'
// is the identity for an SAE loaded from its files, so lib/ sends it as 'none'.
enum class SaeArchitecture { kStandard, kJumpRelu, kTopK, kGated, kTranscoder, kSkipTranscoder, kJumpReluTranscoder };
inline constexpr std::array<Named<SaeArchitecture>, 7> kSaeArchitectures = {{
    {"standard", SaeArchitecture::kStandard},
    {"jumprelu", SaeArchitecture::kJumpRelu},
    {"topk", SaeArchitecture::kTopK},
    {"gated", SaeArchitecture::kGated},
    {"transcoder", SaeArchitecture::kTranscoder},
    {"skip_transcoder", SaeArchitecture::kSkipTranscoder},
    {"jumprelu_transcoder", SaeArchitecture::kJumpReluTranscoder},
}};
enum class SaeNormalization { kNone, kConstantNormRescale, kLayerNorm };
inline constexpr std::array<Named<SaeNormalization>, 3> kSaeNormalizations = {{
    {"none", SaeNormalization::kNone},
    {"constant_norm_rescale", SaeNormalization::kConstantNormRescale},
    {"layer_norm", SaeNormalization::kLayerNorm},
}};

// A linear probe's kind and a logistic probe's multiclass scheme (methods/probe.h).
enum class ProbeKind { kLogistic, kLinear, kMassMean };
inline constexpr std::array<Named<ProbeKind>, 3> kProbeKinds = {
    {{"logistic", ProbeKind::kLogistic}, {"linear", ProbeKind::kLinear}, {"massMean", ProbeKind::kMassMean}}};
enum class ProbeMulticlass { kMultinomial, kOvr };
inline constexpr std::array<Named<ProbeMulticlass>, 2> kProbeMulticlass = {
    {{"multinomial", ProbeMulticlass::kMultinomial}, {"ovr", ProbeMulticlass::kOvr}}};

// Training an SAE (sae/trainer.h), as SAELens 6.18 names them: the training architectures
// (batchtopk trains as its own class and is saved as jumprelu), the learning-rate schedulers
// (training/optim.py get_lr_scheduler) and JumpReLU's sparsity losses (jumprelu_sparsity_loss_mode).
enum class SaeTrainArchitecture { kStandard, kTopK, kBatchTopK, kJumpRelu };
inline constexpr std::array<Named<SaeTrainArchitecture>, 4> kSaeTrainArchitectures = {{
    {"standard", SaeTrainArchitecture::kStandard},
    {"topk", SaeTrainArchitecture::kTopK},
    {"batchtopk", SaeTrainArchitecture::kBatchTopK},
    {"jumprelu", SaeTrainArchitecture::kJumpRelu},
}};
enum class LrScheduler { kConstant, kCosineAnnealing, kCosineAnnealingWarmRestarts };
inline constexpr std::array<Named<LrScheduler>, 3> kLrSchedulers = {{
    {"constant", LrScheduler::kConstant},
    {"cosineannealing", LrScheduler::kCosineAnnealing},
    {"cosineannealingwarmrestarts", LrScheduler::kCosineAnnealingWarmRestarts},
}};
enum class JumpReluSparsityLoss { kStep, kTanh };
inline constexpr std::array<Named<JumpReluSparsityLoss>, 2> kJumpReluSparsityLosses = {
    {{"step", JumpReluSparsityLoss::kStep}, {"tanh", JumpReluSparsityLoss::kTanh}}};

// "'a', 'b' or 'c'": a table's names as an error message lists them.
template <typename T, size_t N>
std::string listNames(const std::array<Named<T>, N>& table) {
  std::string out;
  for (size_t i = 0; i < N; ++i) out += (i == 0 ? "'" : i + 1 == N ? " or '" : ", '") + std::string(table[i].name) + "'";
  return out;
}

// The value named `name`; INVALID_ARGUMENT naming `what` and the valid names otherwise.
template <typename T, size_t N>
T parseName(const std::array<Named<T>, N>& table, const std::string& name, const std::string& what) {
  for (const auto& entry : table) {
    if (name == entry.name) return entry.value;
  }
  TS_FAIL(code::kInvalidArgument, what, " must be ", listNames(table), ", got '", name, "'");
}

template <typename T, size_t N>
const char* nameOf(const std::array<Named<T>, N>& table, T value) {
  for (const auto& entry : table) {
    if (entry.value == value) return entry.name;
  }
  return "?";
}

}  // namespace torchscope
