#include "bindings/requests.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "core/errors.h"
#include "program/patch.h"
#include "bindings/tensor.h"

namespace torchscope {

namespace {

constexpr int64_t kMaxSafeInteger = 9007199254740991;  // 2^53 - 1: integers JS numbers hold exactly

std::string describe(Napi::Value value) {
  if (value.IsUndefined()) return "nothing";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) return "the number " + value.ToString().Utf8Value();
  if (value.IsString()) return "a string";
  if (value.IsBoolean()) return "a boolean";
  if (value.IsArray()) return "an array";
  return "an object";
}

}  // namespace

RequestReader::RequestReader(Napi::Value value, std::string where) : where_(std::move(where)) {
  if (!value.IsObject() || value.IsArray()) throw Error(code::kInvalidArgument, where_ + ": expected an object, got " + describe(value));
  object_ = value.As<Napi::Object>();
}

Napi::Value RequestReader::field(const char* key) const { return object_.Get(key); }

bool RequestReader::has(const char* key) const { return !field(key).IsUndefined(); }

void RequestReader::fail(const char* key, const std::string& expected, Napi::Value got) const {
  throw Error(code::kInvalidArgument, where_ + "." + key + ": expected " + expected + ", got " + describe(got));
}

std::string RequestReader::string(const char* key) const {
  Napi::Value value = field(key);
  if (!value.IsString()) fail(key, "a string", value);
  return value.As<Napi::String>().Utf8Value();
}

int64_t RequestReader::integer(const char* key, int64_t min, int64_t max) const {
  Napi::Value value = field(key);
  const std::string range = "an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!value.IsNumber()) fail(key, range, value);
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(number) || std::trunc(number) != number || number < static_cast<double>(min) ||
      number > static_cast<double>(max)) {
    fail(key, range, value);
  }
  return static_cast<int64_t>(number);
}

double RequestReader::number(const char* key) const {
  Napi::Value value = field(key);
  if (!value.IsNumber() || !std::isfinite(value.As<Napi::Number>().DoubleValue())) fail(key, "a finite number", value);
  return value.As<Napi::Number>().DoubleValue();
}

bool RequestReader::boolean(const char* key) const {
  Napi::Value value = field(key);
  if (!value.IsBoolean()) fail(key, "a boolean", value);
  return value.As<Napi::Boolean>().Value();
}

at::Tensor RequestReader::tensor(const char* key) const {
  Napi::Value value = field(key);
  if (!TensorHandle::isHandle(value.Env(), value)) fail(key, "a Tensor", value);
  return TensorHandle::unwrap(value);
}

RequestReader RequestReader::object(const char* key) const { return RequestReader(field(key), where_ + "." + key); }

std::vector<Napi::Value> RequestReader::array(const char* key) const {
  Napi::Value value = field(key);
  if (value.IsUndefined()) return {};
  if (!value.IsArray()) fail(key, "an array", value);
  auto array = value.As<Napi::Array>();
  std::vector<Napi::Value> items;
  items.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) items.push_back(array.Get(i));
  return items;
}

std::vector<std::string> RequestReader::strings(const char* key) const {
  std::vector<std::string> out;
  for (const Napi::Value& item : array(key)) {
    if (!item.IsString()) fail(key, "an array of strings", item);
    out.push_back(item.As<Napi::String>().Utf8Value());
  }
  return out;
}

std::vector<int64_t> RequestReader::integers(const char* key) const {
  std::vector<int64_t> out;
  for (const Napi::Value& item : array(key)) {
    const double number = item.IsNumber() ? item.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(number) || std::trunc(number) != number || std::fabs(number) > kMaxSafeInteger) {
      fail(key, "an array of integers", item);
    }
    out.push_back(static_cast<int64_t>(number));
  }
  return out;
}

std::vector<double> RequestReader::numbers(const char* key) const {
  std::vector<double> out;
  for (const Napi::Value& item : array(key)) {
    if (!item.IsNumber() || !std::isfinite(item.As<Napi::Number>().DoubleValue())) fail(key, "an array of finite numbers", item);
    out.push_back(item.As<Napi::Number>().DoubleValue());
  }
  return out;
}

std::vector<RequestReader> RequestReader::objects(const char* key) const {
  std::vector<RequestReader> out;
  size_t i = 0;
  for (const Napi::Value& item : array(key)) out.emplace_back(item, where_ + "." + key + "[" + std::to_string(i++) + "]");
  return out;
}

