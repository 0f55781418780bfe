#include "bindings/sae_train.h"

#include "bindings/js_errors.h"
#include "bindings/requests.h"
#include "bindings/session_handle.h"
#include "core/device.h"
#include "sae/trainer.h"

namespace torchscope {

namespace {

SaeTrainSpec parseSaeTrainSpec(Napi::Value value) {
  const RequestReader request(value, "SAE training request");
  SaeTrainSpec spec;
  SaeLossSpec& loss = spec.loss;
  loss.architecture = parseName(kSaeTrainArchitectures, request.string("architecture"), "SAE training request.architecture");
  loss.applyBDecToInput = request.boolean("applyBDecToInput");
  loss.lpNorm = request.number("lpNorm");
  loss.k = request.number("k");
  loss.rescaleByDecoderNorm = request.boolean("rescaleByDecoderNorm");
  loss.auxLossCoefficient = request.number("auxLossCoefficient");
  loss.bandwidth = request.number("bandwidth");
  loss.sparsityLoss = parseName(kJumpReluSparsityLosses, request.string("sparsityLoss"), "SAE training request.sparsityLoss");
  loss.tanhScale = request.number("tanhScale");
  if (request.has("preActLossCoefficient")) loss.preActLossCoefficient = request.number("preActLossCoefficient");
  spec.dIn = request.integer("dIn", 1, kMaxIndex);
  spec.dSae = request.integer("dSae", 1, kMaxIndex);
  spec.coefficient = request.number("coefficient");
  spec.coefficientWarmupSteps = request.integer("coefficientWarmupSteps", 0, kMaxSafeInteger);
  spec.topkThresholdLr = request.number("topkThresholdLr");
  spec.initThreshold = request.number("initThreshold");
  if (request.has("decoderInitNorm")) spec.decoderInitNorm = request.number("decoderInitNorm");
  spec.seed = static_cast<uint64_t>(request.integer("seed", 0, kMaxSafeInteger));
  if (request.has("initialWeights")) {
    const RequestReader weights = request.object("initialWeights");
    for (auto [tensor, key] : {std::pair{&spec.W_enc, "W_enc"}, {&spec.W_dec, "W_dec"}, {&spec.b_enc, "b_enc"}, {&spec.b_dec, "b_dec"}}) {
      *tensor = weights.tensor(key);
    }
    if (weights.has("threshold")) spec.threshold = weights.tensor("threshold");
  }
  spec.beta1 = request.number("adamBeta1");
  spec.beta2 = request.number("adamBeta2");
  LrScheduleSpec& schedule = spec.schedule;
  schedule.scheduler = parseName(kLrSchedulers, request.string("lrScheduler"), "SAE training request.lrScheduler");
  schedule.lr = request.number("lr");
  schedule.lrEnd = request.number("lrEnd");
  schedule.warmupSteps = request.integer("lrWarmupSteps", 0, kMaxSafeInteger);
  schedule.decaySteps = request.integer("lrDecaySteps", 0, kMaxSafeInteger);
  schedule.trainingSteps = request.integer("trainingSteps", 1, kMaxSafeInteger);
  schedule.restartCycles = request.integer("nRestartCycles", 1, kMaxSafeInteger);
  spec.deadFeatureWindow = request.integer("deadFeatureWindow", 0, kMaxSafeInteger);
  spec.featureSamplingWindow = request.integer("featureSamplingWindow", 1, kMaxSafeInteger);
  spec.normEstimateBatches = request.integer("normEstimateBatches", 0, kMaxSafeInteger);
  spec.checkpointEvery = request.integer("checkpointEvery", 0, kMaxSafeInteger);
  spec.device = resolveDevice(request.string("device"));
  return spec;
}

// [async] trainSae(spec) -> SessionHandle over startSaeTraining (lib/sae/train.ts).
Napi::Value trainSae(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return entryPoint(env, code::kInvalidArgument, [&] {
    SaeTrainSpec spec = parseSaeTrainSpec(info[0]);
    checkSaeTrainSpec(spec);
    return SessionHandle::start(
        env, "SAE training", nullptr, [spec] { return startSaeTraining(spec); }, Napi::Object::New(env));
  });
}

}  // namespace

void saeTrainExports(Napi::Env env, Napi::Object exports) { exports.Set("trainSae", Napi::Function::New(env, trainSae)); }

}  // namespace torchscope
