#include "sae/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <deque>

#include "core/device.h"
#include "core/errors.h"
#include "core/ivalues.h"
#include "sae/train_optimizer.h"

namespace torchscope {

namespace {

// SAETrainer's constants: clip_grad_norm_(..., 1.0), log10(sparsity + 1e-10).
constexpr double kMaxGradNorm = 1.0;
constexpr double kSparsityEpsilon = 1e-10;

bool isTopK(SaeTrainArchitecture architecture) {
  return architecture == SaeTrainArchitecture::kTopK || architecture == SaeTrainArchitecture::kBatchTopK;
}

void requireShape(const at::Tensor& tensor, const char* name, at::IntArrayRef shape) {
  if (!tensor.defined()) return;
  TS_CHECK(tensor.sizes() == shape, code::kShape, "initialWeights.", name, " must be ", shape, ", got ", tensor.sizes());
  TS_CHECK(tensor.is_floating_point(), code::kDtype, "initialWeights.", name, " must be floating point, got ", tensor.scalar_type());
}

// SAE.initialize_weights and TrainingSAE.initialize_weights: kaiming_uniform_ (fan_in d_in, gain
// sqrt(2)) on the CPU generator seeded as torch.manual_seed(seed) seeds it.
SaeTrainParams initialParams(const SaeTrainSpec& spec) {
  at::NoGradGuard noGrad;
  const auto options = at::TensorOptions().dtype(at::kFloat);
  SaeTrainParams p;
  if (spec.W_enc.defined()) {
    auto copy = [](const at::Tensor& t) { return t.to(at::kFloat).clone().contiguous(); };
    p.b_dec = copy(spec.b_dec);
    p.W_dec = copy(spec.W_dec);
    p.W_enc = copy(spec.W_enc);
    p.b_enc = copy(spec.b_enc);
  } else {
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
    p.b_dec = at::zeros({spec.dIn}, options);
    const double bound = std::sqrt(3.0) * (std::sqrt(2.0) / std::sqrt(static_cast<double>(spec.dIn)));
    p.W_dec = at::empty({spec.dSae, spec.dIn}, options).uniform_(-bound, bound, generator);
    p.W_enc = p.W_dec.t().clone().contiguous();
    if (spec.decoderInitNorm) {
      p.W_dec.div_(at::linalg_vector_norm(p.W_dec, 2, at::IntArrayRef{-1}, /*keepdim=*/true, std::nullopt));
      p.W_dec.mul_(*spec.decoderInitNorm);
      p.W_enc = p.W_dec.t().clone().contiguous();
    }
    p.b_enc = at::zeros({spec.dSae}, options);
  }
  if (spec.loss.architecture == SaeTrainArchitecture::kJumpRelu) {
    p.logThreshold = spec.threshold.defined() ? at::log(spec.threshold.to(at::kFloat)).contiguous()
                                              : at::ones({spec.dSae}, options) * std::log(spec.initThreshold);
  }
  for (at::Tensor* t : {&p.b_dec, &p.W_dec, &p.W_enc, &p.b_enc, &p.logThreshold}) {
    if (t->defined()) *t = t->to(spec.device).requires_grad_(true);
  }
  return p;
}

class SaeTrainer : public SteppedJob {
 public:
  explicit SaeTrainer(SaeTrainSpec spec)
      : spec_(std::move(spec)),
        params_(initialParams(spec_)),
        adam_(params_.list(), spec_.beta1, spec_.beta2),
        lr_(spec_.schedule),
        coefficient_(spec_.coefficient, spec_.coefficientWarmupSteps),
        actFreq_(at::zeros({spec_.dSae}, at::TensorOptions(spec_.device).dtype(at::kFloat))),
        sinceFired_(at::zeros({spec_.dSae}, at::TensorOptions(spec_.device).dtype(at::kFloat))) {}

  void supply(std::vector<at::Tensor> inputs) override {
    for (at::Tensor& input : inputs) pending_.push_back(std::move(input));
  }

