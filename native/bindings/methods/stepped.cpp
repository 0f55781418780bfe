// attribute, patchingSweep and maximize: stepped jobs (methods/stepped_job.h), each started as a
// SessionHandle that lib/core/session.ts drives.
#include "bindings/js_errors.h"
#include "bindings/model_handle.h"
#include "bindings/requests.h"
#include "bindings/session_handle.h"
#include "bindings/values.h"
#include "methods/attribution.h"
#include "methods/maximize.h"
#include "methods/patching.h"

namespace torchscope {

namespace {

AttributionSpec parseAttributionSpec(Napi::Value value) {
  const RequestReader request(value, "attribute request");
  AttributionSpec spec;
  spec.method = parseName(kAttributionMethods, request.string("method"), "attribute request.method");
  spec.objective = parseObjectiveSpec(request.object("objective"));
  spec.input = request.integer("input", 0, kMaxIndex);
  if (request.has("baseline")) spec.baseline = request.tensor("baseline");
  spec.baselineValue = request.number("baselineValue");
  spec.abs = request.boolean("abs");
  spec.multiplyByInputs = request.boolean("multiplyByInputs");
  spec.steps = request.integer("steps", 1, kMaxIndex);
  spec.integration = parseName(kIntegrations, request.string("integration"), "attribute request.integration");
  spec.internalBatchSize = request.integer("internalBatchSize", 0, kMaxSafeInteger);
  spec.convergenceDelta = request.boolean("convergenceDelta");
  spec.layer = request.string("layer");
  spec.relu = request.boolean("relu");
  spec.upsample = request.integers("upsample");
  spec.upsampleMode = parseName(kUpsampleModes, request.string("upsampleMode"), "attribute request.upsampleMode");
  spec.window = request.integers("window");
  spec.strides = request.integers("strides");
  if (request.has("featureMask")) spec.featureMask = request.tensor("featureMask");
  spec.perturbationsPerEval = request.integer("perturbationsPerEval", 1, kMaxIndex);
  const std::string noise = request.string("noise");  // '' for none
  spec.noise = noise.empty() ? Noise::kNone : parseName(kNoiseTypes, noise, "attribute request.noise");
  spec.samples = request.integer("samples", 1, kMaxIndex);
  spec.samplesBatchSize = request.integer("samplesBatchSize", 0, kMaxIndex);
  spec.stdev = request.number("stdev");
  spec.seed = static_cast<uint64_t>(request.integer("seed", 0, kMaxSafeInteger));
  spec.numerics = parseNumerics(request);
  return spec;
}

// [async] attribute(inputs[], spec) -> SessionHandle over planAttribution (lib/methods/attribution.ts).
Napi::Value attribute(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto inputs = toForwardInputs(info[0], model->format->forwardSchema());
  auto spec = parseAttributionSpec(info[1]);
  return SessionHandle::start(
      info.Env(), "attribution run", model, [model, inputs, spec] { return plannedJob(planAttribution(model, inputs, spec)); },
      info.This().As<Napi::Object>());
}
TORCHSCOPE_MODEL_METHOD("attribute", attribute);

SweepSpec parseSweepSpec(Napi::Value value) {
  const RequestReader request(value, "patching sweep request");
  SweepSpec spec;
  spec.layers = request.strings("layers");
  spec.positions = request.integers("positions");
  spec.heads = request.integer("heads", 0, kMaxIndex);
  spec.metric = parseObjectiveSpec(request.object("metric"));
  spec.normalize = request.boolean("normalize");
  spec.batchSize = request.integer("batchSize", 0, kMaxIndex);
  spec.method = parseName(kSweepMethods, request.string("method"), "patching sweep request.method");
  spec.numerics = parseNumerics(request);
  parseSaes(request, spec.saeSplices, spec.saes);
  return spec;
}

// [async] patchingSweep(clean[], corrupted[], spec) -> SessionHandle over planSweep (lib/methods/circuits.ts).
Napi::Value patchingSweep(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto clean = toForwardInputs(info[0], model->format->forwardSchema());
  auto corrupted = toForwardInputs(info[1], model->format->forwardSchema());
  auto spec = parseSweepSpec(info[2]);
  return SessionHandle::start(
      info.Env(), "patching sweep", model, [model, clean, corrupted, spec] { return plannedJob(planSweep(model, clean, corrupted, spec)); },
      info.This().As<Napi::Object>());
}
TORCHSCOPE_MODEL_METHOD("patchingSweep", patchingSweep);

MaximizeSpec parseMaximizeSpec(Napi::Value value) {
  const RequestReader request(value, "maximize request");
  MaximizeSpec spec;
  spec.objective = parseObjectiveSpec(request);  // { layer, objectives }: one objective per image
  const RequestReader image = request.object("image");
  spec.image.parameterization = parseName(kParameterizations, image.string("parameterization"), "maximize request.image.parameterization");
  spec.image.range = parseName(kImageRanges, image.string("range"), "maximize request.image.range");
  spec.image.decorrelate = image.boolean("decorrelate");
  spec.image.batch = static_cast<int64_t>(spec.objective.objectives.size());
  spec.image.channels = image.integer("channels", 1, 64);
  spec.image.height = image.integer("height", 1, kMaxImageSide);
  spec.image.width = image.integer("width", 1, kMaxImageSide);
  spec.image.decayPower = image.number("decayPower");
  TS_CHECK(spec.image.channels == 3 || !spec.image.decorrelate, code::kInvalidArgument,
           "maximize request.image.decorrelate: colour decorrelation needs 3 channels");
  if (image.has("init")) spec.image.init = image.tensor("init");
  if (request.has("transforms")) {
    for (const RequestReader& t : request.objects("transforms")) {
      Transform transform{parseName(kTransformKinds, t.string("kind"), "maximize request.transforms[].kind"), t.numbers("values")};
      TS_CHECK(!transform.values.empty(), code::kInvalidArgument, "maximize request.transforms: a transform needs values");
      spec.transforms.push_back(std::move(transform));
    }
  } else {
    spec.transforms = standardTransforms();
  }
  const RequestReader regularizers = request.object("regularizers");
  auto weight = [&](const char* key) { return regularizers.has(key) ? regularizers.number(key) : 0.0; };
  spec.regularizers = {weight("l1"), weight("l2"), weight("tv"), weight("blur")};
  spec.normalize = request.boolean("normalize");
  TS_CHECK(!spec.normalize || spec.image.channels == 3, code::kInvalidArgument,
           "maximize request.normalize: ImageNet normalization needs 3 channels");
  spec.lr = request.number("lr");
  spec.beta1 = request.number("beta1");
  spec.beta2 = request.number("beta2");
  spec.seed = static_cast<uint64_t>(request.integer("seed", 0, kMaxSafeInteger));
  spec.numerics = parseNumerics(request);
  return spec;
}

// [async] maximize(spec) -> SessionHandle over startMaximize (lib/methods/maximize.ts).
Napi::Value maximize(const Napi::CallbackInfo& info, const std::shared_ptr<ModelState>& model) {
  auto spec = parseMaximizeSpec(info[0]);
  checkMaximizeFits(spec);
  return SessionHandle::start(
      info.Env(), "maximize session", model, [model, spec] { return startMaximize(model, spec); }, info.This().As<Napi::Object>());
}
TORCHSCOPE_MODEL_METHOD("maximize", maximize);

}  // namespace

}  // namespace torchscope