namespace {

std::vector<std::string> sortedUnique(std::vector<std::string> layers) {
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

// `patch`: [{ layer, mode, value?, scale?, channels?, positions? }], into layers sorted as a
// program takes them and their run-time arguments in the same order.
void parsePatches(const RequestReader& request, std::vector<std::string>& layers, std::vector<PatchArgs>& patches) {
  std::map<std::string, PatchArgs> byLayer;
  for (const RequestReader& patch : request.objects("patch")) {
    PatchArgs args;
    args.mode = patch.integer("mode", kPatchSet, kPatchScale);
    if (patch.has("value")) args.value = patch.tensor("value");
    if (patch.has("scale")) args.scale = patch.number("scale");
    args.channels = patch.integers("channels");
    args.positions = patch.integers("positions");
    byLayer[patch.string("layer")] = std::move(args);
  }
  for (auto& [layer, args] : byLayer) {
    layers.push_back(layer);
    patches.push_back(std::move(args));
  }
}

// A call's optional { precision, upcast } (precision.h).
NumericsOverride parseNumerics(const RequestReader& request) {
  NumericsOverride numerics;
  if (request.has("precision")) numerics.precision = parsePrecision(request.string("precision"));
  if (request.has("upcast")) numerics.upcast = request.boolean("upcast");
  return numerics;
}

}  // namespace

RunRequest parseRunRequest(Napi::Value value) {
  const RequestReader request(value, "run request");
  RunRequest out;
  out.spec.capture = sortedUnique(request.strings("capture"));
  out.spec.returnOutput = request.boolean("output");
  parsePatches(request, out.spec.patch, out.patches);
  out.spec.gradient = sortedUnique(request.strings("gradient"));  // inspect: a gradients program
  out.numerics = parseNumerics(request);
  return out;
}

namespace {

constexpr int64_t kMaxIndex = 1LL << 31;

Objective parseObjective(const RequestReader& o) {
  Objective objective;
  if (o.has("sum")) {
    objective.kind = Objective::kSum;
    for (const RequestReader& term : o.objects("sum")) {
      objective.terms.emplace_back(term.number("weight"), parseObjective(term.object("objective")));
    }
    if (objective.terms.empty()) throw Error(code::kInvalidArgument, "a sum objective needs at least one term");
  } else if (o.has("neuron")) {
    objective.kind = Objective::kNeuron;
    const RequestReader neuron = o.object("neuron");
    objective.index = neuron.integer("channel", 0, kMaxIndex);
    if (neuron.has("y")) objective.y = neuron.integer("y", 0, kMaxIndex);
    if (neuron.has("x")) objective.x = neuron.integer("x", 0, kMaxIndex);
  } else if (o.has("direction")) {
    objective.kind = Objective::kDirection;
    objective.direction = o.tensor("direction");
  } else if (o.has("logit")) {
    objective.kind = Objective::kLogit;
    objective.index = o.integer("logit", 0, kMaxIndex);
  } else if (o.has("logitDiff")) {
    objective.kind = Objective::kLogitDiff;
    const std::vector<int64_t> pair = o.integers("logitDiff");
    if (pair.size() != 2 || pair[0] < 0 || pair[1] < 0) throw Error(code::kInvalidArgument, "logitDiff is [a, b]: two classes");
    objective.index = pair[0];
    objective.other = pair[1];
  } else if (o.has("logProb")) {
    objective.kind = Objective::kLogProb;
    objective.index = o.integer("logProb", 0, kMaxIndex);
  } else if (o.has("target")) {
    objective.kind = Objective::kTarget;
    objective.index = o.integer("target", 0, kMaxIndex);
  } else {
    objective.kind = Objective::kChannel;
    objective.index = o.integer("channel", 0, kMaxIndex);
  }
  if (o.has("position")) objective.position = o.integer("position", -kMaxIndex, kMaxIndex);
  return objective;
}

}  // namespace

ObjectiveSpec parseObjectiveSpec(const RequestReader& request) {
  ObjectiveSpec spec;
  spec.layer = request.string("layer");
  for (const RequestReader& objective : request.objects("objectives")) spec.objectives.push_back(parseObjective(objective));
  if (spec.objectives.empty()) throw Error(code::kInvalidArgument, "objective: expected at least one");
  if (spec.needsLayer() && spec.layer.empty()) throw Error(code::kInvalidArgument, "this objective reads a layer: give its layer");
  return spec;
}

GradientSpec parseGradientSpec(Napi::Value value) {
  const RequestReader request(value, "gradients request");
  GradientSpec spec;
  spec.objective = parseObjectiveSpec(request.object("objective"));
  spec.inputs = request.integers("inputs");
  spec.layers = sortedUnique(request.strings("layers"));
  parsePatches(request, spec.patchLayers, spec.patches);
  spec.numerics = parseNumerics(request);
  return spec;
}

AttributionSpec parseAttributionSpec(Napi::Value value) {
  const RequestReader request(value, "attribute request");
  AttributionSpec spec;
  spec.method = request.string("method");
  spec.objective = parseObjectiveSpec(request.object("objective"));
  spec.input = request.integer("input", 0, kMaxIndex);
  if (request.has("baseline")) spec.baseline = request.tensor("baseline");
  spec.baselineValue = request.number("baselineValue");
  spec.abs = request.boolean("abs");
  spec.multiplyByInputs = request.boolean("multiplyByInputs");
  spec.steps = request.integer("steps", 1, kMaxIndex);
  spec.integration = request.string("integration");
  spec.internalBatchSize = request.integer("internalBatchSize", 0, kMaxSafeInteger);
  spec.convergenceDelta = request.boolean("convergenceDelta");
  spec.layer = request.string("layer");
  spec.relu = request.boolean("relu");
  spec.upsample = request.integers("upsample");
  spec.upsampleMode = request.string("upsampleMode");
  spec.window = request.integers("window");
  spec.strides = request.integers("strides");
  if (request.has("featureMask")) spec.featureMask = request.tensor("featureMask");
  spec.perturbationsPerEval = request.integer("perturbationsPerEval", 1, kMaxIndex);
  spec.noise = request.string("noise");
  spec.samples = request.integer("samples", 1, kMaxIndex);
  spec.samplesBatchSize = request.integer("samplesBatchSize", 0, kMaxIndex);
  spec.stdev = request.number("stdev");
  spec.seed = static_cast<uint64_t>(request.integer("seed", 0, kMaxSafeInteger));
  spec.numerics = parseNumerics(request);
  return spec;
}

LensSpec parseLensSpec(Napi::Value value) {
  const RequestReader request(value, "logit lens request");
  LensSpec spec;
  spec.layers = request.strings("layers");
  spec.head = request.strings("head");
  spec.topK = request.integer("topK", 0, kMaxIndex);
  spec.numerics = parseNumerics(request);
  return spec;
}

SweepSpec parseSweepSpec(Napi::Value value) {
  const RequestReader request(value, "patching sweep request");
  SweepSpec spec;
  spec.layers = request.strings("layers");
  spec.positions = request.integers("positions");
  spec.heads = request.integer("heads", 0, kMaxIndex);
  spec.metric = parseObjectiveSpec(request.object("metric"));
  spec.normalize = request.boolean("normalize");
  spec.batchSize = request.integer("batchSize", 0, kMaxIndex);
  const std::string method = request.string("method");
  if (method != "activation" && method != "attribution") {
    throw Error(code::kInvalidArgument, "patching sweep request.method: expected 'activation' or 'attribution'");
  }
  spec.attribution = method == "attribution";
  spec.numerics = parseNumerics(request);
  return spec;
}

MaximizeSpec parseMaximizeSpec(Napi::Value value) {
  const RequestReader request(value, "maximize request");
  MaximizeSpec spec;
  spec.layer = request.string("layer");
  for (const RequestReader& objective : request.objects("objectives")) spec.objectives.push_back(parseObjective(objective));
  if (spec.objectives.empty()) throw Error(code::kInvalidArgument, "maximize request .objectives: expected at least one");
  const RequestReader image = request.object("image");
  spec.image.parameterization = image.string("parameterization");
  spec.image.range = image.string("range");
  if (spec.image.parameterization != "fft" && spec.image.parameterization != "pixel") {
    throw Error(code::kInvalidArgument, "maximize request .image.parameterization: expected 'fft' or 'pixel'");
  }
  if (spec.image.range != "sigmoid" && spec.image.range != "clamp" && spec.image.range != "none") {
    throw Error(code::kInvalidArgument, "maximize request .image.range: expected 'sigmoid', 'clamp' or 'none'");
  }
  spec.image.decorrelate = image.boolean("decorrelate");
  spec.image.batch = static_cast<int64_t>(spec.objectives.size());
  spec.image.channels = image.integer("channels", 1, 64);
  spec.image.height = image.integer("height", 1, kMaxImageSide);
  spec.image.width = image.integer("width", 1, kMaxImageSide);
  spec.image.decayPower = image.number("decayPower");
  if (spec.image.channels != 3 && spec.image.decorrelate) {
    throw Error(code::kInvalidArgument, "maximize request .image.decorrelate: colour decorrelation needs 3 channels");
  }
  if (image.has("init")) spec.image.init = image.tensor("init");
  if (request.has("transforms")) {
    static const std::map<std::string, Transform::Kind> kinds = {
        {"pad", Transform::kPad}, {"jitter", Transform::kJitter}, {"scale", Transform::kScale}, {"rotate", Transform::kRotate}};
    for (const RequestReader& t : request.objects("transforms")) {
      auto kind = kinds.find(t.string("kind"));
      if (kind == kinds.end()) throw Error(code::kInvalidArgument, "maximize request .transforms: unknown kind");
      Transform transform{kind->second, t.numbers("values")};
      if (transform.values.empty()) throw Error(code::kInvalidArgument, "maximize request .transforms: a transform needs values");
      spec.transforms.push_back(std::move(transform));
    }
  } else {
    spec.transforms = standardTransforms();
  }
  const RequestReader regularizers = request.object("regularizers");
  auto weight = [&](const char* key) { return regularizers.has(key) ? regularizers.number(key) : 0.0; };
  spec.regularizers = {weight("l1"), weight("l2"), weight("tv"), weight("blur")};
  spec.normalize = request.boolean("normalize");
  if (spec.normalize && spec.image.channels != 3) throw Error(code::kInvalidArgument, "maximize request .normalize: ImageNet normalization needs 3 channels");
  spec.lr = request.number("lr");
  spec.beta1 = request.number("beta1");
  spec.beta2 = request.number("beta2");
  spec.seed = static_cast<uint64_t>(request.integer("seed", 0, kMaxSafeInteger));
  spec.numerics = parseNumerics(request);
  return spec;
}

}  // namespace torchscope