  c10::IValue steps(int64_t count, const std::function<bool()>& stop) override {
    const int64_t trainedBefore = trained_;
    c10::IValue stats;  // none unless the chunk's last step reported
    for (int64_t i = 0; i < count && !pending_.empty() && !stop(); ++i) {
      const at::Tensor batch = prepared(pending_.front());
      pending_.pop_front();
      if (estimated_ < spec_.normEstimateBatches) {
        estimate(batch);
      } else {
        stats = trainStep(batch, pending_.empty() || i + 1 == count);
      }
    }
    pending_.clear();  // what an abort left unused
    Record progress;
    progress.set("estimated", estimated_).set("trained", trained_).set("trainedTokens", trainedTokens_);
    if (!stats.isNone()) progress.set("stats", stats);
    if (spec_.checkpointEvery > 0 && trained_ > trainedBefore && trained_ % spec_.checkpointEvery == 0) progress.set("checkpoint", saved());
    return progress;
  }

  c10::IValue result(const c10::IValue&) override {
    at::NoGradGuard noGrad;
    Record params;
    params.set("W_enc", params_.W_enc.detach().cpu()).set("W_dec", params_.W_dec.detach().cpu());
    params.set("b_enc", params_.b_enc.detach().cpu()).set("b_dec", params_.b_dec.detach().cpu());
    if (params_.logThreshold.defined()) params.set("log_threshold", params_.logThreshold.detach().cpu());
    Record out;
    out.set("saved", saved()).set("params", params).set("trained", trained_).set("trainedTokens", trainedTokens_);
    out.set("scalingFactor", scale_ ? c10::IValue(*scale_) : c10::IValue());
    if (spec_.loss.architecture == SaeTrainArchitecture::kBatchTopK) out.set("topkThreshold", topkThreshold_);
    return out;
  }

  int64_t bytes() const override {
    int64_t total = adam_.bytes();
    for (const at::Tensor& p : params_.list()) total += 2 * static_cast<int64_t>(p.nbytes());  // the parameter and its gradient
    return total;
  }

 private:
  at::Tensor prepared(const at::Tensor& batch) const {
    TS_CHECK(batch.dim() == 2 && batch.size(1) == spec_.dIn && batch.size(0) >= 1, code::kShape, "a batch of activations is [tokens, ",
             spec_.dIn, "], got ", batch.sizes());
    TS_CHECK(batch.is_floating_point(), code::kDtype, "a batch of activations must be floating point, got ", batch.scalar_type());
    return batch.to(spec_.device, at::kFloat);
  }

  // ActivationScaler._calculate_mean_norm: the mean over batches of each batch's mean norm.
  void estimate(const at::Tensor& batch) {
    at::NoGradGuard noGrad;
    normSum_ += at::linalg_vector_norm(batch, 2, at::IntArrayRef{-1}, false, std::nullopt).mean().item<double>();
    estimated_ += 1;
    if (estimated_ == spec_.normEstimateBatches) {
      const double meanNorm = static_cast<double>(normSum_ / static_cast<long double>(estimated_));
      scale_ = std::pow(static_cast<double>(spec_.dIn), 0.5) / meanNorm;
    }
  }

  // One step; its statistics when `report`, else none.
  c10::IValue trainStep(const at::Tensor& raw, bool report) {
    trainedTokens_ += raw.size(0);
    const at::Tensor batch = scale_ ? raw * *scale_ : raw;
    if ((trained_ + 1) % spec_.featureSamplingWindow == 0) {
      actFreq_.zero_();
      fracSamples_ = 0;
    }
    const at::Tensor dead = sinceFired_ > spec_.deadFeatureWindow;
    const double lr = lr_.lr(), coefficient = coefficient_.value();
    at::AutoGradMode gradients(true);
    const SaeForward forward = trainingForward(spec_.loss, params_, batch, dead, coefficient);
    c10::IValue stats;
    {
      at::NoGradGuard noGrad;
      if (spec_.loss.architecture == SaeTrainArchitecture::kBatchTopK) updateThreshold(forward.featureActs);
      // SAELens counts firings in a float copy of the features (feature_acts.bool().float()), summed
      // twice; the counts are integers, the same counted on the booleans, once.
      const at::Tensor firing = forward.featureActs.to(at::kBool);
      const at::Tensor fired = firing.sum(0).to(at::kFloat);
      sinceFired_.add_(1);
      sinceFired_.masked_fill_(fired.to(at::kBool), 0);
      actFreq_.add_(fired);
      fracSamples_ += batch.size(0);
      if (report) stats = statsOf(forward, firing, batch, lr, coefficient);
    }
    forward.loss.backward();
    const std::vector<at::Tensor> parameters = params_.list();
    clipGradNorm(parameters, kMaxGradNorm);
    adam_.step(lr);
    adam_.zeroGrad();
    lr_.step();
    coefficient_.step();
    trained_ += 1;
    return stats;
  }

  // BatchTopKTrainingSAE.update_topk_threshold: an EMA of the smallest positive activation, in double.
  void updateThreshold(const at::Tensor& acts) {
    const at::Tensor positive = acts > 0;
    if (!positive.any().item<bool>()) return;
    const double smallest = acts.masked_select(positive).min().item<double>();
    topkThreshold_ = (1 - spec_.topkThresholdLr) * topkThreshold_ + spec_.topkThresholdLr * smallest;
  }

  // What SAETrainer logs of a step (_build_train_step_log_dict).
  Record statsOf(const SaeForward& forward, const at::Tensor& firing, const at::Tensor& batch, double lr, double coefficient) const {
    Record losses;
    for (const auto& [name, value] : forward.losses) losses.set(name, value.item<double>());
    const at::Tensor perTokenL2 = (forward.output - batch).pow(2).sum(-1);
    const at::Tensor totalVariance = (batch - batch.mean(0)).pow(2).sum(-1);
    Record stats;
    stats.set("loss", forward.loss.item<double>()).set("losses", losses).set("mse", forward.losses[0].second.item<double>());
    stats.set("l0", firing.sum(-1).to(at::kFloat).mean().item<double>());
    stats.set("explainedVariance", 1 - (perTokenL2.mean() / totalVariance.mean()).item<double>());
    stats.set("deadFeatures", (sinceFired_ > spec_.deadFeatureWindow).sum().item<int64_t>());
    stats.set("lr", lr);
    const auto architecture = spec_.loss.architecture;
    if (architecture == SaeTrainArchitecture::kStandard || architecture == SaeTrainArchitecture::kJumpRelu)
      stats.set("coefficient", coefficient);
    if (architecture == SaeTrainArchitecture::kBatchTopK) stats.set("topkThreshold", topkThreshold_);
    return stats;
  }

  // save_inference_model of the SAE as it is now (the scale folded into copies).
  Record saved() const {
    at::NoGradGuard noGrad;
    at::Tensor W_enc = params_.W_enc.detach().clone(), W_dec = params_.W_dec.detach().clone();
    at::Tensor b_enc = params_.b_enc.detach().clone(), b_dec = params_.b_dec.detach().clone();
    if (scale_) {  // fold_activation_norm_scaling_factor
      W_enc.mul_(*scale_);
      W_dec.div_(*scale_);
      b_dec.div_(*scale_);
    }
    if (isTopK(spec_.loss.architecture) && spec_.loss.rescaleByDecoderNorm) {  // _fold_norm_topk
      const at::Tensor norms = at::linalg_vector_norm(W_dec, 2, at::IntArrayRef{-1}, false, std::nullopt);
      b_enc = b_enc * norms;
      const at::Tensor column = norms.unsqueeze(1);
      W_dec = W_dec / column;
      W_enc = W_enc * column.t();
    }
    Record tensors;
    tensors.set("W_enc", W_enc.cpu()).set("W_dec", W_dec.cpu()).set("b_enc", b_enc.cpu()).set("b_dec", b_dec.cpu());
    if (spec_.loss.architecture == SaeTrainArchitecture::kJumpRelu) tensors.set("threshold", params_.logThreshold.detach().exp().cpu());
    if (spec_.loss.architecture == SaeTrainArchitecture::kBatchTopK)
      tensors.set("threshold", (at::ones_like(b_enc) * topkThreshold_).cpu());
    Record out;
    out.set("tensors", tensors).set("device", deviceName(spec_.device));
    // feature_sparsity: firing frequency over the current window (NaN before any step: none then).
    out.set("sparsity", fracSamples_ > 0 ? c10::IValue(at::log10(actFreq_ / fracSamples_ + kSparsityEpsilon).cpu()) : c10::IValue());
    return out;
  }

  SaeTrainSpec spec_;
  SaeTrainParams params_;
  Adam adam_;
  LrSchedule lr_;
  CoefficientSchedule coefficient_;
  std::deque<at::Tensor> pending_;
  // The activation scale's estimate (ActivationScaler): the sum of the batches' mean norms.
  int64_t estimated_ = 0;
  long double normSum_ = 0;
  std::optional<double> scale_;
  // SAETrainer's statistics: act_freq_scores, n_forward_passes_since_fired, n_frac_active_samples.
  at::Tensor actFreq_, sinceFired_;
  int64_t fracSamples_ = 0;
  int64_t trained_ = 0, trainedTokens_ = 0;
  double topkThreshold_ = 0;  // batchtopk's topk_threshold buffer (double, as SAELens keeps it)
};

}  // namespace

void checkSaeTrainSpec(const SaeTrainSpec& spec) {
  const SaeLossSpec& loss = spec.loss;
  TS_CHECK(spec.dIn >= 1 && spec.dSae >= 1, code::kInvalidArgument, "dIn and dSae must be >= 1");
  if (isTopK(loss.architecture)) {
    TS_CHECK(spec.dIn >= 2, code::kInvalidArgument, "a ", nameOf(kSaeTrainArchitectures, loss.architecture),
             " SAE's auxiliary loss takes the top dIn / 2 dead latents: dIn must be >= 2");
    TS_CHECK(loss.k > 0 && loss.k <= static_cast<double>(spec.dSae), code::kInvalidArgument, "k must be in (0, dSae = ", spec.dSae,
             "], got ", loss.k);
  }
  if (loss.architecture == SaeTrainArchitecture::kJumpRelu) {
    TS_CHECK(loss.bandwidth > 0 && spec.initThreshold > 0, code::kInvalidArgument, "bandwidth and initThreshold must be > 0");
  }
  TS_CHECK(spec.deadFeatureWindow >= 0 && spec.featureSamplingWindow >= 1, code::kInvalidArgument,
           "deadFeatureWindow must be >= 0 and featureSamplingWindow >= 1");
  const bool given = spec.W_enc.defined();
  TS_CHECK(given == spec.W_dec.defined() && given == spec.b_enc.defined() && given == spec.b_dec.defined(), code::kInvalidArgument,
           "initialWeights needs W_enc, W_dec, b_enc and b_dec together");
  requireShape(spec.W_enc, "W_enc", {spec.dIn, spec.dSae});
  requireShape(spec.W_dec, "W_dec", {spec.dSae, spec.dIn});
  requireShape(spec.b_enc, "b_enc", {spec.dSae});
  requireShape(spec.b_dec, "b_dec", {spec.dIn});
  requireShape(spec.threshold, "threshold", {spec.dSae});
  checkLrSchedule(spec.schedule);
}

std::shared_ptr<SteppedJob> startSaeTraining(SaeTrainSpec spec) {
  checkSaeTrainSpec(spec);
  return std::make_shared<SaeTrainer>(std::move(spec));
}

}  // namespace torchscope
